"""The orchestrators are deterministic: replaying recorded activity results gives the same decisions."""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any

import pytest

from shared.orchestration import names
from shared.orchestration.context import TaskFailed
from shared.orchestration.contracts import RunStatus, StepStatus
from shared.orchestration.models import PipelineInput, PipelineResult, PollSettings
from shared.orchestration.pipeline import run_pipeline
from shared.orchestration.step import run_step
from shared.plan import RunPlan
from tests.unit.orchestration.fakes import FakeActivities, FakeStep, parallel_job
from tests.unit.orchestration.scripted import World, drive

ORCHESTRATORS = {names.RUN_PIPELINE: run_pipeline, names.RUN_STEP: run_step}


def _input(poll: PollSettings | None = None, *, continue_on_step_failure: bool = True) -> dict[str, Any]:
    plan = RunPlan(
        run_id="r1",
        jobs=[
            parallel_job("a", mini_batch_error_threshold=0),
            parallel_job("b"),
            parallel_job("c", "b"),
            parallel_job("d", "a"),
        ],
        continue_on_step_failure=continue_on_step_failure,
    )
    return PipelineInput(plan=plan, poll=poll or PollSettings(polls_per_generation=3)).model_dump(mode="json")


def _fakes() -> FakeActivities:
    fakes = FakeActivities()
    fakes.steps["a"] = FakeStep(mini_batches=3, settle_per_read=1, fail_per_read=1)
    fakes.steps["b"] = FakeStep(mini_batches=10, settle_per_read=1)
    fakes.steps["c"] = FakeStep(reuse_from="r0")
    return fakes


def _recording(fakes: FakeActivities, tape: list[tuple[str, Any, Any]]) -> Any:
    bodies = fakes.bodies()

    def respond(name: str, payload: Any) -> Any:
        result = bodies[name](None, payload)  # type: ignore[arg-type]
        tape.append((name, payload, result))
        return result

    return respond


def _replaying(tape: list[tuple[str, Any, Any]]) -> Any:
    remaining = list(tape)

    def respond(name: str, payload: Any) -> Any:
        recorded_name, recorded_payload, result = remaining.pop(0)
        assert (name, payload) == (recorded_name, recorded_payload), "the replay asked for something else"
        return result

    return respond


def test_replaying_recorded_results_repeats_every_decision() -> None:
    tape: list[tuple[str, Any, Any]] = []
    first = World(respond=_recording(_fakes(), tape), orchestrators=ORCHESTRATORS)
    output = drive(first, names.RUN_PIPELINE, _input(), "r1")

    second = World(respond=_replaying(tape), orchestrators=ORCHESTRATORS)
    replayed = drive(second, names.RUN_PIPELINE, _input(), "r1")

    assert replayed == output
    assert second.actions == first.actions
    result = PipelineResult.model_validate(output)
    assert {name: job.status for name, job in result.jobs.items()} == {
        "a": StepStatus.FAILED,
        "b": StepStatus.COMPLETED,
        "c": StepStatus.REUSED,
        "d": StepStatus.SKIPPED,
    }
    assert result.status is RunStatus.FAILED
    # b needed 10 reads with 3 per generation: it continued as new three times.
    assert sum(1 for action in first.actions if action[0] == "r1:b" and action[1] == "continue_as_new") == 3


def test_a_replay_that_diverges_is_detected() -> None:
    tape: list[tuple[str, Any, Any]] = []
    drive(
        World(respond=_recording(_fakes(), tape), orchestrators=ORCHESTRATORS),
        names.RUN_PIPELINE,
        _input(),
        "r1",
    )
    other_input = _input(continue_on_step_failure=False)  # a different decision after a fails
    with pytest.raises(AssertionError, match="replay asked for something else"):
        drive(
            World(respond=_replaying(tape), orchestrators=ORCHESTRATORS),
            names.RUN_PIPELINE,
            other_input,
            "r1",
        )


def test_the_wait_grows_to_the_maximum_and_time_comes_from_the_context() -> None:
    fakes = FakeActivities(steps={"a": FakeStep(mini_batches=8, settle_per_read=1)})
    world = World(respond=_recording(fakes, []), orchestrators=ORCHESTRATORS)
    poll = PollSettings(initial_seconds=2, max_seconds=5, factor=2, polls_per_generation=100)
    plan = RunPlan(run_id="r2", jobs=[parallel_job("a")])
    drive(world, names.RUN_PIPELINE, PipelineInput(plan=plan, poll=poll).model_dump(mode="json"), "r2")
    timers = [action[2] for action in world.actions if action[0] == "r2:a" and action[1] == "timer"]
    moments = [datetime.fromisoformat(t) for t in timers]
    waits = [(later - earlier).total_seconds() for earlier, later in itertools.pairwise(moments)]
    assert waits[:4] == [4.0, 5.0, 5.0, 5.0]  # 2 → 4 → 5 (capped); the first wait (2 s) starts the list


def test_a_failing_sub_orchestration_becomes_a_failed_job() -> None:
    fakes = FakeActivities()
    bodies = fakes.bodies()

    def respond(name: str, payload: Any) -> Any:
        if name == names.FINALIZE_STEP:
            raise TaskFailed("ConnectionError: storage unreachable")
        return bodies[name](None, payload)  # type: ignore[arg-type]

    world = World(respond=respond, orchestrators=ORCHESTRATORS)
    plan = RunPlan(run_id="r3", jobs=[parallel_job("a"), parallel_job("b", "a")])
    output = drive(world, names.RUN_PIPELINE, PipelineInput(plan=plan).model_dump(mode="json"), "r3")
    result = PipelineResult.model_validate(output)
    assert result.jobs["a"].status is StepStatus.FAILED
    assert result.jobs["a"].reason == "The job's orchestration failed: ConnectionError: storage unreachable"
    assert result.jobs["b"].status is StepStatus.SKIPPED
