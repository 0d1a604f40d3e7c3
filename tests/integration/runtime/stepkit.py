"""Building small parallel steps on the test session's Azurite, and running their agents.

A test writes an entry script, gets a saved RunPlan + StepDefinition over a few tiny input files,
plans and dispatches the step with the runtime's phases, then runs agents — in this process (real
worker processes underneath) or as real ``fanout agent`` processes.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
    RetrySettings,
    RunPlan,
)
from shared.runs import save_plan, save_step_definition
from shared.runtime import phases
from shared.runtime.agent import Agent
from shared.runtime.records import MiniBatchRecord, read_records, update_step_document
from shared.settings import get_settings
from shared.storage import Container, StorageClients, output_path

PROJECT_ROOT = Path(__file__).resolve().parents[3]


@dataclass
class Step:
    """A planned and dispatched step, and where its things are."""

    clients: StorageClients
    ref: StepRef
    plan: RunPlan
    code_dir: Path
    files: list[str]
    output: BlobData | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def run_agent(self, node_id: int = 0, workers: int | None = 2, timeout: float = 120.0) -> int:
        """Run one agent in this process (its workers are real processes) until it exits."""
        agent, thread = self.run_agent_in_thread(node_id, workers)
        thread.join(timeout)
        if thread.is_alive():
            agent.request_stop("the test timed out")
            thread.join(30)
            raise AssertionError(f"the agent did not finish within {timeout}s")
        return agent.exit_code

    def agent(self, node_id: int = 0, workers: int | None = 2) -> Agent:
        from shared.runtime.node import prepare_node

        node = prepare_node(self.clients, self.ref, node_id, workers=workers, settings=get_settings())
        return Agent(node, log_upload_interval=0.5)

    def run_agent_in_thread(
        self, node_id: int = 0, workers: int | None = 2
    ) -> tuple[Agent, threading.Thread]:
        agent = self.agent(node_id, workers)
        result: dict[str, int] = {}
        thread = threading.Thread(target=lambda: result.setdefault("code", agent.run()), daemon=True)
        thread.start()
        return agent, thread

    def spawn_agent(self, node_id: int = 0, workers: int = 2) -> subprocess.Popen[bytes]:
        """A real ``fanout agent`` process (own session), as the local executor starts it."""
        env = dict(os.environ)
        env["PYTHONPATH"] = str(PROJECT_ROOT)
        argv = ["agent", "--run", self.ref.run_id, "--job", self.ref.job, "--node-id", str(node_id)]
        argv += ["--workers", str(workers)]
        return subprocess.Popen(
            [sys.executable, "-c", "from shared.cli.main import main; main()", *argv],
            env=env,
            cwd=PROJECT_ROOT,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def records(self) -> dict[int, MiniBatchRecord]:
        """The step's mini-batch records, by index."""
        return {record.index: record for record in read_records(self.clients, self.ref)}

    def output_bytes(self) -> bytes:
        assert self.output is not None
        blob = self.clients.blob.get_blob_client(self.output.container, self.output.path)
        return blob.download_blob().readall()

    def log(self, relative: str) -> str:
        from shared.runtime.logs import read_text

        return read_text(self.clients, self.ref, relative)

    def log_names(self) -> list[str]:
        from shared.storage import logs_path

        prefix = logs_path(self.ref.run_id, self.ref.job) + "/"
        container = self.clients.container(Container.RUNS)
        return sorted(b.name[len(prefix) :] for b in container.list_blobs(name_starts_with=prefix))


def write_script(directory: Path, body: str, name: str = "score.py") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(textwrap.dedent(body))
    return path


