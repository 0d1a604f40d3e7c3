"""Inputs, outputs and status documents of the two orchestrations (the models activities share live in
:mod:`.contracts`).

Everything here is JSON in durable history, so it stays small: a step's input carries its own
:class:`~shared.plan.JobPlan` (a few KB) and counts, never lists of mini-batches.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import Field

from shared.models import FrozenModel
from shared.orchestration.context import RetryPolicy
from shared.orchestration.contracts import (
    RunStatus,
    StepPlanned,
    StepPrepared,
    StepProgress,
    StepRef,
    StepResult,
    StepStatus,
)
from shared.plan import BlobData, JobPlan, RunPlan
from shared.storage import logs_path


class PollSettings(FrozenModel):
    """How a running step waits between reads of its tallies (decided at submit, fixed for the run)."""

    initial_seconds: float = Field(default=2.0, gt=0, description="First wait after agents start.")
    max_seconds: float = Field(default=30.0, gt=0, description="Longest wait between two reads.")
    factor: float = Field(default=1.5, ge=1, description="Wait growth per read without progress.")
    polls_per_generation: int = Field(
        default=100, ge=2, description="Reads before the step orchestration continues as new."
    )


class PipelineInput(FrozenModel):
    """Input of the ``run_pipeline`` orchestration: the frozen plan and the settings fixed at submit."""

    plan: RunPlan = Field(description="The run's frozen plan.")
    poll: PollSettings = Field(default_factory=PollSettings, description="How steps wait between reads.")
    retry: RetryPolicy = Field(
        default_factory=RetryPolicy, description="Retries of activities that fail transiently."
    )


class StepLoop(FrozenModel):
    """What a step's waiting loop carries across ``continue_as_new`` generations."""

    prepared: StepPrepared = Field(description="What prepare_step returned.")
    planned: StepPlanned | None = Field(
        default=None, description="What dispatch_step returned (parallel jobs)."
    )
    started_at: datetime = Field(description="When agents were started (orchestration time).")
    wait_seconds: float = Field(description="The next wait between reads.")
    polls: int = Field(default=0, description="Reads of the tallies so far, all generations.")
    generation: int = Field(default=0, description="continue_as_new count.")
    cancel_requested: bool = Field(default=False, description="A cancel was seen in an earlier read.")
    agents_started: bool = Field(
        default=True, description="False when a resume carried every mini-batch over: no agent to stop."
    )


class StepInput(FrozenModel):
    """Input of the ``run_step`` sub-orchestration: one job with what it needs from the pipeline."""

    run_id: str = Field(description="The run the job belongs to.")
    job: JobPlan = Field(description="The job's plan (a few KB; the orchestration reads nothing else).")
    upstream_outputs: dict[str, dict[str, BlobData]] = Field(
        default_factory=dict, description="job -> output -> location of the finished upstream jobs."
    )
    force_rerun: bool = Field(default=False, description="Skip the reuse check: always run the job.")
    poll: PollSettings = Field(default_factory=PollSettings, description="How the step waits between reads.")
    retry: RetryPolicy = Field(
        default_factory=RetryPolicy, description="Retries of activities that fail transiently."
    )
    loop: StepLoop | None = Field(default=None, description="Set when continued as new.")

    @property
    def step(self) -> StepRef:
        """The reference activities take for this job."""
        return StepRef(run_id=self.run_id, job=self.job.name)


#: ``ActivityError.kind`` of an activity that did nothing because the run was canceled.
CANCELED_KIND = "Canceled"


class ActivityError(FrozenModel):
    """A failure an activity reports as data (the step fails with it; nothing is retried)."""

    kind: str = Field(description="Exception class, e.g. 'DataError'.")
    message: str = Field(description="The error's message, shown as the step's reason.")


class Outcome(FrozenModel):
    """Envelope of activities whose expected failures the orchestrator turns into a failed step."""

    value: dict[str, Any] | None = Field(default=None, description="The activity's output on success (JSON).")
    error: ActivityError | None = Field(default=None, description="The expected failure, when there was one.")


class StepPoll(FrozenModel):
    """Output of ``read_progress``: the step's tallies and whether its run is being canceled."""

    progress: StepProgress = Field(description="The step's tallies.")
    cancel_requested: bool = Field(
        default=False, description="The run's cancel marker exists (a cancel event may have been missed)."
    )


class RunStatusUpdate(FrozenModel):
    """Input of ``set_run_status``: a new status for the run's index row."""

    run_id: str = Field(description="The run to update.")
    status: RunStatus = Field(description="Its new status.")
    reason: str = Field(default="", description="Why it failed or was canceled.")


class SkippedSteps(FrozenModel):
    """Jobs that never ran, with the status (Skipped or Canceled) and reason to record."""

    results: list[StepResult] = Field(description="One result per job that never ran.")


class CancelSteps(FrozenModel):
    """Input of ``cancel_steps``: the run being canceled and the jobs still running in it."""

    run_id: str = Field(description="The run being canceled.")
    jobs: list[str] = Field(description="Running jobs to ask to stop.")


class PipelineResult(FrozenModel):
    """Output of the ``run_pipeline`` orchestration: how the run and each of its jobs ended."""

    run_id: str = Field(description="The run.")
    status: RunStatus = Field(description="The run's final status.")
    reason: str = Field(default="", description="Why the run failed or was canceled.")
    jobs: dict[str, StepResult] = Field(default_factory=dict, description="Job name -> its result.")


# --- custom status (what clients show while a run is going) ----------------------------------------


class StepPhase(StrEnum):
    """Where a step's orchestration is, published in its custom status (clients show it while it runs)."""

    PREPARING = "preparing"
    PLANNING = "planning"
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    FINALIZING = "finalizing"
    DONE = "done"


class StepView(FrozenModel):
    """A step's custom status: the phase and the latest tallies."""

    job: str = Field(description="The job's name.")
    phase: StepPhase = Field(description="Where the step's orchestration is.")
    status: StepStatus | None = Field(default=None, description="Set when the phase is done.")
    reason: str = Field(default="", description="Why it ended so, or a warning while it runs.")
    progress: StepProgress | None = Field(default=None, description="The latest tallies, once running.")
    started_at: datetime | None = Field(default=None, description="When its agents were started.")
    updated_at: datetime | None = Field(default=None, description="When this view was published.")


class PipelineView(FrozenModel):
    """The pipeline's custom status: each job's status (None while it runs or waits)."""

    run_id: str = Field(description="The run.")
    status: RunStatus = Field(description="The run's status.")
    running: list[str] = Field(default_factory=list, description="Jobs running now.")
    jobs: dict[str, StepStatus] = Field(
        default_factory=dict, description="Job name -> how it ended, when it has."
    )


def reused_result(prepared: StepPrepared) -> StepResult:
    """The result of a step that reused an earlier run's outputs (what ``prepare_step`` records)."""
    step = prepared.step
    return StepResult(
        step=step,
        status=StepStatus.REUSED,
        reason=f"Reused the outputs of run {prepared.reused_from} (same code, inputs and settings).",
        outputs=prepared.outputs,
        reused_from=prepared.reused_from,
        logs=logs_path(step.run_id, step.job),
        registered_assets=prepared.registered_assets,
    )
