"""Shared set-up of the runtime benchmarks: storage, a one-job run plan, and a timed agent process.

Not a benchmark itself (it is not listed in ``bench.BENCHMARKS``).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from bench.environment import CpuMeter
from shared.azurite import start_azurite
from shared.orchestration.contracts import ResolvedInput, StepDefinition, StepRef
from shared.plan import (
    BlobData,
    CodeRef,
    DataInput,
    DataType,
    InputMode,
    JobPlan,
    JobType,
    OutputPlan,
    ParallelSettings,
    RunPlan,
)
from shared.runs import save_plan, save_step_definition
from shared.runtime.records import read_records
from shared.settings import Settings
from shared.storage import Container, StorageClients, output_path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class BenchStorage:
    """The storage a bench runs against."""

    clients: StorageClients
    connection_string: str
    azurite_pid: int | None  # an Azurite started for this bench (its CPU is measured), else None
    label: str  # for the environment line


@contextlib.contextmanager
def storage() -> Iterator[BenchStorage]:
    """Clients for ``FANOUT_STORAGE_CONNECTION_STRING``, or for an Azurite started for the bench."""
    connection_string = os.environ.get("FANOUT_STORAGE_CONNECTION_STRING")
    azurite = None
    label = "FANOUT_STORAGE_CONNECTION_STRING"
    if not connection_string:
        azurite = start_azurite(Settings(home=PROJECT_ROOT / ".fanout" / "bench"))
        connection_string = azurite.connection_string
        label = "Azurite (in memory, started for this bench, on the same cores)"
    clients = StorageClients.from_connection_string(connection_string)
    clients.ensure_layout()
    try:
        yield BenchStorage(clients, connection_string, azurite.process.pid if azurite else None, label)
    finally:
        if azurite is not None:
            azurite.stop()


def upload_many(clients: StorageClients, prefix: str, files: dict[str, bytes], threads: int = 32) -> BlobData:
    container = clients.container(Container.DATA)

    def upload(item: tuple[str, bytes]) -> None:
        container.upload_blob(f"{prefix}/{item[0]}", item[1], overwrite=True)

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(upload, files.items()))
    return BlobData(container=Container.DATA.value, path=prefix)


@dataclass
class BenchStep:
    clients: StorageClients
    ref: StepRef
    code_dir: Path
    output: BlobData | None


def save_step(
    clients: StorageClients,
    *,
    script: str,
    data: BlobData,
    input_type: DataType,
    settings: dict[str, object],
    extra_inputs: dict[str, BlobData] | None = None,
    append_row: bool = False,
) -> BenchStep:
    """Save a one-job RunPlan and its StepDefinition (not yet planned)."""
    run_id = f"bench-{uuid.uuid4().hex[:8]}"
    code_dir = Path(tempfile.mkdtemp(prefix="fanout-bench-code-"))
    (code_dir / "score.py").write_text(textwrap.dedent(script))
    mode = InputMode.DIRECT if input_type is DataType.MLTABLE else InputMode.RO_MOUNT
    inputs: dict[str, DataInput] = {"data": DataInput(type=input_type, mode=mode, source=data)}
    resolved = {"data": ResolvedInput(location=data)}
    for name, location in (extra_inputs or {}).items():
        inputs[name] = DataInput(type=DataType.URI_FOLDER, mode=InputMode.DOWNLOAD, source=location)
        resolved[name] = ResolvedInput(location=location)
    outputs = {}
    if append_row:
        location = BlobData(container="runs", path=output_path(run_id, "score", "result") + "/scores.txt")
        outputs["result"] = OutputPlan(type=DataType.URI_FILE, location=location)
    parallel = ParallelSettings(
        input_data="data",
        entry_script="score.py",
        append_row_to="result" if append_row else None,
        resource_monitor_interval=0,
        **settings,  # type: ignore[arg-type]
    )
    job = JobPlan(
        name="score",
        type=JobType.PARALLEL,
        code=CodeRef(local_path=str(code_dir)),
        inputs=inputs,  # type: ignore[arg-type]
        outputs=outputs,
        parallel=parallel,
    )
    save_plan(clients, RunPlan(run_id=run_id, jobs=[job]))
    ref = StepRef(run_id=run_id, job="score")
    save_step_definition(clients, StepDefinition(step=ref, inputs=resolved, outputs=outputs))  # type: ignore[arg-type]
    return BenchStep(clients, ref, code_dir, outputs["result"].location if append_row else None)


def run_agent_process(
    step: BenchStep, connection_string: str, workers: int, meter: CpuMeter | None = None
) -> float:
    """Run ``fanout agent`` as its own process (as a node would); returns its wall time in seconds.

    With a ``meter``, the CPU time of the agent, its fork server and its workers is sampled as it runs.
    """
    home = Path(tempfile.mkdtemp(prefix="fanout-bench-home-"))
    env = dict(os.environ)
    env.update(
        FANOUT_STORAGE_CONNECTION_STRING=connection_string,
        FANOUT_HOME=str(home),
        PYTHONPATH=str(PROJECT_ROOT),
    )
    argv = [
        "agent",
        "--run",
        step.ref.run_id,
        "--job",
        step.ref.job,
        "--node-id",
        "0",
        "--workers",
        str(workers),
    ]
    errors = home / "agent.stderr.txt"
    started = time.perf_counter()
    with errors.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-c", "from shared.cli.main import main; main()", *argv],
            env=env,
            cwd=PROJECT_ROOT,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        if meter is not None:
            meter.watch_tree(process.pid)
            meter.start()
        code = process.wait()
    seconds = time.perf_counter() - started
    if code != 0:
        raise RuntimeError(f"the agent failed ({code}):\n{errors.read_text()[-3000:]}")
    return seconds


def busy_span(step: BenchStep) -> float:
    """Seconds from the first mini-batch start to the last one's end (the agent's marginal time)."""
    records = read_records(step.clients, step.ref)
    starts = [r.started_at for r in records if r.started_at]
    ends = [r.finished_at for r in records if r.finished_at]
    return (max(ends) - min(starts)).total_seconds()
