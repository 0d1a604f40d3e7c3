"""Reading a step's Batch job: the state of each agent task, failed environment builds, a stuck pool.

:meth:`BatchExecutor.status <shared.compute.batch.executor.BatchExecutor.status>` and ``report`` call
:func:`read_statuses`. It queries Batch (the job, its tasks, its preparation tasks, the pool) and uses
:mod:`.diagnostics` to put each state in words. Querying lives here and the wording in
:mod:`.diagnostics`, so the wording stays pure and unit-testable while this module holds the requests
and what to ask only when needed (preparation failures and pool errors only while tasks wait).
"""

from __future__ import annotations

import logging

from azure.batch import BatchClient
from azure.batch import models as batch_models
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from shared.compute.base import AgentState, AgentStatus
from shared.compute.batch.diagnostics import (
    PreparationFailure,
    agent_status,
    job_stopped,
    scheduling_error,
)
from shared.compute.batch.targets import batch_job_id, node_id_of
from shared.errors import ComputeError

logger = logging.getLogger(__name__)

#: Bytes of a failed environment build's stderr kept in the report.
STDERR_TAIL = 2000


def read_statuses(
    client: BatchClient, run_id: str, job: str, *, with_output: bool
) -> tuple[list[AgentStatus], list[PreparationFailure]]:
    """Each agent task's state by node id, and the nodes whose environment build failed.

    Empty when the step's Batch job does not exist (never started). While tasks wait, failed
    preparation tasks fail the agents at once, and a pool that cannot grow (resize or autoscale
    errors, quota) is named in the pending agents' detail.

    Args:
        client: the Batch client.
        run_id: the run.
        job: the job (step) name.
        with_output: also download the tail of each failed environment build's stderr.
    """
    job_id = batch_job_id(run_id, job)
    try:
        batch_job = client.get_job(job_id)
    except ResourceNotFoundError:
        return [], []
    pool_id = (batch_job.pool_info.pool_id or "") if batch_job.pool_info else ""
    tasks = list(client.list_tasks(job_id))
    stopped = job_stopped(batch_job)
    waiting = any(t.state == batch_models.BatchTaskState.ACTIVE for t in tasks) and not stopped
    failures = _preparation_failures(client, job_id, pool_id, with_output=with_output) if waiting else []
    job_error = scheduling_error(batch_job)
    pool_note = _pool_problem(client, pool_id) if waiting and not failures else None
    statuses = []
    for batch_task in tasks:
        try:
            node_id = node_id_of(batch_task.id)
        except ComputeError:
            continue
        status = agent_status(
            batch_task, node_id, pool_id=pool_id, stopped=stopped, preparation_failures=failures
        )
        if status.state is AgentState.PENDING and job_error:
            status = AgentStatus(node_id=node_id, state=AgentState.FAILED, detail=job_error)
        elif status.state is AgentState.PENDING and pool_note:
            status = status.model_copy(update={"detail": f"{status.detail}; {pool_note}"})
        statuses.append(status)
    statuses.sort(key=lambda s: s.node_id)
    return statuses, failures


def _preparation_failures(
    client: BatchClient, job_id: str, pool_id: str, *, with_output: bool
) -> list[PreparationFailure]:
    failures = []
    for item in client.list_job_preparation_and_release_task_status(job_id):
        info = item.job_preparation_task_execution_info
        if info is None or info.state != batch_models.BatchJobPreparationTaskState.COMPLETED:
            continue
        if info.result != batch_models.BatchTaskExecutionResult.FAILURE:
            continue
        tail = ""
        if with_output and info.task_root_directory and item.node_id:
            tail = _node_file_tail(client, item.pool_id or pool_id, item.node_id, info.task_root_directory)
        failure = info.failure_info
        failures.append(
            PreparationFailure(
                node_id=item.node_id or "?",
                exit_code=info.exit_code,
                code=(failure.code or "") if failure else "",
                message=(failure.message or "").strip() if failure else "",
                stderr_tail=tail,
            )
        )
    return failures


def _node_file_tail(client: BatchClient, pool_id: str, node_id: str, task_root: str) -> str:
    try:
        data = b"".join(client.download_node_file(pool_id, node_id, f"{task_root}/stderr.txt"))
    except HttpResponseError as exc:
        logger.info("cannot read the environment build's stderr on %s (%s)", node_id, exc.status_code)
        return ""
    return data[-STDERR_TAIL:].decode("utf-8", errors="replace").strip()


def _pool_problem(client: BatchClient, pool_id: str) -> str | None:
    """Why the pool is not growing (resize or autoscale errors), if Batch says."""
    try:
        pool = client.get_pool(pool_id, select=["id", "resizeErrors", "autoScaleRun"])
    except ResourceNotFoundError:
        return f"pool '{pool_id}' does not exist"
    except HttpResponseError:
        return None
    problems = [f"{e.code}: {e.message}" for e in pool.resize_errors or []]
    if pool.auto_scale_run and pool.auto_scale_run.error:
        error = pool.auto_scale_run.error
        problems.append(f"autoscale formula: {error.code}: {error.message}")
    if not problems:
        return None
    text = "the pool cannot grow: " + "; ".join(problems)
    if "quota" in text.lower():
        text += " — request more cores for this VM family on the Batch account (see docs/deploy.md)"
    return text
