"""What an agent writes into its node's local log folder (uploaded by ``logs.LogUploader``).

- ``sys/node/<node>/_main.txt``: the agent's own lines (workers started, exits with return codes,
  timeouts, init failures, stop requests).
- ``sys/node/<node>/<process>.txt``: one line per mini-batch picked / completed by that process.
- ``sys/job_report/processed_mini-batches.csv``: one row per attempt (no header: the shared blob has it).
- ``sys/perf/<node>/node_resource_usage.csv`` and ``processes_resource_usage.csv``: :class:`ResourceMonitor`
  samples of the node and of each of its processes (psutil).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import psutil

from shared.runtime.logs import PROCESSED_CSV

logger = logging.getLogger(__name__)

PERF_COLUMNS = (
    "Time (UTC)",
    "CPU %",
    "Memory Total MB",
    "Memory Available MB",
    "Memory Used MB",
    "Memory %",
    "Disk Read MB",
    "Disk Write MB",
    "Network Sent MB",
    "Network Received MB",
    "Processes",
)


def _stamp(moment: datetime | None = None) -> str:
    return (moment or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


class NodeLog:
    """Thread-safe appenders for one node's local log files (kept open, line-buffered)."""

    def __init__(self, logs_root: Path, node_id: int) -> None:
        self.root = logs_root
        self.node_id = node_id
        self._lock = threading.Lock()
        self._files: dict[str, TextIO] = {}

    def _append(self, relative: str, text: str) -> None:
        with self._lock:
            handle = self._files.get(relative)
            if handle is None:
                path = self.root / relative
                path.parent.mkdir(parents=True, exist_ok=True)
                handle = self._files[relative] = path.open("a", encoding="utf-8", buffering=1)
            handle.write(text)

    def close(self) -> None:
        """Close the files the appenders keep open (the agent is done with this node's logs)."""
        with self._lock:
            for handle in self._files.values():
                handle.close()
            self._files.clear()

    def main(self, message: str, *args: object) -> None:
        """A line in ``_main.txt`` (also logged at INFO for the agent's console)."""
        text = message % args if args else message
        logger.info("node %d: %s", self.node_id, text)
        self._append(f"sys/node/{self.node_id}/_main.txt", f"{_stamp()} {text}\n")

    def process(self, process: str, message: str) -> None:
        """A line in worker ``process``'s own log file (mini-batches it picked and completed)."""
        self._append(f"sys/node/{self.node_id}/{process}.txt", f"{_stamp()} {message}\n")

    def attempt(
        self,
        *,
        index: int,
        picked: int,
        process: str,
        started: datetime,
        total: int,
        succeeded: int,
        failed: int,
        elapsed: float,
        process_seconds: float,
        run_seconds: float,
        status: str,
        error_category: str,
        error_message: str,
        detail: dict[str, Any],
    ) -> None:
        """One row of ``processed_mini-batches.csv``."""
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerow(
            [
                index,
                picked,
                self.node_id,
                process,
                _stamp(started),
                total,
                succeeded,
                failed,
                f"{elapsed:.3f}",
                f"{process_seconds:.3f}",
                f"{run_seconds:.3f}",
                status,
                error_category,
                error_message.replace("\n", " ")[:500],
                json.dumps(detail, default=str)[:1000],
            ]
        )
        self._append(PROCESSED_CSV, buffer.getvalue())


PROCESS_COLUMNS = (
    "Time (UTC)",
    "Process",
    "PID",
    "CPU %",
    "RSS MB",
    "Threads",
    "Child Processes",
    "Children CPU %",
    "Children RSS MB",
)

#: ``(name, pid)`` of the processes to sample: the agent and its live workers.
ProcessList = Callable[[], list[tuple[str, int]]]


