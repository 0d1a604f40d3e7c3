"""What a running step's orchestration does after each read of its tallies — pure functions.

Parallel jobs are judged by :func:`shared.policy.evaluate` (thresholds, completion, progress timeout).
Command jobs are judged here: the command's exit code decides; an agent that vanished without an exit
code fails the job; ``limits.timeout`` is enforced on the node, and here again (with a grace period)
in case the node itself is gone. A cancel request beats everything.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from shared.orchestration.contracts import StepProgress, StepStatus
from shared.plan import JobPlan, JobType
from shared.policy import Decision, evaluate

#: Seconds an agent may take to appear (process start, Batch task scheduling) before "no agent" fails.
AGENT_START_GRACE_SECONDS = 600
#: Seconds on top of ``limits.timeout`` before the orchestrator gives up on a node that did not report.
COMMAND_TIMEOUT_GRACE_SECONDS = 120

CANCELED_REASON = "The run was canceled."


@dataclass(frozen=True)
class StepDecision:
    """``status`` None means keep waiting; ``warning`` is published in the step's status."""

    status: StepStatus | None
    reason: str = ""
    warning: str = ""

    @property
    def done(self) -> bool:
        """The step is over: the orchestrator stops waiting and finalizes it with ``status``."""
        return self.status is not None


def decide(
    job: JobPlan,
    progress: StepProgress,
    *,
    started_at: datetime,
    now: datetime,
    cancel_requested: bool,
) -> StepDecision:
    """The step's fate after a read of its tallies at orchestration time ``now``."""
    if cancel_requested:
        return StepDecision(StepStatus.CANCELED, CANCELED_REASON)
    if job.type is JobType.COMMAND:
        return _decide_command(job, progress, started_at=started_at, now=now)
    if job.parallel is None:
        return StepDecision(StepStatus.FAILED, f"job {job.name!r} has no parallel settings")
    verdict = evaluate(job.parallel, progress, started_at=started_at, now=now)
    if verdict.decision is Decision.COMPLETE:
        return StepDecision(StepStatus.COMPLETED, verdict.reason)
    if verdict.decision is Decision.FAIL:
        return StepDecision(StepStatus.FAILED, verdict.reason)
    return StepDecision(None, warning=verdict.warning)


def _decide_command(
    job: JobPlan, progress: StepProgress, *, started_at: datetime, now: datetime
) -> StepDecision:
    code = progress.command_exit_code
    if code is not None:
        if code == 0:
            return StepDecision(StepStatus.COMPLETED, "The command exited with code 0.")
        return StepDecision(StepStatus.FAILED, f"The command exited with code {code}.")
    elapsed = (now - started_at).total_seconds()
    if progress.agents_alive == 0 and elapsed > AGENT_START_GRACE_SECONDS:
        return StepDecision(
            StepStatus.FAILED,
            "The agent running the command is gone and reported no exit code (see logs/ for its output).",
        )
    timeout = job.command.timeout if job.command else None
    if timeout is not None and elapsed > timeout + COMMAND_TIMEOUT_GRACE_SECONDS:
        return StepDecision(
            StepStatus.FAILED, f"The command exceeded limits.timeout ({timeout} seconds) and did not report."
        )
    return StepDecision(None)
