"""Modules that Azure ML entry scripts import, made available on the workers' ``sys.path`` only."""
