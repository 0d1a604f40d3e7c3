"""The run index: one row per run in table ``fanoutruns``, so runs can be listed without reading blobs.

:func:`start_run` writes the row (status ``Queued``); the pipeline orchestration updates the status
through the ``set_run_status`` activity when it starts and when it ends; the HTTP API and the CLI list
and show runs from it. This module is the only one that knows the row's shape.

Row: ``PartitionKey = "run"``, ``RowKey = <run id>``; fields below (:class:`RunIndexEntry`).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.data.tables import UpdateMode
from pydantic import Field, ValidationError

from shared.errors import NotFoundError
from shared.models import FrozenModel
from shared.orchestration.contracts import RunStatus
from shared.plan import RunPlan
from shared.storage import StorageClients, Table

logger = logging.getLogger(__name__)

PARTITION = "run"


class RunIndexEntry(FrozenModel):
    run_id: str
    status: RunStatus
    display_name: str = ""
    experiment_name: str = ""
    source: str = Field(default="", description="Where the spec came from (file path or blob name).")
    created_at: datetime
    updated_at: datetime
    reason: str = Field(default="", description="Why the run failed or was canceled.")


def entry_for(plan: RunPlan, now: datetime | None = None) -> RunIndexEntry:
    """The index row of a newly submitted run (status ``Queued``)."""
    created = now or datetime.now(UTC)
    return RunIndexEntry(
        run_id=plan.run_id,
        status=RunStatus.QUEUED,
        display_name=plan.display_name or "",
        experiment_name=plan.experiment_name or "",
        source=plan.source,
        created_at=created,
        updated_at=created,
    )


def add_run(clients: StorageClients, entry: RunIndexEntry) -> bool:
    """Insert the row; False (and nothing changed) when the run is already indexed."""
    try:
        _table(clients).create_entity(_to_entity(entry))
    except ResourceExistsError:
        return False
    return True


def set_status(clients: StorageClients, run_id: str, status: RunStatus, reason: str = "") -> None:
    """Update a run's status (merge; the other fields stay). A terminal status is never overwritten
    by a non-terminal one, so a late or replayed update cannot resurrect a finished run."""
    current = find_run(clients, run_id)
    if current is not None and current.status.is_terminal and not status.is_terminal:
        logger.info("run %s is %s; not setting it to %s", run_id, current.status, status)
        return
    now = datetime.now(UTC)
    entity: dict[str, Any] = {
        "PartitionKey": PARTITION,
        "RowKey": run_id,
        "run_id": run_id,
        "status": status.value,
        "updated_at": now,
    }
    if current is None:  # a run started without its row (e.g. by an older host): make the row whole
        entity["created_at"] = now
    if reason or status.is_terminal:
        entity["reason"] = reason
    _table(clients).upsert_entity(entity, mode=UpdateMode.MERGE)


def find_run(clients: StorageClients, run_id: str) -> RunIndexEntry | None:
    try:
        entity = _table(clients).get_entity(PARTITION, run_id)
    except ResourceNotFoundError:
        return None
    return _from_entity(entity)


def get_run(clients: StorageClients, run_id: str) -> RunIndexEntry:
    """The row of ``run_id``. Raises NotFoundError when the run is not indexed."""
    entry = find_run(clients, run_id)
    if entry is None:
        raise NotFoundError(f"run {run_id!r} does not exist", run_id=run_id)
    return entry


def list_runs(clients: StorageClients, limit: int = 50) -> list[RunIndexEntry]:
    """The newest ``limit`` runs, newest first."""
    entries = []
    for entity in _table(clients).query_entities(f"PartitionKey eq '{PARTITION}'"):
        try:
            entries.append(_from_entity(entity))
        except ValidationError as exc:  # one bad row must not hide every run
            logger.warning("skipping malformed run index row %s: %s", entity.get("RowKey"), exc)
    entries.sort(key=lambda entry: entry.created_at, reverse=True)
    return entries[:limit]


def _table(clients: StorageClients) -> Any:
    return clients.table.get_table_client(Table.RUNS.value)


def _to_entity(entry: RunIndexEntry) -> dict[str, Any]:
    data = entry.model_dump(mode="python")
    data["status"] = entry.status.value
    return {"PartitionKey": PARTITION, "RowKey": entry.run_id, **data}


def _from_entity(entity: Any) -> RunIndexEntry:
    fields = set(RunIndexEntry.model_fields)
    data = {key: value for key, value in dict(entity).items() if key in fields}
    for key in ("created_at", "updated_at"):
        if isinstance(data.get(key), datetime) and data[key].tzinfo is None:
            data[key] = data[key].replace(tzinfo=UTC)
    return RunIndexEntry.model_validate(data)
