"""The local host behind ``fanout serve``: the Function App's triggers, HTTP API and durable engine in
one process on this machine (Azurite for storage, local agent processes for compute)."""
