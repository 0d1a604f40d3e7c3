"""Executors that place agents on compute: local processes or Azure Batch (see :mod:`.base`)."""
