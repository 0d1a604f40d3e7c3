"""Thresholds with real agents: early stop, unlimited thresholds, completion events and notices."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from shared.orchestration.contracts import StepFinalize, StepStatus
from shared.plan import RetrySettings
from shared.policy import Decision, Verdict, evaluate
from shared.runtime import phases
from shared.runtime.messages import CompletionEvent
from shared.runtime.records import apply_completion_event, read_progress
from shared.storage import StorageClients
from tests.helpers import wait_until
from tests.integration.runtime.stepkit import Step, make_step

FAILING_SCRIPT = """
import os, time
from pathlib import Path

def run(mini_batch):
    time.sleep(float(os.environ.get("DELAY", "0")))
    index = int(Path(mini_batch[0]).read_text().split()[1])
    if index % int(os.environ.get("FAIL_EVERY", "1")) == 0:
        raise ValueError(f"item {index} is bad")
    return mini_batch
"""


def _failing_step(storage: StorageClients, tmp_path: Path, *, files: int, **settings: Any) -> Step:
    """FAILING_SCRIPT over ``files`` one-file mini-batches, each tried once."""
    return make_step(
        storage,
        tmp_path,
        FAILING_SCRIPT,
        files=files,
        retry=RetrySettings(max_retries=0, timeout=10),
        **settings,
    )


class NoAgents:
    """The executor of agents run by the test itself (stop_step only needs stop())."""

    def stop(self, run_id: str, job: str) -> None:
        self.stopped = (run_id, job)


def _watch(step: Step, *, timeout: float = 60) -> Verdict:
    """What the orchestrator does: poll the tallies, evaluate the policy, stop the step on failure."""
    settings = step.plan.job(step.ref.job).parallel
    assert settings is not None
    started = datetime.now(UTC)

    def decided() -> Verdict | None:
        progress = read_progress(step.clients, step.ref)
        verdict = evaluate(settings, progress, started_at=started, now=datetime.now(UTC))
        return verdict if verdict.decision is not Decision.CONTINUE else None

    verdict = wait_until(decided, timeout=timeout, interval=0.2, message="a decision")
    if verdict.decision is Decision.FAIL:
        phases.stop_step(step.clients, NoAgents(), step.ref, reason=verdict.reason)  # type: ignore[arg-type]
    return verdict


def test_crossing_error_threshold_stops_the_job_early(storage: StorageClients, tmp_path: Path) -> None:
    step = _failing_step(
        storage, tmp_path, files=40, environment_variables={"DELAY": "0.1"}, error_threshold=5
    )
    agent, thread = step.run_agent_in_thread(workers=2)
    verdict = _watch(step)
    thread.join(timeout=60)
    assert not thread.is_alive()
    # §9.13: 6 failed items exceed error_threshold=5; the remaining mini-batches are not processed.
    assert verdict.decision is Decision.FAIL
    assert verdict.reason.startswith("Exceeded error threshold")
    progress = read_progress(storage, step.ref)
    assert progress.items_failed > 5
    assert progress.settled_mini_batches < 40
    assert agent.exit_reason.startswith("stop requested: Exceeded error threshold")
    result = phases.finalize_step(
        storage, StepFinalize(step=step.ref, status=StepStatus.FAILED, reason=verdict.reason)
    )
    assert result.status is StepStatus.FAILED
    job_result = step.log("job_result.txt")
    assert "Result: Failed" in job_result
    assert "Exceeded error threshold" in job_result
    assert "logs/user/error/<node>/<process>.txt" in job_result


def test_unlimited_thresholds_complete_even_when_everything_fails(
    storage: StorageClients, tmp_path: Path
) -> None:
    step = _failing_step(storage, tmp_path, files=3)
    assert step.run_agent(workers=1) == 0
    verdict = _watch(step)
    assert verdict.decision is Decision.COMPLETE
    assert "3 failed" in verdict.reason


def _events_of(storage: StorageClients, step: Step) -> list[CompletionEvent]:
    queue = storage.events_queue()
    found = []
    for message in queue.receive_messages(messages_per_page=32, visibility_timeout=1):
        try:
            event = CompletionEvent.model_validate_json(message.content)
        except ValidationError:
            continue  # other messages share the queue (e.g. command-job notices)
        if event.run_id == step.ref.run_id:
            found.append(event)
            queue.delete_message(message)
    return found


def test_completion_events_wake_the_orchestrator_and_never_double_count(
    storage: StorageClients, tmp_path: Path
) -> None:
    step = _failing_step(
        storage, tmp_path, files=6, environment_variables={"FAIL_EVERY": "4"}, mini_batch_error_threshold=1
    )
    assert step.run_agent(workers=2) == 0
    events = wait_until(lambda: _events_of(storage, step), timeout=30, message="completion events")
    assert sum(e.settled for e in events) == 6
    assert sum(e.failed for e in events) == 2  # items 0 and 4
    assert any(e.exiting for e in events)
    before = read_progress(storage, step.ref)
    notices = [apply_completion_event(storage, e) for e in events + events]  # every event twice
    assert all(n is not None and n.done for n in notices)
    after = read_progress(storage, step.ref)
    assert after.model_dump(exclude={"agents_alive"}) == before.model_dump(exclude={"agents_alive"})
    assert (after.succeeded_mini_batches, after.failed_mini_batches) == (4, 2)


def test_a_threshold_notice_before_the_step_is_done(storage: StorageClients, tmp_path: Path) -> None:
    step = _failing_step(storage, tmp_path, files=3, mini_batch_error_threshold=0)
    assert step.run_agent(workers=1) == 0
    partial = CompletionEvent(run_id=step.ref.run_id, job=step.ref.job, node_id=0, agent_id="x", failed=1)
    # Pretend the step is larger than what ran, so it is not done: only the threshold can wake it.
    from shared.runtime.records import update_step_document

    update_step_document(storage, step.ref, total_mini_batches=10)
    notice = apply_completion_event(storage, partial)
    assert notice is not None
    assert notice.threshold_crossed
    assert not notice.done
    assert notice.reason.startswith("Exceeded mini-batch error threshold")
    quiet = CompletionEvent(run_id=step.ref.run_id, job=step.ref.job, node_id=0, agent_id="x", settled=1)
    assert apply_completion_event(storage, quiet) is None
