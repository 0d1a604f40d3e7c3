"""Reading and writing a run's control documents in the ``runs`` container.

``run.json`` (the frozen :class:`RunPlan`) is written once at submit; ``<job>/step.json`` (the
:class:`StepDefinition`) once when a step is prepared; ``<job>/result.json`` (the :class:`StepResult`)
when it is finalized. Everything else a run writes (manifests, records, outputs, logs) belongs to the
module that produces it.
"""

from __future__ import annotations

from azure.core.exceptions import ResourceNotFoundError

from shared.errors import NotFoundError
from shared.orchestration.contracts import StepDefinition, StepRef, StepResult
from shared.plan import RunPlan
from shared.storage import Container, StorageClients, job_path, run_plan_path


def save_plan(clients: StorageClients, plan: RunPlan) -> None:
    """Store the frozen plan as ``run.json`` (at submit; nothing changes it afterwards)."""
    _upload(clients, run_plan_path(plan.run_id), plan.model_dump_json())


def load_plan(clients: StorageClients, run_id: str) -> RunPlan:
    """The frozen plan of ``run_id``. Raises NotFoundError when the run does not exist."""
    return RunPlan.model_validate_json(_download(clients, run_plan_path(run_id), run_id=run_id))


def save_step_definition(clients: StorageClients, definition: StepDefinition) -> None:
    """Store ``<job>/step.json``, overwriting (``prepare_step`` may run twice)."""
    step = definition.step
    _upload(clients, job_path(step.run_id, step.job, "step.json"), definition.model_dump_json())


def load_step_definition(clients: StorageClients, step: StepRef) -> StepDefinition:
    """The step's resolved definition. Raises NotFoundError when the step was never prepared."""
    path = job_path(step.run_id, step.job, "step.json")
    return StepDefinition.model_validate_json(_download(clients, path, run_id=step.run_id, job=step.job))


def save_step_result(clients: StorageClients, result: StepResult) -> None:
    """Store ``<job>/result.json``, overwriting (finalizing is idempotent)."""
    step = result.step
    _upload(clients, job_path(step.run_id, step.job, "result.json"), result.model_dump_json())


def load_step_result(clients: StorageClients, step: StepRef) -> StepResult:
    """How the step ended. Raises NotFoundError when it has not been finalized."""
    path = job_path(step.run_id, step.job, "result.json")
    return StepResult.model_validate_json(_download(clients, path, run_id=step.run_id, job=step.job))


def _upload(clients: StorageClients, path: str, text: str) -> None:
    clients.container(Container.RUNS).upload_blob(path, text.encode(), overwrite=True)


def _download(clients: StorageClients, path: str, **context: str) -> bytes:
    try:
        return clients.container(Container.RUNS).download_blob(path).readall()
    except ResourceNotFoundError as exc:
        raise NotFoundError(f"{Container.RUNS.value}/{path} does not exist", **context) from exc
