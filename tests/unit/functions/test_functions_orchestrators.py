"""The same orchestrators under Durable Functions 1.x: driven through DF's own replay executor with the
Function App's adapter (functions/orchestrators.py), they take the same decisions as on durabletask."""

from __future__ import annotations

import json
from typing import Any

import azure.durable_functions as df
import pytest

from functions import orchestrators
from shared.orchestration import names
from shared.orchestration.contracts import RunStatus, StepStatus
from shared.orchestration.models import PipelineInput, PipelineResult, PollSettings
from shared.orchestration.pipeline import run_pipeline
from shared.orchestration.step import run_step
from shared.plan import RunPlan
from tests.unit.functions.df_driver import ActivityFailure, DurableFunctionsDriver, Shared, handles_for
from tests.unit.orchestration.fakes import FakeActivities, FakeStep, parallel_job
from tests.unit.orchestration.scripted import World, drive

DF_ORCHESTRATORS = {
    names.RUN_PIPELINE: lambda context: orchestrators.run(run_pipeline, context),
    names.RUN_STEP: lambda context: orchestrators.run(run_step, context),
}


def _plan(run_id: str) -> RunPlan:
    jobs = [
        parallel_job("a", mini_batch_error_threshold=0),
        parallel_job("b"),
        parallel_job("c", "b"),
        parallel_job("d", "a"),
    ]
    return RunPlan(run_id=run_id, jobs=jobs, continue_on_step_failure=True)


def _fakes() -> FakeActivities:
    fakes = FakeActivities()
    fakes.steps["a"] = FakeStep(mini_batches=3, settle_per_read=1, fail_per_read=1)
    fakes.steps["b"] = FakeStep(mini_batches=7, settle_per_read=1)
    fakes.steps["c"] = FakeStep(reuse_from="r0")
    return fakes


def _respond(fakes: FakeActivities, calls: list[tuple[str, str]]) -> Any:
    bodies = fakes.bodies()

    def respond(name: str, payload: Any) -> Any:
        calls.append((name, json.dumps(payload, sort_keys=True)))
        return bodies[name](None, payload)  # type: ignore[arg-type]

    return respond


def _run_on_df(
    payload: dict[str, Any], fakes: FakeActivities, calls: list[tuple[str, str]]
) -> tuple[Any, Shared]:
    shared = Shared(respond=_respond(fakes, calls), handles=handles_for(DF_ORCHESTRATORS))
    run_id = payload["plan"]["run_id"]
    return DurableFunctionsDriver(shared, names.RUN_PIPELINE, run_id, payload).run(), shared


def test_the_function_app_adapter_takes_the_same_decisions_as_the_engine_agnostic_run() -> None:
    payload = PipelineInput(plan=_plan("r1"), poll=PollSettings(polls_per_generation=3)).model_dump(
        mode="json"
    )
    df_calls: list[tuple[str, str]] = []
    df_output, shared = _run_on_df(payload, _fakes(), df_calls)

    scripted_calls: list[tuple[str, str]] = []
    scripted_output = drive(
        World(
            respond=_respond(_fakes(), scripted_calls),
            orchestrators={names.RUN_PIPELINE: run_pipeline, names.RUN_STEP: run_step},
        ),
        names.RUN_PIPELINE,
        payload,
        "r1",
    )
    assert df_output == scripted_output
    assert sorted(df_calls) == sorted(scripted_calls)
    result = PipelineResult.model_validate(df_output)
    assert {name: job.status for name, job in result.jobs.items()} == {
        "a": StepStatus.FAILED,
        "b": StepStatus.COMPLETED,
        "c": StepStatus.REUSED,
        "d": StepStatus.SKIPPED,
    }
    assert result.status is RunStatus.FAILED
    assert shared.episodes > 20  # every wake-up was a full replay by DF's executor


