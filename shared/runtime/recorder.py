"""The agent's batched, exactly-once writer of mini-batch records and of its own tally shard.

Outcomes queue up in memory and are written in entity-group transactions of up to 99 records plus the
agent's shard counts (all in the step's partition), so records and counts are stored together or not at
all, and one round trip settles up to 99 mini-batches. The agent's main thread adds outcomes while a
storage thread flushes them: :meth:`Recorder.add` and :meth:`Recorder.flush` may run concurrently (one
flush at a time).

A record is *created* when the agent believes none exists, or *replaced under its ETag* when it read
one (a redelivered message, a failed earlier try). If the transaction fails because another agent got
there first, the affected records are re-read: a final record means this outcome is a duplicate and is
dropped (counted nowhere); a non-final one is replaced under its new ETag.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from azure.data.tables import TableClient, TableTransactionError, UpdateMode

from shared.runtime.records import (
    AgentShard,
    MiniBatchRecord,
    RecordStatus,
    conditional,
    read_record_entities,
    record_to_entity,
    shard_to_entity,
)
from shared.runtime.transactions import submit_transaction

logger = logging.getLogger(__name__)

MAX_RECORDS_PER_TRANSACTION = 99  # + the shard = the service's 100 operations
MAX_RECONCILE_ROUNDS = 5


@dataclass
class Outcome:
    """One attempt's outcome waiting to be written."""

    record: MiniBatchRecord
    etag: str | None
    attempts_made: int = 1
    token: Any = None  # the caller's handle (the agent's task), returned after the write


@dataclass
class Written:
    """What a flush did with one outcome."""

    outcome: Outcome
    stored: bool  # False: another agent had already settled this mini-batch (a duplicate)
    etag: str | None = None


