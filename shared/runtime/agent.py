"""The node agent of a parallel step: pulls mini-batches from the step's queue and feeds its workers.

One agent runs per node (``fanout agent --run R --job J --node-id N``). The main loop, on one thread:

1. pump worker events (``ready``, ``started``, ``result``, process exits);
2. kill a worker whose ``run()`` outlived ``retry_settings.timeout`` (or whose loading outlived
   ``task_overhead_timeout``), replace dead workers (``init()`` runs again in the replacement);
3. hand each ready worker up to two mini-batches (one running, one loading ahead);
4. write settled outcomes — records and this agent's tally shard in one transaction per 99 — then
   delete fully-settled messages and post a completion event;
5. renew the leases of held messages, poll the step's stop flag, heartbeat;
6. receive more messages (up to 32 at a time) when the local buffer runs low;
7. exit when the queue holds no message at all (visible or not) and the step is fully dispatched —
   a dead agent's messages are invisible, not gone, so the agent keeps polling until they reappear
   and are processed.

Attempts: a failed try (exception, invalid return value, timeout, crashed worker, load error) is
retried on this node until ``1 + max_retries`` tries were made; the try count is stored with the record,
so a redelivered message resumes it. A message delivered more than ``max_tries + 2`` times (its agents
kept dying) settles its remaining mini-batches as failed (``AGENT_LOST``).
"""

from __future__ import annotations

import logging
import math
import queue
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from azure.data.tables import UpdateMode

from shared.orchestration.contracts import StepRef
from shared.policy import max_tries, visibility_timeout
from shared.runtime import logs
from shared.runtime.attempts import (
    Task,
    TryResult,
    Where,
    build_record,
    completed,
    emit_settled,
    failed_try,
    log_try,
)
from shared.runtime.inputs import descriptor, item_count
from shared.runtime.messages import CompletionEvent
from shared.runtime.node import NodeContext, prepare_node
from shared.runtime.nodelog import NodeLog, ResourceMonitor
from shared.runtime.outputs import OutputSync
from shared.runtime.protocol import ErrorCategory, EventKind, TaskOrder, WorkerConfig, WorkerEvent
from shared.runtime.recorder import Outcome, Recorder, Written, heartbeat_entity
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
from shared.runtime.workerpool import WorkerHandle, WorkerLayout, WorkerPool
from shared.runtime.workqueue import MalformedMessage, WorkQueue, parse
from shared.settings import Settings
from shared.storage import StorageClients, work_queue_name
from shared.telemetry import fanout_metrics

logger = logging.getLogger(__name__)

DEPTH = 2  # mini-batches in flight per worker: one running, one loading ahead
FLUSH_INTERVAL = 0.2
HEARTBEAT_INTERVAL = 5.0
STOP_POLL_INTERVAL = 1.0
LEASE_CHECK_INTERVAL = 0.5
EVENT_INTERVAL = 1.0
OVERVIEW_INTERVAL = 30.0
IDLE_POLL_MAX = 2.0
AGENT_LOSS_ALLOWANCE = 2
INIT_FAILURES_PER_WORKER = 3
EXIT_OK = 0
EXIT_GAVE_UP = 3


