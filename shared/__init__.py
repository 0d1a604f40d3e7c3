"""Fanout's engine: everything that is not a Functions trigger lives here (DESIGN decision 7)."""
