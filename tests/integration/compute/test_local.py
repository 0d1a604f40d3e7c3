"""The local executor: agents as real processes, idempotent start/stop, status with exit codes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.compute.base import AgentState, AgentTask
from shared.compute.local import LocalExecutor
from shared.orchestration.contracts import StepFinalize, StepStatus
from shared.plan import DataType
from shared.runtime import phases
from shared.runtime.records import read_progress, read_records
from shared.settings import get_settings
from shared.storage import StorageClients
from tests.helpers import wait_until
from tests.integration.runtime.stepkit import make_step


@pytest.fixture(autouse=True)
def empty_events_queue(storage: StorageClients) -> Iterator[None]:
    """The agents post completion events nobody consumes here; leave the shared queue empty."""
    yield
    storage.events_queue().clear_messages()


SCRIPT = """
import os, time
from pathlib import Path

def run(mini_batch):
    time.sleep(float(os.environ.get("DELAY", "0")))
    return [Path(p).read_text().strip() for p in mini_batch]
"""


def test_agents_run_a_step_to_completion_and_report_their_exit(
    storage: StorageClients, tmp_path: Path
) -> None:
    step = make_step(storage, tmp_path, SCRIPT, files=6, append_row=DataType.URI_FILE)
    executor = LocalExecutor(get_settings(), storage)
    task = AgentTask(run_id=step.ref.run_id, job=step.ref.job, instance_count=2, workers_per_agent=1)
    executor.start(task)
    executor.start(task)  # idempotent: still two agents
    assert [s.node_id for s in executor.status(step.ref.run_id, step.ref.job)] == [0, 1]

    def finished() -> bool:
        return all(s.state is AgentState.SUCCEEDED for s in executor.status(step.ref.run_id, step.ref.job))

    wait_until(finished, timeout=120, interval=0.2, message="both agents to finish")
    assert all(s.exit_code == 0 for s in executor.status(step.ref.run_id, step.ref.job))
    progress = read_progress(storage, step.ref)
    assert progress.succeeded_mini_batches == 6
    assert {r.node_id for r in read_records(storage, step.ref)} <= {0, 1}
    phases.finalize_step(storage, StepFinalize(step=step.ref, status=StepStatus.COMPLETED))
    assert step.output_bytes().decode() == "".join(f"item {i}\n" for i in range(6))
    executor.stop(step.ref.run_id, step.ref.job)  # stopping finished agents is harmless


def test_stop_terminates_running_agents_and_their_workers(storage: StorageClients, tmp_path: Path) -> None:
    step = make_step(storage, tmp_path, SCRIPT, files=50, environment_variables={"DELAY": "0.5"})
    executor = LocalExecutor(get_settings(), storage)
    executor.start(AgentTask(run_id=step.ref.run_id, job=step.ref.job, instance_count=1, workers_per_agent=2))
    wait_until(
        lambda: read_progress(storage, step.ref).settled_mini_batches >= 1, timeout=120, message="work"
    )
    executor.stop(step.ref.run_id, step.ref.job)
    [status] = executor.status(step.ref.run_id, step.ref.job)
    assert status.state is AgentState.STOPPED
    assert "stopped" in status.detail
    progress = read_progress(storage, step.ref)
    assert progress.settled_mini_batches < 50
    assert progress.agents_alive == 0  # the agent recorded its exit
    main = step.log("sys/node/0/_main.txt")
    assert "the agent was terminated (SIGTERM)" in main
    assert executor.status("no-such-run", "job") == []
