"""The tries of one node's mini-batches: which wait for a worker, which are decided, what a try's end means.

The agent (:mod:`shared.runtime.agent`) hands each received work message to :meth:`TryLedger.admit`, and
its supervisor reports the end of every try here (the :class:`shared.runtime.supervisor.Outcomes`
protocol). The ledger turns each into a record for the settler and decides whether the mini-batch is
tried again:

- a failed try (exception, invalid return value, timeout, crashed worker, load error) is retried on this
  node until ``1 + max_retries`` tries were made; the try count is stored with the record, so a
  redelivered message resumes it;
- a message delivered more than ``max_tries + 2`` times (its agents kept dying) settles its remaining
  mini-batches as failed (``AGENT_LOST``);
- a mini-batch that reaches this node twice keeps its first final outcome; the second is dropped.

Kept apart from the agent's loop, which decides *when* to receive, assign and write: this module decides
*what* an outcome means, and owns the queue of mini-batches waiting for a worker.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Mapping

from shared.runtime.attempts import (
    Task,
    TryResult,
    Where,
    build_record,
    completed,
    failed_try,
    log_try,
)
from shared.runtime.inputs import descriptor, item_count
from shared.runtime.node import NodeContext
from shared.runtime.nodelog import NodeLog
from shared.runtime.protocol import ErrorCategory, WorkerEvent
from shared.runtime.recorder import Outcome
from shared.runtime.records import MiniBatchRecord
from shared.runtime.settle import Settler
from shared.runtime.workqueue import HeldMessage
from shared.telemetry import fanout_metrics

#: Deliveries beyond ``max_tries`` after which a message's mini-batches count as lost with their agents.
AGENT_LOSS_ALLOWANCE = 2


class TryLedger:
    """The mini-batches a node holds, across their tries (see the module docstring).

    Args:
        node: the prepared node (ids, manifest).
        settler: where records of ended tries go to be stored.
        nodelog: the node's main log (duplicates and tries are logged there).
        max_tries: ``1 + max_retries`` of the step.
    """

    def __init__(self, node: NodeContext, settler: Settler, nodelog: NodeLog, *, max_tries: int) -> None:
        self.node = node
        self.settler = settler
        self.nodelog = nodelog
        self.max_tries = max_tries
        self.pending: deque[Task] = deque()
        self.decided: set[int] = set()  # mini-batches with a final outcome on this node (stored or queued)
        self._metrics = fanout_metrics()
        self._attributes = {"fanout.run_id": node.step.run_id, "fanout.job": node.step.job}

    def admit(self, held: HeldMessage, existing: Mapping[int, tuple[MiniBatchRecord, str]]) -> None:
        """Queue a received message's mini-batches for tries, skipping what is already decided.

        Args:
            held: the message, now held by this agent; each admitted index joins ``held.unsettled``.
            existing: the stored records of its mini-batches (with ETags), read when it was redelivered;
                a final record skips the mini-batch, another resumes its try count.
        """
        agents_lost = held.dequeue_count > self.max_tries + AGENT_LOSS_ALLOWANCE
        for index in held.work.indexes:
            record, etag = existing.get(index, (None, None))
            if (record is not None and record.final) or index in self.decided:
                continue
            task = Task(
                index=index,
                held=held,
                attempts_before=record.attempts if record else 0,
                etag=etag,
                descriptor=descriptor(self.node.manifest, index),
                items=item_count(self.node.manifest, index) or 0,
            )
            held.unsettled.add(index)
            if agents_lost:
                task.attempt = max(task.attempts_before, 1)
                message = (
                    f"the work message holding mini-batch {index} was delivered {held.dequeue_count} times: "
                    "the agents processing it kept stopping (node lost, agent killed or out of memory)"
                )
                self.fail(task, "agent", ErrorCategory.AGENT_LOST, message, final=True)
            else:
                self.pending.append(task)

    def already_decided(self, task: Task) -> bool:
        """Whether ``task`` must not run (decided on this node, or settled by another agent)."""
        if task.index in self.decided:
            task.held.unsettled.discard(task.index)
            return True
        return task.abandoned

    # Outcomes (called by the supervisor) ---------------------------------------------------------
    def try_ended(self, task: Task, process: str, event: WorkerEvent) -> None:
        """Record a try that ``run()`` finished: a success, or a failure the worker reported."""
        if event.ok:
            self._record(task, process, completed(task, event))
            return
        category = event.error_category or ErrorCategory.RUN_EXCEPTION
        self.fail(task, process, category, event.error_message, event)

    def try_failed(self, task: Task, process: str, category: ErrorCategory, message: str) -> None:
        """Record a try that ended without a report: its worker timed out, crashed or was killed."""
        self.fail(task, process, category, message)

    def requeue(self, task: Task) -> None:
        """Run again, first in line, a mini-batch that never started on a worker that died (no try used)."""
        self.pending.appendleft(task)

    def fail(
        self,
        task: Task,
        process: str,
        category: ErrorCategory,
        message: str,
        event: WorkerEvent | None = None,
        *,
        final: bool | None = None,
    ) -> None:
        """Record a failed try; queue the mini-batch again unless this was its last try (or ``final``)."""
        final = task.attempt >= self.max_tries if final is None else final
        self._record(
            task,
            process,
            failed_try(task, final=final, category=category.value, message=message, event=event),
        )
        if not final:
            task.attempts_before = task.attempt
            self.pending.append(task)

    def _record(self, task: Task, process: str, outcome: TryResult) -> None:
        if task.index in self.decided:  # a duplicate delivery: the first outcome stands
            task.abandoned = True
            task.held.unsettled.discard(task.index)
            self.nodelog.main("mini-batch %d was delivered twice; the second result is dropped", task.index)
            return
        where = Where(node_id=self.node.node_id, agent_id=self.node.agent_id, process=process)
        record = build_record(task, outcome, where)
        if record.final:
            self.decided.add(task.index)
        self.settler.add(Outcome(record=record, etag=task.etag, token=task))
        log_try(self.nodelog, task, outcome, process, time.monotonic() - task.picked_at)
        if outcome.event is not None and outcome.event.started_at is not None:
            self._metrics.run_duration.record(outcome.event.run_seconds, self._attributes)
