"""run_pipeline and run_step on the real durabletask engine (every wake-up replays), with scripted
activities: ordering, concurrency, failure policy, reuse, cancellation, retries, command exit codes."""

from __future__ import annotations

from typing import Any

from shared.host.engine import LocalEngine
from shared.orchestration import names
from shared.orchestration.client import RuntimeStatus
from shared.orchestration.contracts import RunStatus, StepStatus
from shared.orchestration.models import PipelineResult
from shared.plan import CommandSettings, JobPlan, JobType
from tests.helpers import wait_until
from tests.integration.orchestration.conftest import pipeline
from tests.unit.orchestration.fakes import FakeActivities, FakeStep, parallel_job


def _start(engine: LocalEngine, payload: Any, run_id: str) -> None:
    assert engine.client.schedule(names.RUN_PIPELINE, names.instance_id_for(run_id), payload)


def _finish(engine: LocalEngine, run_id: str, timeout: float = 60) -> PipelineResult:
    status = engine.client.wait(names.instance_id_for(run_id), timeout=timeout)
    assert status is not None
    assert status.runtime_status is RuntimeStatus.COMPLETED, status.failure
    return PipelineResult.model_validate(status.output)


def _run(engine: LocalEngine, payload: Any, run_id: str) -> PipelineResult:
    _start(engine, payload, run_id)
    return _finish(engine, run_id)


def _statuses(result: PipelineResult) -> dict[str, StepStatus]:
    return {name: job.status for name, job in result.jobs.items()}


def test_jobs_run_in_order_and_outputs_flow_downstream(
    engine: LocalEngine, fake_activities: FakeActivities
) -> None:
    payload = pipeline("p-chain", parallel_job("a"), parallel_job("b", "a")).model_dump(mode="json")
    result = _run(engine, payload, "p-chain")
    assert result.status is RunStatus.COMPLETED
    assert _statuses(result) == {"a": StepStatus.COMPLETED, "b": StepStatus.COMPLETED}
    prepare_b = next(
        p for n, p in fake_activities.calls if n == names.PREPARE_STEP and p["step"]["job"] == "b"
    )
    assert prepare_b["upstream_outputs"] == {
        "a": {"out": {"kind": "blob", "container": "runs", "path": "p-chain/a/outputs/out"}}
    }
    finalize_a = [i for i, (n, p) in enumerate(fake_activities.calls) if n == names.FINALIZE_STEP]
    start_b = [
        i
        for i, (n, p) in enumerate(fake_activities.calls)
        if n == names.PREPARE_STEP and p["step"]["job"] == "b"
    ]
    assert finalize_a[0] < start_b[0]
    assert [s.status for s in fake_activities.statuses] == [RunStatus.RUNNING, RunStatus.COMPLETED]
    assert fake_activities.called(names.STOP_AGENTS) == 2


def test_independent_jobs_run_at_the_same_time(engine: LocalEngine, fake_activities: FakeActivities) -> None:
    # a makes no progress until b's agents started: run one after the other, a would never end.
    fake_activities.step("a").hold_until = lambda: fake_activities.called(names.START_AGENTS, "b") > 0
    fake_activities.step("b").hold_until = lambda: fake_activities.called(names.START_AGENTS, "a") > 0
    payload = pipeline("p-fan", parallel_job("a"), parallel_job("b"), parallel_job("c", "a", "b"))
    result = _run(engine, payload.model_dump(mode="json"), "p-fan")
    assert _statuses(result) == {
        "a": StepStatus.COMPLETED,
        "b": StepStatus.COMPLETED,
        "c": StepStatus.COMPLETED,
    }
    assert set(_upstream_of(fake_activities, "c")) == {"a", "b"}


