"""Adding a step's agent tasks to its Batch job: idempotent, bounded, and explained when it fails.

Batch adds at most 100 tasks (and < 1 MB of JSON) per ``create_task_collection`` call. This does what the
SDK's ``create_tasks`` helper does — chunks of 100, halve a chunk the service rejects as
``RequestBodyTooLarge``, resubmit tasks whose per-task result is a server error, and count ``TaskExists``
as success (task ids are stable, so a resubmitted step adds nothing twice) — with one difference: it gives
up after :data:`MAX_ROUNDS` rounds instead of re-queueing server errors forever, so a Batch outage fails
the ``start_agents`` activity (which the orchestrator retries) rather than hanging it. Whole-request
throttling (429/503 with ``Retry-After``) and 5xx are retried by the client's azure-core retry policy
before they reach this code.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from azure.batch import BatchClient
from azure.batch import models as batch_models
from azure.core.exceptions import HttpResponseError

from shared.errors import ComputeError

logger = logging.getLogger(__name__)

MAX_TASKS_PER_REQUEST = 100
MAX_ROUNDS = 5
_BODY_TOO_LARGE = {"RequestBodyTooLarge", "RequestEntityTooLarge"}


def _error_code(exc: HttpResponseError) -> str:
    error = getattr(exc, "error", None)
    return str(getattr(error, "code", "") or "")


def error_text(error: batch_models.BatchError | None) -> str:
    """A Batch error's message and its detail values, as one line."""
    if error is None:
        return ""
    text = error.message.value if error.message and error.message.value else ""
    details = "; ".join(f"{d.key}: {d.value}" for d in error.error_values or [] if d.key)
    return f"{text} ({details})" if details else text


def add_tasks(
    client: BatchClient, job_id: str, tasks: Sequence[batch_models.BatchTaskCreateOptions]
) -> list[str]:
    """Add ``tasks`` to ``job_id``; tasks that already exist count as added.

    Returns:
        The ids of the tasks that are now in the job (added now or before).

    Raises:
        ComputeError: Batch rejected a task (the message names it and Batch's reason), one task alone
            is too large for a request, or server errors persisted for :data:`MAX_ROUNDS` rounds.
    """
    pending = list(tasks)
    added: list[str] = []
    chunk_size = MAX_TASKS_PER_REQUEST
    for _round in range(MAX_ROUNDS):
        retry: list[batch_models.BatchTaskCreateOptions] = []
        while pending:
            chunk, pending = pending[:chunk_size], pending[chunk_size:]
            try:
                result = client.create_task_collection(
                    job_id, task_collection=batch_models.BatchTaskGroup(task_values=chunk)
                )
            except HttpResponseError as exc:
                if _error_code(exc) in _BODY_TOO_LARGE or exc.status_code == 413:
                    if len(chunk) == 1:
                        raise ComputeError(
                            f"Batch task '{chunk[0].id}' of job '{job_id}' is too large to submit "
                            "(over 1 MB of JSON): shorten its environment settings",
                            batch_job=job_id,
                        ) from exc
                    chunk_size = max(1, len(chunk) // 2)
                    logger.info("Batch request too large: adding %d tasks per request", chunk_size)
                    pending = chunk + pending
                    continue
                raise ComputeError(
                    f"Batch refused the tasks of job '{job_id}': {exc.status_code} {_error_code(exc)} "
                    f"{exc.message}",
                    batch_job=job_id,
                ) from exc
            by_id = {task.id: task for task in chunk}
            for outcome in result.result_values or []:
                code = outcome.error.code if outcome.error else ""
                if outcome.status == batch_models.BatchTaskAddStatus.SUCCESS or code == "TaskExists":
                    added.append(outcome.task_id)
                elif outcome.status == batch_models.BatchTaskAddStatus.SERVER_ERROR:
                    retry.append(by_id[outcome.task_id])
                else:
                    raise ComputeError(
                        f"Batch rejected task '{outcome.task_id}' of job '{job_id}': {code}: "
                        f"{error_text(outcome.error)}",
                        batch_job=job_id,
                    )
        if not retry:
            return added
        logger.warning("Batch server errors for %d tasks of %s; resubmitting", len(retry), job_id)
        pending = retry
    raise ComputeError(
        f"Batch kept answering server errors while adding the tasks of job '{job_id}' "
        f"({len(pending)} not added after {MAX_ROUNDS} rounds); try again later",
        batch_job=job_id,
    )
