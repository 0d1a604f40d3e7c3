"""Per-mini-batch records, per-agent tally shards and the step document, in Azure Tables.

The record/tally model (why counts are exact however often a message is delivered):

- ``fanoutminibatches``, partition = the step (:func:`step_key`):

  - one **record** per mini-batch (row ``mb-<index>``): status, attempts, items, rows, the output block
    that holds its rows, timings, error category and message. A record becomes *final* exactly once: it
    is created (or replaced under its ETag) by the agent that settles the mini-batch, so a second agent
    that processed the same mini-batch (a redelivered message) loses the write and counts nothing;
  - one **tally shard** per agent incarnation (row ``shard-<agent id>``), written only by that agent,
    holding its cumulative counts. The agent writes its shard *in the same entity-group transaction* as
    the records it settles, so a count is stored if and only if its record is. Nobody else writes a
    shard, so there is no contention however many mini-batches settle per second.

- ``fanouttallies``, partition = the step, row ``step``: the **step document** — how many mini-batches
  were planned, how many have been dispatched (dispatch resumes from there), the stop flag agents poll,
  and a command job's exit code.

:func:`read_progress` sums the shards (one range query over a handful of rows, whatever the number of
mini-batches) and adds the step document. :func:`apply_completion_event` (the body of the completion-event
handler) reads that and returns a :class:`SettleNotice` when the orchestrator should look now; it writes
nothing, so a duplicate event never double-counts.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode
from pydantic import Field

from shared.models import FrozenModel
from shared.orchestration.contracts import StepProgress, StepRef
from shared.runtime.messages import CompletionEvent, SettleNotice
from shared.storage import StorageClients, Table

logger = logging.getLogger(__name__)

STEP_ROW = "step"
RECORD_PREFIX = "mb-"
SHARD_PREFIX = "shard-"
#: An agent whose shard heartbeat is older than this is not counted as alive.
AGENT_ALIVE_WINDOW = timedelta(seconds=30)
#: Error messages are cut to this many characters in records (the full traceback is in the logs).
MAX_ERROR_CHARS = 4000

_KEY_UNSAFE = str.maketrans({"/": "%2F", "\\": "%5C", "#": "%23", "?": "%3F"})
#: The rows of partition ``@pk`` whose keys are in ``[@lo, @hi)``.
_ROW_RANGE = "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi"


def step_key(step: StepRef) -> str:
    """The table partition key of a step (characters Azure Tables forbid in keys are escaped)."""
    return f"{step.run_id}|{step.job}".translate(_KEY_UNSAFE)


def record_row(index: int) -> str:
    """Row key of a mini-batch record; zero-padded so rows sort in index order."""
    return f"{RECORD_PREFIX}{index:010d}"


def shard_row(agent_id: str) -> str:
    """Row key of an agent incarnation's tally shard."""
    return f"{SHARD_PREFIX}{agent_id}"


def _after_prefix(prefix: str) -> str:
    """The first row key past every key that starts with ``prefix`` (a prefix ending in '-')."""
    return prefix[:-1] + chr(ord("-") + 1)


def _fields_of(model: type[FrozenModel], entity: Mapping[str, Any]) -> dict[str, Any]:
    """The entity's properties that are fields of ``model`` (not PartitionKey, RowKey, Timestamp)."""
    return {k: v for k, v in entity.items() if k in model.model_fields}


class RecordStatus(StrEnum):
    """Status of a mini-batch record. Only ``retrying`` is not final."""

    SUCCEEDED = "succeeded"  # run() returned at least one result per input item
    PARTIAL = "partial"  # run() returned fewer results than items: items failed, the mini-batch completed
    FAILED = "failed"  # every try raised, timed out or crashed its worker
    RETRYING = "retrying"  # a try failed and another one is allowed


class MiniBatchRecord(FrozenModel):
    """The stored outcome of one mini-batch (latest attempt)."""

    index: int = Field(ge=0)
    status: RecordStatus
    final: bool = Field(description="True once the outcome is decided; never changes afterwards.")
    attempts: int = Field(default=1, ge=0, description="Tries so far (1 for a first-try success).")
    items: int = Field(default=0, ge=0, description="Items (files or rows) in the mini-batch.")
    items_succeeded: int = Field(default=0, ge=0)
    items_failed: int = Field(default=0, ge=0)
    rows: int = Field(default=0, ge=0, description="Results run() returned (may exceed items).")
    block_id: str = Field(default="", description="Output block holding its rows ('' when none).")
    header: str = Field(default="", description="Header line of its rows (csv / DataFrame header formats).")
    node_id: int = -1
    process: str = ""
    agent_id: str = ""
    started_at: datetime | None = None
    finished_at: datetime | None = None
    run_seconds: float = 0.0
    error_category: str = ""
    error_message: str = ""
    carried_from: str = Field(
        default="", description="The run whose try produced this outcome, when a resume carried it over."
    )
    rows_blob: str = Field(
        default="",
        description="Carried rows: 'container/path' of the committed blob holding them ('' otherwise).",
    )
    rows_offset: int = Field(default=0, ge=0, description="Carried rows: first byte in rows_blob.")
    rows_length: int = Field(default=0, ge=0, description="Carried rows: bytes in rows_blob.")

    @property
    def has_rows(self) -> bool:
        """Its rows are in the output: a block staged by its try, or a committed range it was carried with."""
        return self.final and bool(self.block_id or self.rows_blob)

    @property
    def counts_as_failed(self) -> bool:
        """A failed mini-batch (tries exhausted); a partial result is a completed mini-batch."""
        return self.final and self.status is RecordStatus.FAILED


