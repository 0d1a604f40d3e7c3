"""What a step's orchestration decides after each read of its tallies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.orchestration.contracts import StepProgress, StepRef, StepStatus
from shared.orchestration.decisions import (
    AGENT_START_GRACE_SECONDS,
    COMMAND_TIMEOUT_GRACE_SECONDS,
    StepDecision,
    decide,
)
from shared.plan import CommandSettings, JobPlan, JobType, ParallelSettings

STEP = StepRef(run_id="r", job="j")
START = datetime(2030, 1, 1, tzinfo=UTC)


def _command(timeout: int | None = None) -> JobPlan:
    return JobPlan(name="j", type=JobType.COMMAND, command=CommandSettings(command="true", timeout=timeout))


def _parallel(**settings: object) -> JobPlan:
    parallel = ParallelSettings(input_data="d", entry_script="s.py", **settings)  # type: ignore[arg-type]
    return JobPlan(name="j", type=JobType.PARALLEL, parallel=parallel)


def _decide(job: JobPlan, progress: StepProgress, seconds: float, *, cancel: bool = False) -> StepDecision:
    """The decision ``seconds`` after the step started at START."""
    return decide(
        job, progress, started_at=START, now=START + timedelta(seconds=seconds), cancel_requested=cancel
    )


@pytest.mark.parametrize(("exit_code", "status"), [(0, StepStatus.COMPLETED), (2, StepStatus.FAILED)])
def test_a_command_ends_with_its_exit_code(exit_code: int, status: StepStatus) -> None:
    ended = _decide(_command(), StepProgress(step=STEP, command_exit_code=exit_code), 5)
    assert (ended.status, ended.reason) == (status, f"The command exited with code {exit_code}.")


def test_a_running_command_is_waited_for() -> None:
    running = StepProgress(step=STEP, agents_alive=1)
    assert not _decide(_command(), running, 3600).done


def test_a_command_whose_agent_vanished_fails_after_the_start_grace() -> None:
    gone = StepProgress(step=STEP, agents_alive=0)
    assert not _decide(_command(), gone, 10).done
    late = _decide(_command(), gone, AGENT_START_GRACE_SECONDS + 1)
    assert late.status is StepStatus.FAILED
    assert "reported no exit code" in late.reason


def test_a_command_past_its_timeout_and_grace_fails() -> None:
    running = StepProgress(step=STEP, agents_alive=1)
    job = _command(timeout=60)
    assert not _decide(job, running, 60 + COMMAND_TIMEOUT_GRACE_SECONDS).done
    over = _decide(job, running, 61 + COMMAND_TIMEOUT_GRACE_SECONDS)
    assert over.status is StepStatus.FAILED
    assert "limits.timeout (60 seconds)" in over.reason


def test_cancel_beats_a_finished_step() -> None:
    finished = StepProgress(step=STEP, command_exit_code=0)
    decision = _decide(_command(), finished, 1, cancel=True)
    assert decision.status is StepStatus.CANCELED


def test_parallel_steps_follow_the_policy() -> None:
    progress = StepProgress(
        step=STEP, total_mini_batches=4, dispatched=True, succeeded_mini_batches=2, failed_mini_batches=2
    )
    failed = _decide(_parallel(mini_batch_error_threshold=1), progress, 1)
    assert failed.status is StepStatus.FAILED
    assert failed.reason.startswith("Exceeded mini-batch error threshold")
    done = progress.model_copy(update={"succeeded_mini_batches": 4, "failed_mini_batches": 0})
    assert _decide(_parallel(), done, 1).status is StepStatus.COMPLETED
    waiting = progress.model_copy(update={"failed_mini_batches": 0})
    assert not _decide(_parallel(), waiting, 1).done


def test_a_slow_first_mini_batch_is_a_warning_not_a_failure() -> None:
    idle = StepProgress(step=STEP, total_mini_batches=4, dispatched=True)
    decision = _decide(_parallel(first_task_creation_timeout=60), idle, 61)
    assert not decision.done
    assert "No mini-batch was picked up in 60 seconds" in decision.warning
