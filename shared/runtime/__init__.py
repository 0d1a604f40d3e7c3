"""The node agent: queue consumer, worker processes, entry-script contract, records, output staging, logs."""
