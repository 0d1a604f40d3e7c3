"""The agent's worker processes: start them, send them orders, kill them, and collect their events.

What each worker is fed, when it is timed out and when it is replaced is decided by
:class:`~shared.runtime.supervisor.Supervisor`, which owns the pool.

Workers are forked by a *fork server* (``multiprocessing``'s ``forkserver``) that imported the heavy
modules once — pandas, the Azure SDKs, the data readers, the worker itself — so starting a worker, or
replacing one after a crash or a timeout, costs milliseconds instead of seconds of imports. The fork
server is single-threaded, which keeps forking safe; each worker then calls ``setsid`` (a kill reaches
whatever it starts), enters its own working directory and environment, and redirects its output to
the user log files (:func:`shared.runtime.worker.forked_main`, reached through :func:`worker_main`).

A reader thread per worker turns its messages into ``(handle, event)`` items on one queue the agent
consumes; when the pipe closes, the thread waits for the process and posts its return code (negative
= killed by a signal, e.g. ``-9`` for the OOM killer or a run() timeout).

GPUs: slot *i* gets ``CUDA_VISIBLE_DEVICES=i`` while ``i`` is below the node's GPU count (Azure ML's
rule); a replacement worker takes over its slot, and therefore the freed GPU index.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from shared.runtime.forkserver import PRELOAD, fork_context, main_module_hidden, start_fork_server
from shared.runtime.protocol import ErrorCategory, StopOrder, TaskOrder, WorkerConfig, WorkerEvent

__all__ = ["PRELOAD", "WorkerHandle", "WorkerLayout", "WorkerPool", "fork_context", "start_fork_server"]

logger = logging.getLogger(__name__)


@dataclass
class WorkerHandle:
    """The agent's view of one worker process."""

    slot: int
    number: int
    process: BaseProcess
    to_worker: Connection
    gpu: int | None
    started: float = field(default_factory=time.monotonic)
    ready: bool = False
    exited: bool = False
    stopping: bool = False
    assigned: deque[Any] = field(default_factory=deque)  # tasks sent, oldest first
    loading: int | None = None
    load_started: float = 0.0
    running: int | None = None
    run_started: float = 0.0
    kill_category: ErrorCategory | None = None
    kill_message: str = ""
    # Set by the reader thread once the exit code is known. Only that thread waits on the process:
    # multiprocessing's Popen breaks when two threads wait on it at once (one reads 255).
    gone: threading.Event = field(default_factory=threading.Event)

    @property
    def name(self) -> str:
        """The worker's process name in logs and records, e.g. ``process003``."""
        return process_name(self.number)

    @property
    def pid(self) -> int:
        """The worker's process id (0 before it started)."""
        return self.process.pid or 0

    def send(self, order: TaskOrder | StopOrder) -> bool:
        """Write an order; False when the worker is gone (its exit event follows)."""
        try:
            self.to_worker.send_bytes(order.model_dump_json().encode())
        except (BrokenPipeError, OSError, ValueError):
            return False
        return True

    def kill(self, category: ErrorCategory | None = None, message: str = "") -> None:
        """Kill the worker and everything it started (its exit event follows)."""
        if category is not None and self.kill_category is None:
            self.kill_category, self.kill_message = category, message
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):  # not (yet) a session leader: kill it alone
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(self.pid, signal.SIGKILL)


def worker_main(**kwargs: Any) -> None:
    """A forked worker's entry point: :func:`shared.runtime.worker.forked_main`.

    The agent hands this function to ``multiprocessing`` by reference; the worker module itself (and
    pandas, which it imports) is loaded only where it runs — in the fork server, once — never in the
    agent, whose start-up it would delay by a second.
    """
    from shared.runtime.worker import forked_main

    forked_main(**kwargs)


def process_name(number: int) -> str:
    """``process<NNN>``: the name Azure ML's logs give a worker; replacements get new numbers."""
    return f"process{number:03d}"


WorkerMessage = tuple[WorkerHandle, WorkerEvent | int]


