"""Run handlers: list runs, show one run with per-job progress, cancel a run, resume a run.

A run's status comes from the run index (:mod:`shared.orchestration.run_index`); its jobs from the
frozen plan (``run.json``); each job's state from what the step wrote: ``result.json`` once it ended,
``step.json`` once it started, and the live tallies (:func:`shared.runtime.records.read_progress`) while it
runs. Nothing here waits on the durable engine except cancel, which raises the run's cancel event,
and resume, which starts a new run (``shared.orchestration.resume``).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
from datetime import UTC, datetime
from typing import Any

from shared.api.context import ApiContext
from shared.api.models import (
    CancelAccepted,
    JobStatusBody,
    Link,
    ListRunsRequest,
    ResumeAccepted,
    RunDetail,
    RunList,
    RunRequest,
    RunSummary,
)
from shared.errors import ApiError, NotFoundError
from shared.orchestration.contracts import RunStatus, StepProgress, StepRef, StepResult, StepStatus
from shared.orchestration.run_index import RunIndexEntry
from shared.plan import BlobData, JobPlan, JobType, RunPlan
from shared.storage import StorageClients

logger = logging.getLogger(__name__)

#: The shape of a newest-first run index key (see ``run_index.ordered_key``).
_INDEX_KEY = re.compile(r"\d{16}_[^\x00-\x1f]{1,300}")
NOT_STARTED = "NotStarted"
RUNNING = "Running"


def run_url(api_base: str, run_id: str) -> str:
    """The API URL of a run, the base of its cancel, resume and logs links."""
    return f"{api_base}/runs/{run_id}"


# --- list ----------------------------------------------------------------------------------------


def list_runs(context: ApiContext, request: ListRunsRequest, api_base: str) -> tuple[RunList, int]:
    """A page of runs, newest first, optionally only those with one status.

    The run index keeps a newest-first partition, so a page reads only its own rows. The continuation
    token is opaque to clients: it wraps the index key of the last run on the page, so a page is stable
    while new runs arrive.

    Raises:
        ApiError: the status is unknown, or the continuation token is malformed.
    """
    from shared.orchestration import run_index

    status = _parse_status(request.status) if request.status else None
    after = _decode_token(request.continuation_token) if request.continuation_token else None
    page, next_key = run_index.list_page(context.clients, limit=request.limit, status=status, after=after)
    token = _encode_token(next_key) if next_key else None
    return RunList(runs=[_summary(entry, api_base) for entry in page], continuation_token=token), 200


def _summary(entry: RunIndexEntry, api_base: str) -> RunSummary:
    return RunSummary(
        run_id=entry.run_id,
        status=entry.status.value,
        display_name=entry.display_name or None,
        experiment_name=entry.experiment_name or None,
        created_at=entry.created_at,
        updated_at=entry.updated_at,
        source=entry.source,
        url=run_url(api_base, entry.run_id),
        resumed_from=entry.resumed_from or None,
    )


def _parse_status(value: str) -> RunStatus:
    for status in RunStatus:
        if value.lower() == status.value.lower():
            return status
    allowed = ", ".join(status.value for status in RunStatus)
    raise ApiError(f"query parameter 'status': unknown run status {value!r}; expected one of {allowed}")


def _encode_token(key: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": key}).encode()).decode().rstrip("=")


def _decode_token(token: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        key = json.loads(raw)["after"]
        if not isinstance(key, str) or not _INDEX_KEY.fullmatch(key):
            raise ValueError("not an index key")
    except (ValueError, TypeError, KeyError, binascii.Error, UnicodeDecodeError) as exc:
        raise ApiError(
            "query parameter 'continuation_token' is not a token this API issued; pass the "
            "'continuation_token' of the previous page unchanged",
            parameter="continuation_token",
        ) from exc
    return key


# --- show ----------------------------------------------------------------------------------------


def get_run(context: ApiContext, request: RunRequest, api_base: str) -> tuple[RunDetail, int]:
    """A run's status and every job's progress, outputs and log links.

    Raises:
        NotFoundError: no run has this id.
    """
    from shared.orchestration import run_index
    from shared.runs import load_plan

    entry = run_index.get_run(context.clients, request.run_id)
    plan = load_plan(context.clients, request.run_id)
    url = run_url(api_base, request.run_id)
    jobs = [_job_status(context.clients, plan, job, entry, api_base) for job in plan.jobs]
    detail = RunDetail(
        run_id=entry.run_id,
        status=entry.status.value,
        display_name=plan.display_name,
        experiment_name=plan.experiment_name,
        description=plan.description,
        tags=plan.tags,
        source=plan.source,
        created_at=entry.created_at,
        updated_at=entry.updated_at,
        error=entry.reason or None if entry.status is RunStatus.FAILED else None,
        resumed_from=plan.resumed_from,
        resumed_by=entry.resumed_by or None,
        jobs=jobs,
        warnings=plan.warnings,
        links={"self": url, "cancel": f"{url}/cancel", "resume": f"{url}/resume", "logs": f"{url}/logs/"},
    )
    return detail, 200


def _job_status(
    clients: StorageClients, plan: RunPlan, job: JobPlan, entry: RunIndexEntry, api_base: str
) -> JobStatusBody:
    from shared.runs import load_step_definition, load_step_result
    from shared.runtime.records import read_progress

    step = StepRef(run_id=plan.run_id, job=job.name)
    logs = Link(href=f"{run_url(api_base, plan.run_id)}/logs/{job.name}/")
    try:
        result: StepResult | None = load_step_result(clients, step)
    except NotFoundError:
        result = None
    if result is not None:
        return _body(
            job,
            clients,
            logs,
            status=result.status.value,
            progress=result.progress,
            outputs=result.outputs,
            result=result,
        )
    try:
        load_step_definition(clients, step)
    except NotFoundError:
        status = RunStatus.CANCELED.value if entry.status is RunStatus.CANCELED else NOT_STARTED
        return _body(job, clients, logs, status=status, outputs=_planned_outputs(job))
    progress = read_progress(clients, step)
    return _body(job, clients, logs, status=RUNNING, progress=progress, outputs=_planned_outputs(job))


def _planned_outputs(job: JobPlan) -> dict[str, BlobData]:
    return {name: output.location for name, output in job.outputs.items()}


def _body(
    job: JobPlan,
    clients: StorageClients,
    logs: Link,
    *,
    status: str,
    outputs: dict[str, BlobData],
    progress: StepProgress | None = None,
    result: StepResult | None = None,
) -> JobStatusBody:
    counts: dict[str, Any] = {}
    if progress is not None:
        counts = {
            "mini_batches_total": progress.total_mini_batches if progress.dispatched else None,
            "mini_batches_succeeded": progress.succeeded_mini_batches,
            "mini_batches_failed": progress.failed_mini_batches,
            "items_succeeded": progress.items_succeeded,
            "items_failed": progress.items_failed,
            "mini_batches_carried": progress.carried_mini_batches,
            "eta_seconds": estimate_seconds_left(progress) if status == RUNNING else None,
        }
    return JobStatusBody(
        name=job.name,
        type=job.type.value if isinstance(job.type, JobType) else str(job.type),
        status=status,
        reason=result.reason if result is not None else "",
        reused_from=result.reused_from if result is not None else None,
        outputs={name: _blob_link(clients, location) for name, location in outputs.items()},
        logs=logs,
        **counts,
    )


def _blob_link(clients: StorageClients, location: BlobData) -> Link:
    base = clients.blob.url.rstrip("/")
    return Link(
        href=f"{base}/{location.container}/{location.path}", container=location.container, path=location.path
    )


def estimate_seconds_left(progress: StepProgress, now: datetime | None = None) -> float | None:
    """Seconds until every mini-batch has settled, at the pace since the first one was picked up.

    None while nothing has settled yet, or when the total is not known. Mini-batches a resume carried
    over settled before this run began: they are not part of its pace.
    """
    remaining = max(progress.total_mini_batches - progress.settled_mini_batches, 0)
    settled = progress.settled_mini_batches - progress.carried_mini_batches
    if not progress.dispatched:
        return None
    if remaining == 0:
        return 0.0
    if settled <= 0 or progress.first_activity_at is None:
        return None
    elapsed = ((now or datetime.now(UTC)) - progress.first_activity_at).total_seconds()
    if elapsed <= 0:
        return None
    return round(remaining * elapsed / settled, 1)


# --- cancel --------------------------------------------------------------------------------------


def cancel_run(context: ApiContext, request: RunRequest, api_base: str) -> tuple[CancelAccepted, int]:
    """Ask a run to stop: raise the cancel event on its orchestration and mark it CancelRequested.

    Cancelling twice is harmless (202 again). The orchestration stops the running steps' agents,
    records the jobs that did not finish as Canceled and ends the run as Canceled.

    Raises:
        NotFoundError: no run has this id.
        ApiError: 409 when the run has already ended (or its orchestration is not running).
    """
    from shared.orchestration import client as orchestration
    from shared.orchestration import run_index

    entry = run_index.get_run(context.clients, request.run_id)
    if entry.status.is_terminal:
        raise ApiError(
            f"run {request.run_id!r} has already ended ({entry.status.value}); there is nothing to cancel",
            status=409,
            run_id=request.run_id,
            run_status=entry.status.value,
        )
    if not orchestration.cancel_run(context.require_durable(), request.run_id):
        raise ApiError(
            f"run {request.run_id!r} is not running (its orchestration has ended or never started); "
            "there is nothing to cancel",
            status=409,
            run_id=request.run_id,
            run_status=entry.status.value,
        )
    run_index.set_status(context.clients, request.run_id, RunStatus.CANCEL_REQUESTED)
    logger.info("cancel requested for run %s", request.run_id)
    answer = CancelAccepted(
        run_id=request.run_id,
        status=RunStatus.CANCEL_REQUESTED.value,
        status_url=run_url(api_base, request.run_id),
    )
    return answer, 202


# --- resume --------------------------------------------------------------------------------------


def resume_run(context: ApiContext, request: RunRequest, api_base: str) -> tuple[ResumeAccepted, int]:
    """Start a new run that resumes a failed or canceled one, keeping its finished work.

    Raises:
        NotFoundError: no run has this id.
        ConflictError: 409 when the run has not failed or been canceled, or is being resumed already.
    """
    from shared.orchestration.resume import resume_run as start_resume
    from shared.telemetry import inject_trace_context

    plan = start_resume(
        context.clients, context.require_durable(), request.run_id, trace=inject_trace_context()
    )
    url = run_url(api_base, plan.run_id)
    answer = ResumeAccepted(
        run_id=plan.run_id,
        resumed_from=request.run_id,
        status=RunStatus.QUEUED.value,
        status_url=url,
        cancel_url=f"{url}/cancel",
    )
    return answer, 202


def terminal_statuses() -> set[str]:
    """Statuses after which a run changes no more (for clients that wait)."""
    return {status.value for status in RunStatus if status.is_terminal} | {StepStatus.CANCELED.value}