def record_to_entity(key: str, record: MiniBatchRecord) -> dict[str, Any]:
    """The table entity of a record in partition ``key`` (error message cut, None values left out)."""
    entity = record.model_dump(mode="python")
    entity["status"] = record.status.value
    entity["error_message"] = record.error_message[:MAX_ERROR_CHARS]
    entity = {k: v for k, v in entity.items() if v is not None}
    entity.update(PartitionKey=key, RowKey=record_row(record.index))
    return entity


def record_from_entity(entity: dict[str, Any]) -> MiniBatchRecord:
    """The record a table entity holds (properties that are not fields are ignored)."""
    return MiniBatchRecord.model_validate(_fields_of(MiniBatchRecord, entity))


class AgentShard(FrozenModel):
    """One agent incarnation's cumulative tallies (only that agent writes it)."""

    agent_id: str
    node_id: int = 0
    succeeded_mini_batches: int = 0
    failed_mini_batches: int = 0
    items_succeeded: int = 0
    items_failed: int = 0
    attempts: int = 0
    rows: int = 0
    init_failures: int = 0
    first_activity_at: datetime | None = None
    last_progress_at: datetime | None = None
    heartbeat_at: datetime | None = None
    exited: bool = False
    failed: bool = Field(default=False, description="The agent gave up: it could not work on this node.")
    exit_reason: str = ""


def shard_to_entity(key: str, shard: AgentShard) -> dict[str, Any]:
    """The table entity of a tally shard in partition ``key`` (None values left out)."""
    entity = {k: v for k, v in shard.model_dump(mode="python").items() if v is not None}
    entity.update(PartitionKey=key, RowKey=shard_row(shard.agent_id))
    return entity


def shard_from_entity(entity: dict[str, Any]) -> AgentShard:
    """The tally shard a table entity holds."""
    return AgentShard.model_validate(_fields_of(AgentShard, entity))


class StepDocument(FrozenModel):
    """The per-step document in ``fanouttallies``: planning, dispatch, stop flag, command exit code."""

    total_mini_batches: int = 0
    total_items: int | None = None
    planned_at: datetime | None = None
    mini_batches_per_message: int = 1
    blocks_per_blob: int = Field(
        default=50_000, ge=2, description="Mini-batches per output part blob (the service's block limit)."
    )
    dispatched_through: int = Field(default=0, description="Mini-batches enqueued so far (resume point).")
    dispatched: bool = False
    dispatched_at: datetime | None = None
    stop_requested: bool = False
    stop_reason: str = ""
    command_exit_code: int | None = None
    output_committed: bool = Field(default=False, description="append_row_to was committed (finalize ran).")
    carried_mini_batches: int = Field(
        default=0,
        ge=0,
        description="Mini-batches a resume carried over from an earlier run (not dispatched).",
    )
    carried_from: str = Field(default="", description="The run those mini-batches came from.")


def minibatch_table(clients: StorageClients) -> TableClient:
    """The table of mini-batch records and tally shards."""
    return clients.table.get_table_client(Table.MINIBATCHES.value)


def tally_table(clients: StorageClients) -> TableClient:
    """The table of step documents."""
    return clients.table.get_table_client(Table.TALLIES.value)


def read_step_document(clients: StorageClients, step: StepRef) -> StepDocument | None:
    """The step's document, or None before the step is planned."""
    try:
        entity = tally_table(clients).get_entity(step_key(step), STEP_ROW)
    except ResourceNotFoundError:
        return None
    return StepDocument.model_validate(_fields_of(StepDocument, entity))


def update_step_document(clients: StorageClients, step: StepRef, **fields: Any) -> None:
    """Merge ``fields`` into the step document (created when missing)."""
    entity = {k: v for k, v in fields.items() if v is not None}
    entity.update(PartitionKey=step_key(step), RowKey=STEP_ROW)
    tally_table(clients).upsert_entity(entity, mode=UpdateMode.MERGE)


def request_stop(clients: StorageClients, step: StepRef, reason: str) -> None:
    """Tell the step's agents to stop taking work (they poll the flag every second or so)."""
    update_step_document(clients, step, stop_requested=True, stop_reason=reason)


