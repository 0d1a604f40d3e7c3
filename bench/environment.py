"""What a benchmark's numbers depend on: the machine, how busy it was, and who used the CPU.

Not a benchmark itself. :func:`describe` is printed at the start of every bench (cores, load average,
Python, storage), so a figure measured while other work ran is recognisable as such; :class:`CpuMeter`
samples the CPU time of the processes a bench starts (the agent, its fork server and workers, Azurite),
which — unlike wall time — barely changes with the machine's load and says where the time goes.
"""

from __future__ import annotations

import contextlib
import os
import platform
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

import psutil


def describe(storage: str) -> str:
    """One line: cores, load average (1/5/15 min) now, memory, Python, and the storage used."""
    cores = os.cpu_count() or 0
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    one, five, fifteen = os.getloadavg()
    memory = psutil.virtual_memory().total / 2**30
    return (
        f"environment: {usable} usable cores of {cores}, load average {one:.2f} / {five:.2f} / {fifteen:.2f} "
        f"(1/5/15 min) at start, {memory:.0f} GiB, Python {platform.python_version()}, storage: {storage}"
    )


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB.

    ``getrusage().ru_maxrss`` is not it on Linux: the kernel carries the peak of the process image
    an ``exec`` replaced into it, so a child started by ``spawn`` from a big parent reports the
    parent's size. ``VmHWM`` in ``/proc/self/status`` is the peak of this image only.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:  # not Linux (macOS: ru_maxrss is in bytes there and has no such carry-over)
        pass
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def load_now() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} / {five:.2f} (1/5 min) at the end"


@dataclass
class CpuMeter:
    """CPU seconds (user + system) of process trees, sampled every ``interval`` seconds.

    Processes are grouped by role: :meth:`watch_tree` labels a process and its descendants (the agent:
    ``agent``; its direct children: ``fork server`` / ``helper``; their children: ``workers``);
    :meth:`watch` labels one process. A process's last sample counts, so short-lived ones may be
    missed by up to one interval of CPU.
    """

    interval: float = 0.05
    _trees: list[psutil.Process] = field(default_factory=list)
    _single: dict[int, tuple[str, psutil.Process]] = field(default_factory=dict)
    _seen: dict[int, tuple[str, float]] = field(default_factory=dict)
    _baseline: dict[int, float] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def watch(self, label: str, pid: int) -> None:
        """Count the CPU ``pid`` spends from now on under ``label`` (e.g. Azurite)."""
        process = psutil.Process(pid)
        self._single[pid] = (label, process)
        self._baseline[pid] = _cpu(process)

    def watch_tree(self, pid: int) -> None:
        """Count an agent process and everything it starts."""
        self._trees.append(psutil.Process(pid))

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="cpu-meter", daemon=True)
        self._thread.start()

    def stop(self) -> dict[str, float]:
        """CPU seconds per label."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()
        totals: dict[str, float] = {}
        for label, seconds in self._seen.values():
            totals[label] = totals.get(label, 0.0) + seconds
        return totals

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def _sample(self) -> None:
        for pid, (label, process) in self._single.items():
            self._record(pid, label, process, self._baseline.get(pid, 0.0))
        for root in self._trees:
            self._record(root.pid, "agent", root, 0.0)
            for child in _children(root):
                label = "fork server" if _is_fork_server(child) else "helper"
                self._record(child.pid, label, child, 0.0)
                for grandchild in _children(child):
                    self._record(grandchild.pid, "workers", grandchild, 0.0)

    def _record(self, pid: int, label: str, process: psutil.Process, baseline: float) -> None:
        with contextlib.suppress(psutil.Error):  # gone: its last sample stands
            self._seen[pid] = (label, _cpu(process) - baseline)


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def _children(process: psutil.Process) -> Iterable[psutil.Process]:
    try:
        return process.children()
    except psutil.Error:
        return []


def _is_fork_server(process: psutil.Process) -> bool:
    try:
        return "multiprocessing.forkserver" in " ".join(process.cmdline())
    except psutil.Error:
        return False


def cpu_line(totals: dict[str, float], per: int, unit: str) -> str:
    """``CPU: agent 1.2 s, workers 3.4 s, ... = x ms per <unit>`` (labels in a fixed order)."""
    order = ["agent", "fork server", "workers", "helper", "Azurite"]
    labels = [label for label in order if label in totals] + sorted(set(totals) - set(order))
    parts = ", ".join(f"{label} {totals[label]:.2f} s" for label in labels)
    total = sum(totals.values())
    return f"CPU seconds: {parts}; total {total:.2f} s = {1000 * total / max(per, 1):.2f} ms per {unit}"
