"""shared.policy: thresholds, retries and timeouts as pure functions (reference §4, §9.13-15, §9.24)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.orchestration.contracts import StepProgress, StepRef
from shared.plan import ParallelSettings, RetrySettings
from shared.policy import (
    NO_RESULT_MESSAGE,
    Decision,
    count_items,
    evaluate,
    exceeds,
    failed_percent,
    max_tries,
    progress_update_timeout,
    threshold_crossed,
    visibility_timeout,
)

STEP = StepRef(run_id="r", job="j")
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def settings(**fields: object) -> ParallelSettings:
    return ParallelSettings(input_data="data", entry_script="score.py", **fields)  # type: ignore[arg-type]


def progress(**fields: object) -> StepProgress:
    values: dict[str, object] = {"total_mini_batches": 10, "dispatched": True, "last_progress_at": T0}
    values.update(fields)
    return StepProgress(step=STEP, **values)  # type: ignore[arg-type]


def test_max_retries_counts_retries_after_the_first_try() -> None:
    assert max_tries(RetrySettings(max_retries=2)) == 3
    assert max_tries(RetrySettings(max_retries=0)) == 1


def test_visibility_and_progress_timeouts_follow_the_settings() -> None:
    plain = settings(retry=RetrySettings(timeout=60), task_overhead_timeout=600)
    assert visibility_timeout(plain) == 660
    assert progress_update_timeout(plain) == 3 * 660
    assert progress_update_timeout(settings(progress_update_timeout=42)) == 42


@pytest.mark.parametrize(
    ("total", "returned", "expected"), [(5, 5, (5, 0)), (5, 3, (3, 2)), (5, 9, (5, 0)), (5, 0, (0, 5))]
)
def test_count_items_caps_at_the_input(total: int, returned: int, expected: tuple[int, int]) -> None:
    assert count_items(total, returned) == expected


@given(st.integers(0, 10_000), st.integers(0, 10_000))
def test_count_items_always_adds_up(total: int, returned: int) -> None:
    succeeded, failed = count_items(total, returned)
    assert succeeded + failed == total
    assert 0 <= succeeded <= min(total, returned)


def test_thresholds_are_strictly_greater_than_and_minus_one_is_unlimited() -> None:
    assert not exceeds(5, 5)
    assert exceeds(6, 5)
    assert not exceeds(10**9, -1)
    assert exceeds(1, 0)


def test_error_threshold_counts_failed_items() -> None:
    # §9.13: error_threshold=5 and 6 failed items stop the job; -1 never does.
    assert threshold_crossed(settings(error_threshold=5), progress(items_failed=5)) is None
    reason = threshold_crossed(settings(error_threshold=5), progress(items_failed=6))
    assert reason is not None
    assert reason.startswith("Exceeded error threshold: 6 items failed")
    assert threshold_crossed(settings(error_threshold=-1), progress(items_failed=10**6)) is None


def test_mini_batch_error_threshold_counts_failed_mini_batches() -> None:
    # §9.14: 3 failed mini-batches exceed a threshold of 2.
    assert threshold_crossed(settings(mini_batch_error_threshold=2), progress(failed_mini_batches=2)) is None
    reason = threshold_crossed(settings(mini_batch_error_threshold=2), progress(failed_mini_batches=3))
    assert reason is not None
    assert "3 mini-batches failed" in reason


def test_allowed_failed_percent_waits_until_everything_is_scheduled() -> None:
    # §9.15: 4 of 10 failed = 40% > 30%, but only once all mini-batches are scheduled.
    strict = settings(allowed_failed_percent=30)
    assert threshold_crossed(strict, progress(failed_mini_batches=4, dispatched=False)) is None
    reason = threshold_crossed(strict, progress(failed_mini_batches=4))
    assert reason is not None
    assert "40.0% of 10 mini-batches failed" in reason
    assert threshold_crossed(strict, progress(failed_mini_batches=3)) is None
    assert threshold_crossed(settings(), progress(failed_mini_batches=10)) is None  # 100 = ignore
    assert failed_percent(progress(total_mini_batches=0)) == 0.0


def test_evaluate_fails_on_a_threshold_before_anything_else() -> None:
    verdict = evaluate(
        settings(error_threshold=0),
        progress(items_failed=1, succeeded_mini_batches=10),
        started_at=T0,
        now=T0,
    )
    assert verdict.decision is Decision.FAIL
    assert verdict.reason.startswith("Exceeded error threshold")


def test_evaluate_completes_when_every_mini_batch_settled() -> None:
    verdict = evaluate(
        settings(), progress(succeeded_mini_batches=9, failed_mini_batches=1), started_at=T0, now=T0
    )
    assert verdict.decision is Decision.COMPLETE
    assert "10 of 10 mini-batches processed" in verdict.reason
    running = evaluate(settings(), progress(succeeded_mini_batches=9), started_at=T0, now=T0)
    assert running.decision is Decision.CONTINUE
    undispatched = evaluate(
        settings(), progress(dispatched=False, total_mini_batches=0), started_at=T0, now=T0
    )
    assert undispatched.decision is Decision.CONTINUE


def test_append_row_with_no_succeeded_item_fails() -> None:
    # §9.18
    done = progress(succeeded_mini_batches=10, items_failed=10)
    verdict = evaluate(settings(append_row_to="out"), done, started_at=T0, now=T0)
    assert verdict.decision is Decision.FAIL
    assert verdict.reason == NO_RESULT_MESSAGE
    assert evaluate(settings(), done, started_at=T0, now=T0).decision is Decision.COMPLETE


def test_no_progress_for_the_timeout_fails_the_step() -> None:
    # §9.24
    quiet = settings(progress_update_timeout=100)
    stalled = progress(succeeded_mini_batches=3, last_progress_at=T0)
    assert (
        evaluate(quiet, stalled, started_at=T0, now=T0 + timedelta(seconds=100)).decision is Decision.CONTINUE
    )
    verdict = evaluate(quiet, stalled, started_at=T0, now=T0 + timedelta(seconds=101))
    assert verdict.decision is Decision.FAIL
    assert verdict.reason.startswith("No progress update in 100 seconds.")
    never = progress(last_progress_at=None)
    assert evaluate(quiet, never, started_at=T0, now=T0 + timedelta(seconds=101)).decision is Decision.FAIL


def test_a_slow_first_pick_up_only_warns() -> None:
    slow = settings(first_task_creation_timeout=60, progress_update_timeout=10_000)
    idle = progress(first_activity_at=None)
    verdict = evaluate(slow, idle, started_at=T0, now=T0 + timedelta(seconds=61))
    assert verdict.decision is Decision.CONTINUE
    assert "No mini-batch was picked up in 60 seconds" in verdict.warning
    started = progress(first_activity_at=T0)
    assert evaluate(slow, started, started_at=T0, now=T0 + timedelta(seconds=61)).warning == ""


def test_evaluate_is_deterministic() -> None:
    args = (settings(error_threshold=3), progress(items_failed=2, succeeded_mini_batches=4))
    first = evaluate(*args, started_at=T0, now=T0 + timedelta(seconds=5))
    again = evaluate(*args, started_at=T0, now=T0 + timedelta(seconds=5))
    assert first == again


def test_every_node_giving_up_fails_the_step_but_one_node_does_not() -> None:
    two_nodes = settings(instance_count=2)
    one_down = progress(agents_failed=1, agent_error="node 0: init() failed 6 times")
    assert evaluate(two_nodes, one_down, started_at=T0, now=T0).decision is Decision.CONTINUE
    all_down = progress(agents_failed=2, agent_error="node 0: init() failed 6 times")
    verdict = evaluate(two_nodes, all_down, started_at=T0, now=T0)
    assert verdict.decision is Decision.FAIL
    assert verdict.reason == "The agents of all 2 nodes gave up. node 0: init() failed 6 times"
