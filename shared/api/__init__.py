"""Fanout's HTTP API as plain functions, shared by the Function App and the local host.

- :mod:`shared.api.http` — the raw request/response both hosts translate to and from;
- :mod:`shared.api.models` — the pydantic request and response bodies (the OpenAPI schemas);
- :mod:`shared.api.routes` — the route table, matching and dispatch (errors become JSON answers);
- :mod:`shared.api.pipelines`, :mod:`shared.api.runs`, :mod:`shared.api.logs`, :mod:`shared.api.assets`
  — the handlers: each takes the :class:`~shared.api.context.ApiContext` and a small request model and
  returns a response model and a status code;
- :mod:`shared.api.openapi` — the OpenAPI 3.1 document built from the route table and the models.
"""