def test_replaying_a_finished_history_gives_the_same_actions_and_output() -> None:
    payload = PipelineInput(
        plan=RunPlan(run_id="r2", jobs=[parallel_job("a"), parallel_job("b", "a")])
    ).model_dump(mode="json")
    shared = Shared(respond=_respond(FakeActivities(), []), handles=handles_for(DF_ORCHESTRATORS))
    driver = DurableFunctionsDriver(shared, names.RUN_PIPELINE, "r2", payload)
    output = driver.run()
    finished = driver.last_state
    assert finished["isDone"]

    replayed = driver.replay()  # the whole history again, as after a host restart
    assert replayed == finished
    assert replayed["output"] == output
    assert PipelineResult.model_validate(output).status is RunStatus.COMPLETED


def test_activity_failures_are_retried_then_reported_as_task_failures() -> None:
    attempts: list[str] = []
    bodies = FakeActivities().bodies()

    def respond(name: str, payload: Any) -> Any:
        if name == names.FINALIZE_STEP:
            attempts.append(name)
            raise ActivityFailure("ConnectionError: storage unreachable")
        return bodies[name](None, payload)  # type: ignore[arg-type]

    plan = RunPlan(run_id="r3", jobs=[parallel_job("a")])
    payload = PipelineInput(plan=plan).model_dump(mode="json")
    payload["retry"]["max_attempts"] = 3
    shared = Shared(respond=respond, handles=handles_for(DF_ORCHESTRATORS))
    output = DurableFunctionsDriver(shared, names.RUN_PIPELINE, "r3", payload).run()
    result = PipelineResult.model_validate(output)
    assert len(attempts) == 3
    assert result.jobs["a"].status is StepStatus.FAILED
    assert "ConnectionError: storage unreachable" in result.jobs["a"].reason
    assert result.status is RunStatus.FAILED


def test_a_retry_that_succeeds_hides_the_failure() -> None:
    failures = {"left": 1}
    bodies = FakeActivities().bodies()

    def respond(name: str, payload: Any) -> Any:
        if name == names.READ_PROGRESS and failures["left"]:
            failures["left"] -= 1
            raise ActivityFailure("TimeoutError: table read timed out")
        return bodies[name](None, payload)  # type: ignore[arg-type]

    payload = PipelineInput(plan=RunPlan(run_id="r4", jobs=[parallel_job("a")])).model_dump(mode="json")
    shared = Shared(respond=respond, handles=handles_for(DF_ORCHESTRATORS))
    output = DurableFunctionsDriver(shared, names.RUN_PIPELINE, "r4", payload).run()
    assert PipelineResult.model_validate(output).jobs["a"].status is StepStatus.COMPLETED


def test_a_cancel_event_reaches_the_step_through_df() -> None:
    fakes = FakeActivities(steps={"a": FakeStep(never_settles=True)})
    payload = PipelineInput(plan=RunPlan(run_id="r5", jobs=[parallel_job("a")])).model_dump(mode="json")
    shared = Shared(respond=_respond(fakes, []), handles=handles_for(DF_ORCHESTRATORS))
    shared.events = {names.step_instance_id("r5", "a"): [names.CANCEL_EVENT]}
    output = DurableFunctionsDriver(shared, names.RUN_PIPELINE, "r5", payload).run()
    result = PipelineResult.model_validate(output)
    assert result.jobs["a"].status is StepStatus.CANCELED
    assert fakes.called(names.STOP_AGENTS, "a") == 1


def test_the_blueprint_registers_both_orchestrators_under_their_names() -> None:
    app = df.DFApp()
    app.register_functions(orchestrators.bp)
    registered = {function.get_function_name(): function for function in app.get_functions()}
    assert set(registered) == {names.RUN_PIPELINE, names.RUN_STEP}
    for name, function in registered.items():
        trigger = function.get_trigger().get_dict_repr()
        assert trigger["type"] == "orchestrationTrigger"
        assert trigger["orchestration"] == name


@pytest.mark.parametrize("message", ["Reason \n Details", "plain"])
def test_failure_text_is_one_line(message: str) -> None:
    assert "\n" not in orchestrators._failure_message(Exception(message))
