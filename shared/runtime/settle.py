"""Settling mini-batches: outcomes stored on a storage thread, then their messages deleted and events sent.

The agent's main thread never waits for storage while workers need feeding. It hands outcomes to a
:class:`Settler`, which writes them (records + the agent's tally shard, :mod:`shared.runtime.recorder`)
on one storage thread — after uploading any output files the tries wrote, so a mini-batch never counts
before its files are stored. When a write comes back, the settler marks the stored final outcomes
settled in their messages, deletes messages whose mini-batches are all settled, and posts a
:class:`~shared.runtime.messages.CompletionEvent` (at once when something failed — a threshold may be
crossed — otherwise at most once a second, and when the node runs out of work). Deletes, events and
heartbeats run on the same thread, in order.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from datetime import UTC, datetime

from shared.orchestration.contracts import StepRef
from shared.runtime.attempts import Task, emit_settled
from shared.runtime.messages import CompletionEvent
from shared.runtime.nodelog import NodeLog
from shared.runtime.outputs import OutputSync
from shared.runtime.recorder import Outcome, Recorder, Written
from shared.runtime.workqueue import HeldMessage, WorkQueue
from shared.storage import StorageClients
from shared.telemetry import fanout_metrics

logger = logging.getLogger(__name__)

FLUSH_INTERVAL = 0.2
EVENT_INTERVAL = 1.0
MAX_RECORDS_PER_FLUSH_TRIGGER = 99


class Settler:
    """Stores outcomes off the main thread and settles what was stored."""

    def __init__(
        self,
        clients: StorageClients,
        step: StepRef,
        *,
        node_id: int,
        agent_id: str,
        recorder: Recorder,
        queue: WorkQueue,
        held: dict[str, HeldMessage],
        nodelog: NodeLog,
        output_sync: OutputSync | None,
    ) -> None:
        self.clients = clients
        self.step = step
        self.node_id = node_id
        self.agent_id = agent_id
        self.recorder = recorder
        self.queue = queue
        self.held = held
        self.nodelog = nodelog
        self.output_sync = output_sync
        self.io = ThreadPoolExecutor(max_workers=1, thread_name_prefix="agent-storage")
        # With output files, outcomes wait here until a write has uploaded the files present when it
        # took them: one that arrives while files are being uploaded waits for the next write.
        self._arrived: list[Outcome] = []
        self._arrived_lock = threading.Lock()
        self._flight: Future[list[Written]] | None = None
        self._pending_since: float | None = None
        self._event_settled = 0
        self._event_failed = 0
        self._next_event = 0.0
        self._metrics = fanout_metrics()
        self._attributes = {"fanout.run_id": step.run_id, "fanout.job": step.job}

    @property
    def writing(self) -> bool:
        """A write is in flight (its outcome is collected by the next :meth:`tick`)."""
        return self._flight is not None

    @property
    def flush_at(self) -> float | None:
        """When the outcomes waiting now are due to be written (``time.monotonic()``), None if none."""
        return None if self._pending_since is None else self._pending_since + FLUSH_INTERVAL

    @property
    def busy(self) -> bool:
        """Outcomes are waiting or being written."""
        return bool(self._waiting()) or self._flight is not None

    def add(self, outcome: Outcome) -> None:
        """Queue a try's outcome for the next write (with output files, behind the next upload)."""
        if self.output_sync is None:
            self.recorder.add(outcome)
        else:
            with self._arrived_lock:
                self._arrived.append(outcome)
        if self._pending_since is None:
            self._pending_since = time.monotonic()

    def _waiting(self) -> int:
        """Outcomes not written yet."""
        return len(self._arrived) + len(self.recorder)

    def tick(self, *, idle: bool) -> None:
        """Take back a finished write; start the next one when due (one write in flight at a time)."""
        self._collect(idle=idle)
        self._delete_settled_messages()
        if self._flight is not None or not self._waiting():
            return
        waited = time.monotonic() - (self._pending_since or time.monotonic())
        if self._waiting() >= MAX_RECORDS_PER_FLUSH_TRIGGER or waited >= FLUSH_INTERVAL or idle:
            self._pending_since = None
            self._flight = self.io.submit(self._write)

    def flush_now(self) -> None:
        """Write everything pending and wait for it (at exit)."""
        for _ in range(3):
            if self._flight is not None:
                wait([self._flight])
            self._collect(idle=True)
            if not self._waiting():
                break
            self._flight = self.io.submit(self._write)
        self._delete_settled_messages()

    def background(self, action: Callable[..., object], *args: object) -> None:
        """Run a storage call on the storage thread, in order; failures are logged."""

        def run() -> None:
            try:
                action(*args)
            except Exception:  # a lost delete or event is harmless: redelivery and polling cover it
                logger.warning("background storage call failed", exc_info=True)

        self.io.submit(run)

    def barrier(self) -> None:
        """Wait until every storage call handed over so far is done (e.g. deletes, before counting)."""
        self.io.submit(lambda: None).result()

    def post_event(self, *, exiting: bool = False) -> None:
        """Send a completion event with the counts settled since the last one (on the storage thread,
        after the writes before it); ``exiting`` tells the orchestrator this agent is done."""
        event = CompletionEvent(
            run_id=self.step.run_id,
            job=self.step.job,
            node_id=self.node_id,
            agent_id=self.agent_id,
            settled=self._event_settled,
            failed=self._event_failed,
            exiting=exiting,
            sent_at=datetime.now(UTC),
        )
        self.background(self.clients.events_queue().send_message, event.model_dump_json())
        self._event_settled = self._event_failed = 0
        self._next_event = time.monotonic() + EVENT_INTERVAL

    def close(self) -> None:
        """Wait for the storage calls handed over so far, then stop the storage thread."""
        self.io.shutdown(wait=True)

    # --- internals ------------------------------------------------------------------------------
    def _write(self) -> list[Written]:
        """On the storage thread: upload new output files, then store the outcomes that produced them.

        Only outcomes that had arrived before the upload began are stored: a mini-batch never counts
        before its files are stored (an outcome arriving meanwhile waits for the next write).
        """
        with self._arrived_lock:
            taken, self._arrived = self._arrived, []
        try:
            if self.output_sync is not None:
                self.output_sync.sync()
        except Exception:  # the outcomes wait: their files must be stored before they count
            logger.warning("uploading output files failed; will retry", exc_info=True)
            with self._arrived_lock:
                self._arrived[:0] = taken
            return []
        for outcome in taken:
            self.recorder.add(outcome)
        return self.recorder.flush()

    def _collect(self, *, idle: bool) -> None:
        if self._flight is None or not self._flight.done():
            return
        written = self._flight.result()
        self._flight = None
        if self._waiting() and self._pending_since is None:
            self._pending_since = time.monotonic()
        for item in written:
            self._settled(item)
        self._delete_settled_messages()
        if self._event_failed or (
            self._event_settled and (time.monotonic() >= self._next_event or idle or not self.held)
        ):
            self.post_event()

    def _settled(self, item: Written) -> None:
        task: Task = item.outcome.token
        record = item.outcome.record
        if item.stored:
            task.etag = item.etag or task.etag
            if not record.final:
                return
        else:
            task.abandoned = True
            self.nodelog.main(
                "mini-batch %d was already settled by another agent; this result is dropped", task.index
            )
        task.held.unsettled.discard(task.index)
        if item.stored:
            self._event_settled += 1
            self._event_failed += int(record.counts_as_failed)
            emit_settled(self._metrics, self._attributes, task, record)

    def _delete_settled_messages(self) -> None:
        for message_id, held in list(self.held.items()):
            if not held.unsettled:
                self.background(self.queue.delete, held)
                del self.held[message_id]
