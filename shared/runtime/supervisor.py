"""The agent's worker supervision: start, feed, time and replace worker processes.

The :class:`Supervisor` owns the node's :class:`~shared.runtime.workerpool.WorkerPool`. It hands each
ready worker up to :data:`DEPTH` mini-batches (one running, one loading ahead; :data:`FAST_DEPTH` when tries
take milliseconds, so the worker's pipe always holds the next ones), turns worker events into
try outcomes for the agent (:class:`Outcomes`), kills a worker whose ``run()`` outlives
``retry_settings.timeout`` or whose loading outlives ``task_overhead_timeout``, and replaces dead
workers — ``init()`` runs again in the replacement, which takes over the dead worker's GPU.

Which task a dead worker is charged with: the one it was running, else the one it was loading; the
others it held had not started and go back to the front of the queue without counting a try.
``init()`` failures are not charged to any mini-batch (a worker gets work only once it is ready); after
``3 × workers`` of them the node stops starting workers (Azure ML's rule) and the agent gives up.
"""

from __future__ import annotations

import queue
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from shared.runtime.attempts import Task
from shared.runtime.nodelog import NodeLog
from shared.runtime.protocol import ErrorCategory, EventKind, TaskOrder, WorkerConfig, WorkerEvent
from shared.runtime.workerpool import WorkerHandle, WorkerLayout, WorkerPool

DEPTH = 2  # mini-batches in flight per worker: one running, one loading ahead
#: Short tries (no-op or millisecond run()s): two more wait in the worker's pipe, so its loader never
#: waits for the agent's answer. Long tries keep DEPTH, so no mini-batch queues behind a slow one
#: while another worker is idle at the end of the step.
FAST_DEPTH = 4
FAST_TRY_SECONDS = 0.05
INIT_FAILURES_PER_WORKER = 3


class Outcomes(Protocol):
    """What the supervisor reports to the agent."""

    def try_ended(self, task: Task, process: str, event: WorkerEvent) -> None:
        """A worker reported the result of a try (success or a reported failure)."""

    def try_failed(self, task: Task, process: str, category: ErrorCategory, message: str) -> None:
        """A try failed without a report: its worker timed out, crashed or was killed."""

    def requeue(self, task: Task) -> None:
        """A task that never started on a worker that died: run it again, no try counted."""


