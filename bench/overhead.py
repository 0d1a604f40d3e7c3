"""Benchmark: the runtime's overhead per mini-batch — 2,000 one-file mini-batches, a no-op run(), 2 workers.

    python -m bench.overhead [--mini-batches 2000] [--workers 2] [--repeat 1]

Target: ≤ 2 ms of wall time per mini-batch.

Prints, from one run on Azurite:

- Fanout, whole agent: ``fanout agent`` as a process, from its start (interpreter, fork server, workers,
  init) to its exit after the queue drained, divided by the number of mini-batches;
- Fanout, steady state: from the first mini-batch's start to the last one's end (records' timestamps),
  divided by the number of mini-batches — the per-mini-batch cost once the node is up;
- baseline: ``multiprocessing.Pool(2)`` whose initializer opens a blob client and whose task downloads
  the same tiny file into a local folder and calls the same no-op — the least any runtime pays to hand
  a file to ``run()``.

Planning and dispatch are not part of the figure (the scale bench measures them).
"""

from __future__ import annotations

import argparse
import multiprocessing
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.environment import CpuMeter, cpu_line, describe, load_now
from bench.runtime_kit import (
    BenchStep,
    BenchStorage,
    busy_span,
    run_agent_process,
    save_step,
    storage,
    upload_many,
)
from shared.plan import BlobData, DataType
from shared.runtime import phases
from shared.runtime.records import read_progress
from shared.storage import StorageClients

NOOP = """
def init():
    pass

def run(mini_batch):
    return mini_batch
"""

_container: Any = None
_target: Path | None = None


def _init_baseline(connection_string: str, container: str, target: str) -> None:
    global _container, _target  # noqa: PLW0603 - per-process state of a Pool initializer
    _container = StorageClients.from_connection_string(connection_string).blob.get_container_client(container)
    _target = Path(target)


def _baseline_task(name: str) -> list[str]:
    assert _target is not None
    path = _target / name.rsplit("/", 1)[-1]
    with path.open("wb") as handle:
        _container.download_blob(name).readinto(handle)
    return [str(path)]


def baseline(connection_string: str, data: BlobData, names: list[str], workers: int) -> float:
    target = tempfile.mkdtemp(prefix="fanout-bench-baseline-")
    started = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(
        workers, initializer=_init_baseline, initargs=(connection_string, data.container, target)
    ) as pool:
        results = pool.map(_baseline_task, [f"{data.path}/{n}" for n in names], chunksize=8)
    seconds = time.perf_counter() - started
    assert len(results) == len(names)
    return seconds


def fanout(bench: BenchStorage, data: BlobData, count: int, workers: int) -> tuple[float, float]:
    """One step of ``count`` one-file mini-batches run by an agent process: (whole agent, steady state)."""
    clients = bench.clients
    step: BenchStep = save_step(
        clients, script=NOOP, data=data, input_type=DataType.URI_FOLDER, settings={"mini_batch_size": 1}
    )
    phases.plan_step(clients, step.ref)
    phases.dispatch_step(clients, step.ref)
    meter = CpuMeter()
    if bench.azurite_pid is not None:
        meter.watch("Azurite", bench.azurite_pid)
    agent_seconds = run_agent_process(step, bench.connection_string, workers, meter)
    cpu = meter.stop()
    progress = read_progress(clients, step.ref)
    assert progress.succeeded_mini_batches == count, progress
    print(f"  Fanout {cpu_line(cpu, count, 'mini-batch')}")
    return agent_seconds, busy_span(step)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mini-batches", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--repeat", type=int, default=1, help="rounds of Fanout then baseline; the best of each is reported"
    )
    args = parser.parse_args(argv)
    count = args.mini_batches
    rounds: list[tuple[float, float, float]] = []  # (whole agent, steady state, baseline)
    with storage() as bench:
        print(describe(bench.label))
        print(f"mini-batches: {count:,} (one tiny file each, no-op run()), workers: {args.workers}")
        names = [f"f{i:05d}.txt" for i in range(count)]
        data = upload_many(bench.clients, f"bench/overhead/{count}", dict.fromkeys(names, b"x"))
        for number in range(1, args.repeat + 1):
            agent_seconds, steady_seconds = fanout(bench, data, count, args.workers)
            baseline_seconds = baseline(bench.connection_string, data, names, args.workers)
            rounds.append((agent_seconds, steady_seconds, baseline_seconds))
            print(
                f"round {number}: whole agent {1000 * agent_seconds / count:.2f}, steady "
                f"{1000 * steady_seconds / count:.2f}, baseline {1000 * baseline_seconds / count:.2f} "
                f"ms/mini-batch, {load_now()}"
            )
    agent_seconds, steady_seconds, baseline_seconds = (min(r[i] for r in rounds) for i in range(3))
    if len(rounds) > 1:
        print(f"best of each over {len(rounds)} rounds:")
    print(
        f"Fanout, whole agent:   {agent_seconds:6.2f} s = {1000 * agent_seconds / count:5.2f} ms/mini-batch"
    )
    print(
        f"Fanout, steady state:  {steady_seconds:6.2f} s = {1000 * steady_seconds / count:5.2f} ms/mini-batch"
    )
    print(
        f"baseline Pool({args.workers}):      {baseline_seconds:6.2f} s = "
        f"{1000 * baseline_seconds / count:5.2f} ms/mini-batch"
    )
    print("target: <= 2 ms/mini-batch")


if __name__ == "__main__":
    main()