@dataclass
class WorkerLayout:
    """Where a node keeps its workers' things (all under the agent's node folder)."""

    node_dir: Path
    logs_root: Path
    node_id: int

    def working_dir(self, name: str) -> Path:
        """The current directory of worker ``name`` (each worker has its own)."""
        return self.node_dir / "work" / name

    def log(self, relative: str) -> Path:
        """A file of the node's log tree, uploaded with the job's logs."""
        return self.logs_root / relative

    def stdout(self, name: str) -> Path:
        """Where worker ``name``'s stdout goes (Azure ML's ``user/stdout`` layout)."""
        return self.log(f"user/stdout/{self.node_id}/{name}.stdout.txt")

    def stderr(self, name: str) -> Path:
        """Where worker ``name``'s stderr goes (Azure ML's ``user/stderr`` layout)."""
        return self.log(f"user/stderr/{self.node_id}/{name}.stderr.txt")

    def error_log(self, name: str) -> Path:
        """The full tracebacks of worker ``name``'s init()/run() errors (``user/error``)."""
        return self.log(f"user/error/{self.node_id}/{name}.txt")

    def entry_script_log_dir(self) -> Path:
        """The folder ``EntryScript().logger`` files go to, shared by the node's workers."""
        return self.log(f"user/entry_script_log/{self.node_id}")


class WorkerPool:
    """Starts workers from a config factory and multiplexes their events onto one queue."""

    def __init__(
        self,
        layout: WorkerLayout,
        config_for: Callable[[str, Path], WorkerConfig],
        environment: dict[str, str],
        gpus: int = 0,
    ) -> None:
        self.layout = layout
        self._config_for = config_for
        self._environment = environment
        self._gpus = gpus
        self._next_number = 0
        self.events: queue.Queue[WorkerMessage] = queue.Queue()
        self.workers: dict[int, WorkerHandle] = {}

    def spawn(self, slot: int) -> WorkerHandle:
        """Start a worker in ``slot`` (replacing whatever was there)."""
        number = self._next_number
        self._next_number += 1
        name = process_name(number)
        workdir = self.layout.working_dir(name)
        workdir.mkdir(parents=True, exist_ok=True)
        config = self._config_for(name, workdir)
        config_path = workdir.parent / f"{name}.config.json"
        config_path.write_text(config.model_dump_json())
        env = dict(self._environment)
        gpu = slot if slot < self._gpus else None
        if gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = str(gpu)
        elif self._gpus:
            env.pop("CUDA_VISIBLE_DEVICES", None)  # workers beyond the GPU count get none (Azure ML)
        context = fork_context()
        worker_receives, agent_sends = context.Pipe(duplex=False)  # (receiving end, sending end)
        agent_receives, worker_sends = context.Pipe(duplex=False)
        process = context.Process(
            target=worker_main,
            kwargs={
                "config_path": str(config_path),
                "inbound": worker_receives,
                "outbound": worker_sends,
                "stdout_path": str(self.layout.stdout(name)),
                "stderr_path": str(self.layout.stderr(name)),
                "working_dir": str(workdir),
                "environment": env,
            },
            name=name,
        )
        with main_module_hidden():
            process.start()
        worker_receives.close()
        worker_sends.close()
        handle = WorkerHandle(slot=slot, number=number, process=process, to_worker=agent_sends, gpu=gpu)
        reader = threading.Thread(target=self._read, args=(handle, agent_receives), daemon=True)
        reader.start()
        self.workers[slot] = handle
        return handle

    def _read(self, handle: WorkerHandle, connection: Connection) -> None:
        try:
            while True:
                try:
                    data = connection.recv_bytes()
                except (EOFError, OSError):
                    break
                try:
                    self.events.put((handle, WorkerEvent.model_validate_json(data)))
                except ValueError:
                    logger.warning("%s sent an unreadable message: %r", handle.name, data[:200])
        finally:
            connection.close()
            handle.process.join()
            with contextlib.suppress(OSError):
                handle.to_worker.close()
            code = handle.process.exitcode
            handle.gone.set()
            self.events.put((handle, code if code is not None else -1))

    def stop_all(self, *, graceful: bool, timeout: float = 30.0) -> None:
        """Ask every worker to shut down (``shutdown()`` runs), then kill what is left after ``timeout``."""
        live = [w for w in self.workers.values() if not w.exited]
        if graceful:
            for worker in live:
                worker.stopping = True
                worker.send(StopOrder())
            deadline = time.monotonic() + timeout
            for worker in live:
                worker.gone.wait(max(0.0, deadline - time.monotonic()))
        for worker in live:
            if not worker.gone.is_set():
                worker.kill()
        for worker in live:
            worker.gone.wait(10)