class ResourceMonitor:
    """Samples resource usage every ``interval`` seconds: the node (``node_resource_usage.csv``) and each
    of its processes — the agent and every worker, with the processes a worker started counted apart
    (``processes_resource_usage.csv``)."""

    def __init__(
        self, logs_root: Path, node_id: int, interval: float, processes: ProcessList | None = None
    ) -> None:
        self.path = logs_root / f"sys/perf/{node_id}/node_resource_usage.csv"
        self.processes_path = logs_root / f"sys/perf/{node_id}/processes_resource_usage.csv"
        self.interval = interval
        self._processes = processes
        self._known: dict[int, psutil.Process] = {}  # cpu_percent() measures since the previous call
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="resource-monitor", daemon=True)

    def start(self) -> None:
        """Write the CSV headers and a first sample, then sample in a background thread (no-op when
        the interval is 0)."""
        if self.interval <= 0:
            return  # resource_monitor_interval 0 disables perf logs
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("w", encoding="utf-8", newline="") as handle:
            csv.writer(handle, lineterminator="\n").writerow(PERF_COLUMNS)
        if self._processes is not None:
            with self.processes_path.open("w", encoding="utf-8", newline="") as handle:
                csv.writer(handle, lineterminator="\n").writerow(PROCESS_COLUMNS)
        psutil.cpu_percent(None)  # prime the CPU counter
        self.sample()  # one row at start, then one per interval
        self._thread.start()

    def stop(self) -> None:
        """Stop sampling; waits a few seconds for the thread."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.sample()
            except Exception:  # a failed sample must not stop the agent
                logger.debug("resource sample failed", exc_info=True)

    def sample(self) -> None:
        """Append one row for the node and, when processes are listed, one per process."""
        mb = 1024 * 1024
        memory = psutil.virtual_memory()
        disk = psutil.disk_io_counters()
        net = psutil.net_io_counters()
        row = [
            _stamp(),
            psutil.cpu_percent(None),
            round(memory.total / mb),
            round(memory.available / mb),
            round(memory.used / mb),
            memory.percent,
            round(disk.read_bytes / mb, 1) if disk else "",
            round(disk.write_bytes / mb, 1) if disk else "",
            round(net.bytes_sent / mb, 1) if net else "",
            round(net.bytes_recv / mb, 1) if net else "",
            len(psutil.pids()),
        ]
        with self.path.open("a", encoding="utf-8", newline="") as handle:
            csv.writer(handle, lineterminator="\n").writerow(row)
        if self._processes is not None:
            self.sample_processes()

    def sample_processes(self) -> None:
        """One row per process: its CPU % since the previous sample (0 at its first), RSS, threads, and
        the same for the processes it started (a worker's subprocesses), summed."""
        assert self._processes is not None
        stamp = _stamp()
        rows: list[list[object]] = []
        alive: set[int] = set()
        for name, pid in self._processes():
            tree = self._tree(pid)
            if not tree:
                continue  # it has exited since it was listed
            alive.update(p.pid for p in tree)
            own, children = _usage(tree[:1]), _usage(tree[1:])
            rows.append([stamp, name, pid, own[0], own[1], own[2], len(tree) - 1, children[0], children[1]])
        self._known = {pid: process for pid, process in self._known.items() if pid in alive}
        with self.processes_path.open("a", encoding="utf-8", newline="") as handle:
            csv.writer(handle, lineterminator="\n").writerows(rows)

    def _tree(self, pid: int) -> list[psutil.Process]:
        """The process and its descendants (cached, so their CPU % is measured between samples)."""
        try:
            root = self._known.get(pid) or psutil.Process(pid)
            members = [root, *root.children(recursive=True)]
        except psutil.Error:
            return []
        return [self._known.setdefault(member.pid, member) for member in members]


def _usage(processes: list[psutil.Process]) -> tuple[float, float, int]:
    """CPU %, RSS MB and threads of ``processes``, summed (processes gone meanwhile count nothing)."""
    cpu, rss, threads = 0.0, 0.0, 0
    for process in processes:
        try:
            with process.oneshot():
                cpu += process.cpu_percent(None)
                rss += process.memory_info().rss / (1024 * 1024)
                threads += process.num_threads()
        except psutil.Error:
            continue
    return round(cpu, 1), round(rss, 1), threads
