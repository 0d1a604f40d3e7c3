"""Activity inputs and outputs: the boundary between the durable orchestrator and the engine.

The orchestrator (``shared/orchestration``) calls activities; their bodies are the runtime's step phases
(``shared/runtime``), reuse (``shared/reuse.py``) and registration (``shared/registry.py``). Every value
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
    run_id: str
    job: str


class ResolvedInput(FrozenModel):
    """A data input after resolution: where it is, and which asset version it was (for lineage)."""

    location: BlobData | UrlData
    asset: str | None = Field(default=None, description="'name:version' when it came from an asset.")


class StepDefinition(FrozenModel):
    """A step with everything resolved, stored once as ``runs/<run>/<job>/step.json`` by ``prepare_step``.

    Agents and the runtime phases read this (plus the job's :class:`shared.plan.JobPlan`), never the spec.
    """

    step: StepRef
    inputs: dict[str, ResolvedInput | LiteralInput] = Field(default_factory=dict)
    outputs: dict[str, OutputPlan] = Field(default_factory=dict)
    fingerprint: str = ""


class StepStart(FrozenModel):
    step: StepRef
    upstream_outputs: dict[str, dict[str, BlobData]] = Field(
        default_factory=dict, description="job -> output -> location, for JobOutputRef inputs."
    )
    force_rerun: bool = False


class StepPrepared(FrozenModel):
    step: StepRef
    fingerprint: str = Field(description="Reuse key of this job (code, inputs' identities, settings).")
    reused_from: str | None = Field(default=None, description="Run id whose outputs are reused, if any.")
    outputs: dict[str, BlobData] = Field(default_factory=dict, description="Reused outputs, when reused.")
    registered_assets: list[str] = Field(
        default_factory=list, description="'name:version' of the reused outputs' assets, when reused."
    )


class StepPlanned(FrozenModel):
    step: StepRef
    mini_batches: int = Field(ge=0)
    items: int | None = Field(default=None, description="Total items, when known up front (files, rows).")
    queue: str | None = Field(default=None, description="The step's work queue.")
    carried: int = Field(
        default=0, ge=0, description="Mini-batches a resume carried over (settled already, never dispatched)."
    )


class StepProgress(FrozenModel):
    """Tallies of one step, read from storage. Counts are of *final* mini-batch outcomes."""

    step: StepRef
    total_mini_batches: int = 0
    dispatched: bool = False
    succeeded_mini_batches: int = 0
    failed_mini_batches: int = 0
    items_succeeded: int = 0
    items_failed: int = 0
    attempts: int = 0
    first_activity_at: datetime | None = Field(default=None, description="First mini-batch picked up.")
    last_progress_at: datetime | None = Field(default=None, description="Last mini-batch settled.")
    agents_alive: int = 0
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
        return self.succeeded_mini_batches + self.failed_mini_batches

    @property
    def done(self) -> bool:
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
        return self in (RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELED)


class StepStatus(StrEnum):
    COMPLETED = "Completed"
    FAILED = "Failed"
    CANCELED = "Canceled"
    SKIPPED = "Skipped"
    REUSED = "Reused"


class StepFinalize(FrozenModel):
    step: StepRef
    status: StepStatus = Field(description="What the orchestrator decided (Completed/Failed/Canceled).")
    reason: str = Field(default="", description="Why, for job_result.txt.")


class StepResult(FrozenModel):
    step: StepRef
    status: StepStatus
    reason: str = ""
    outputs: dict[str, BlobData] = Field(default_factory=dict)
    progress: StepProgress | None = None
    reused_from: str | None = None
    logs: str = Field(default="", description="Prefix of the job's log tree in the runs container.")
    registered_assets: list[str] = Field(default_factory=list, description="'name:version' registered.")
