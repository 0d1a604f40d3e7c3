"""Input resolution, MLTable reading, and partitioning inputs into mini-batch descriptors."""
