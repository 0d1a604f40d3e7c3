"""The pipeline spec language: Azure ML YAML models, located loading, bindings, the job graph, freezing."""
