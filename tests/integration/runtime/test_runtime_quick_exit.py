"""An agent with nothing to do exits at once: no node preparation, no worker started."""

from __future__ import annotations

from pathlib import Path

from shared.orchestration.contracts import StepFinalize, StepStatus
from shared.runtime import phases
from shared.runtime.agent import EXIT_OK
from shared.runtime.launch import run_node
from shared.runtime.messages import WorkMessage
from shared.runtime.node import node_folder
from shared.runtime.records import request_stop
from shared.settings import get_settings
from shared.storage import StorageClients, work_queue_name
from tests.integration.runtime.stepkit import Step, make_step

SCRIPT = """
def run(mini_batch):
    return mini_batch
"""


def _assert_a_late_agent_exits_at_once(storage: StorageClients, step: Step, why: str) -> None:
    """Node 1 (a late or restarted agent) exits OK saying ``why``, with nothing downloaded, no worker."""
    code = run_node(storage, step.ref, 1, workers=2, settings=get_settings())
    assert code == EXIT_OK
    assert why in step.log("sys/node/1/_main.txt")
    assert not node_folder(get_settings(), step.ref, 1).exists()  # the node was never prepared


def test_an_agent_on_a_drained_queue_exits_without_preparing_or_starting_workers(
    storage: StorageClients, tmp_path: Path
) -> None:
    step = make_step(storage, tmp_path, SCRIPT, files=2)
    assert step.run_agent(workers=1) == 0  # node 0 did everything
    _assert_a_late_agent_exits_at_once(storage, step, "agent exits at once: the work queue is empty")


def test_an_agent_on_a_stopped_step_exits_at_once(storage: StorageClients, tmp_path: Path) -> None:
    step = make_step(storage, tmp_path, SCRIPT, files=2)
    request_stop(storage, step.ref, "error threshold exceeded")
    _assert_a_late_agent_exits_at_once(storage, step, "the step was stopped (error threshold exceeded)")


def test_an_agent_on_a_finalized_step_exits_at_once(storage: StorageClients, tmp_path: Path) -> None:
    step = make_step(storage, tmp_path, SCRIPT, files=1)
    assert step.run_agent(workers=1) == 0
    phases.finalize_step(
        storage, StepFinalize(step=step.ref, status=StepStatus.COMPLETED)
    )  # deletes the queue
    _assert_a_late_agent_exits_at_once(storage, step, "the step's work queue no longer exists")


def test_an_agent_on_a_settled_step_exits_at_once_despite_a_stray_message(
    storage: StorageClients, tmp_path: Path
) -> None:
    step = make_step(storage, tmp_path, SCRIPT, files=2)
    assert step.run_agent(workers=1) == 0
    stray = WorkMessage(run_id=step.ref.run_id, job=step.ref.job, start=0, end=2)  # a dispatch sent twice
    storage.queue_client(work_queue_name(step.ref.run_id, step.ref.job)).send_message(stray.model_dump_json())
    _assert_a_late_agent_exits_at_once(storage, step, "all 2 mini-batches are already settled")


def test_a_queue_emptied_while_the_node_prepared_starts_no_worker(
    storage: StorageClients, tmp_path: Path
) -> None:
    step = make_step(storage, tmp_path, SCRIPT, files=2)
    agent = step.agent(workers=2)  # the node is prepared (code, inputs, manifest)
    storage.queue_client(work_queue_name(step.ref.run_id, step.ref.job)).clear_messages()  # taken by others
    assert agent.run() == EXIT_OK
    main = step.log("sys/node/0/_main.txt")
    assert "nothing left to do on this node; no worker was started" in main
    assert "process000 started" not in main
