"""Starting, watching and canceling runs through a small durable-client protocol.

:class:`DurableClient` is the five operations Fanout needs from a durable engine's client. It is
implemented for durabletask's ``TaskHubGrpcClient`` (:class:`~.durabletask_adapter.DurableTaskClient`,
the local host and tests) and for Durable Functions' ``DurableOrchestrationClient`` (in ``functions/``).

:func:`start_run` is the one way a run starts, whoever submits it (CLI, HTTP API, blob drop):

1. if the run's orchestration already exists, do nothing (a second submission of the same run id
   never starts a second run) — return the run id;
2. save ``run.json`` (the frozen plan) and add the run index row (status ``Queued``);
3. schedule ``run_pipeline`` with instance id :func:`~.names.instance_id_for` (an engine that reports
   "already exists" — a concurrent submission won the race — is fine too).
"""

from __future__ import annotations

import logging
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from pydantic import Field

from shared.models import FrozenModel
from shared.orchestration import names, run_index
from shared.orchestration.context import RetryPolicy
from shared.orchestration.models import PipelineInput, PollSettings
from shared.plan import RunPlan
from shared.runs import save_plan
from shared.settings import Settings, get_settings
from shared.storage import StorageClients

logger = logging.getLogger(__name__)


class RuntimeStatus(StrEnum):
    """An orchestration instance's runtime status, as both engines report it."""

    PENDING = "Pending"
    RUNNING = "Running"
    COMPLETED = "Completed"
    FAILED = "Failed"
    TERMINATED = "Terminated"
    CONTINUED_AS_NEW = "ContinuedAsNew"
    SUSPENDED = "Suspended"

    @property
    def is_terminal(self) -> bool:
        """The instance has ended (completed, failed or terminated); it will do nothing more."""
        return self in (RuntimeStatus.COMPLETED, RuntimeStatus.FAILED, RuntimeStatus.TERMINATED)


class InstanceStatus(FrozenModel):
    """An orchestration instance as a durable client reports it, the same shape whichever engine runs it."""

    instance_id: str = Field(description="The orchestration's instance id.")
    name: str = Field(default="", description="The orchestrator's registered name.")
    runtime_status: RuntimeStatus = Field(description="Where the instance is in its life.")
    custom_status: Any = Field(default=None, description="The orchestration's custom status (JSON).")
    output: Any = Field(default=None, description="The orchestration's output (JSON) once completed.")
    failure: str | None = Field(default=None, description="The failure message of a failed instance.")
    created_at: datetime | None = Field(default=None, description="When the instance was created (UTC).")
    last_updated_at: datetime | None = Field(default=None, description="When its state last changed (UTC).")


class DurableClient(Protocol):
    """The durable-engine client operations Fanout uses (every one synchronous)."""

    def schedule(self, orchestrator: str, instance_id: str, input: Any) -> bool:
        """Start orchestrator ``orchestrator`` as ``instance_id``; False if that instance already exists."""

    def get_status(self, instance_id: str) -> InstanceStatus | None:
        """The instance's status, None when there is no such instance."""

    def raise_event(self, instance_id: str, event: str, data: Any = None) -> None:
        """Raise external event ``event``. Raises NotFoundError when the instance does not exist;
        an event for a finished instance is dropped."""

    def terminate(self, instance_id: str, reason: str) -> None:
        """Terminate the instance (it ends ``Terminated``; nothing of it is cleaned up)."""

    def wait(self, instance_id: str, timeout: float) -> InstanceStatus | None:
        """Wait up to ``timeout`` seconds for the instance to finish; its status then (None if absent).
        Raises TimeoutError when it is still running."""


def pipeline_input(plan: RunPlan, settings: Settings | None = None) -> PipelineInput:
    """The orchestration input of a run: the plan and the poll settings, fixed for the whole run."""
    settings = settings or get_settings()
    poll = PollSettings(
        initial_seconds=settings.step_poll_seconds,
        max_seconds=max(settings.step_poll_max_seconds, settings.step_poll_seconds),
    )
    return PipelineInput(plan=plan, poll=poll, retry=RetryPolicy())


def start_run(
    clients: StorageClients,
    client: DurableClient,
    plan: RunPlan,
    *,
    orchestration_input: PipelineInput | None = None,
) -> str:
    """Start ``plan`` as a run (see the module docstring); idempotent per run id. Returns the run id.

    Args:
        clients: storage of the run.
        client: the durable engine's client.
        plan: the frozen plan (its LocalData already uploaded).
        orchestration_input: overrides the input built from settings (tests use short polls).
    """
    instance_id = names.instance_id_for(plan.run_id)
    if client.get_status(instance_id) is not None:
        logger.info("run %s already started; not starting it again", plan.run_id)
        return plan.run_id
    save_plan(clients, plan)
    run_index.add_run(clients, run_index.entry_for(plan))
    payload = (orchestration_input or pipeline_input(plan)).model_dump(mode="json")
    if client.schedule(names.RUN_PIPELINE, instance_id, payload):
        logger.info("started run %s", plan.run_id)
    else:
        logger.info("run %s was started concurrently", plan.run_id)
    return plan.run_id


def cancel_run(client: DurableClient, run_id: str) -> bool:
    """Ask a run to stop. False when the run is not running (absent or already finished).

    The pipeline orchestration receives the "cancel" event, starts nothing new, marks the run
    ``CancelRequested`` and tells each running job, whose agents are stopped and queue drained; the
    run ends ``Canceled`` with every log kept.
    """
    instance_id = names.instance_id_for(run_id)
    status = client.get_status(instance_id)
    if status is None or status.runtime_status.is_terminal:
        return False
    client.raise_event(instance_id, names.CANCEL_EVENT, None)
    return True
