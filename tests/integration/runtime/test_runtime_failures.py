"""Failures in real worker processes: exceptions, bad return values, timeouts, crashes, init() errors."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from shared.errors import ExecutionError
from shared.orchestration.contracts import StepFinalize, StepStatus
from shared.plan import DataType, RetrySettings
from shared.runtime import phases
from shared.runtime.launch import run_node
from shared.runtime.records import read_progress
from shared.settings import get_settings
from shared.storage import StorageClients, work_queue_name
from tests.helpers import wait_until
from tests.integration.runtime.stepkit import Step, make_step

# Behaviour chosen by the content of each one-file mini-batch ("item N"): the script keeps a count of
# tries per file in a folder shared by the workers, so a retry in another process sees earlier tries.
BEHAVIOUR_SCRIPT = """
import os, sys, time
from pathlib import Path

TRIES = Path(os.environ["TRIES_DIR"])
PLAN = {int(k): v for k, v in (part.split("=") for part in os.environ["PLAN"].split(","))}

def init():
    TRIES.mkdir(parents=True, exist_ok=True)
    with open(TRIES / "inits.txt", "a") as handle:
        handle.write(f"{os.getpid()}\\n")

def run(mini_batch):
    index = int(Path(mini_batch[0]).read_text().split()[1])
    marker = TRIES / f"{index}.txt"
    with open(marker, "a") as handle:
        handle.write(f"{os.getpid()}\\n")
    tries = len(marker.read_text().splitlines())
    action = PLAN.get(index, "ok")
    if action == "raise":
        raise ValueError(f"bad input {index}")
    if action == "raise-once" and tries == 1:
        raise RuntimeError("transient failure")
    if action == "none":
        return None
    if action == "dict":
        return {"not": "a list"}
    if action == "hang-once" and tries == 1:
        time.sleep(600)
    if action == "exit-once" and tries == 1:
        os._exit(3)
    if action == "segv-once" and tries == 1:
        os.kill(os.getpid(), 11)
    if action == "slow-once" and tries == 1:
        Path(TRIES / f"running-{index}.pid").write_text(str(os.getpid()))
        time.sleep(600)
    return [f"{index}"]
