"""The run index: one row per run in table ``fanoutruns``, so runs can be listed without reading blobs.

:func:`start_run` writes the row (status ``Queued``); the pipeline orchestration updates the status
through the ``set_run_status`` activity when it starts and when it ends; the HTTP API and the CLI list
and show runs from it. This module is the only one that knows the row's shape.

Each run has two rows with the same fields (:class:`RunIndexEntry`):

- ``PartitionKey = "run"``, ``RowKey = <run id>`` — looked up by id;
- ``PartitionKey = "newest"``, ``RowKey = <inverted creation time>_<run id>`` — Table storage returns rows
  in RowKey order, so this partition lists runs newest first, a page at a time, filtered by status on the
  server (``GET /api/runs``), without reading the whole index.

Both are written on insert and merged on every status change.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.data.tables import UpdateMode
from pydantic import Field, ValidationError

from shared.errors import NotFoundError
from shared.models import FrozenModel
from shared.orchestration.contracts import RunStatus
from shared.plan import RunPlan
from shared.storage import StorageClients, Table

logger = logging.getLogger(__name__)

PARTITION = "run"
BY_TIME = "newest"
#: Larger than any creation time in milliseconds since 1970 (year 33658): inverted keys stay positive.
_TIME_SPAN_MS = 10**15


class RunIndexEntry(FrozenModel):
    """One run's row in the run index table (both partitions hold the same fields)."""

    run_id: str = Field(description="The run's id (RowKey of its row in the 'run' partition).")
    status: RunStatus = Field(description="The run's latest status.")
    display_name: str = Field(default="", description="The spec's display_name ('' for none).")
    experiment_name: str = Field(default="", description="The spec's experiment_name ('' for none).")
    source: str = Field(default="", description="Where the spec came from (file path or blob name).")
    created_at: datetime = Field(description="When the run was submitted (orders the 'newest' partition).")
    updated_at: datetime = Field(description="When the status last changed.")
    reason: str = Field(default="", description="Why the run failed or was canceled.")
    resumed_from: str = Field(default="", description="The run this run resumes ('' for none).")
    resumed_by: str = Field(default="", description="The latest run started to resume this one.")


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
        resumed_from=plan.resumed_from or "",
    )


def add_run(clients: StorageClients, entry: RunIndexEntry) -> bool:
    """Insert the rows; False (and nothing changed) when the run is already indexed."""
    table = _table(clients)
    try:
        table.create_entity(_to_entity(entry))
    except ResourceExistsError:
        return False
    table.upsert_entity(_to_entity(entry, ordered=True))
    return True


def ordered_key(entry: RunIndexEntry) -> str:
    """The RowKey of the run's row in the newest-first partition."""
    created_ms = int(entry.created_at.timestamp() * 1000)
    return f"{_TIME_SPAN_MS - created_ms:016d}_{entry.run_id}"


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
    table = _table(clients)
    table.upsert_entity(entity, mode=UpdateMode.MERGE)
    merged = find_run(clients, run_id)
    if merged is not None:
        table.upsert_entity(_to_entity(merged, ordered=True))


def find_run(clients: StorageClients, run_id: str) -> RunIndexEntry | None:
    """The index row of ``run_id``, None when the run was never indexed."""
    try:
        entity = _table(clients).get_entity(PARTITION, run_id)
    except ResourceNotFoundError:
        return None
    return _from_entity(entity)


def read_for_update(clients: StorageClients, run_id: str) -> tuple[RunIndexEntry, str]:
    """The row of ``run_id`` and its ETag (for :func:`set_resumed_by`). Raises NotFoundError."""
    try:
        entity = _table(clients).get_entity(PARTITION, run_id)
    except ResourceNotFoundError as exc:
        raise NotFoundError(f"run {run_id!r} does not exist", run_id=run_id) from exc
    return _from_entity(entity), str(entity.metadata["etag"])


def set_resumed_by(clients: StorageClients, run_id: str, resumed_by: str, *, etag: str) -> bool:
    """Record that run ``resumed_by`` resumes ``run_id`` — only if the row is unchanged since it was
    read with ``etag``: of two concurrent resumes, one wins (False for the other)."""
    table = _table(clients)
    entity = {"PartitionKey": PARTITION, "RowKey": run_id, "resumed_by": resumed_by}
    try:
        table.update_entity(
            entity, mode=UpdateMode.MERGE, etag=etag, match_condition=MatchConditions.IfNotModified
        )
    except HttpResponseError as exc:  # 412: someone else changed the row first
        if exc.status_code != 412:
            raise
        return False
    merged = find_run(clients, run_id)
    if merged is not None:
        table.upsert_entity(_to_entity(merged, ordered=True))
    return True


def get_run(clients: StorageClients, run_id: str) -> RunIndexEntry:
    """The row of ``run_id``. Raises NotFoundError when the run is not indexed."""
    entry = find_run(clients, run_id)
    if entry is None:
        raise NotFoundError(f"run {run_id!r} does not exist", run_id=run_id)
    return entry


def list_runs(clients: StorageClients, limit: int = 50) -> list[RunIndexEntry]:
    """The newest ``limit`` runs, newest first."""
    return list_page(clients, limit=limit)[0]


def list_page(
    clients: StorageClients, *, limit: int, status: RunStatus | None = None, after: str | None = None
) -> tuple[list[RunIndexEntry], str | None]:
    """One page of runs, newest first: at most ``limit`` rows after the key ``after``.

    Returns the rows and the key to pass as ``after`` for the next page (None on the last page). Only
    the rows of this page (and one more, to know whether there is a next page) are read.
    """
    query = f"PartitionKey eq '{BY_TIME}'"
    parameters: dict[str, Any] = {}
    if after is not None:
        query += " and RowKey gt @after"
        parameters["after"] = after
    if status is not None:
        query += " and status eq @status"
        parameters["status"] = status.value
    entries: list[tuple[str, RunIndexEntry]] = []
    rows = _table(clients).query_entities(query, parameters=parameters, results_per_page=min(limit + 1, 1000))
    for entity in rows:
        try:
            entries.append((str(entity["RowKey"]), _from_entity(entity)))
        except ValidationError as exc:  # one bad row must not hide every run
            logger.warning("skipping malformed run index row %s: %s", entity.get("RowKey"), exc)
        if len(entries) > limit:
            break
    page = entries[:limit]
    next_key = page[-1][0] if len(entries) > limit and page else None
    return [entry for _, entry in page], next_key


def _table(clients: StorageClients) -> Any:
    return clients.table.get_table_client(Table.RUNS.value)


def _to_entity(entry: RunIndexEntry, *, ordered: bool = False) -> dict[str, Any]:
    data = entry.model_dump(mode="python")
    data["status"] = entry.status.value
    if ordered:
        return {"PartitionKey": BY_TIME, "RowKey": ordered_key(entry), **data}
    return {"PartitionKey": PARTITION, "RowKey": entry.run_id, **data}


def _from_entity(entity: Any) -> RunIndexEntry:
    fields = set(RunIndexEntry.model_fields)
    data = {key: value for key, value in dict(entity).items() if key in fields}
    for key in ("created_at", "updated_at"):
        if isinstance(data.get(key), datetime) and data[key].tzinfo is None:
            data[key] = data[key].replace(tzinfo=UTC)
    return RunIndexEntry.model_validate(data)
