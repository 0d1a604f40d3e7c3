"""The node agent of a parallel step: its loop pulls mini-batches from the step's queue and feeds its workers.

One agent runs per node (``fanout agent --run R --job J --node-id N``, started by
:func:`shared.runtime.launch.run_node`). The main loop, on one thread:

1. pump worker events (``ready``, ``started``, ``result``, process exits);
2. kill a worker whose ``run()`` outlived ``retry_settings.timeout`` (or whose loading outlived
   ``task_overhead_timeout``), replace dead workers (``init()`` runs again in the replacement);
3. hand each ready worker up to two mini-batches (one running, one loading ahead; four when tries are
   short, so a worker never waits for the agent);
4. write settled outcomes — records and this agent's tally shard in one transaction per 99 — then
   delete fully-settled messages and post a completion event;
5. renew the leases of held messages, poll the step's stop flag, heartbeat;
6. receive more messages (up to 32 at a time) when the local buffer runs low;
7. exit when the queue holds no message at all (visible or not) and the step is fully dispatched —
   a dead agent's messages are invisible, not gone, so the agent keeps polling until they reappear
   and are processed.

What a try's end means — a record, a retry on this node, a final failure, ``AGENT_LOST`` for a message
whose agents kept dying — is :class:`shared.runtime.tries.TryLedger`, which also holds the mini-batches
waiting for a worker. This module is the loop: when to receive, assign, write, renew, report and exit.
"""

from __future__ import annotations

import logging
import math
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from azure.data.tables import UpdateMode

from shared.policy import max_tries, visibility_timeout
from shared.runtime import logs
from shared.runtime.node import NodeContext
from shared.runtime.nodelog import NodeLog, ResourceMonitor
from shared.runtime.outputs import OutputSync
from shared.runtime.protocol import WorkerConfig
from shared.runtime.recorder import Recorder, heartbeat_entity
from shared.runtime.records import (
    AgentShard,
    MiniBatchRecord,
    minibatch_table,
    read_progress,
    read_record_entities,
    read_step_document,
    shard_to_entity,
    step_key,
)
from shared.runtime.settle import Settler
from shared.runtime.supervisor import Supervisor
from shared.runtime.tries import TryLedger
from shared.runtime.workerpool import WorkerLayout
from shared.runtime.workqueue import HeldMessage, MalformedMessage, WorkQueue, parse
from shared.storage import work_queue_name

logger = logging.getLogger(__name__)

HEARTBEAT_INTERVAL = 5.0
STOP_POLL_INTERVAL = 1.0
LEASE_CHECK_INTERVAL = 0.5
OVERVIEW_INTERVAL = 30.0
IDLE_POLL_MAX = 2.0
#: Exit code of a node whose share is done (or whose step was stopped).
EXIT_OK = 0
#: Exit code of a node that gave up: ``init()`` kept failing and no worker is left.
EXIT_GAVE_UP = 3


