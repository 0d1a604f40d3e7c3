"""Thresholds, retries and timeouts of a parallel step, as pure functions.

Everything here is deterministic: no I/O, no clock (the caller passes ``now``), no settings reads. The
orchestrator calls :func:`evaluate` after every poll of a step's tallies; the agent calls
:func:`max_tries`, :func:`visibility_timeout` and :func:`count_items`.

Decisions where Azure ML is ambiguous (reference CONFLICT notes), made once here:

- ``retry_settings.max_retries`` counts *retries after the first try*: ``max_retries=2`` means a
  mini-batch runs at most 3 times (v2 docs wording; v1's ``run_max_try=3`` is the same budget).
- Thresholds are exceeded only when the count is *strictly greater* than the threshold; ``-1`` disables
  a count threshold, ``allowed_failed_percent=100`` disables the percentage.
- ``allowed_failed_percent`` is checked only once every mini-batch has been scheduled (dispatched).
- ``progress_update_timeout`` unset means ``3 × (retry_settings.timeout + task_overhead_timeout)``.
  "Progress" is a mini-batch being scheduled, or an attempt ending (settled or failed).
- ``first_task_creation_timeout``: in Fanout mini-batches are created before any agent starts, so the
  timeout measures the time until the *first mini-batch is picked up* by an agent. As in Azure ML it
  only produces a warning (node provisioning on Batch can legitimately take long); the progress timeout
  is what fails a step that never starts.
- A step with ``append_row_to`` whose run() calls returned no item at all fails with Azure ML's
  "There is no succeeded mini batch item returned from run()" message.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from shared.models import FrozenModel
from shared.orchestration.contracts import StepProgress
from shared.plan import ParallelSettings, RetrySettings

#: Azure ML's message when append_row is requested and no item succeeded (NoResultToAppendError).
NO_RESULT_MESSAGE = (
    "There is no succeeded mini batch item returned from run(). Please check the run() method of the "
    "entry script: it should return a list or a pandas DataFrame with one element per input item. "
    "You can check logs/readme.txt for the layout of logs."
)

UNLIMITED = -1


class Decision(StrEnum):
    """What the orchestrator does with a step after a poll."""

    CONTINUE = "continue"
    COMPLETE = "complete"
    FAIL = "fail"


class Verdict(FrozenModel):
    """The outcome of :func:`evaluate`: a decision and the sentence that explains it."""

    decision: Decision = Field(description="continue, complete or fail.")
    reason: str = Field(default="", description="Why, in words for job_result.txt (empty to continue).")
    warning: str = Field(default="", description="A warning to publish while continuing (e.g. slow start).")


def max_tries(retry: RetrySettings) -> int:
    """How many times a mini-batch may run in total: the first try plus ``max_retries`` retries."""
    return 1 + retry.max_retries


def visibility_timeout(settings: ParallelSettings) -> int:
    """Seconds a received work message stays invisible: one run() plus the overhead to prepare it.

    The agent renews the lease while a run() is healthy, so a long step never loses its messages; a dead
    agent's messages reappear after this long.
    """
    return settings.retry.timeout + settings.task_overhead_timeout


def progress_update_timeout(settings: ParallelSettings) -> int:
    """Seconds without progress after which a step fails (the setting, or its computed default)."""
    if settings.progress_update_timeout is not None:
        return settings.progress_update_timeout
    return 3 * (settings.retry.timeout + settings.task_overhead_timeout)


def count_items(total: int, returned: int) -> tuple[int, int]:
    """Accounting of one run() call: ``(succeeded, failed)`` items.

    ``succeeded = min(returned, total)``; the rest of the mini-batch failed. Returning more than the input
    is capped (Azure ML logs a warning and goes on).
    """
    succeeded = min(max(returned, 0), max(total, 0))
    return succeeded, max(total, 0) - succeeded


def exceeds(count: int | float, threshold: int | float) -> bool:
    """True when ``count`` is strictly above ``threshold``; a threshold of -1 is never exceeded."""
    return threshold != UNLIMITED and count > threshold


def failed_percent(progress: StepProgress) -> float:
    """Failed mini-batches as a percentage of all mini-batches of the step (0 for an empty step)."""
    if progress.total_mini_batches <= 0:
        return 0.0
    return 100.0 * progress.failed_mini_batches / progress.total_mini_batches


def threshold_crossed(settings: ParallelSettings, progress: StepProgress) -> str | None:
    """The reason a failure threshold is exceeded, or None. Checked in a fixed order."""
    if exceeds(progress.items_failed, settings.error_threshold):
        return (
            f"Exceeded error threshold: {progress.items_failed} items failed, more than error_threshold="
            f"{settings.error_threshold}."
        )
    if exceeds(progress.failed_mini_batches, settings.mini_batch_error_threshold):
        return (
            f"Exceeded mini-batch error threshold: {progress.failed_mini_batches} mini-batches failed, more "
            f"than mini_batch_error_threshold={settings.mini_batch_error_threshold}."
        )
    if (
        progress.dispatched
        and settings.allowed_failed_percent < 100
        and failed_percent(progress) > settings.allowed_failed_percent
    ):
        return (
            f"Exceeded allowed failed percent: {failed_percent(progress):.1f}% of "
            f"{progress.total_mini_batches} mini-batches failed, more than allowed_failed_percent="
            f"{settings.allowed_failed_percent:g}."
        )
    return None


def evaluate(
    settings: ParallelSettings, progress: StepProgress, *, started_at: datetime, now: datetime
) -> Verdict:
    """Decide what happens to a running parallel step.

    Steps, in order:

    1. a threshold exceeded → fail (early stop: agents stop taking work);
    2. the agent of every node gave up (``init()`` failed ``3 × workers`` times there, or the node could
       not be prepared) → fail with the first agent's reason; one node giving up is not enough (Azure
       ML: a job goes on while other nodes remain);
    3. every mini-batch settled → complete, unless ``append_row_to`` is set and no item succeeded;
    4. no progress for ``progress_update_timeout`` → fail ("No progress update in N seconds.");
    5. otherwise continue, with a warning when no mini-batch was picked up within
       ``first_task_creation_timeout``.

    Args:
        settings: the job's parallel settings.
        progress: the step's tallies (``read_progress``).
        started_at: when the step started (the orchestrator's clock, for determinism).
        now: the orchestrator's current time.
    """
    crossed = threshold_crossed(settings, progress)
    if crossed:
        return Verdict(decision=Decision.FAIL, reason=crossed)
    if not progress.done and progress.agents_failed >= settings.instance_count:
        return Verdict(
            decision=Decision.FAIL,
            reason=f"The agents of all {settings.instance_count} nodes gave up. "
            f"{progress.agent_error}".strip(),
        )
    if progress.done:
        if settings.append_row_to and progress.items_succeeded == 0:
            return Verdict(decision=Decision.FAIL, reason=NO_RESULT_MESSAGE)
        return Verdict(decision=Decision.COMPLETE, reason=_summary(progress))
    timeout = progress_update_timeout(settings)
    last = max(t for t in (started_at, progress.last_progress_at) if t is not None)
    idle = (now - last).total_seconds()
    if idle > timeout:
        return Verdict(
            decision=Decision.FAIL,
            reason=f"No progress update in {timeout} seconds. {_summary(progress)}",
        )
    warning = ""
    waited = (now - started_at).total_seconds()
    if progress.first_activity_at is None and waited > settings.first_task_creation_timeout:
        warning = (
            f"No mini-batch was picked up in {settings.first_task_creation_timeout} seconds: agents may be "
            "waiting for compute nodes. Cancel the run if this is unexpected."
        )
    return Verdict(decision=Decision.CONTINUE, warning=warning)


def _summary(progress: StepProgress) -> str:
    return (
        f"{progress.settled_mini_batches} of {progress.total_mini_batches} mini-batches processed: "
        f"{progress.succeeded_mini_batches} succeeded, {progress.failed_mini_batches} failed; "
        f"{progress.items_succeeded} items succeeded, {progress.items_failed} failed."
    )
