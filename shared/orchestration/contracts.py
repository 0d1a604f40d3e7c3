"""Activity inputs and outputs: the boundary between the durable orchestrator and the engine.

The orchestrator (``shared/orchestration``) calls activities; their bodies are the runtime's step phases
(``shared/runtime``), reuse (``shared/reuse.py``) and registration (``shared/registration.py``). Every value
that crosses that boundary is one of these models, serialised to JSON by the engine adapters. Payloads
stay small (ids and counts, never mini-batch lists): durable history stores every one of them.

Phases of a parallel step, each an activity:

1. ``prepare_step(StepStart) -> StepPrepared``     resolve inputs (upstream outputs, assets), fingerprint,
                                                   reuse check; writes ``runs/<run>/<job>/step.json``
2. ``plan_step(StepRef) -> StepPlanned``           partition into mini-batches, store the manifest once
3. ``dispatch_step(StepRef) -> StepPlanned``       enqueue the mini-batch ids (several per message)
4. ``start_agents(AgentTask) -> None``             executor places ``instance_count`` agents
5. ``read_progress(StepRef) -> StepProgress``      tallies; the orchestrator then applies
                                                   ``shared.policy.evaluate`` (pure) to decide
6. ``stop_agents(StepRef) -> None``                executor stops agents, the step's queue is drained
7. ``finalize_step(StepFinalize) -> StepResult``   commit append_row output, write job_result.txt,
                                                   register assets (only on success)

A command job is ``prepare_step`` → ``start_agents`` → ``read_progress`` loop → ``finalize_step``.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from shared.models import FrozenModel
from shared.plan import BlobData, LiteralInput, OutputPlan, UrlData


class StepRef(FrozenModel):
    """Names one job of one run: the key every activity, record and log path of a step is built from."""

    run_id: str = Field(description="The run the job belongs to.")
    job: str = Field(description="The job's name in the pipeline.")


class ResolvedInput(FrozenModel):
    """A data input after resolution: where it is, and which asset version it was (for lineage)."""

    location: BlobData | UrlData = Field(description="Where the data is, after resolution.")
    asset: str | None = Field(default=None, description="'name:version' when it came from an asset.")


class StepDefinition(FrozenModel):
    """A step with everything resolved, stored once as ``runs/<run>/<job>/step.json`` by ``prepare_step``.

    Agents and the runtime phases read this (plus the job's :class:`shared.plan.JobPlan`), never the spec.
    """

    step: StepRef = Field(description="The step this definition is of.")
    inputs: dict[str, ResolvedInput | LiteralInput] = Field(
        default_factory=dict, description="Every job input, data ones resolved to a location."
    )
    outputs: dict[str, OutputPlan] = Field(default_factory=dict, description="The job's outputs.")
    fingerprint: str = Field(default="", description="Reuse key of the job (see StepPrepared).")


class StepStart(FrozenModel):
    """Input of ``prepare_step``: the step, plus what the pipeline knows of its upstream jobs."""

    step: StepRef = Field(description="The step to prepare.")
    upstream_outputs: dict[str, dict[str, BlobData]] = Field(
        default_factory=dict, description="job -> output -> location, for JobOutputRef inputs."
    )
    force_rerun: bool = Field(default=False, description="Skip the reuse check: always run the job.")


class StepPrepared(FrozenModel):
    """Output of ``prepare_step``: the step's fingerprint and, when an earlier run is reused, its outputs."""

    step: StepRef = Field(description="The prepared step.")
    fingerprint: str = Field(description="Reuse key of this job (code, inputs' identities, settings).")
    reused_from: str | None = Field(default=None, description="Run id whose outputs are reused, if any.")
    outputs: dict[str, BlobData] = Field(default_factory=dict, description="Reused outputs, when reused.")
    registered_assets: list[str] = Field(
        default_factory=list, description="'name:version' of the reused outputs' assets, when reused."
    )


class StepPlanned(FrozenModel):
    """Output of ``plan_step`` and ``dispatch_step``: how much work the step was split into."""

    step: StepRef = Field(description="The planned step.")
    mini_batches: int = Field(ge=0, description="Mini-batches in the step's manifest.")
    items: int | None = Field(default=None, description="Total items, when known up front (files, rows).")
    queue: str | None = Field(default=None, description="The step's work queue.")
    carried: int = Field(
        default=0, ge=0, description="Mini-batches a resume carried over (settled already, never dispatched)."
    )


class StepProgress(FrozenModel):
    """Tallies of one step, read from storage. Counts are of *final* mini-batch outcomes."""

    step: StepRef = Field(description="The step these tallies are of.")
    total_mini_batches: int = Field(default=0, description="Mini-batches planned (0 until planned).")
    dispatched: bool = Field(default=False, description="Every mini-batch has been enqueued.")
    succeeded_mini_batches: int = Field(default=0, description="Mini-batches whose final outcome is success.")
    failed_mini_batches: int = Field(
        default=0, description="Mini-batches that failed for good (retries spent)."
    )
    items_succeeded: int = Field(default=0, description="Items of the settled mini-batches that succeeded.")
    items_failed: int = Field(default=0, description="Items of the settled mini-batches that failed.")
    attempts: int = Field(default=0, description="run() attempts over all mini-batches, retries included.")
    first_activity_at: datetime | None = Field(default=None, description="First mini-batch picked up.")
    last_progress_at: datetime | None = Field(default=None, description="Last mini-batch settled.")
    agents_alive: int = Field(
        default=0,
        description="Agents with a recent heartbeat that have not exited (command jobs: per executor).",
    )
    agents_failed: int = Field(
        default=0, description="Nodes whose agent gave up (e.g. init() kept failing, a bad placeholder)."
    )
    agent_error: str = Field(default="", description="Why the first of those agents gave up.")
    command_exit_code: int | None = Field(default=None, description="Command jobs: the exit code.")
    carried_mini_batches: int = Field(
        default=0,
        description="Mini-batches a resume carried over from an earlier run; they are among the succeeded "
        "ones and their items in the item counts.",
    )

    @property
    def settled_mini_batches(self) -> int:
        """Mini-batches with a final outcome, success or failure."""
        return self.succeeded_mini_batches + self.failed_mini_batches

    @property
    def done(self) -> bool:
        """Every mini-batch was enqueued and has settled: nothing is left to wait for."""
        return self.dispatched and self.settled_mini_batches >= self.total_mini_batches


class RunStatus(StrEnum):
    """Status of a whole run (the run index and the API show it)."""

    QUEUED = "Queued"
    RUNNING = "Running"
    CANCEL_REQUESTED = "CancelRequested"
    COMPLETED = "Completed"
    FAILED = "Failed"
    CANCELED = "Canceled"

    @property
    def is_terminal(self) -> bool:
        """The run has ended: Completed, Failed or Canceled."""
        return self in (RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELED)


class StepStatus(StrEnum):
    """How a job ended (``result.json``, ``job_result.txt``, the API); ``Reused`` means an earlier run's
    outputs stand in for this one's."""

    COMPLETED = "Completed"
    FAILED = "Failed"
    CANCELED = "Canceled"
    SKIPPED = "Skipped"
    REUSED = "Reused"


class StepFinalize(FrozenModel):
    """Input of ``finalize_step``: the orchestrator's verdict on the step, to be recorded."""

    step: StepRef = Field(description="The step to finalize.")
    status: StepStatus = Field(description="What the orchestrator decided (Completed/Failed/Canceled).")
    reason: str = Field(default="", description="Why, for job_result.txt.")


class StepResult(FrozenModel):
    """How a step ended, stored as ``runs/<run>/<job>/result.json``: downstream jobs read its outputs."""

    step: StepRef = Field(description="The step this result is of.")
    status: StepStatus = Field(description="How the step ended.")
    reason: str = Field(default="", description="Why, in words (also in job_result.txt).")
    outputs: dict[str, BlobData] = Field(
        default_factory=dict, description="Output name -> where it was written (or reused from)."
    )
    progress: StepProgress | None = Field(default=None, description="The final tallies, when the step ran.")
    reused_from: str | None = Field(default=None, description="Run id whose outputs were reused, if any.")
    logs: str = Field(default="", description="Prefix of the job's log tree in the runs container.")
    registered_assets: list[str] = Field(default_factory=list, description="'name:version' registered.")