@dataclass
class Recorder:
    """Writes outcomes; ``shard`` holds this agent's stored counts (only :meth:`flush` changes it)."""

    table: TableClient
    key: str
    shard: AgentShard
    pending: dict[int, Outcome] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _flushing: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, outcome: Outcome) -> None:
        """Queue an outcome; a later outcome for the same mini-batch supersedes the earlier one."""
        with self._lock:
            self._merge(outcome)

    def _merge(self, outcome: Outcome) -> None:
        previous = self.pending.get(outcome.record.index)
        if previous is not None:
            outcome.attempts_made += previous.attempts_made
            outcome.etag = outcome.etag or previous.etag
        self.pending[outcome.record.index] = outcome

    def __len__(self) -> int:
        return len(self.pending)

    def flush(self, *, now: datetime | None = None) -> list[Written]:
        """Write every pending outcome; returns what was written (in no particular order).

        A storage error stops the flush: it is logged, and the outcomes not written stay queued for the
        next flush (what was written before it is returned as usual).
        """
        with self._flushing:
            with self._lock:
                batch, self.pending = self.pending, {}
            written: list[Written] = []
            indexes = sorted(batch)
            for start in range(0, len(indexes), MAX_RECORDS_PER_TRANSACTION):
                chunk = [batch[i] for i in indexes[start : start + MAX_RECORDS_PER_TRANSACTION]]
                try:
                    written += self._write_chunk(chunk, now or datetime.now(UTC))
                except Exception:  # storage trouble: keep the rest for the next flush
                    logger.warning(
                        "writing %d records failed; will retry", len(indexes) - start, exc_info=True
                    )
                    self._requeue([batch[i] for i in indexes[start:]])
                    break
            return written

    def _requeue(self, outcomes: list[Outcome]) -> None:
        with self._lock:  # an outcome added meanwhile for the same mini-batch stays the newest
            for older in outcomes:
                newer = self.pending.pop(older.record.index, None)
                self.pending[older.record.index] = older
                if newer is not None:
                    self._merge(newer)

    def _write_chunk(self, chunk: list[Outcome], now: datetime) -> list[Written]:
        dropped: list[Written] = []
        for _ in range(MAX_RECONCILE_ROUNDS):
            if not chunk:
                return dropped
            shard = self._advance(chunk, now)
            operations: list[Any] = [self._operation(o) for o in chunk]
            operations.append(("upsert", counts_entity(self.key, shard), {"mode": UpdateMode.MERGE}))
            try:
                results = submit_transaction(self.table, operations)
            except TableTransactionError as exc:
                reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                logger.info("record write conflicted (%s); re-reading %d records", reason, len(chunk))
                chunk, lost = self._reconcile(chunk)
                dropped += lost
                continue
            self.shard = shard
            stored = [Written(o, True, r.get("etag")) for o, r in zip(chunk, results, strict=False)]
            return stored + dropped
        raise RuntimeError(f"records of mini-batches {[o.record.index for o in chunk]} kept conflicting")

    def _operation(self, outcome: Outcome) -> tuple[Any, ...]:
        entity = record_to_entity(self.key, outcome.record)
        if outcome.etag is None:
            return ("create", entity)
        return ("update", entity, {"mode": UpdateMode.REPLACE, **conditional(outcome.etag)})

    def _reconcile(self, chunk: list[Outcome]) -> tuple[list[Outcome], list[Written]]:
        low = min(o.record.index for o in chunk)
        high = max(o.record.index for o in chunk) + 1
        existing = read_record_entities(self.table, self.key, low, high)
        keep: list[Outcome] = []
        lost: list[Written] = []
        for outcome in chunk:
            found = existing.get(outcome.record.index)
            if found is None:
                outcome.etag = None
                keep.append(outcome)
            elif found[0].final:
                lost.append(Written(outcome, False))
            else:
                outcome.etag = found[1]
                keep.append(outcome)
        return keep, lost

    def _advance(self, chunk: list[Outcome], now: datetime) -> AgentShard:
        """The shard after this chunk is stored (not applied until the transaction succeeds)."""
        shard = self.shard
        counts: dict[str, int] = {
            "succeeded_mini_batches": shard.succeeded_mini_batches,
            "failed_mini_batches": shard.failed_mini_batches,
            "items_succeeded": shard.items_succeeded,
            "items_failed": shard.items_failed,
            "attempts": shard.attempts,
            "rows": shard.rows,
        }
        for outcome in chunk:
            record = outcome.record
            counts["attempts"] += outcome.attempts_made
            if not record.final:
                continue
            counts["items_succeeded"] += record.items_succeeded
            counts["items_failed"] += record.items_failed
            counts["rows"] += record.rows
            if record.status is RecordStatus.FAILED:
                counts["failed_mini_batches"] += 1
            else:  # succeeded, or partial: the mini-batch completed (its missing items are failed items)
                counts["succeeded_mini_batches"] += 1
        return shard.model_copy(update={**counts, "last_progress_at": now})


COUNT_FIELDS = (
    "agent_id",
    "node_id",
    "succeeded_mini_batches",
    "failed_mini_batches",
    "items_succeeded",
    "items_failed",
    "attempts",
    "rows",
    "last_progress_at",
)


def counts_entity(key: str, shard: AgentShard) -> dict[str, Any]:
    """A merge of the shard's counts (written with records; liveness fields are the heartbeat's)."""
    entity = shard_to_entity(key, shard)
    return {k: v for k, v in entity.items() if k in COUNT_FIELDS or k in ("PartitionKey", "RowKey")}


def heartbeat_entity(key: str, shard: AgentShard, now: datetime) -> dict[str, Any]:
    """A merge that refreshes the shard's liveness fields without touching its counts."""
    entity: dict[str, Any] = {
        "PartitionKey": key,
        "RowKey": shard_to_entity(key, shard)["RowKey"],
        "agent_id": shard.agent_id,
        "node_id": shard.node_id,
        "heartbeat_at": now,
        "init_failures": shard.init_failures,
        "exited": shard.exited,
        "failed": shard.failed,
        "exit_reason": shard.exit_reason,
    }
    if shard.first_activity_at is not None:
        entity["first_activity_at"] = shard.first_activity_at
    return entity
