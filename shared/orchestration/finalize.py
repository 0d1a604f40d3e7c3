"""The ``finalize_step`` activity body: close a job, then register and remember what it produced.

1. A job that failed before ``step.json`` existed (its inputs could not be resolved) gets a
   ``result.json`` and ``logs/job_result.txt`` with the reason, nothing else.
2. Parallel jobs: the runtime's ``finalize_step`` (append_row output committed in mini-batch order,
   final logs, ``job_result.txt``). Command jobs: :func:`finalize_command` (the node already
   uploaded the outputs; the result says how the command ended).
3. On success only: named outputs are registered as data assets (a registration that fails turns the
   job ``Failed``, since the user asked for the asset), and the step is recorded for reuse.
"""

from __future__ import annotations

import logging

from azure.core.exceptions import ResourceNotFoundError

from shared.errors import NotFoundError, RegistryError
from shared.orchestration.contracts import StepDefinition, StepFinalize, StepRef, StepResult, StepStatus
from shared.plan import JobPlan, JobType, RunPlan
from shared.runs import load_plan, load_step_definition, save_step_result
from shared.runtime.command import CommandOutcome, command_outcome_path
from shared.storage import Container, StorageClients, logs_path

logger = logging.getLogger(__name__)

COMMAND_LOG_HINT = "logs/user_logs/std_log.txt holds the command's output (stdout and stderr)."


def finalize(clients: StorageClients, finalize_order: StepFinalize) -> StepResult:
    """Steps 1–3 of the module docstring; the StepResult is also saved as ``result.json``."""
    from shared.runtime.phases import finalize_step as finalize_parallel

    step = finalize_order.step
    plan = load_plan(clients, step.run_id)
    job = plan.job(step.job)
    try:
        definition = load_step_definition(clients, step)
    except NotFoundError:
        return _record(clients, _bare_result(finalize_order))
    if job.type is JobType.COMMAND:
        result = finalize_command(clients, definition, finalize_order)
    else:
        result = finalize_parallel(clients, finalize_order)
    if result.status is StepStatus.COMPLETED:
        result = _register_and_remember(clients, plan, job, definition, result)
    return _record(clients, result, write_result_text=False)


def finalize_command(clients: StorageClients, definition: StepDefinition, order: StepFinalize) -> StepResult:
    """The result of a command job from how its node says it ended (``command.json``)."""
    from shared.runtime.records import read_progress

    step = order.step
    outcome = _command_outcome(clients, step)
    reason = order.reason
    if outcome is not None and order.status is not StepStatus.CANCELED:
        reason = outcome.reason
    outputs = {name: output.location for name, output in definition.outputs.items()}
    result = StepResult(
        step=step,
        status=order.status,
        reason=reason,
        outputs=outputs if order.status is StepStatus.COMPLETED else {},
        progress=read_progress(clients, step),
        logs=logs_path(step.run_id, step.job),
    )
    write_job_result(clients, result, COMMAND_LOG_HINT)
    return result


def _register_and_remember(
    clients: StorageClients, plan: RunPlan, job: JobPlan, definition: StepDefinition, result: StepResult
) -> StepResult:
    from shared import reuse
    from shared.registration import register_outputs

    try:
        registered = register_outputs(clients, plan, job, result, definition=definition)
    except RegistryError as exc:
        failed = result.model_copy(
            update={
                "status": StepStatus.FAILED,
                "reason": f"The outputs could not be registered: {exc.message}",
            }
        )
        write_job_result(clients, failed)
        return failed
    result = result.model_copy(update={"registered_assets": list(registered)})
    if reuse.reuse_enabled(plan, job) and definition.fingerprint:
        reuse.record_reusable(clients, definition.fingerprint, result)
    return result


def _bare_result(order: StepFinalize) -> StepResult:
    step = order.step
    return StepResult(
        step=step, status=order.status, reason=order.reason, logs=logs_path(step.run_id, step.job)
    )


def _record(clients: StorageClients, result: StepResult, *, write_result_text: bool = True) -> StepResult:
    if write_result_text:
        write_job_result(clients, result)
    save_step_result(clients, result)
    logger.info("%s/%s finalized: %s", result.step.run_id, result.step.job, result.status.value)
    return result


def job_result_text(status: StepStatus, reason: str, where: str = "") -> str:
    """``logs/job_result.txt`` in the runtime's layout: ``Result:``, ``Reason:``, ``Where to look:``."""
    lines = [f"Result: {status.value}", f"Reason: {reason}" if reason else ""]
    if where:
        lines.append(f"Where to look: {where}")
    return "\n".join(line for line in lines if line) + "\n"


def write_job_result(clients: StorageClients, result: StepResult, where: str = "") -> None:
    """Write ``logs/job_result.txt`` of the result's step: the first file a user reads after a run."""
    from shared.runtime.logs import write_text

    write_text(clients, result.step, "job_result.txt", job_result_text(result.status, result.reason, where))


def _command_outcome(clients: StorageClients, step: StepRef) -> CommandOutcome | None:
    blob = clients.container(Container.RUNS).get_blob_client(command_outcome_path(step))
    try:
        return CommandOutcome.model_validate_json(blob.download_blob().readall())
    except ResourceNotFoundError:
        return None