def make_step(
    clients: StorageClients,
    tmp_path: Path,
    script: str,
    *,
    files: int | dict[str, bytes] = 4,
    mini_batch_size: int = 1,
    append_row: DataType | None = None,
    outputs: dict[str, DataType] | None = None,
    program_arguments: list[str] | None = None,
    environment_variables: dict[str, str] | None = None,
    dispatch: bool = True,
    blocks_per_blob: int | None = None,
    extra_inputs: dict[str, dict[str, bytes]] | None = None,
    input_type: DataType = DataType.URI_FOLDER,
    **settings: Any,
) -> Step:
    """Upload tiny input files, save a one-job RunPlan + StepDefinition, plan (and dispatch) the step."""
    run_id = f"run-{uuid.uuid4().hex[:10]}"
    job = "score"
    code_dir = tmp_path / f"code-{run_id}"
    write_script(code_dir, script)
    contents = (
        files if isinstance(files, dict) else {f"f{i:03d}.txt": f"item {i}\n".encode() for i in range(files)}
    )
    data = clients.container(Container.DATA)
    prefix = f"inputs/{run_id}/folder"
    for name, payload in contents.items():
        data.upload_blob(f"{prefix}/{name}", payload, overwrite=True)
    mode = InputMode.DIRECT if input_type is DataType.MLTABLE else InputMode.RO_MOUNT
    inputs: dict[str, Any] = {
        "data": DataInput(type=input_type, mode=mode, source=BlobData(container="data", path=prefix))
    }
    resolved: dict[str, Any] = {"data": ResolvedInput(location=BlobData(container="data", path=prefix))}
    for name, blobs in (extra_inputs or {}).items():
        extra_prefix = f"inputs/{run_id}/{name}"
        for blob_name, payload in blobs.items():
            data.upload_blob(f"{extra_prefix}/{blob_name}", payload, overwrite=True)
        location = BlobData(container="data", path=extra_prefix)
        inputs[name] = DataInput(type=DataType.URI_FOLDER, mode=InputMode.DOWNLOAD, source=location)
        resolved[name] = ResolvedInput(location=location)
    job_outputs: dict[str, OutputPlan] = {}
    append_row_to = None
    for name, kind in (outputs or {}).items():
        path = output_path(run_id, job, name)
        if kind is DataType.URI_FILE:
            path += "/result.txt"
        job_outputs[name] = OutputPlan(type=kind, location=BlobData(container="runs", path=path))
    if append_row is not None:
        append_row_to = "result"
        path = output_path(run_id, job, "result") + (
            "/aggregated.txt" if append_row is DataType.URI_FILE else ""
        )
        job_outputs["result"] = OutputPlan(type=append_row, location=BlobData(container="runs", path=path))
    retry = settings.pop("retry", RetrySettings(max_retries=2, timeout=20))
    parallel = ParallelSettings(
        input_data="data",
        entry_script="score.py",
        mini_batch_size=mini_batch_size,
        program_arguments=program_arguments or [],
        retry=retry,
        task_overhead_timeout=settings.pop("task_overhead_timeout", 30),
        resource_monitor_interval=settings.pop("resource_monitor_interval", 0),
        append_row_to=append_row_to,
        **settings,
    )
    plan = RunPlan(
        run_id=run_id,
        jobs=[
            JobPlan(
                name=job,
                type=JobType.PARALLEL,
                code=CodeRef(local_path=str(code_dir)),
                inputs=inputs,
                outputs=job_outputs,
                environment_variables=environment_variables or {},
                parallel=parallel,
            )
        ],
    )
    save_plan(clients, plan)
    ref = StepRef(run_id=run_id, job=job)
    save_step_definition(clients, StepDefinition(step=ref, inputs=resolved, outputs=job_outputs))
    if blocks_per_blob is not None:
        update_step_document(clients, ref, blocks_per_blob=blocks_per_blob)
    phases.plan_step(clients, ref)
    if dispatch:
        phases.dispatch_step(clients, ref)
    output = None
    if append_row_to is not None:
        from shared.runtime.appendrow import append_row_location

        output = append_row_location(job_outputs["result"], parallel)
    return Step(clients=clients, ref=ref, plan=plan, code_dir=code_dir, files=sorted(contents), output=output)


def kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
