"""Blob triggers on the drop zones: ``specs`` (start a run) and ``snapshots/incoming`` (store code).

Thin adapters over :mod:`shared.ingest`. In the deployed app both use the Event Grid source (the
Flex Consumption plan only supports that; the subscription is created after deployment). The host
delivers at least once; the handlers are idempotent per blob version, and ignore the ``.error.json``
files they write themselves.
"""

from __future__ import annotations

import azure.durable_functions as df
import azure.functions as func

from functions.client import run_with_client
from functions.constants import (
    CLIENT_ARG,
    INGEST_SNAPSHOT_FUNCTION,
    INGEST_SPEC_FUNCTION,
    SNAPSHOTS_BLOB_PATH,
    SPECS_BLOB_PATH,
    STORAGE_CONNECTION,
)

bp = df.Blueprint()


@bp.function_name(INGEST_SPEC_FUNCTION)
@bp.blob_trigger(
    arg_name="blob", path=SPECS_BLOB_PATH, connection=STORAGE_CONNECTION, source=func.BlobSource.EVENT_GRID
)
@bp.durable_client_input(client_name=CLIENT_ARG)
async def ingest_spec(blob: func.InputStream, client: df.DurableOrchestrationClient) -> None:
    """A spec blob was written: validate it and start its run (or write ``<blob>.error.json``)."""
    from functions.runtime import storage_clients
    from shared.ingest import ingest_spec_blob

    name = blob.name or ""
    await run_with_client(client, lambda durable: ingest_spec_blob(storage_clients(), durable, name))


@bp.function_name(INGEST_SNAPSHOT_FUNCTION)
@bp.blob_trigger(
    arg_name="blob",
    path=SNAPSHOTS_BLOB_PATH,
    connection=STORAGE_CONNECTION,
    source=func.BlobSource.EVENT_GRID,
)
def ingest_snapshot(blob: func.InputStream) -> None:
    """A zip was dropped under ``snapshots/incoming/``: check it and store it content-addressed."""
    from functions.runtime import storage_clients
    from shared.ingest import ingest_snapshot as ingest

    ingest(storage_clients(), blob.name or "")