class Agent:
    """Runs one node's share of a parallel step; :meth:`run` returns the process exit code."""

    def __init__(self, node: NodeContext, *, log_upload_interval: float = 3.0) -> None:
        self.node = node
        self.step = node.step
        self.parallel = node.parallel
        self.max_tries = max_tries(self.parallel.retry)
        self.nodelog = NodeLog(node.logs_root, node.node_id)
        self.queue = WorkQueue(
            node.clients.queue_client(work_queue_name(self.step.run_id, self.step.job)),
            visibility_timeout(self.parallel),
        )
        self.table = minibatch_table(node.clients)
        self.key = step_key(self.step)
        self.liveness = AgentShard(agent_id=node.agent_id, node_id=node.node_id)
        self.held: dict[str, HeldMessage] = {}
        self.settler = Settler(
            node.clients,
            self.step,
            node_id=node.node_id,
            agent_id=node.agent_id,
            recorder=Recorder(self.table, self.key, AgentShard(agent_id=node.agent_id, node_id=node.node_id)),
            queue=self.queue,
            held=self.held,
            nodelog=self.nodelog,
            output_sync=OutputSync(node.clients, node.outputs) if node.outputs else None,
        )
        self.tries = TryLedger(node, self.settler, self.nodelog, max_tries=self.max_tries)
        self.document = node.document
        self.layout = WorkerLayout(node.node_dir, node.logs_root, node.node_id)
        self.workers = Supervisor(
            self.layout,
            self._worker_config,
            node.environment,
            workers=node.workers,
            gpus=node.gpus,
            timeout=float(self.parallel.retry.timeout),
            overhead=float(self.parallel.task_overhead_timeout),
            nodelog=self.nodelog,
            outcomes=self.tries,
        )
        self.uploader = logs.LogUploader(
            node.clients, self.step, node.logs_root, interval=log_upload_interval
        )
        self.monitor = ResourceMonitor(
            node.logs_root, node.node_id, self.parallel.resource_monitor_interval, self._processes
        )
        self.stopping = False
        self.finished = False
        self.exit_code = EXIT_OK
        self.exit_reason = ""
        self._next_receive = 0.0
        self._workers_started = False
        self._idle_backoff = 0.05
        self._was_idle = True
        self._timers: dict[str, float] = {}

    # --- lifecycle ------------------------------------------------------------------------------
    def run(self) -> int:
        """Process mini-batches until the queue is drained, the step is stopped, or no worker can start."""
        self._start()
        try:
            while not self.finished and not self.stopping:
                self.workers.pump(timeout=self._wait_time())
                self.workers.check_timeouts()
                self._replace_workers()
                self.workers.assign(self.tries.pending, self.tries.already_decided)
                self.settler.tick(idle=not self.workers.in_flight() and not self.tries.pending)
                self._every("lease", LEASE_CHECK_INTERVAL, self._renew_leases)
                self._every("stop", STOP_POLL_INTERVAL, self._poll_stop)
                self._every("heartbeat", HEARTBEAT_INTERVAL, self._heartbeat)
                if self.node.node_id == 0:
                    self._every("overview", OVERVIEW_INTERVAL, self._overview)
                if not self.stopping:
                    self._receive_if_needed()
        finally:
            self._finish()
        return self.exit_code

    def request_stop(self, reason: str) -> None:
        """Stop taking work, kill the workers and exit (safe to call from a signal handler)."""
        if not self.stopping:
            self.stopping = True
            self.exit_reason = reason

    def _start(self) -> None:
        node = self.node
        self.nodelog.main(
            "agent %s started for %s/%s on node %d: %d workers, %d GPUs, %d mini-batches in the step",
            node.agent_id,
            self.step.run_id,
            self.step.job,
            node.node_id,
            node.workers,
            node.gpus,
            node.total,
        )
        self.table.upsert_entity(shard_to_entity(self.key, self.liveness), mode=UpdateMode.MERGE)
        self.uploader.start()
        self.monitor.start()
        # Work first: the first messages arrive while the workers start (init() may take seconds),
        # and a node that finds nothing left to do exits without starting any worker.
        try:
            self._receive_if_needed()
        except Exception:  # a storage hiccup: start the workers, the loop receives again
            logger.warning("the first receive failed; starting the workers anyway", exc_info=True)
        if self.finished:
            self.nodelog.main("nothing left to do on this node; no worker was started")
            return
        self.workers.start()
        self._workers_started = True

    def _finish(self) -> None:
        graceful = not self.stopping and self.exit_code == EXIT_OK
        self.workers.stop(graceful=graceful)
        self.settler.flush_now()  # what is recorded now is kept, even when stopping
        if not graceful:
            for held in self.held.values():
                self.queue.release(held)
        reason = f": {self.exit_reason}" if self.exit_reason else ""
        self.nodelog.main("agent exits with code %d%s", self.exit_code, reason)
        self.monitor.stop()
        self.nodelog.close()
        try:
            self.uploader.close()  # the last log upload: the logs are whole before the agent says it exited
        finally:
            self._heartbeat(exited=True)
            self.settler.post_event(exiting=True)
            self.settler.close()

    def _wait_time(self) -> float:
        """How long the loop may wait for a worker event: until the next thing that is due (≤ 0.2 s)."""
        if self.settler.writing:
            return 0.02  # collect it soon: its messages are deleted and its event posted then
        due = [*self._timers.values(), self.settler.flush_at or math.inf]
        if self._wanted() > 0:
            due.append(self._next_receive)
        return min(max(0.0, min(due) - time.monotonic()), 0.2)

    def _every(self, name: str, interval: float, action: Any) -> None:
        if self._due(name, interval):
            try:
                action()
            except Exception:  # storage hiccups must not kill the agent; the next round retries
                logger.warning("agent %s failed; retrying later", name, exc_info=True)

    def _due(self, name: str, interval: float) -> bool:
        now = time.monotonic()
        if now >= self._timers.get(name, 0.0):
            self._timers[name] = now + interval
            return True
        return False

    # --- workers --------------------------------------------------------------------------------
    def _processes(self) -> list[tuple[str, int]]:
        """The agent and its live workers (sampled by the resource monitor's thread)."""
        workers = [(w.name, w.pid) for w in list(self.workers.pool.workers.values()) if not w.exited]
        return [("agent", os.getpid()), *workers]

    def _worker_config(self, name: str, working_dir: Path) -> WorkerConfig:
        node = self.node
        return WorkerConfig(
            step=self.step,
            node_id=node.node_id,
            process_name=name,
            code_dir=str(node.code_dir),
            entry_script=self.parallel.entry_script,
            argv=node.argv,
            manifest_file=str(node.manifest_file),
            cache_dir=str(node.node_dir / "cache"),
            working_dir=str(working_dir),
            output_dir=str(node.bi_output_dir),
            entry_script_log_dir=str(self.layout.entry_script_log_dir()),
            error_log=str(self.layout.error_log(name)),
            logging_level=self.parallel.logging_level,
            append_row=node.append_row,
        )

    def _replace_workers(self) -> None:
        if self.stopping or self.finished:
            return
        self.workers.replace_dead()
        if self.workers.gave_up:
            self.exit_code = EXIT_GAVE_UP
            self.exit_reason = (
                f"init() failed {self.workers.init_failures} times on this node; no worker is left"
            )
            self.nodelog.main("giving up: %s", self.exit_reason)
            self.finished = True

    # --- queue ----------------------------------------------------------------------------------
    def _wanted(self) -> int:
        """Mini-batches this node could take now (0 when its workers and buffer are full)."""
        if self.stopping or self.finished:
            return 0
        # Workers still in init() count: their first mini-batches are waiting when they are ready.
        slots = self.workers.ready() + self.workers.starting() if self._workers_started else self.node.workers
        return slots * (self.workers.depth + 1) - len(self.tries.pending) - self.workers.in_flight()

    def _receive_if_needed(self) -> None:
        now = time.monotonic()
        idle = self._idle()
        if idle and not self._was_idle:
            # The node just ran out of work: look for more (or find the queue drained) now, not after
            # the back-off that the empty receives of its busy phase built up (up to IDLE_POLL_MAX).
            self._next_receive, self._idle_backoff = 0.0, 0.05
        self._was_idle = idle
        if now < self._next_receive:
            return
        want = self._wanted()
        if want <= 0:
            return
        per_message = max(1, self.document.mini_batches_per_message)
        messages = self.queue.receive(math.ceil(want / per_message))
        for message in messages:
            self._accept(message)
        if messages:
            self._idle_backoff = 0.05
            return
        self._next_receive = now + self._idle_backoff
        self._idle_backoff = min(self._idle_backoff * 2, IDLE_POLL_MAX)
        if idle:
            self._check_drained()

    def _idle(self) -> bool:
        """Nothing to run, running, held or being written: the node's share may be done."""
        return not (self.tries.pending or self.workers.in_flight() or self.held or self.settler.busy)

    def _accept(self, message: Any) -> None:
        """Hold a received message and admit its mini-batches (a redelivery's records say what is done)."""
        try:
            work = parse(message, run_id=self.step.run_id, job=self.step.job, total=self.node.total)
        except MalformedMessage as exc:
            self.nodelog.main("deleting a malformed work message: %s", exc)
            self.queue.delete_raw(message)
            return
        held = self.queue.hold(message, work)
        existing: dict[int, tuple[MiniBatchRecord, str]] = {}
        if held.dequeue_count > 1:
            existing = read_record_entities(self.table, self.key, work.start, work.end)
        self.tries.admit(held, existing)
        if held.unsettled:
            self.held[held.message_id] = held
        else:
            self.settler.background(self.queue.delete, held)

    def _check_drained(self) -> None:
        self._poll_stop()
        if self.stopping:
            return
        self.settler.barrier()  # our own deletes must land before the queue is counted
        if self.document.dispatched and self.queue.approximate_count() == 0:
            self.nodelog.main("the work queue is drained")
            self.finished = True

    def _renew_leases(self) -> None:
        now = time.monotonic()
        for held in self.held.values():
            if not held.lost and now >= held.renew_at:
                self.queue.renew(held)

    # --- status ---------------------------------------------------------------------------------
    def _poll_stop(self) -> None:
        document = read_step_document(self.node.clients, self.step)
        if document is None:
            return
        self.document = document
        if document.stop_requested and not self.stopping:
            reason = f"stop requested: {document.stop_reason}" if document.stop_reason else "stop requested"
            self.request_stop(reason)
            self.nodelog.main("%s; stopping the workers", reason)

    def _heartbeat(self, *, exited: bool = False) -> None:
        self.liveness = self.liveness.model_copy(
            update={
                "first_activity_at": self.workers.first_pick,
                "init_failures": self.workers.init_failures,
                "exited": exited,
                "failed": exited and self.exit_code != EXIT_OK,
                "exit_reason": self.exit_reason if exited else "",
            }
        )
        entity = heartbeat_entity(self.key, self.liveness, datetime.now(UTC))
        self.settler.background(lambda: self.table.upsert_entity(entity, mode=UpdateMode.MERGE))

    def _overview(self) -> None:
        now = datetime.now(UTC)
        progress = read_progress(self.node.clients, self.step, now=now)
        line = (
            f"{progress.settled_mini_batches} of {progress.total_mini_batches} mini-batches processed: "
            f"{progress.succeeded_mini_batches} succeeded, {progress.failed_mini_batches} failed; items "
            f"{progress.items_succeeded} succeeded, {progress.items_failed} failed; {progress.agents_alive} "
            "agents alive."
        )
        logs.append_line(self.node.clients, self.step, logs.progress_overview_name(now), line)
