"""One mini-batch's tries on a node: the task the agent tracks, the record of a try, its logs and telemetry.

A try ends in one of four ways (:class:`~shared.runtime.records.RecordStatus`):

- ``succeeded``: run() returned at least one result per item — final;
- ``partial``: run() returned fewer results than items — final and *not retried* (a deterministic
  script would return the same again); the missing items count as failed items (``error_threshold``)
  but the mini-batch itself completed: it does not count against ``mini_batch_error_threshold``. This
  is what Azure ML's runtime does (the official many-models sample returns one row per partition with
  ``mini_batch_error_threshold: 5`` and succeeds), although one docs table says otherwise. The
  results it did return are kept (written to ``append_row_to``);
- ``retrying``: the try raised, returned something that is not a list/tuple/DataFrame, timed out,
  crashed its worker or could not load its data, and another try is allowed;
- ``failed``: the same, on the last allowed try — final.

Items: ``succeeded = min(returned, items)``, ``failed = items - succeeded``; a failed try counts every
item as failed (only final outcomes reach the tallies).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace

from shared.policy import count_items
from shared.runtime.nodelog import NodeLog
from shared.runtime.protocol import WorkerEvent
from shared.runtime.records import MiniBatchRecord, RecordStatus
from shared.runtime.workqueue import HeldMessage
from shared.telemetry import FanoutMetrics, extract_trace_context

tracer = trace.get_tracer(__name__)


@dataclass
class Task:
    """One mini-batch to run on this node, across its tries here."""

    index: int
    held: HeldMessage
    attempts_before: int
    etag: str | None
    descriptor: dict[str, Any]
    items: int
    attempt: int = 0
    picked_at: float = 0.0
    first_picked: datetime | None = None
    abandoned: bool = False  # another agent settled it: drop whatever this node still does with it


@dataclass(frozen=True)
class Where:
    """Who made a try: for records and logs."""

    node_id: int
    agent_id: str
    process: str


@dataclass
class TryResult:
    """A try's outcome in the terms of a record."""

    status: RecordStatus
    items: int
    succeeded: int
    failed: int
    category: str = ""
    message: str = ""
    event: WorkerEvent | None = field(default=None)


def completed(task: Task, event: WorkerEvent) -> TryResult:
    """The outcome of a try whose run() returned a valid result."""
    items = event.items or task.items
    succeeded, failed = count_items(items, event.returned)
    status = RecordStatus.SUCCEEDED if failed == 0 else RecordStatus.PARTIAL
    message = "" if failed == 0 else f"run() returned {event.returned} results for {items} items"
    return TryResult(status, items, succeeded, failed, "", message, event)


def failed_try(
    task: Task, *, final: bool, category: str, message: str, event: WorkerEvent | None = None
) -> TryResult:
    """The outcome of a try that failed (the last allowed one when ``final``)."""
    items = (event.items if event and event.items else 0) or task.items
    status = RecordStatus.FAILED if final else RecordStatus.RETRYING
    return TryResult(status, items, 0, items, category, message, event)


def build_record(task: Task, outcome: TryResult, where: Where) -> MiniBatchRecord:
    """The mini-batch record of a try; item counts only on a final one (tallies sum final outcomes)."""
    final = outcome.status is not RecordStatus.RETRYING
    event = outcome.event
    started = task.first_picked
    if event is not None and event.started_at:
        started = datetime.fromtimestamp(event.started_at, UTC)
    return MiniBatchRecord(
        index=task.index,
        status=outcome.status,
        final=final,
        attempts=task.attempt,
        items=outcome.items,
        items_succeeded=outcome.succeeded if final else 0,
        items_failed=outcome.failed if final else 0,
        rows=event.returned if event else 0,
        block_id=event.block_id if event else "",
        header=event.header if event else "",
        node_id=where.node_id,
        process=where.process,
        agent_id=where.agent_id,
        started_at=started,
        finished_at=datetime.now(UTC),
        run_seconds=event.run_seconds if event else 0.0,
        error_category=outcome.category,
        error_message=outcome.message,
    )


def log_try(nodelog: NodeLog, task: Task, outcome: TryResult, process: str, elapsed: float) -> None:
    """A row of processed_mini-batches.csv and a line in the process's log."""
    event = outcome.event
    run_seconds = event.run_seconds if event else 0.0
    done = outcome.status in (RecordStatus.SUCCEEDED, RecordStatus.PARTIAL)
    nodelog.attempt(
        index=task.index,
        picked=task.attempt,
        process=process,
        started=task.first_picked or datetime.now(UTC),
        total=outcome.items,
        succeeded=outcome.succeeded,
        failed=outcome.failed,
        elapsed=elapsed,
        process_seconds=(event.load_seconds + run_seconds) if event else elapsed,
        run_seconds=run_seconds,
        status="RUN_DONE" if done else (outcome.category or "RUN_EXCEPTION"),
        error_category=outcome.category,
        error_message=outcome.message,
        detail=task.descriptor,
    )
    suffix = f" — {outcome.category}: {outcome.message[:300]}" if outcome.category else ""
    nodelog.process(
        process,
        f"completed mini-batch {task.index} (try {task.attempt}): {outcome.status.value}, {outcome.items} "
        f"items, {outcome.succeeded} succeeded, {outcome.failed} failed, run() {run_seconds:.3f}s{suffix}",
    )


def emit_settled(
    metrics: FanoutMetrics, attributes: dict[str, str], task: Task, record: MiniBatchRecord
) -> None:
    """Counters and the mini-batch span, once, when a final record was stored."""
    failed = record.counts_as_failed
    counter = metrics.mini_batches_failed if failed else metrics.mini_batches_completed
    counter.add(1, attributes)
    metrics.items_processed.add(record.items_succeeded, attributes)
    metrics.items_failed.add(record.items_failed, attributes)
    start = task.first_picked or record.finished_at or datetime.now(UTC)
    span = tracer.start_span(
        "fanout.mini_batch",
        context=extract_trace_context(task.held.work.trace_carrier()),
        start_time=int(start.timestamp() * 1e9),
        attributes={
            **attributes,
            "fanout.mini_batch.index": record.index,
            "fanout.mini_batch.attempts": record.attempts,
            "fanout.mini_batch.items": record.items,
            "fanout.mini_batch.status": record.status.value,
            "fanout.node_id": record.node_id,
        },
    )
    if failed:
        span.set_status(trace.StatusCode.ERROR, record.error_message[:200] or record.status.value)
    end = record.finished_at or datetime.now(UTC)
    span.end(end_time=int(end.timestamp() * 1e9))
