"""The agent's worker processes: start, feed, time, kill and replace them.

Each worker is a ``python -m shared.runtime.worker`` process in its own session (so a kill takes its
children too), with its own working directory, environment and log files. A reader thread per worker
turns its output lines into ``(handle, event)`` items on one queue the agent consumes; when the pipe
closes, the thread waits for the process and posts its return code (negative = killed by a signal,
e.g. ``-9`` for the OOM killer or a run() timeout).

GPUs: slot *i* gets ``CUDA_VISIBLE_DEVICES=i`` while ``i`` is below the node's GPU count (Azure ML's
rule); a replacement worker takes over its slot, and therefore the freed GPU index.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from shared.runtime.protocol import (
    ErrorCategory,
    StopOrder,
    TaskOrder,
    WorkerConfig,
    WorkerEvent,
    write_line,
)

logger = logging.getLogger(__name__)


@dataclass
class WorkerHandle:
    """The agent's view of one worker process."""

    slot: int
    number: int
    process: subprocess.Popen[bytes]
    to_worker: IO[str]
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

    @property
    def name(self) -> str:
        return process_name(self.number)

    @property
    def pid(self) -> int:
        return self.process.pid

    def send(self, order: TaskOrder | StopOrder) -> bool:
        """Write an order; False when the worker is gone (its exit event follows)."""
        try:
            write_line(self.to_worker, order)
        except (BrokenPipeError, OSError, ValueError):
            return False
        return True

    def kill(self, category: ErrorCategory | None = None, message: str = "") -> None:
        """Kill the worker and everything it started (its exit event follows)."""
        if category is not None and self.kill_category is None:
            self.kill_category, self.kill_message = category, message
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)


def process_name(number: int) -> str:
    return f"process{number:03d}"


WorkerMessage = tuple[WorkerHandle, WorkerEvent | int]


@dataclass
class WorkerLayout:
    """Where a node keeps its workers' things (all under the agent's node folder)."""

    node_dir: Path
    logs_root: Path
    node_id: int

    def working_dir(self, name: str) -> Path:
        return self.node_dir / "work" / name

    def log(self, relative: str) -> Path:
        return self.logs_root / relative

    def stdout(self, name: str) -> Path:
        return self.log(f"user/stdout/{self.node_id}/{name}.stdout.txt")

    def stderr(self, name: str) -> Path:
        return self.log(f"user/stderr/{self.node_id}/{name}.stderr.txt")

    def error_log(self, name: str) -> Path:
        return self.log(f"user/error/{self.node_id}/{name}.txt")

    def entry_script_log_dir(self) -> Path:
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
        to_read, to_write = os.pipe()  # agent -> worker
        from_read, from_write = os.pipe()  # worker -> agent
        for path in (self.layout.stdout(name), self.layout.stderr(name)):
            path.parent.mkdir(parents=True, exist_ok=True)
        with self.layout.stdout(name).open("ab") as out, self.layout.stderr(name).open("ab") as err:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "shared.runtime.worker",
                    str(config_path),
                    "--in-fd",
                    str(to_read),
                    "--out-fd",
                    str(from_write),
                ],
                cwd=workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                pass_fds=(to_read, from_write),
                start_new_session=True,
            )
        os.close(to_read)
        os.close(from_write)
        handle = WorkerHandle(
            slot=slot,
            number=number,
            process=process,
            to_worker=os.fdopen(to_write, "w", encoding="utf-8"),
            gpu=gpu,
        )
        reader = threading.Thread(
            target=self._read, args=(handle, os.fdopen(from_read, "r", encoding="utf-8")), daemon=True
        )
        reader.start()
        self.workers[slot] = handle
        return handle

    def _read(self, handle: WorkerHandle, stream: IO[str]) -> None:
        try:
            for line in stream:
                try:
                    self.events.put((handle, WorkerEvent.model_validate_json(line)))
                except ValueError:
                    logger.warning("%s sent an unreadable line: %r", handle.name, line[:200])
        finally:
            stream.close()
            code = handle.process.wait()
            with contextlib.suppress(OSError):
                handle.to_worker.close()
            self.events.put((handle, code))

    def stop_all(self, *, graceful: bool, timeout: float = 30.0) -> None:
        """Ask every worker to shut down (``shutdown()`` runs), then kill what is left after ``timeout``."""
        live = [w for w in self.workers.values() if not w.exited]
        if graceful:
            for worker in live:
                worker.stopping = True
                worker.send(StopOrder())
            deadline = time.monotonic() + timeout
            for worker in live:
                remaining = max(0.0, deadline - time.monotonic())
                with contextlib.suppress(subprocess.TimeoutExpired):
                    worker.process.wait(timeout=remaining)
        for worker in live:
            if worker.process.poll() is None:
                worker.kill()
        for worker in live:
            with contextlib.suppress(subprocess.TimeoutExpired):
                worker.process.wait(timeout=10)
