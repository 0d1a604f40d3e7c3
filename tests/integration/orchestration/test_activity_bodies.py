"""The activity bodies on Azurite: input resolution, expected failures as records, finalize of a job
that never got going, skipped jobs, cancel requests — and start_run's idempotence."""

from __future__ import annotations

import uuid
from typing import Any

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shared.compute.base import AgentState, AgentStatus, AgentTask
from shared.errors import ComputeError
from shared.host.engine import local_engine
from shared.orchestration import activities, names
from shared.orchestration.activities import cancel_requested
from shared.orchestration.client import cancel_run, start_run
from shared.orchestration.contracts import RunStatus, StepFinalize, StepRef, StepResult, StepStart, StepStatus
from shared.orchestration.dependencies import ActivityDependencies
from shared.orchestration.events import OrchestrationNotice
from shared.orchestration.models import CancelSteps, Outcome, SkippedSteps, StepPrepared
from shared.orchestration.run_index import get_run
from shared.plan import (
    AssetRef,
    BlobData,
    DataInput,
    DataType,
    JobOutputRef,
    JobPlan,
    JobType,
    LiteralInput,
    LiteralType,
    LocalData,
    OutputPlan,
    ParallelSettings,
    RunPlan,
)
from shared.registry import register_asset
from shared.runs import load_step_definition, load_step_result, save_plan
from shared.runtime.logs import read_text
from shared.storage import StorageClients
from tests.integration.orchestration.conftest import NoExecutor, pipeline
from tests.integration.orchestration.events_queue import take_events
from tests.unit.orchestration.fakes import FakeActivities, parallel_job


class RefusingExecutor(NoExecutor):
    def start(self, task: AgentTask) -> None:
        raise ComputeError(f"pool for {task.compute!r} does not exist")

    def status(self, run_id: str, job: str) -> list[AgentStatus]:
        return []


def _deps(storage: StorageClients) -> ActivityDependencies:
    return ActivityDependencies(clients=storage, executor=RefusingExecutor())


def _run_id() -> str:
    return f"act-{uuid.uuid4().hex[:8]}"


def _save(storage: StorageClients, run_id: str, *jobs: JobPlan) -> RunPlan:
    plan = RunPlan(run_id=run_id, jobs=list(jobs))
    save_plan(storage, plan)
    return plan


def _data(source: Any, type: DataType = DataType.URI_FOLDER) -> DataInput:
    return DataInput(type=type, source=source)


def _job(name: str, **inputs: Any) -> JobPlan:
    parallel = ParallelSettings(input_data=next(iter(inputs), "x"), entry_script="s.py")
    output = OutputPlan(location=BlobData(container="runs", path=f"x/{name}/outputs/out"))
    return JobPlan(
        name=name, type=JobType.PARALLEL, parallel=parallel, inputs=inputs, outputs={"out": output}
    )


def test_prepare_resolves_every_kind_of_input_and_writes_step_json(storage: StorageClients) -> None:
    run_id = _run_id()
    asset = f"model-{run_id}"
    register_asset(storage, asset, BlobData(container="data", path="models/m1"))
    job = _job(
        "score",
        data=_data(BlobData(container="data", path="in/files")),
        model=_data(AssetRef(name=asset)),
        upstream=_data(JobOutputRef(job="train", output="model")),
        n=LiteralInput(type=LiteralType.INTEGER, value=3),
    )
    _save(storage, run_id, job)
    upstream = {"train": {"model": BlobData(container="runs", path=f"{run_id}/train/outputs/model")}}
    start = StepStart(step=StepRef(run_id=run_id, job="score"), upstream_outputs=upstream)
    outcome = Outcome.model_validate(activities.prepare_step(_deps(storage), start.model_dump(mode="json")))
    assert outcome.error is None
    prepared = StepPrepared.model_validate(outcome.value)
    assert prepared.fingerprint.startswith("fp1-")
    assert prepared.reused_from is None
    definition = load_step_definition(storage, start.step)
    assert definition.fingerprint == prepared.fingerprint
    assert definition.inputs["model"].asset == f"{asset}:1"  # type: ignore[union-attr]
    assert definition.inputs["upstream"].location == upstream["train"]["model"]  # type: ignore[union-attr]
    assert definition.inputs["n"] == LiteralInput(type=LiteralType.INTEGER, value=3)
    assert set(definition.outputs) == {"out"}


