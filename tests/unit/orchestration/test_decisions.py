"""What a step's orchestration decides after each read of its tallies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.orchestration.contracts import StepProgress, StepRef, StepStatus
from shared.orchestration.decisions import AGENT_START_GRACE_SECONDS, COMMAND_TIMEOUT_GRACE_SECONDS, decide
from shared.plan import CommandSettings, JobPlan, JobType, ParallelSettings

STEP = StepRef(run_id="r", job="j")
START = datetime(2030, 1, 1, tzinfo=UTC)


def _command(timeout: int | None = None) -> JobPlan:
    return JobPlan(name="j", type=JobType.COMMAND, command=CommandSettings(command="true", timeout=timeout))


def _parallel(**settings: object) -> JobPlan:
    parallel = ParallelSettings(input_data="d", entry_script="s.py", **settings)  # type: ignore[arg-type]
    return JobPlan(name="j", type=JobType.PARALLEL, parallel=parallel)


def _at(seconds: float) -> datetime:
    return START + timedelta(seconds=seconds)


def test_a_command_ends_with_its_exit_code() -> None:
    done = decide(
        _command(),
        StepProgress(step=STEP, command_exit_code=0),
        started_at=START,
        now=_at(5),
        cancel_requested=False,
    )
    assert (done.status, done.reason) == (StepStatus.COMPLETED, "The command exited with code 0.")
    failed = decide(
        _command(),
        StepProgress(step=STEP, command_exit_code=2),
        started_at=START,
        now=_at(5),
        cancel_requested=False,
    )
    assert (failed.status, failed.reason) == (StepStatus.FAILED, "The command exited with code 2.")


def test_a_running_command_is_waited_for() -> None:
    running = StepProgress(step=STEP, agents_alive=1)
    assert not decide(_command(), running, started_at=START, now=_at(3600), cancel_requested=False).done


def test_a_command_whose_agent_vanished_fails_after_the_start_grace() -> None:
    gone = StepProgress(step=STEP, agents_alive=0)
    assert not decide(_command(), gone, started_at=START, now=_at(10), cancel_requested=False).done
    late = decide(
        _command(), gone, started_at=START, now=_at(AGENT_START_GRACE_SECONDS + 1), cancel_requested=False
    )
    assert late.status is StepStatus.FAILED
    assert "reported no exit code" in late.reason


def test_a_command_past_its_timeout_and_grace_fails() -> None:
    running = StepProgress(step=STEP, agents_alive=1)
    job = _command(timeout=60)
    assert not decide(
        job, running, started_at=START, now=_at(60 + COMMAND_TIMEOUT_GRACE_SECONDS), cancel_requested=False
    ).done
    over = decide(
        job, running, started_at=START, now=_at(61 + COMMAND_TIMEOUT_GRACE_SECONDS), cancel_requested=False
    )
    assert over.status is StepStatus.FAILED
    assert "limits.timeout (60 seconds)" in over.reason


def test_cancel_beats_a_finished_step() -> None:
    finished = StepProgress(step=STEP, command_exit_code=0)
    decision = decide(_command(), finished, started_at=START, now=_at(1), cancel_requested=True)
    assert decision.status is StepStatus.CANCELED


def test_parallel_steps_follow_the_policy() -> None:
    progress = StepProgress(
        step=STEP, total_mini_batches=4, dispatched=True, succeeded_mini_batches=2, failed_mini_batches=2
    )
    failed = decide(
        _parallel(mini_batch_error_threshold=1),
        progress,
        started_at=START,
        now=_at(1),
        cancel_requested=False,
    )
    assert failed.status is StepStatus.FAILED
    assert failed.reason.startswith("Exceeded mini-batch error threshold")
    done = progress.model_copy(update={"succeeded_mini_batches": 4, "failed_mini_batches": 0})
    assert (
        decide(_parallel(), done, started_at=START, now=_at(1), cancel_requested=False).status
        is StepStatus.COMPLETED
    )
    waiting = progress.model_copy(update={"failed_mini_batches": 0})
    assert not decide(_parallel(), waiting, started_at=START, now=_at(1), cancel_requested=False).done


def test_a_slow_first_mini_batch_is_a_warning_not_a_failure() -> None:
    idle = StepProgress(step=STEP, total_mini_batches=4, dispatched=True)
    decision = decide(
        _parallel(first_task_creation_timeout=60), idle, started_at=START, now=_at(61), cancel_requested=False
    )
    assert not decision.done
    assert "No mini-batch was picked up in 60 seconds" in decision.warning