def test_a_failure_stops_new_jobs_and_skips_dependents(
    engine: LocalEngine, fake_activities: FakeActivities
) -> None:
    fake_activities.steps["a"] = FakeStep(mini_batches=4, settle_per_read=1, fail_per_read=1)
    # b is still running when a fails: it goes on to the end (its work is kept).
    fake_activities.step("b").hold_until = lambda: fake_activities.called(names.FINALIZE_STEP, "a") > 0
    payload = pipeline(
        "p-fail",
        parallel_job("a", mini_batch_error_threshold=0),
        parallel_job("b"),
        parallel_job("c", "b"),
        parallel_job("d", "a"),
    )
    result = _run(engine, payload.model_dump(mode="json"), "p-fail")
    assert _statuses(result) == {
        "a": StepStatus.FAILED,
        "b": StepStatus.COMPLETED,
        "c": StepStatus.CANCELED,
        "d": StepStatus.SKIPPED,
    }
    assert result.status is RunStatus.FAILED
    assert "Exceeded mini-batch error threshold" in result.jobs["a"].reason
    assert result.reason.startswith("Job 'a' failed")
    assert "continue_on_step_failure is false" in result.jobs["c"].reason
    assert "Upstream job 'a' ended Failed" in result.jobs["d"].reason
    assert {r.step.job for r in fake_activities.skipped} == {"c", "d"}
    assert fake_activities.called(names.PREPARE_STEP, "c") == 0
    assert fake_activities.statuses[-1].status is RunStatus.FAILED


def test_continue_on_step_failure_runs_independent_branches(
    engine: LocalEngine, fake_activities: FakeActivities
) -> None:
    fake_activities.steps["a"] = FakeStep(mini_batches=2, settle_per_read=1, fail_per_read=1)
    payload = pipeline(
        "p-continue",
        parallel_job("a", mini_batch_error_threshold=0),
        parallel_job("b"),
        parallel_job("c", "b"),
        parallel_job("d", "a"),
        parallel_job("e", "d"),
        continue_on_step_failure=True,
    )
    result = _run(engine, payload.model_dump(mode="json"), "p-continue")
    assert _statuses(result) == {
        "a": StepStatus.FAILED,
        "b": StepStatus.COMPLETED,
        "c": StepStatus.COMPLETED,
        "d": StepStatus.SKIPPED,
        "e": StepStatus.SKIPPED,
    }
    assert "Upstream job 'd' ended Skipped" in result.jobs["e"].reason
    assert result.status is RunStatus.FAILED


def test_prepare_failure_fails_the_job_without_agents(
    engine: LocalEngine, fake_activities: FakeActivities
) -> None:
    fake_activities.steps["a"] = FakeStep(prepare_error="input 'data' of job 'a' binds to nothing")
    result = _run(engine, pipeline("p-prep", parallel_job("a")).model_dump(mode="json"), "p-prep")
    assert result.jobs["a"].status is StepStatus.FAILED
    assert result.jobs["a"].reason == "input 'data' of job 'a' binds to nothing"
    assert fake_activities.called(names.START_AGENTS) == 0
    assert fake_activities.called(names.STOP_AGENTS) == 0
    assert fake_activities.called(names.FINALIZE_STEP) == 1


def test_a_reused_job_starts_no_agent_and_hands_on_its_old_outputs(
    engine: LocalEngine, fake_activities: FakeActivities
) -> None:
    fake_activities.steps["a"] = FakeStep(reuse_from="older-run")
    payload = pipeline("p-reuse", parallel_job("a"), parallel_job("b", "a")).model_dump(mode="json")
    result = _run(engine, payload, "p-reuse")
    assert _statuses(result) == {"a": StepStatus.REUSED, "b": StepStatus.COMPLETED}
    assert result.status is RunStatus.COMPLETED
    assert result.jobs["a"].reused_from == "older-run"
    assert fake_activities.called(names.START_AGENTS, "a") == 0
    assert fake_activities.called(names.PLAN_STEP, "a") == 0
    assert _upstream_of(fake_activities, "b")["a"]["out"]["path"] == "older-run/a/outputs/out"