def test_unresolvable_inputs_come_back_as_failures_not_exceptions(storage: StorageClients) -> None:
    run_id = _run_id()
    _save(
        storage,
        run_id,
        _job("local", data=_data(LocalData(path="/home/me/data"))),
        _job("orphan", data=_data(JobOutputRef(job="train", output="model"))),
        _job("asset", data=_data(AssetRef(name="act-no-such-asset", version="4"))),
    )
    errors = {}
    for job in ("local", "orphan", "asset"):
        start = StepStart(step=StepRef(run_id=run_id, job=job))
        outcome = Outcome.model_validate(
            activities.prepare_step(_deps(storage), start.model_dump(mode="json"))
        )
        assert outcome.error is not None
        errors[job] = outcome.error
    assert errors["local"].kind == "DataError"
    assert "/home/me/data, which was never uploaded" in errors["local"].message
    assert (
        "binds to output 'model' of job 'train', which that job did not produce" in errors["orphan"].message
    )
    assert errors["asset"].kind == "RegistryError"
    assert "act-no-such-asset" in errors["asset"].message


def test_an_executor_that_refuses_is_a_failure_record(storage: StorageClients) -> None:
    task = AgentTask(run_id=_run_id(), job="j", compute="gpu-cluster")
    outcome = Outcome.model_validate(activities.start_agents(_deps(storage), task.model_dump(mode="json")))
    assert outcome.error is not None
    assert outcome.error.kind == "ComputeError"
    assert "pool for 'gpu-cluster' does not exist" in outcome.error.message


def test_finalize_of_a_job_that_never_prepared_records_the_reason(storage: StorageClients) -> None:
    run_id = _run_id()
    _save(storage, run_id, _job("j"))
    order = StepFinalize(step=StepRef(run_id=run_id, job="j"), status=StepStatus.FAILED, reason="bad input")
    result = StepResult.model_validate(
        activities.finalize_step(_deps(storage), order.model_dump(mode="json"))
    )
    assert (result.status, result.reason) == (StepStatus.FAILED, "bad input")
    assert load_step_result(storage, order.step) == result
    assert read_text(storage, order.step, "job_result.txt") == "Result: Failed\nReason: bad input\n"


def test_skipped_jobs_get_their_result_and_job_result(storage: StorageClients) -> None:
    run_id = _run_id()
    skipped = StepResult(
        step=StepRef(run_id=run_id, job="d"), status=StepStatus.SKIPPED, reason="upstream failed"
    )
    activities.skip_steps(_deps(storage), SkippedSteps(results=[skipped]).model_dump(mode="json"))
    stored = load_step_result(storage, skipped.step)
    assert stored.status is StepStatus.SKIPPED
    assert stored.logs == f"{run_id}/d/logs"
    assert read_text(storage, skipped.step, "job_result.txt").startswith(
        "Result: Skipped\nReason: upstream failed"
    )


def test_cancel_steps_marks_the_run_and_notifies_each_job(storage: StorageClients) -> None:
    from shared.orchestration import run_index

    run_id = _run_id()
    plan = _save(storage, run_id, _job("a"), _job("b"))
    run_index.add_run(storage, run_index.entry_for(plan))
    assert not cancel_requested(storage, run_id)
    activities.cancel_steps(
        _deps(storage), CancelSteps(run_id=run_id, jobs=["a", "b"]).model_dump(mode="json")
    )
    assert cancel_requested(storage, run_id)
    assert get_run(storage, run_id).status is RunStatus.CANCEL_REQUESTED
    notices = [
        OrchestrationNotice.model_validate_json(m.content)
        for m in storage.events_queue().peek_messages(max_messages=32)
        if run_id in m.content
    ]
    assert sorted(n.job for n in notices) == ["a", "b"]
    assert {n.kind.value for n in notices} == {"cancel"}
    poll = activities.read_progress(_deps(storage), StepRef(run_id=run_id, job="a").model_dump(mode="json"))
    assert poll["cancel_requested"] is True
    take_events(storage, run_id)  # leave the shared events queue as it was