class Supervisor:
    """Worker processes of one node."""

    def __init__(
        self,
        layout: WorkerLayout,
        config_for: Callable[[str, Path], WorkerConfig],
        environment: dict[str, str],
        *,
        workers: int,
        gpus: int,
        timeout: float,
        overhead: float,
        nodelog: NodeLog,
        outcomes: Outcomes,
    ) -> None:
        self.pool = WorkerPool(layout, config_for, environment, gpus=gpus)
        self.workers = workers
        self.timeout = timeout
        self.overhead = overhead
        self.nodelog = nodelog
        self.outcomes = outcomes
        self.init_failures = 0
        self.first_pick: datetime | None = None
        self._try_seconds: float | None = None  # moving average of the workers' load + run() times

    # --- state ----------------------------------------------------------------------------------
    def live(self) -> list[WorkerHandle]:
        """Workers whose process has not exited (ready, starting or stopping)."""
        return [w for w in self.pool.workers.values() if not w.exited]

    def ready(self) -> int:
        """Live workers past ``init()``, able to take mini-batches."""
        return sum(1 for w in self.live() if w.ready)

    def starting(self) -> int:
        """Live workers still importing the entry script or in ``init()``."""
        return sum(1 for w in self.live() if not w.ready and not w.stopping)

    def in_flight(self) -> int:
        """Mini-batches handed to live workers and not yet reported on."""
        return sum(len(w.assigned) for w in self.live())

    @property
    def depth(self) -> int:
        """Mini-batches a worker may hold: :data:`FAST_DEPTH` once tries are known to be short."""
        fast = self._try_seconds is not None and self._try_seconds < FAST_TRY_SECONDS
        return FAST_DEPTH if fast else DEPTH

    @property
    def gave_up(self) -> bool:
        """No worker is left and no more may be started."""
        return not self.live() and self.init_failures >= INIT_FAILURES_PER_WORKER * self.workers

    # --- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        """Start one worker per slot."""
        for slot in range(self.workers):
            self._spawn(slot)

    def stop(self, *, graceful: bool) -> None:
        """Graceful: workers finish, call ``shutdown()`` and exit; otherwise they are killed."""
        self.pool.stop_all(graceful=graceful, timeout=30.0 if graceful else 0.0)
        self.pump(timeout=0.0, draining=True)

    def _spawn(self, slot: int) -> None:
        worker = self.pool.spawn(slot)
        gpu = f", CUDA_VISIBLE_DEVICES={worker.gpu}" if worker.gpu is not None else ""
        self.nodelog.main("%s started (pid %d, slot %d%s)", worker.name, worker.pid, slot, gpu)

    def replace_dead(self) -> None:
        """Start a worker in every empty slot, unless ``init()`` failed too often on this node."""
        cap = INIT_FAILURES_PER_WORKER * self.workers
        for slot, worker in list(self.pool.workers.items()):
            starting = sum(1 for w in self.live() if not w.ready)
            if worker.exited and self.init_failures + starting < cap:
                self._spawn(slot)

    def check_timeouts(self) -> None:
        """Kill workers whose run() outlived ``timeout`` or whose loading outlived ``overhead``; the
        kill's category and message are charged to that try when the exit is seen."""
        now = time.monotonic()
        for worker in self.live():
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

    def assign(self, pending: deque[Task], skip: Callable[[Task], bool]) -> None:
        """Hand tasks from ``pending`` to ready workers (``skip`` drops tasks already decided)."""
        depth = self.depth
        for worker in sorted(self.live(), key=lambda w: len(w.assigned)):
            while worker.ready and not worker.stopping and len(worker.assigned) < depth and pending:
                task = pending.popleft()
                if skip(task):
                    continue
                task.attempt = task.attempts_before + 1
                order = TaskOrder(index=task.index, attempt=task.attempt, mini_batch=task.descriptor)
                if not worker.send(order):
                    pending.appendleft(task)
                    break
                task.picked_at = time.monotonic()
                task.first_picked = task.first_picked or datetime.now(UTC)
                self.first_pick = self.first_pick or task.first_picked
                worker.assigned.append(task)
                if worker.running is None and worker.loading is None:
                    worker.loading, worker.load_started = task.index, task.picked_at
                self.nodelog.process(worker.name, f"picked mini-batch {task.index} (try {task.attempt})")

    # --- events ---------------------------------------------------------------------------------
    def pump(self, *, timeout: float, draining: bool = False) -> None:
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
            _loading_next(worker, after=event.index, now=now)
        elif event.event is EventKind.RESULT:
            if worker.running == event.index:
                worker.running = None
            elif worker.loading == event.index:  # its load failed: the next one loads now
                _loading_next(worker, after=event.index, now=now)
            task = _take(worker, event.index)
            seconds = event.load_seconds + event.run_seconds  # the worker's own time, not queueing
            average = self._try_seconds
            self._try_seconds = seconds if average is None else 0.8 * average + 0.2 * seconds
            if task is not None and not task.abandoned:
                self.outcomes.try_ended(task, worker.name, event)

    def _init_failed(self, worker: WorkerHandle, message: str) -> None:
        self.init_failures += 1
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
                self.outcomes.requeue(task)
                continue
            message = worker.kill_message or (
                f"worker {worker.name} exited with return code {code} while processing mini-batch "
                f"{task.index}" + (" (killed: out of memory?)" if code == -9 else "")
            )
            self.outcomes.try_failed(
                task, worker.name, worker.kill_category or ErrorCategory.PROCESS_CRASH, message
            )


def _loading_next(worker: WorkerHandle, *, after: int | None, now: float) -> None:
    """The task after ``after`` in the worker's queue is the one its loader works on now."""
    indexes = [t.index for t in worker.assigned]
    position = indexes.index(after) + 1 if after in indexes else 0
    worker.loading = indexes[position] if position < len(indexes) else None
    worker.load_started = now


def _take(worker: WorkerHandle, index: int | None) -> Task | None:
    task: Task
    for task in list(worker.assigned):
        if task.index == index:
            worker.assigned.remove(task)
            return task
    return None
