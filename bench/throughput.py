"""Benchmark: scoring throughput — 2,000,000 CSV rows × 8 float features through a 60-tree random forest.

    python -m bench.throughput [--rows 2000000] [--workers 2] [--mini-batch-size 1048576] [--repeat 1]

Target: Fanout's wall time ≤ 1.2 × the baseline's.

Prints, from one run:

- Fanout: the step on Azurite — an MLTable (one CSV) split into byte-range mini-batches, scored by
  ``fanout agent`` with N workers (init() loads the model once per worker; run() predicts and returns
  one line per row, collected with ``append_row_to``) — timed from the agent's start to the committed
  output, and separately with planning and dispatch included;
- baseline: ``multiprocessing.Pool(N)`` with an initializer that loads the same model, fed DataFrame
  chunks of the same CSV read from local disk with ``pandas.read_csv(chunksize=...)``, the predictions
  written to a local file — what a user would write by hand on one machine.

The CSV and the model are generated once under ``.fanout/bench/`` and reused.
"""

from __future__ import annotations

import argparse
import multiprocessing
import pickle
import resource
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.environment import CpuMeter, cpu_line, describe, load_now
from bench.runtime_kit import (
    PROJECT_ROOT,
    BenchStorage,
    busy_span,
    run_agent_process,
    save_step,
    storage,
    upload_many,
)
from shared.orchestration.contracts import StepFinalize, StepStatus
from shared.plan import BlobData, DataType
from shared.runtime import phases
from shared.runtime.records import read_progress
from shared.storage import StorageClients

FEATURES = [f"f{i}" for i in range(8)]
WORK = PROJECT_ROOT / ".fanout" / "bench" / "throughput"

SCORE = """
import argparse, pickle
from pathlib import Path

FEATURES = [f"f{i}" for i in range(8)]
model = None

def init():
    global model
    parser = argparse.ArgumentParser()
    parser.add_argument("--model")
    args, _ = parser.parse_known_args()
    model = pickle.loads((Path(args.model) / "model.pkl").read_bytes())
    model.n_jobs = 1

def run(mini_batch):
    predictions = model.predict(mini_batch[FEATURES].to_numpy())
    return [f"{p:.4f}" for p in predictions]
"""

MLTABLE = """\
paths:
  - file: ./data.csv
transformations:
  - read_delimited:
      delimiter: ","
      header: all_files_same_headers
"""


def make_inputs(rows: int) -> tuple[Path, Path]:
    """The CSV (rows × 8 floats) and the pickled 60-tree forest, generated once."""
    from sklearn.ensemble import RandomForestRegressor

    WORK.mkdir(parents=True, exist_ok=True)
    csv_path = WORK / f"data-{rows}.csv"
    model_path = WORK / "model.pkl"
    if not csv_path.exists():
        generator = np.random.default_rng(7)
        frame = pd.DataFrame(generator.random((rows, len(FEATURES))), columns=FEATURES)
        partial = csv_path.with_suffix(".partial")
        frame.to_csv(partial, index=False, float_format="%.6f")
        partial.replace(csv_path)
    if not model_path.exists():
        generator = np.random.default_rng(11)
        x = generator.random((20_000, len(FEATURES)))
        y = x @ np.arange(1, len(FEATURES) + 1) + generator.normal(0, 0.1, len(x))
        forest = RandomForestRegressor(n_estimators=60, max_depth=12, random_state=0, n_jobs=-1).fit(x, y)
        model_path.write_bytes(pickle.dumps(forest))
    return csv_path, model_path


_model: Any = None


def _load(model_path: str) -> None:
    global _model  # noqa: PLW0603 - per-process state of a Pool initializer
    _model = pickle.loads(Path(model_path).read_bytes())
    _model.n_jobs = 1


def _score(chunk: pd.DataFrame) -> list[str]:
    return [f"{p:.4f}" for p in _model.predict(chunk[FEATURES].to_numpy())]


def baseline(csv_path: Path, model_path: Path, workers: int, rows_per_chunk: int) -> tuple[float, int]:
    output = WORK / "baseline-predictions.txt"
    before = _own_cpu()
    started = time.perf_counter()
    lines = 0
    with (
        multiprocessing.get_context("spawn").Pool(
            workers, initializer=_load, initargs=(str(model_path),)
        ) as pool,
        output.open("w") as handle,
    ):
        chunks = pd.read_csv(csv_path, chunksize=rows_per_chunk)
        for predictions in pool.imap(_score, chunks):
            handle.write("".join(p + "\n" for p in predictions))
            lines += len(predictions)
    seconds = time.perf_counter() - started
    print(f"  baseline CPU seconds (parent + pool processes): {_own_cpu() - before:.2f} s")
    return seconds, lines