def test_cancel_stops_running_jobs_and_cancels_the_rest(
    engine: LocalEngine, fake_activities: FakeActivities
) -> None:
    fake_activities.steps["a"] = FakeStep(never_settles=True)
    fake_activities.on_cancel = lambda run_id, jobs: [
        engine.client.raise_event(names.step_instance_id(run_id, job), names.CANCEL_EVENT, None)
        for job in jobs
    ]
    _start(
        engine,
        pipeline("p-cancel", parallel_job("a"), parallel_job("b", "a")).model_dump(mode="json"),
        "p-cancel",
    )
    wait_until(lambda: fake_activities.called(names.READ_PROGRESS, "a") >= 2)
    engine.client.raise_event(names.instance_id_for("p-cancel"), names.CANCEL_EVENT, None)
    result = _finish(engine, "p-cancel")
    assert result.status is RunStatus.CANCELED
    assert _statuses(result) == {"a": StepStatus.CANCELED, "b": StepStatus.CANCELED}
    assert fake_activities.canceled == ["a"]
    assert fake_activities.called(names.STOP_AGENTS, "a") == 1
    finalize_a = next(p for n, p in fake_activities.calls if n == names.FINALIZE_STEP)
    assert finalize_a["status"] == "Canceled"
    assert fake_activities.statuses[-1].status is RunStatus.CANCELED


def test_transient_activity_failures_are_retried(
    engine: LocalEngine, fake_activities: FakeActivities
) -> None:
    fake_activities.transient_failures = {names.READ_PROGRESS: 2, names.PREPARE_STEP: 1}
    result = _run(engine, pipeline("p-retry", parallel_job("a")).model_dump(mode="json"), "p-retry")
    assert result.jobs["a"].status is StepStatus.COMPLETED
    assert fake_activities.called(names.PREPARE_STEP) == 2
    assert fake_activities.called(names.READ_PROGRESS) == fake_activities.reads["a"] + 2


def test_an_activity_failing_past_its_retries_fails_the_job_not_the_run_orchestration(
    engine: LocalEngine, fake_activities: FakeActivities
) -> None:
    fake_activities.transient_failures = {names.FINALIZE_STEP: 10}
    result = _run(engine, pipeline("p-broken", parallel_job("a")).model_dump(mode="json"), "p-broken")
    assert result.jobs["a"].status is StepStatus.FAILED
    assert "transient failure of finalize_step" in result.jobs["a"].reason
    assert fake_activities.called(names.FINALIZE_STEP) == 3  # FAST_RETRY: 3 attempts
    assert result.status is RunStatus.FAILED


def test_command_jobs_end_with_their_exit_code(engine: LocalEngine, fake_activities: FakeActivities) -> None:
    fake_activities.steps["ok"] = FakeStep(command_exit_code=0)
    fake_activities.steps["bad"] = FakeStep(command_exit_code=3)
    jobs = [
        JobPlan(name=name, type=JobType.COMMAND, command=CommandSettings(command="true"))
        for name in ("ok", "bad")
    ]
    payload = pipeline("p-cmd", *jobs, continue_on_step_failure=True).model_dump(mode="json")
    result = _run(engine, payload, "p-cmd")
    assert _statuses(result) == {"ok": StepStatus.COMPLETED, "bad": StepStatus.FAILED}
    assert result.jobs["bad"].reason == "The command exited with code 3."
    assert fake_activities.called(names.PLAN_STEP) == 0
    start = next(p for n, p in fake_activities.calls if n == names.START_AGENTS)
    assert start["instance_count"] == 1


def test_the_settled_event_wakes_a_step_before_its_timer(
    engine: LocalEngine, fake_activities: FakeActivities
) -> None:
    payload = pipeline("p-wake", parallel_job("a"))
    slow = payload.model_copy(update={"poll": payload.poll.model_copy(update={"initial_seconds": 120.0})})
    fake_activities.steps["a"] = FakeStep(mini_batches=1, settle_per_read=1)
    _start(engine, slow.model_dump(mode="json"), "p-wake")
    step = names.step_instance_id("p-wake", "a")
    wait_until(lambda: fake_activities.called(names.START_AGENTS, "a") == 1)
    engine.client.raise_event(step, names.STEP_SETTLED_EVENT, {"reason": "all settled"})
    result = _finish(engine, "p-wake", timeout=60)  # the timer alone would take 120 s
    assert result.jobs["a"].status is StepStatus.COMPLETED
    assert fake_activities.called(names.READ_PROGRESS, "a") == 1


def _upstream_of(fake_activities: FakeActivities, job: str) -> dict[str, Any]:
    prepare = next(p for n, p in fake_activities.calls if n == names.PREPARE_STEP and p["step"]["job"] == job)
    upstream: dict[str, Any] = prepare["upstream_outputs"]
    return upstream
