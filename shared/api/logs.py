"""Log handlers: list a run's jobs or a job's log tree, and read one log file (from an offset).

A job's logs live under ``runs/<run>/<job>/logs/`` (:func:`shared.storage.logs_path`), in Azure ML's
layout (``job_result.txt``, ``user/stdout/<node>/...``). The path of the request is ``<job>/<file>``
relative to that tree and is checked strictly before any storage call: no ``..`` or ``.`` segments,
no empty segments, no backslashes or control characters — a path can never leave the job's tree.
"""

from __future__ import annotations

import re

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from shared.api.context import ApiContext
from shared.api.http import ApiResponse
from shared.api.models import LogFile, LogListing, LogsRequest
from shared.errors import ApiError, NotFoundError
from shared.storage import Container, logs_path

#: Largest slice of a log returned by one request; clients follow with ``offset``.
MAX_LOG_CHUNK = 4 * 1024 * 1024
SIZE_HEADER = "x-fanout-log-size"
NEXT_OFFSET_HEADER = "x-fanout-next-offset"

_SEGMENT = re.compile(r"^[^\x00-\x1f\x7f\\]+$")


def split_log_path(path: str) -> tuple[str | None, str]:
    """``(job, file path)`` of a request path; ``(None, "")`` for the run's root.

    A trailing slash (or no file part) means "list".

    Raises:
        ApiError: the path is absolute, has ``..``/``.``/empty segments, backslashes or control
            characters.
    """
    if path in ("", "/"):
        return None, ""
    if path.startswith("/"):
        raise ApiError(f"log path {path!r} must be relative: '<job>/<file>'", path=path)
    segments = path.rstrip("/").split("/")
    for segment in segments:
        if segment in ("", ".", "..") or not _SEGMENT.match(segment):
            raise ApiError(
                f"log path {path!r} is not allowed: segment {segment!r} could leave the job's log "
                "folder (no '..', '.', empty segments, backslashes or control characters)",
                path=path,
            )
    return segments[0], "/".join(segments[1:])


def read_logs(
    context: ApiContext, request: LogsRequest, api_base: str
) -> ApiResponse | tuple[LogListing, int]:
    """List the run's jobs (no job), a job's log files (``<job>/``), or return one file's text.

    Raises:
        ApiError: the path is not allowed.
        NotFoundError: the run, the job or the file does not exist.
    """
    from shared.runs import load_plan

    job, file_path = split_log_path(request.path)
    plan = load_plan(context.clients, request.run_id)
    jobs = [job_plan.name for job_plan in plan.jobs]
    if job is None:
        return LogListing(run_id=request.run_id, jobs=jobs), 200
    if job not in jobs:
        raise NotFoundError(
            f"run {request.run_id!r} has no job {job!r}; its jobs are {', '.join(jobs)}",
            run_id=request.run_id,
            job=job,
        )
    if not file_path:
        return _listing(context, request.run_id, job, api_base), 200
    return _read_file(context, request.run_id, job, file_path, request.offset)


def _listing(context: ApiContext, run_id: str, job: str, api_base: str) -> LogListing:
    prefix = logs_path(run_id, job) + "/"
    container = context.clients.container(Container.RUNS)
    files = [
        LogFile(
            path=blob.name[len(prefix) :],
            size=blob.size,
            modified_at=blob.last_modified,
            url=f"{api_base}/runs/{run_id}/logs/{job}/{blob.name[len(prefix) :]}",
        )
        for blob in container.list_blobs(name_starts_with=prefix)
    ]
    return LogListing(run_id=run_id, job=job, files=files)


def _read_file(context: ApiContext, run_id: str, job: str, file_path: str, offset: int) -> ApiResponse:
    blob = context.clients.container(Container.RUNS).get_blob_client(logs_path(run_id, job, file_path))
    try:
        size = blob.get_blob_properties().size
        if offset >= size:
            data = b""
        else:
            data = blob.download_blob(offset=offset, length=min(size - offset, MAX_LOG_CHUNK)).readall()
    except ResourceNotFoundError as exc:
        raise NotFoundError(
            f"run {run_id!r}, job {job!r} has no log file {file_path!r}",
            run_id=run_id,
            job=job,
            path=file_path,
        ) from exc
    except HttpResponseError as exc:  # 416 when the blob shrank between the two calls
        if exc.status_code != 416:
            raise
        data = b""
    return ApiResponse(
        status=200,
        body=data,
        content_type="text/plain; charset=utf-8",
        headers={SIZE_HEADER: str(size), NEXT_OFFSET_HEADER: str(min(offset, size) + len(data))},
    )