def _own_cpu() -> float:
    """CPU seconds of this process and of its children that ended (the pool's processes)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def upload_inputs(bench: BenchStorage, csv_path: Path, model_path: Path) -> tuple[BlobData, BlobData]:
    """The MLTable folder (one CSV) and the model folder in the bench's storage."""
    data = upload_many(
        bench.clients,
        f"bench/throughput/{csv_path.stem}",
        {"MLTable": MLTABLE.encode(), "data.csv": csv_path.read_bytes()},
        threads=2,
    )
    model = upload_many(bench.clients, "bench/throughput/model", {"model.pkl": model_path.read_bytes()})
    return data, model


def fanout(
    bench: BenchStorage, data: BlobData, model: BlobData, *, workers: int, size: int
) -> tuple[float, float, float, int]:
    """One step, planned, dispatched, run by one agent process and finalized; its timings."""
    clients, connection_string = bench.clients, bench.connection_string
    step = save_step(
        clients,
        script=SCORE,
        data=data,
        input_type=DataType.MLTABLE,
        settings={"mini_batch_size": size, "program_arguments": ["--model", "${{inputs.model}}"]},
        extra_inputs={"model": model},
        append_row=True,
    )
    began = time.perf_counter()
    phases.plan_step(clients, step.ref)
    phases.dispatch_step(clients, step.ref)
    planned = time.perf_counter()
    meter = CpuMeter()
    if bench.azurite_pid is not None:
        meter.watch("Azurite", bench.azurite_pid)
    agent_seconds = run_agent_process(step, connection_string, workers, meter)
    finalizing = time.perf_counter()
    result = phases.finalize_step(clients, StepFinalize(step=step.ref, status=StepStatus.COMPLETED))
    done = time.perf_counter()
    cpu = meter.stop()
    assert result.status is StepStatus.COMPLETED, result.reason
    progress = read_progress(clients, step.ref)
    assert step.output is not None
    size_bytes = _size(clients, step.output)
    print(
        f"  ({progress.total_mini_batches} mini-batches, {progress.items_succeeded:,} rows scored, "
        f"output {size_bytes / 1e6:.1f} MB, busy span {busy_span(step):.1f} s)"
    )
    print(f"  Fanout {cpu_line(cpu, progress.total_mini_batches, 'mini-batch')}")
    return planned - began, agent_seconds, done - finalizing, progress.items_succeeded


def _size(clients: StorageClients, location: BlobData) -> int:
    blob = clients.blob.get_blob_client(location.container, location.path)
    return int(blob.get_blob_properties().size)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--mini-batch-size", type=int, default=1024 * 1024, help="bytes per mini-batch")
    parser.add_argument(
        "--repeat", type=int, default=1, help="rounds of Fanout then baseline; the best of each is compared"
    )
    args = parser.parse_args(argv)
    csv_path, model_path = make_inputs(args.rows)
    rows_per_chunk = max(1, args.mini_batch_size * args.rows // csv_path.stat().st_size)
    megabytes = csv_path.stat().st_size / 1e6
    rounds: list[tuple[float, float, float]] = []  # (Fanout agent + finalize, with plan + dispatch, Pool)
    with storage() as bench:
        print(describe(bench.label))
        print(f"rows: {args.rows:,} × 8 floats ({megabytes:.0f} MB CSV), workers: {args.workers}")
        data, model = upload_inputs(bench, csv_path, model_path)
        for number in range(1, args.repeat + 1):
            plan_seconds, agent_seconds, finalize_seconds, scored = fanout(
                bench, data, model, workers=args.workers, size=args.mini_batch_size
            )
            baseline_seconds, lines = baseline(csv_path, model_path, args.workers, rows_per_chunk)
            assert scored == lines == args.rows
            fanout_seconds = agent_seconds + finalize_seconds
            rounds.append((fanout_seconds, plan_seconds + fanout_seconds, baseline_seconds))
            print(
                f"round {number}: Fanout {fanout_seconds:.2f} s = agent {agent_seconds:.2f} s + finalize "
                f"{finalize_seconds:.2f} s ({fanout_seconds / baseline_seconds:.2f}×), baseline "
                f"{baseline_seconds:.2f} s, {load_now()}"
            )
    fanout_seconds, with_plan, baseline_seconds = (min(r[i] for r in rounds) for i in range(3))
    best = " (best of each over the rounds)" if len(rounds) > 1 else ""
    ratio = fanout_seconds / baseline_seconds
    print(f"Fanout agent + finalize:        {fanout_seconds:7.2f} s  ({ratio:.2f}× baseline){best}")
    print(
        f"Fanout with plan + dispatch:    {with_plan:7.2f} s  ({with_plan / baseline_seconds:.2f}× baseline)"
    )
    print(f"baseline Pool({args.workers}):               {baseline_seconds:7.2f} s")
    print("target: Fanout <= 1.2 × baseline")


if __name__ == "__main__":
    main()