def record_agent_failure(
    clients: StorageClients, step: StepRef, node_id: int, agent_id: str, reason: str
) -> None:
    """An agent that cannot work on its node says why (``read_progress`` counts it as failed)."""
    shard = AgentShard(
        agent_id=agent_id, node_id=node_id, exited=True, failed=True, exit_reason=reason[:1000]
    )
    entity = shard_to_entity(step_key(step), shard)
    entity["heartbeat_at"] = datetime.now(UTC)
    minibatch_table(clients).upsert_entity(entity, mode=UpdateMode.MERGE)


def record_command_exit(clients: StorageClients, step: StepRef, exit_code: int) -> None:
    """For command jobs: store the command's exit code so :func:`read_progress` reports it."""
    update_step_document(clients, step, command_exit_code=exit_code)


def read_shards(clients: StorageClients, step: StepRef) -> list[AgentShard]:
    """Every agent incarnation's tally shard of the step."""
    params = {"pk": step_key(step), "lo": SHARD_PREFIX, "hi": _after_prefix(SHARD_PREFIX)}
    entities = minibatch_table(clients).query_entities(_ROW_RANGE, parameters=params)
    return [shard_from_entity(dict(e)) for e in entities]


def read_records(
    clients: StorageClients, step: StepRef, start: int = 0, end: int | None = None
) -> list[MiniBatchRecord]:
    """Records of mini-batches ``start .. end-1`` (all when ``end`` is None), in index order."""
    hi = record_row(end) if end is not None else _after_prefix(RECORD_PREFIX)
    params = {"pk": step_key(step), "lo": record_row(start), "hi": hi}
    entities = minibatch_table(clients).query_entities(_ROW_RANGE, parameters=params)
    return [record_from_entity(dict(e)) for e in entities]


def read_record_entities(
    table: TableClient, key: str, start: int, end: int
) -> dict[int, tuple[MiniBatchRecord, str]]:
    """Records of ``start .. end-1`` with their ETags (for conditional updates), by index."""
    params = {"pk": key, "lo": record_row(start), "hi": record_row(end)}
    found: dict[int, tuple[MiniBatchRecord, str]] = {}
    for entity in table.query_entities(_ROW_RANGE, parameters=params):
        record = record_from_entity(dict(entity))
        found[record.index] = (record, str(entity.metadata["etag"]))
    return found


def read_progress(clients: StorageClients, step: StepRef, *, now: datetime | None = None) -> StepProgress:
    """The step's tallies: the step document plus the sum of every agent's shard.

    Counts are of *final* outcomes. ``last_progress_at`` is the latest of dispatch and any attempt ending;
    ``agents_alive`` counts agents whose heartbeat is recent and that have not exited.
    """
    document = read_step_document(clients, step) or StepDocument()
    shards = read_shards(clients, step)
    now = now or datetime.now(UTC)
    firsts = [s.first_activity_at for s in shards if s.first_activity_at]
    lasts = [t for t in [document.dispatched_at, *(s.last_progress_at for s in shards)] if t]
    alive = [
        s for s in shards if not s.exited and s.heartbeat_at and now - s.heartbeat_at <= AGENT_ALIVE_WINDOW
    ]
    failed = sorted((s for s in shards if s.failed), key=lambda s: s.heartbeat_at or now)
    return StepProgress(
        step=step,
        total_mini_batches=document.total_mini_batches,
        dispatched=document.dispatched,
        succeeded_mini_batches=sum(s.succeeded_mini_batches for s in shards),
        failed_mini_batches=sum(s.failed_mini_batches for s in shards),
        items_succeeded=sum(s.items_succeeded for s in shards),
        items_failed=sum(s.items_failed for s in shards),
        attempts=sum(s.attempts for s in shards),
        first_activity_at=min(firsts) if firsts else None,
        last_progress_at=max(lasts) if lasts else None,
        agents_alive=len(alive),
        agents_failed=len({s.node_id for s in failed}),
        agent_error=failed[0].exit_reason if failed else "",
        command_exit_code=document.command_exit_code,
        carried_mini_batches=document.carried_mini_batches,
    )


def conditional(etag: str | None) -> dict[str, Any]:
    """Keyword arguments for a write that must not overwrite a concurrent change."""
    if etag is None:
        return {}
    return {"etag": etag, "match_condition": MatchConditions.IfNotModified}


def apply_completion_event(clients: StorageClients, event: CompletionEvent) -> SettleNotice | None:
    """Body of the completion-event handler: a notice when the step is settled or crossed a threshold.

    The counts were stored by the agent together with the records (see the module docstring), so this
    only reads; handling the same event twice returns the same answer and never double-counts.
    """
    from shared.policy import threshold_crossed
    from shared.runs import load_plan

    step = event.step
    progress = read_progress(clients, step)
    if progress.done:
        reason = f"all {progress.total_mini_batches} mini-batches settled"
        return SettleNotice(step=step, done=True, reason=reason, progress=progress)
    if event.failed == 0 and not event.exiting:
        return None
    settings = load_plan(clients, step.run_id).job(step.job).parallel
    crossed = threshold_crossed(settings, progress) if settings is not None else None
    if crossed:
        return SettleNotice(step=step, done=False, threshold_crossed=True, reason=crossed, progress=progress)
    return None
