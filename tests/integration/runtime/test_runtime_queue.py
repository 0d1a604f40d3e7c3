"""The work queue: duplicate deliveries, dead agents, several agents, leases, malformed messages, stop."""

from __future__ import annotations

from pathlib import Path

from shared.orchestration.contracts import StepFinalize, StepStatus
from shared.plan import DataType, RetrySettings
from shared.runtime import phases
from shared.runtime.messages import WorkMessage
from shared.runtime.records import read_progress, read_records, update_step_document
from shared.storage import StorageClients, work_queue_name
from tests.helpers import wait_until
from tests.integration.runtime.stepkit import kill_group, make_step

ECHO_SCRIPT = """
import os, time
from pathlib import Path

def run(mini_batch):
    delay = float(os.environ.get("DELAY", "0"))
    if delay:
        time.sleep(delay)
    started = os.environ.get("STARTED")
    if started:
        with open(started, "a") as handle:
            handle.write(Path(mini_batch[0]).name + "\\n")
    return [Path(p).read_text().strip() for p in mini_batch]
"""


def _queue(storage: StorageClients, step):  # type: ignore[no-untyped-def]
    return storage.queue_client(work_queue_name(step.ref.run_id, step.ref.job))


def test_a_duplicated_message_never_double_counts_or_duplicates_rows(
    storage: StorageClients, tmp_path: Path
) -> None:
    step = make_step(storage, tmp_path, ECHO_SCRIPT, files=4, append_row=DataType.URI_FILE)
    # The same mini-batches delivered twice (a dispatch retried after a timeout, say).
    for start in range(4):
        duplicate = WorkMessage(run_id=step.ref.run_id, job=step.ref.job, start=start, end=start + 1)
        _queue(storage, step).send_message(duplicate.model_dump_json())
    assert step.run_agent(workers=2) == 0
    progress = read_progress(storage, step.ref)
    assert progress.settled_mini_batches == 4
    assert progress.succeeded_mini_batches == 4
    assert progress.items_succeeded == 4
    phases.finalize_step(storage, StepFinalize(step=step.ref, status=StepStatus.COMPLETED))
    assert step.output_bytes() == b"item 0\nitem 1\nitem 2\nitem 3\n"


def test_malformed_messages_are_reported_and_removed(storage: StorageClients, tmp_path: Path) -> None:
    step = make_step(storage, tmp_path, ECHO_SCRIPT, files=2)
    queue = _queue(storage, step)
    queue.send_message("this is not json")
    queue.send_message(WorkMessage(run_id="another-run", job="score", start=0, end=1).model_dump_json())
    queue.send_message(WorkMessage(run_id=step.ref.run_id, job="score", start=1, end=5).model_dump_json())
    assert step.run_agent(workers=1) == 0
    main = step.log("sys/node/0/_main.txt")
    assert "is not a valid work message" in main
    assert "is for another-run/score, not" in main
    assert "names mini-batches 1..4, but the step has 2" in main
    assert read_progress(storage, step.ref).succeeded_mini_batches == 2
    assert list(queue.peek_messages()) == []


def test_a_killed_agents_mini_batches_come_back_and_finish_once(
    storage: StorageClients, tmp_path: Path
) -> None:
    started = tmp_path / "started.txt"
    # timeout 4 s + overhead 2 s: a dead agent's messages reappear after 6 s (wide enough that a
    # 0.4 s run() never times out on a loaded machine, so every mini-batch succeeds).
    step = make_step(
        storage,
        tmp_path,
        ECHO_SCRIPT,
        files=6,
        append_row=DataType.URI_FILE,
        environment_variables={"DELAY": "0.4", "STARTED": str(started)},
        retry=RetrySettings(max_retries=2, timeout=4),
        task_overhead_timeout=2,
    )
    first = step.spawn_agent(node_id=0, workers=1)
    wait_until(lambda: started.exists() and started.read_text().count("\n") >= 2, timeout=60, message="work")
    kill_group(first)  # SIGKILL: no clean-up at all
    survivor = step.spawn_agent(node_id=1, workers=2)
    assert survivor.wait(timeout=120) == 0, survivor.stderr.read() if survivor.stderr else ""
    progress = read_progress(storage, step.ref)
    assert progress.succeeded_mini_batches == 6
    assert progress.failed_mini_batches == 0
    records = read_records(storage, step.ref)
    assert {r.node_id for r in records} <= {0, 1}
    assert any(r.node_id == 1 for r in records)
    phases.finalize_step(storage, StepFinalize(step=step.ref, status=StepStatus.COMPLETED))
    assert step.output_bytes().decode() == "".join(f"item {i}\n" for i in range(6))


def test_two_agents_share_the_work_and_long_runs_keep_their_lease(
    storage: StorageClients, tmp_path: Path
) -> None:
    # Visibility timeout 3 s; each run() takes 0.5 s and one message holds 4 mini-batches, so an agent
    # holds a message for ~2-4 s: without lease renewal the other agent would get it too.
    step = make_step(
        storage,
        tmp_path,
        ECHO_SCRIPT,
        files=8,
        append_row=DataType.URI_FILE,
        environment_variables={"DELAY": "0.5"},
        retry=RetrySettings(max_retries=0, timeout=2),
        task_overhead_timeout=1,
        dispatch=False,
    )
    update_step_document(storage, step.ref, mini_batches_per_message=4)
    phases.dispatch_step(storage, step.ref)
    agents = [step.run_agent_in_thread(node_id=n, workers=1) for n in (0, 1)]
    for agent, thread in agents:
        thread.join(timeout=120)
        assert not thread.is_alive()
        assert agent.exit_code == 0
    records = read_records(storage, step.ref)
    assert [r.attempts for r in records] == [1] * 8
    assert {r.node_id for r in records} == {0, 1}
    for node in (0, 1):
        assert "already settled by another agent" not in step.log(f"sys/node/{node}/_main.txt")
    progress = read_progress(storage, step.ref)
    assert progress.attempts == 8
    assert progress.agents_alive == 0


def test_a_stop_request_stops_the_agents_within_seconds(storage: StorageClients, tmp_path: Path) -> None:
    step = make_step(storage, tmp_path, ECHO_SCRIPT, files=20, environment_variables={"DELAY": "0.3"})
    agent, thread = step.run_agent_in_thread(workers=1)
    wait_until(lambda: read_progress(storage, step.ref).settled_mini_batches >= 1, timeout=60, message="work")

    class NoAgents:
        def stop(self, run_id: str, job: str) -> None:
            # What the executor would kill (Batch terminates the job's tasks at once) has had its
            # chance to exit on its own, its last log lines uploaded.
            self.stopped = (run_id, job)
            self.alive_at_stop = read_progress(storage, step.ref).agents_alive
            self.log_at_stop = step.log("sys/node/0/_main.txt")

    executor = NoAgents()
    phases.stop_step(storage, executor, step.ref, reason="error threshold exceeded")  # type: ignore[arg-type]
    thread.join(timeout=30)
    assert not thread.is_alive()  # stopped, not run to the end: fewer than 20 settled (below)
    assert executor.stopped == (step.ref.run_id, step.ref.job)
    assert executor.alive_at_stop == 0
    assert "agent exits with code" in executor.log_at_stop
    assert "stop requested: error threshold exceeded" in agent.exit_reason
    assert read_progress(storage, step.ref).settled_mini_batches < 20
    assert list(_queue(storage, step).peek_messages()) == []  # the queue was drained
