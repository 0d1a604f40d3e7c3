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
    plan: RunPlan
    poll: PollSettings = Field(default_factory=PollSettings)
    retry: RetryPolicy = Field(
        default_factory=RetryPolicy, description="Retries of activities that fail transiently."
    )


class StepLoop(FrozenModel):
    """What a step's waiting loop carries across ``continue_as_new`` generations."""

    prepared: StepPrepared
    planned: StepPlanned | None = None
    started_at: datetime = Field(description="When agents were started (orchestration time).")
    wait_seconds: float = Field(description="The next wait between reads.")
    polls: int = Field(default=0, description="Reads of the tallies so far, all generations.")
    generation: int = Field(default=0, description="continue_as_new count.")
    cancel_requested: bool = False
    agents_started: bool = Field(
        default=True, description="False when a resume carried every mini-batch over: no agent to stop."
    )


class StepInput(FrozenModel):
    run_id: str
    job: JobPlan
    upstream_outputs: dict[str, dict[str, BlobData]] = Field(default_factory=dict)
    force_rerun: bool = False
    poll: PollSettings = Field(default_factory=PollSettings)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    loop: StepLoop | None = Field(default=None, description="Set when continued as new.")

    @property
    def step(self) -> StepRef:
        return StepRef(run_id=self.run_id, job=self.job.name)


#: ``ActivityError.kind`` of an activity that did nothing because the run was canceled.
CANCELED_KIND = "Canceled"


class ActivityError(FrozenModel):
    """A failure an activity reports as data (the step fails with it; nothing is retried)."""

    kind: str = Field(description="Exception class, e.g. 'DataError'.")
    message: str


class Outcome(FrozenModel):
    """Envelope of activities whose expected failures the orchestrator turns into a failed step."""

    value: dict[str, Any] | None = None
    error: ActivityError | None = None


class StepPoll(FrozenModel):
    progress: StepProgress
    cancel_requested: bool = False


class RunStatusUpdate(FrozenModel):
    run_id: str
    status: RunStatus
    reason: str = ""


class SkippedSteps(FrozenModel):
    """Jobs that never ran, with the status (Skipped or Canceled) and reason to record."""

    results: list[StepResult]


class CancelSteps(FrozenModel):
    run_id: str
    jobs: list[str] = Field(description="Running jobs to ask to stop.")


class PipelineResult(FrozenModel):
    run_id: str
    status: RunStatus
    reason: str = ""
    jobs: dict[str, StepResult] = Field(default_factory=dict)


# --- custom status (what clients show while a run is going) ----------------------------------------


class StepPhase(StrEnum):
    PREPARING = "preparing"
    PLANNING = "planning"
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    FINALIZING = "finalizing"
    DONE = "done"


class StepView(FrozenModel):
    """A step's custom status: the phase and the latest tallies."""

    job: str
    phase: StepPhase
    status: StepStatus | None = Field(default=None, description="Set when the phase is done.")
    reason: str = ""
    progress: StepProgress | None = None
    started_at: datetime | None = None
    updated_at: datetime | None = None


class PipelineView(FrozenModel):
    """The pipeline's custom status: each job's status (None while it runs or waits)."""

    run_id: str
    status: RunStatus
    running: list[str] = Field(default_factory=list)
    jobs: dict[str, StepStatus] = Field(default_factory=dict)


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