class Agent:
    """Runs one node's share of a parallel step; :meth:`run` returns the process exit code."""

    def __init__(self, node: NodeContext, *, log_upload_interval: float = 3.0) -> None:
        self.node = node
        self.step = node.step
        self.parallel = node.parallel
        self.max_tries = max_tries(self.parallel.retry)
        self.timeout = float(self.parallel.retry.timeout)
        self.overhead = float(self.parallel.task_overhead_timeout)
        self.nodelog = NodeLog(node.logs_root, node.node_id)
        self.queue = WorkQueue(
            node.clients.queue_client(work_queue_name(self.step.run_id, self.step.job)),
            visibility_timeout(self.parallel),
        )
        self.table = minibatch_table(node.clients)
        self.key = step_key(self.step)
        self.liveness = AgentShard(agent_id=node.agent_id, node_id=node.node_id)
        self.io = ThreadPoolExecutor(max_workers=1, thread_name_prefix="agent-storage")
        self._flight: Future[list[Written]] | None = None
        self.recorder = Recorder(
            self.table, self.key, AgentShard(agent_id=node.agent_id, node_id=node.node_id)
        )
        self.document = node.document
        self.layout = WorkerLayout(node.node_dir, node.logs_root, node.node_id)
        self.pool = WorkerPool(self.layout, self._worker_config, node.environment, gpus=node.gpus)
        self.output_sync = OutputSync(node.clients, node.outputs) if node.outputs else None
        self.uploader = logs.LogUploader(
            node.clients, self.step, node.logs_root, interval=log_upload_interval
        )
        self.monitor = ResourceMonitor(node.logs_root, node.node_id, self.parallel.resource_monitor_interval)
        self.pending: deque[Task] = deque()
        self.held: dict[str, Any] = {}
        self.decided: set[int] = set()  # mini-batches with a final outcome on this node (stored or queued)
        self.init_failures = 0
        self.stopping = False
        self.finished = False
        self.exit_code = EXIT_OK
        self.exit_reason = ""
        self._next_receive = 0.0
        self._idle_backoff = 0.05
        self._pending_since: float | None = None
        self._timers: dict[str, float] = {}
        self._event_settled = 0
        self._event_failed = 0
        self._metrics = fanout_metrics()
        self._attributes = {"fanout.run_id": self.step.run_id, "fanout.job": self.step.job}

    # --- lifecycle ------------------------------------------------------------------------------
    def run(self) -> int:
        """Process mini-batches until the queue is drained, the step is stopped, or no worker can start."""
        self._start()
        try:
            while not self.finished and not self.stopping:
                self._pump(timeout=self._wait_time())
                self._check_timeouts()
                self._replace_workers()
                self._assign()
                self._flush_if_due()
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
        for slot in range(node.workers):
            self._spawn(slot)

    def _finish(self) -> None:
        graceful = not self.stopping and self.exit_code == EXIT_OK
        self.pool.stop_all(graceful=graceful, timeout=30.0 if graceful else 0.0)
        self._pump(timeout=0.0, draining=True)
        for _ in range(3):  # what is recorded now is kept, even when stopping
            self._flush_now()
            if not len(self.recorder):
                break
        if not graceful:
            for held in self.held.values():
                self.queue.release(held)
        self.liveness = self.liveness.model_copy(update={"exited": True, "exit_reason": self.exit_reason})
        self._heartbeat()
        self._post_event(exiting=True)
        self.io.shutdown(wait=True)
        reason = f": {self.exit_reason}" if self.exit_reason else ""
        self.nodelog.main("agent exits with code %d%s", self.exit_code, reason)
        self.monitor.stop()
        self.nodelog.close()
        self.uploader.close()

    def _wait_time(self) -> float:
        busy = any(w.assigned for w in self._live()) or len(self.recorder) or self._flight is not None
        return 0.02 if busy else max(0.0, min(self._next_receive - time.monotonic(), 0.2))

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

    def _spawn(self, slot: int) -> None:
        worker = self.pool.spawn(slot)
        gpu = f", CUDA_VISIBLE_DEVICES={worker.gpu}" if worker.gpu is not None else ""
        self.nodelog.main("%s started (pid %d, slot %d%s)", worker.name, worker.pid, slot, gpu)

    def _live(self) -> list[WorkerHandle]:
        return [w for w in self.pool.workers.values() if not w.exited]

    def _replace_workers(self) -> None:
        if self.stopping or self.finished:
            return
        cap = INIT_FAILURES_PER_WORKER * self.node.workers
        for slot, worker in list(self.pool.workers.items()):
            if worker.exited and self.init_failures < cap:
                self._spawn(slot)
        if not self._live() and self.init_failures >= cap:
            self.exit_code = EXIT_GAVE_UP
            self.exit_reason = f"init() failed {self.init_failures} times on this node; no worker is left"
            self.nodelog.main("giving up: %s", self.exit_reason)
            self.finished = True

    def _check_timeouts(self) -> None:
        now = time.monotonic()
        for worker in self._live():
            if worker.kill_category is not None:
                continue
            if worker.running is not None and now - worker.run_started > self.timeout:
                message = (
                    f"mini batch {worker.running} did not finish in {self.timeout:g} seconds. "
                    "Stopping this process."
                )
                self.nodelog.main("%s: %s", worker.name, message)
                worker.kill(ErrorCategory.RUN_TIMEOUT, message)
            elif (
                worker.running is None
                and worker.loading is not None
                and now - worker.load_started > self.overhead
            ):
                message = f"loading mini batch {worker.loading} took more than {self.overhead:g} seconds."
                self.nodelog.main("%s: %s Stopping this process.", worker.name, message)
                worker.kill(ErrorCategory.LOAD_TIMEOUT, message)

    def _assign(self) -> None:
        for worker in sorted(self._live(), key=lambda w: len(w.assigned)):
            while worker.ready and not worker.stopping and len(worker.assigned) < DEPTH and self.pending:
                task = self.pending.popleft()
                if task.index in self.decided:
                    task.held.unsettled.discard(task.index)
                if task.abandoned or task.index in self.decided:
                    continue
                task.attempt = task.attempts_before + 1
                order = TaskOrder(index=task.index, attempt=task.attempt, mini_batch=task.descriptor)
                if not worker.send(order):
                    self.pending.appendleft(task)
                    break
                task.picked_at = time.monotonic()
                if task.first_picked is None:
                    task.first_picked = datetime.now(UTC)
                if self.liveness.first_activity_at is None:
                    self.liveness = self.liveness.model_copy(update={"first_activity_at": datetime.now(UTC)})
                worker.assigned.append(task)
                if worker.running is None and worker.loading is None:
                    worker.loading, worker.load_started = task.index, task.picked_at
                self.nodelog.process(worker.name, f"picked mini-batch {task.index} (try {task.attempt})")

    # --- worker events --------------------------------------------------------------------------
    def _pump(self, *, timeout: float, draining: bool = False) -> None:
        """Handle worker events: wait up to ``timeout`` for the first, then take what is queued."""
        wait = timeout
        while True:
            try:
                worker, event = (
                    self.pool.events.get(timeout=wait) if wait > 0 else self.pool.events.get_nowait()
                )
            except queue.Empty:
                return
            wait = 0.0
            if isinstance(event, int):
                self._on_exit(worker, event, draining=draining)
            else:
                self._on_event(worker, event)

    def _on_event(self, worker: WorkerHandle, event: WorkerEvent) -> None:
        now = time.monotonic()
        if event.event is EventKind.READY:
            worker.ready = True
            self.nodelog.main("%s ready: init() took %.2fs", worker.name, now - worker.started)
        elif event.event is EventKind.INIT_FAILED:
            worker.kill_category = ErrorCategory.RUN_EXCEPTION
            self._init_failed(worker, event.error_message)
        elif event.event is EventKind.STARTED:
            # The worker loads one mini-batch ahead: once run() starts, the next one is being loaded.
            worker.running, worker.run_started = event.index, now
            self._loading_next(worker, after=event.index, now=now)
        elif event.event is EventKind.RESULT:
            if worker.running == event.index:
                worker.running = None
            elif worker.loading == event.index:  # its load failed: the next one loads now
                self._loading_next(worker, after=event.index, now=now)
            task = self._take(worker, event.index)
            if task is not None and not task.abandoned:
                self._try_ended(task, worker, event)

    @staticmethod
    def _loading_next(worker: WorkerHandle, *, after: int | None, now: float) -> None:
        """The task after ``after`` in the worker's queue is the one its loader works on now."""
        indexes = [t.index for t in worker.assigned]
        position = indexes.index(after) + 1 if after in indexes else 0
        worker.loading = indexes[position] if position < len(indexes) else None
        worker.load_started = now

    def _init_failed(self, worker: WorkerHandle, message: str) -> None:
        self.init_failures += 1
        self.liveness = self.liveness.model_copy(update={"init_failures": self.init_failures})
        self.nodelog.main("%s: init() failed (%d on this node): %s", worker.name, self.init_failures, message)

    def _on_exit(self, worker: WorkerHandle, code: int, *, draining: bool) -> None:
        worker.exited = True
        self.nodelog.main("%s exits with returncode %d", worker.name, code)
        if draining:
            return
        if not worker.ready and worker.kill_category is None and not worker.stopping:
            self._init_failed(worker, f"the process exited with return code {code} before init() finished")
        charged = worker.running if worker.running is not None else worker.loading
        tasks = list(worker.assigned)
        worker.assigned.clear()
        for task in reversed(tasks):
            if task.abandoned:
                continue
            if task.index != charged:
                self.pending.appendleft(task)  # never started here: no try is counted
                continue
            category = worker.kill_category or ErrorCategory.PROCESS_CRASH
            message = worker.kill_message or (
                f"worker {worker.name} exited with return code {code} while processing mini-batch "
                f"{task.index}" + (" (killed: out of memory?)" if code == -9 else "")
            )
            self._try_failed(task, worker.name, category, message)

    def _take(self, worker: WorkerHandle, index: int | None) -> Task | None:
        task: Task
        for task in list(worker.assigned):
            if task.index == index:
                worker.assigned.remove(task)
                return task
        return None

    # --- outcomes -------------------------------------------------------------------------------
    def _try_ended(self, task: Task, worker: WorkerHandle, event: WorkerEvent) -> None:
        if event.ok:
            self._record(task, worker.name, completed(task, event))
            return
        category = event.error_category or ErrorCategory.RUN_EXCEPTION
        self._try_failed(task, worker.name, category, event.error_message, event)

    def _try_failed(
        self,
        task: Task,
        process: str,
        category: ErrorCategory,
        message: str,
        event: WorkerEvent | None = None,
        *,
        final: bool | None = None,
    ) -> None:
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
        self.recorder.add(Outcome(record=record, etag=task.etag, token=task))
        if self._pending_since is None:
            self._pending_since = time.monotonic()
        log_try(self.nodelog, task, outcome, process, time.monotonic() - task.picked_at)
        if outcome.event is not None and outcome.event.started_at is not None:
            self._metrics.run_duration.record(outcome.event.run_seconds, self._attributes)

    def _flush_if_due(self) -> None:
        """Hand pending outcomes to the storage thread (one flush in flight), and take back its results."""
        self._collect()
        self._delete_settled_messages()
        if self._flight is not None or not len(self.recorder):
            return
        idle = not any(w.assigned for w in self._live()) and not self.pending
        waited = time.monotonic() - (self._pending_since or time.monotonic())
        if len(self.recorder) >= 99 or waited >= FLUSH_INTERVAL or idle:
            self._pending_since = None
            self._flight = self.io.submit(self._write_outcomes)

    def _write_outcomes(self) -> list[Written]:
        """On the storage thread: upload new output files, then store the outcomes that produced them."""
        try:
            if self.output_sync is not None:
                self.output_sync.sync()
        except Exception:  # the outcomes wait: their files must be stored before they count
            logger.warning("uploading output files failed; will retry", exc_info=True)
            return []
        return self.recorder.flush()

    def _collect(self) -> None:
        if self._flight is None or not self._flight.done():
            return
        written = self._flight.result()
        self._flight = None
        if len(self.recorder) and self._pending_since is None:
            self._pending_since = time.monotonic()
        for item in written:
            self._settled(item)
        self._delete_settled_messages()
        if self._event_failed or (
            self._event_settled and (self._due("event", EVENT_INTERVAL) or not (self.pending or self.held))
        ):
            self._post_event()

    def _flush_now(self) -> None:
        """Flush synchronously (at exit)."""
        if self._flight is not None:
            wait([self._flight])
        self._collect()
        if len(self.recorder):
            self._flight = self.io.submit(self._write_outcomes)
            wait([self._flight])
            self._collect()

    def _delete_settled_messages(self) -> None:
        for message_id, held in list(self.held.items()):
            if not held.unsettled:
                self._background(self.queue.delete, held)
                del self.held[message_id]

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

    def _post_event(self, *, exiting: bool = False) -> None:
        event = CompletionEvent(
            run_id=self.step.run_id,
            job=self.step.job,
            node_id=self.node.node_id,
            agent_id=self.node.agent_id,
            settled=self._event_settled,
            failed=self._event_failed,
            exiting=exiting,
            sent_at=datetime.now(UTC),
        )
        self._background(self.node.clients.events_queue().send_message, event.model_dump_json())
        self._event_settled = self._event_failed = 0

    def _background(self, action: Callable[..., object], *args: object) -> None:
        """Run a storage call on the storage thread, in order; failures are logged."""

        def run() -> None:
            try:
                action(*args)
            except Exception:  # a lost delete or event is harmless: redelivery and polling cover it
                logger.warning("background storage call failed", exc_info=True)

        self.io.submit(run)

    # --- queue ----------------------------------------------------------------------------------
    def _receive_if_needed(self) -> None:
        now = time.monotonic()
        ready = [w for w in self._live() if w.ready]
        if not ready or now < self._next_receive:
            return
        in_flight = sum(len(w.assigned) for w in self._live())
        want = len(ready) * (DEPTH + 1) - len(self.pending) - in_flight
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
        if not (self.pending or in_flight or self.held or len(self.recorder) or self._flight):
            self._check_drained()

    def _accept(self, message: Any) -> None:
        """Turn a received message into tasks (skipping what its records say is already settled)."""
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
        agents_lost = held.dequeue_count > self.max_tries + AGENT_LOSS_ALLOWANCE
        for index in work.indexes:
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
                self._try_failed(task, "agent", ErrorCategory.AGENT_LOST, message, final=True)
            else:
                self.pending.append(task)
        if held.unsettled:
            self.held[held.message_id] = held
        else:
            self.queue.delete(held)

    def _check_drained(self) -> None:
        self._poll_stop()
        if self.stopping:
            return
        if self.document.dispatched and self.queue.approximate_count() == 0:
            self.nodelog.main("the work queue is drained")
            self.finished = True

    def _renew_leases(self) -> None:
        now = time.monotonic()
        for held in self.held.values():
            if not held.lost and now >= held.renew_at:
                self.queue.renew(held)

    def _poll_stop(self) -> None:
        document = read_step_document(self.node.clients, self.step)
        if document is None:
            return
        self.document = document
        if document.stop_requested and not self.stopping:
            reason = f"stop requested: {document.stop_reason}" if document.stop_reason else "stop requested"
            self.request_stop(reason)
            self.nodelog.main("%s; stopping the workers", reason)

    def _heartbeat(self) -> None:
        entity = heartbeat_entity(self.key, self.liveness, datetime.now(UTC))
        self._background(lambda: self.table.upsert_entity(entity, mode=UpdateMode.MERGE))

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


def run_node(
    clients: StorageClients, step: StepRef, node_id: int, *, workers: int | None, settings: Settings
) -> int:
    """Run node ``node_id`` of a job: its workers for a parallel job, its command for a command job."""
    from shared.plan import JobType
    from shared.runs import load_plan, load_step_definition

    plan = load_plan(clients, step.run_id)
    job = plan.job(step.job)
    if job.type is JobType.COMMAND:
        from shared.runtime.command import run_command_node

        definition = load_step_definition(clients, step)
        code: int = run_command_node(clients, plan, definition, node_id)
        return code
    node = prepare_node(clients, step, node_id, workers=workers, settings=settings)
    agent = Agent(node)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: agent.request_stop("the agent was terminated (SIGTERM)"))
    return agent.run()