"""


def _behaviour_step(
    storage: StorageClients, tmp_path: Path, plan: dict[int, str], *, files: int, **settings: Any
) -> Step:
    """BEHAVIOUR_SCRIPT over ``files`` one-file mini-batches (item N does ``plan[N]``), rows to one file."""
    return make_step(
        storage,
        tmp_path,
        BEHAVIOUR_SCRIPT,
        files=files,
        append_row=DataType.URI_FILE,
        environment_variables={
            "TRIES_DIR": str(tmp_path / "tries"),
            "PLAN": ",".join(f"{k}={v}" for k, v in plan.items()) or "0=ok",
        },
        **settings,
    )


def _tries(tmp_path: Path, index: int) -> int:
    marker = tmp_path / "tries" / f"{index}.txt"
    return len(marker.read_text().splitlines()) if marker.exists() else 0


def test_exceptions_and_bad_return_values_are_retried_then_counted_once(
    storage: StorageClients, tmp_path: Path
) -> None:
    plan = {0: "raise", 1: "none", 2: "raise-once", 3: "ok", 4: "dict"}
    step = _behaviour_step(storage, tmp_path, plan, files=5, retry=RetrySettings(max_retries=2, timeout=30))
    assert step.run_agent(workers=2) == 0
    records = step.records()
    # §9.11: raising or returning None fails the try; retried until 1 + max_retries tries, then one failure.
    assert _tries(tmp_path, 0) == 3
    assert records[0].status.value == "failed"
    assert records[0].attempts == 3
    assert "ValueError: bad input 0" in records[0].error_message
    assert records[0].error_category == "RUN_EXCEPTION"
    assert _tries(tmp_path, 1) == 3
    assert records[1].status.value == "failed"
    assert "The actual type of output is NoneType" in records[1].error_message
    assert records[1].error_category == "RUN_RESULT_INVALID"
    assert "The actual type of output is dict" in records[4].error_message
    # §9.14: a mini-batch that failed once and then succeeded is not counted as failed.
    assert _tries(tmp_path, 2) == 2
    assert records[2].status.value == "succeeded"
    assert records[2].attempts == 2
    progress = read_progress(storage, step.ref)
    assert (progress.succeeded_mini_batches, progress.failed_mini_batches) == (2, 3)
    assert (progress.items_succeeded, progress.items_failed) == (2, 3)
    assert progress.attempts == 3 + 3 + 2 + 1 + 3
    # Full tracebacks land in the user error log; the CSV has one row per try.
    errors = "".join(step.log(name) for name in step.log_names() if name.startswith("user/error/0/"))
    assert "Traceback (most recent call last)" in errors
    assert "ValueError: bad input 0" in errors
    report = step.log("sys/job_report/processed_mini-batches.csv").splitlines()
    assert report[0].startswith("Mini-batch Id,Picked Count,Node,Process,Start Time (UTC),Total,Succeeded")
    assert len(report) == 1 + progress.attempts
    # The output holds the successful mini-batches once each, in mini-batch order.
    result = phases.finalize_step(storage, StepFinalize(step=step.ref, status=StepStatus.COMPLETED))
    assert result.status is StepStatus.COMPLETED
    assert step.output_bytes() == b"2\n3\n"
    job_error = step.log("job_error.txt")
    assert "3 mini-batches failed" in job_error
    assert "mini-batch 0 (3 tries" in job_error


def test_a_run_past_its_timeout_kills_the_worker_and_the_replacement_runs_init_again(
    storage: StorageClients, tmp_path: Path
) -> None:
    plan = {1: "hang-once"}
    step = _behaviour_step(storage, tmp_path, plan, files=3, retry=RetrySettings(max_retries=1, timeout=2))
    assert step.run_agent(workers=1) == 0
    records = step.records()
    assert records[1].status.value == "succeeded"
    assert records[1].attempts == 2
    inits = (tmp_path / "tries" / "inits.txt").read_text().split()
    assert len(inits) == 2  # §9.12: the replacement process ran init() again
    tries = (tmp_path / "tries" / "1.txt").read_text().split()
    assert tries[0] != tries[1]  # the retry ran in the new process
    main = step.log("sys/node/0/_main.txt")
    assert "mini batch 1 did not finish in 2 seconds. Stopping this process." in main
    assert "process000 exits with returncode -9" in main
    report = step.log("sys/job_report/processed_mini-batches.csv")
    assert "RUN_TIMEOUT" in report


def test_crashing_workers_are_replaced_and_their_mini_batch_retried(
    storage: StorageClients, tmp_path: Path
) -> None:
    plan = {0: "exit-once", 1: "segv-once"}
    step = _behaviour_step(storage, tmp_path, plan, files=3)
    assert step.run_agent(workers=2) == 0
    records = step.records()
    assert all(r.status.value == "succeeded" for r in records.values())
    assert records[0].attempts == 2
    assert records[1].attempts == 2
    main = step.log("sys/node/0/_main.txt")
    assert "exits with returncode 3" in main
    assert "exits with returncode -11" in main
    phases.finalize_step(storage, StepFinalize(step=step.ref, status=StepStatus.COMPLETED))
    assert step.output_bytes() == b"0\n1\n2\n"


def test_a_worker_killed_mid_mini_batch_is_replaced(storage: StorageClients, tmp_path: Path) -> None:
    step = _behaviour_step(storage, tmp_path, {0: "slow-once"}, files=2)
    agent, thread = step.run_agent_in_thread(workers=1)
    pid_file = tmp_path / "tries" / "running-0.pid"
    wait_until(pid_file.exists, timeout=60, message="mini-batch 0 to start")
    os.kill(int(pid_file.read_text()), signal.SIGKILL)  # what the OOM killer does
    thread.join(timeout=120)
    assert not thread.is_alive()
    assert agent.exit_code == 0
    records = step.records()
    assert records[0].status.value == "succeeded"
    assert records[0].attempts == 2
    report = step.log("sys/job_report/processed_mini-batches.csv")
    assert "PROCESS_CRASH" in report
    assert "out of memory?" in report


def test_init_that_raises_gives_up_and_releases_the_work(storage: StorageClients, tmp_path: Path) -> None:
    script = """
def init():
    raise ImportError("no module named fancy_model")

def run(mini_batch):
    return mini_batch
"""
    step = make_step(storage, tmp_path, script, files=2)
    assert step.run_agent(workers=1) == 3
    main = step.log("sys/node/0/_main.txt")
    assert main.count("init() failed (") == 3  # 3 × workers failures, then the node gives up
    assert "giving up: init() failed 3 times on this node" in main
    assert "ImportError: no module named fancy_model" in step.log("user/error/0/process000.txt")
    progress = read_progress(storage, step.ref)
    assert progress.settled_mini_batches == 0
    assert progress.agents_failed == 1  # the step fails now (one node), not at the progress timeout
    assert progress.agent_error == "init() failed 3 times on this node; no worker is left"
    # The work was released, not lost: another agent could take it at once.
    queue = storage.queue_client(work_queue_name(step.ref.run_id, step.ref.job))
    visible = list(queue.peek_messages(max_messages=32))
    assert sum(json.loads(m.content)["end"] - json.loads(m.content)["start"] for m in visible) == 2


def test_a_node_that_cannot_be_prepared_reports_why(storage: StorageClients, tmp_path: Path) -> None:
    step = make_step(
        storage, tmp_path, "def run(b):\n    return b\n", files=1, program_arguments=["${{inputs.modle}}"]
    )
    with pytest.raises(ExecutionError, match="names no input of the job"):
        run_node(storage, step.ref, 0, workers=1, settings=get_settings())
    progress = read_progress(storage, step.ref)
    assert progress.agents_failed == 1
    assert progress.agent_error.startswith(
        "node 0 could not prepare the step: program_arguments of job score"
    )