def test_start_run_is_idempotent_per_run_id(storage: StorageClients) -> None:
    fakes = FakeActivities()
    run_id = _run_id()
    payload = pipeline(run_id, parallel_job("a"))
    with local_engine(storage, NoExecutor(), activity_overrides=fakes.bodies(), pump_events=False) as engine:
        assert start_run(storage, engine.client, payload.plan, orchestration_input=payload) == run_id
        assert start_run(storage, engine.client, payload.plan, orchestration_input=payload) == run_id
        status = engine.client.wait(run_id, timeout=60)
        assert status is not None
        assert not cancel_run(engine.client, run_id)  # finished: nothing to cancel
        assert not cancel_run(engine.client, "act-never-started")
    assert fakes.called(names.SET_RUN_STATUS) == 2  # one orchestration: Running, then Completed
    assert get_run(storage, run_id).status is RunStatus.QUEUED  # the fakes did not write the index


def test_activities_continue_the_runs_trace(storage: StorageClients, spans: InMemorySpanExporter) -> None:
    from shared.orchestration.activities import ACTIVITIES, traced
    from shared.orchestration.models import RunStatusUpdate
    from shared.telemetry import inject_trace_context, start_span

    run_id = _run_id()
    with start_span("fanout.cli.submit") as root:
        carrier = inject_trace_context()
    trace_id = format(root.get_span_context().trace_id, "032x")
    save_plan(storage, RunPlan(run_id=run_id, jobs=[_job("j")], trace=carrier))

    seen: list[dict[str, str]] = []
    probe = traced("probe", lambda deps, payload: seen.append(inject_trace_context()))
    probe(_deps(storage), {"step": {"run_id": run_id, "job": "j"}})
    assert seen[0]["traceparent"].split("-")[1] == trace_id  # e.g. what dispatch puts into work messages

    update = RunStatusUpdate(run_id=run_id, status=RunStatus.RUNNING)
    ACTIVITIES[names.SET_RUN_STATUS](_deps(storage), update.model_dump(mode="json"))
    by_name = {span.name: span for span in spans.get_finished_spans()}
    activity = by_name["fanout.activity.set_run_status"]
    assert format(activity.context.trace_id, "032x") == trace_id
    assert activity.attributes["fanout.run_id"] == run_id


def test_agents_are_not_started_for_a_run_being_canceled(storage: StorageClients) -> None:
    run_id = _run_id()
    activities.cancel_steps(_deps(storage), CancelSteps(run_id=run_id, jobs=[]).model_dump(mode="json"))
    task = AgentTask(run_id=run_id, job="j")
    # RefusingExecutor would raise ComputeError if it were asked to start anything.
    outcome = Outcome.model_validate(activities.start_agents(_deps(storage), task.model_dump(mode="json")))
    assert outcome.error is not None
    assert outcome.error.kind == "Canceled"


class FailedAgentsExecutor(NoExecutor):
    def status(self, run_id: str, job: str) -> list[AgentStatus]:
        return [
            AgentStatus(node_id=0, state=AgentState.SUCCEEDED, exit_code=0),
            AgentStatus(
                node_id=1,
                state=AgentState.FAILED,
                exit_code=1,
                detail="the job preparation task (environment build) failed: pip could not install torch",
            ),
        ]


def test_a_failed_step_says_what_its_agents_went_through(storage: StorageClients) -> None:
    run_id = _run_id()
    _save(storage, run_id, _job("j"))
    deps = ActivityDependencies(clients=storage, executor=FailedAgentsExecutor())
    order = StepFinalize(step=StepRef(run_id=run_id, job="j"), status=StepStatus.FAILED, reason="no progress")
    result = StepResult.model_validate(activities.finalize_step(deps, order.model_dump(mode="json")))
    assert result.reason.splitlines() == [
        "no progress",
        "Agents: 1 failed, 1 succeeded.",
        "  node 1: failed (exit code 1): the job preparation task (environment build) failed: "
        "pip could not install torch",
    ]
    assert "pip could not install torch" in read_text(storage, order.step, "job_result.txt")

    completed = StepFinalize(step=StepRef(run_id=run_id, job="j"), status=StepStatus.CANCELED, reason="x")
    untouched = StepResult.model_validate(activities.finalize_step(deps, completed.model_dump(mode="json")))
    assert untouched.reason == "x"
