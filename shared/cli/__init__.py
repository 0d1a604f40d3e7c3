"""The ``fanout`` command line: one module per command, registered lazily in :mod:`shared.cli.main`."""
