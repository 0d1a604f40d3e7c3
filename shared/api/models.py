"""Request and response bodies of the HTTP API; the OpenAPI document's schemas come from these.

Request models hold what a handler needs after the host's raw request was parsed (path parameters,
query parameters, the body); response models are what the handlers return. Every one is a
:class:`~shared.models.FrozenModel` with a description on each field.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from shared.models import FrozenModel
from shared.registry import AssetSummary, AssetVersion, AssetVersionInfo

#: Run ids are also durable instance ids and blob folder names: no slashes, at most 100 characters.
RUN_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"
ASSET_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$"


# --- errors ----------------------------------------------------------------------------------------


class SpecIssueBody(FrozenModel):
    """One located problem in a spec (``file:line:column``, JSON path, message, what was expected)."""

    file: str = Field(description="The spec's file or blob name.")
    line: int = Field(description="1-based line.")
    column: int = Field(description="1-based column.")
    path: str = Field(description="JSON path of the offending value, e.g. 'jobs.score.mini_batch_size'.")
    message: str = Field(description="What is wrong.")
    expected: str = Field(default="", description="What would be accepted, with an example.")
    severity: str = Field(default="error", description="'error' or 'warning'.")


class ErrorBody(FrozenModel):
    """Every error answer: the error kind, a sentence, and located details when there are some.

    Spec errors carry ``issues``; other errors may carry structured fields (``run_id``, ``path``...) at
    the top level, which is why this schema allows additional properties.
    """

    model_config = FrozenModel.model_config | {"extra": "allow"}

    error: str = Field(description="Kind of error, e.g. 'SpecError', 'NotFoundError', 'ApiError'.")
    message: str = Field(description="What went wrong, as a sentence a user can act on.")
    issues: list[SpecIssueBody] | None = Field(default=None, description="Spec errors: every located issue.")


class NoParameters(FrozenModel):
    """A route without query parameters (any given is an error)."""


# --- pipelines -------------------------------------------------------------------------------------


class SubmitPipelineJson(FrozenModel):
    """``POST /api/pipelines`` with ``Content-Type: application/json``."""

    spec: str | dict[str, Any] = Field(
        description="The pipeline spec: YAML (or JSON) text, or the spec as a JSON object.",
        examples=["$schema: ...\ntype: pipeline\njobs: {...}"],
    )
    overrides: dict[str, str] = Field(
        default_factory=dict,
        description="`--set`-style overrides: dotted path -> value, e.g. {'inputs.threshold': '0.5'}.",
    )
    source: str | None = Field(
        default=None, description="A name for the spec in messages, e.g. 'pipeline.yml'."
    )


class SubmitPipelineRequest(FrozenModel):
    """What ``POST /api/pipelines`` carries after parsing, whatever the body's content type."""

    spec_text: str = Field(description="The spec as YAML or JSON text.")
    source: str = Field(default="request", description="Name of the spec in error locations.")
    overrides: dict[str, str] = Field(default_factory=dict, description="Dotted path -> value overrides.")
    snapshot: bytes | None = Field(default=None, description="A zipped code folder, if one was sent.")
    snapshot_name: str | None = Field(default=None, description="File name of the zip, for messages.")


class SubmitAccepted(FrozenModel):
    """202 answer of ``POST /api/pipelines``."""

    run_id: str = Field(description="Id of the new run.")
    status: str = Field(description="The run's status right after submission.")
    status_url: str = Field(description="GET this for the run's status and progress.")
    cancel_url: str = Field(description="POST here to cancel the run.")
    snapshot: str | None = Field(default=None, description="Content hash of the uploaded code snapshot.")
    warnings: list[str] = Field(default_factory=list, description="Validation warnings.")


# --- runs ------------------------------------------------------------------------------------------


class ListRunsRequest(FrozenModel):
    """Query of ``GET /api/runs``."""

    status: str | None = Field(default=None, description="Only runs with this status, e.g. 'Running'.")
    limit: int = Field(default=50, ge=1, le=500, description="Runs per page.")
    continuation_token: str | None = Field(
        default=None, description="The `continuation_token` of the previous page, to get the next one."
    )


class RunRequest(FrozenModel):
    """Path of ``/api/runs/{run_id}`` and its sub-resources."""

    run_id: str = Field(pattern=RUN_ID_PATTERN, description="The run id.")


class RunSummary(FrozenModel):
    """One run in a listing."""

    run_id: str = Field(description="The run id.")
    status: str = Field(description="NotStarted, Running, Completed, Failed, CancelRequested, Canceled...")
    display_name: str | None = Field(default=None, description="The spec's display_name.")
    experiment_name: str | None = Field(default=None, description="The spec's experiment_name.")
    created_at: datetime | None = Field(default=None, description="When the run was submitted (UTC).")
    updated_at: datetime | None = Field(default=None, description="Last status change (UTC).")
    source: str = Field(default="", description="Where the spec came from (file or blob name).")
    url: str = Field(description="The run's status URL.")
    resumed_from: str | None = Field(default=None, description="The run this run resumes, if any.")


class RunList(FrozenModel):
    """A page of runs, newest first."""

    runs: list[RunSummary] = Field(description="Runs on this page.")
    continuation_token: str | None = Field(
        default=None, description="Pass as `continuation_token` for the next page; absent on the last."
    )


class Link(FrozenModel):
    """Where something can be read."""

    href: str = Field(description="URL (API URL for logs; blob URL for outputs).")
    container: str | None = Field(default=None, description="Storage container, for blob locations.")
    path: str | None = Field(default=None, description="Blob name or prefix inside the container.")


class JobStatusBody(FrozenModel):
    """One job of a run: status and progress."""

    name: str = Field(description="Job name in the pipeline.")
    type: str = Field(description="'parallel' or 'command'.")
    status: str = Field(description="NotStarted, Running, Completed, Failed, Canceled, Skipped, Reused.")
    reason: str = Field(default="", description="Why it ended the way it did.")
    mini_batches_total: int | None = Field(default=None, description="Mini-batches planned (parallel jobs).")
    mini_batches_succeeded: int = Field(default=0, description="Mini-batches that succeeded.")
    mini_batches_failed: int = Field(default=0, description="Mini-batches that failed for good.")
    items_total: int | None = Field(default=None, description="Items (files or rows), when known.")
    items_succeeded: int = Field(default=0, description="Items processed successfully.")
    items_failed: int = Field(default=0, description="Items that failed.")
    eta_seconds: float | None = Field(
        default=None, description="Estimated seconds left, from the pace so far."
    )
    mini_batches_carried: int = Field(
        default=0,
        description="Of the succeeded mini-batches, those carried over from the run this run resumes "
        "(not run again).",
    )
    reused_from: str | None = Field(default=None, description="Run whose outputs were reused.")
    outputs: dict[str, Link] = Field(default_factory=dict, description="Where each output is.")
    logs: Link | None = Field(default=None, description="The job's log tree.")


class RunDetail(FrozenModel):
    """``GET /api/runs/{run_id}``."""

    run_id: str = Field(description="The run id.")
    status: str = Field(description="The run's status.")
    display_name: str | None = Field(default=None, description="The spec's display_name.")
    experiment_name: str | None = Field(default=None, description="The spec's experiment_name.")
    description: str | None = Field(default=None, description="The spec's description.")
    tags: dict[str, str] = Field(default_factory=dict, description="The spec's tags.")
    source: str = Field(default="", description="Where the spec came from.")
    created_at: datetime | None = Field(default=None, description="Submission time (UTC).")
    updated_at: datetime | None = Field(default=None, description="Last status change (UTC).")
    error: str | None = Field(default=None, description="Why the run failed, when it did.")
    resumed_from: str | None = Field(
        default=None, description="The failed or canceled run this run resumes (its finished work is kept)."
    )
    resumed_by: str | None = Field(default=None, description="The latest run started to resume this one.")
    jobs: list[JobStatusBody] = Field(description="Every job, in the pipeline's topological order.")
    warnings: list[str] = Field(default_factory=list, description="Validation warnings of the spec.")
    links: dict[str, str] = Field(default_factory=dict, description="'self', 'cancel', 'resume', 'logs'.")


class CancelAccepted(FrozenModel):
    """202 answer of ``POST /api/runs/{run_id}/cancel``."""

    run_id: str = Field(description="The run id.")
    status: str = Field(description="CancelRequested, or the final status when the run had already ended.")
    status_url: str = Field(description="GET this to follow the cancellation.")


class ResumeAccepted(FrozenModel):
    """202 answer of ``POST /api/runs/{run_id}/resume``: the new run that resumes the failed one."""

    run_id: str = Field(description="Id of the new run.")
    resumed_from: str = Field(description="The run it resumes.")
    status: str = Field(description="The new run's status right after it was started.")
    status_url: str = Field(description="GET this for the new run's status and progress.")
    cancel_url: str = Field(description="POST here to cancel the new run.")


# --- logs ------------------------------------------------------------------------------------------


class LogsRequest(FrozenModel):
    """Path of ``GET /api/runs/{run_id}/logs/{path}``."""

    run_id: str = Field(pattern=RUN_ID_PATTERN, description="The run id.")
    path: str = Field(
        default="",
        description="'<job>' or '<job>/' lists a job's log tree; '<job>/<file path>' reads one file, e.g. "
        "'score/job_result.txt' or 'score/user/stdout/0/process000.stdout.txt'.",
    )
    offset: int = Field(default=0, ge=0, description="Files: first byte to return (to follow a growing log).")


class LogFile(FrozenModel):
    """One file of a log tree."""

    path: str = Field(
        description="Path under the job's log tree, e.g. 'user/stdout/0/process000.stdout.txt'."
    )
    size: int = Field(description="Size in bytes.")
    modified_at: datetime | None = Field(default=None, description="Last write (UTC).")
    url: str = Field(description="GET this for the file's content.")


class LogListing(FrozenModel):
    """A job's log tree (or the jobs of a run, when no job is given)."""

    run_id: str = Field(description="The run id.")
    job: str | None = Field(default=None, description="The job, or None for the list of the run's jobs.")
    jobs: list[str] = Field(default_factory=list, description="Jobs of the run (listing without a job).")
    files: list[LogFile] = Field(default_factory=list, description="Files of the job's log tree.")


# --- assets ----------------------------------------------------------------------------------------


class AssetRequest(FrozenModel):
    """Path of ``/api/assets/{name}[/{version}]``."""

    name: str = Field(pattern=ASSET_NAME_PATTERN, description="Asset name.")
    version: str | None = Field(default=None, description="A version, or absent/'latest' for the latest.")


class AssetList(FrozenModel):
    """``GET /api/assets``."""

    assets: list[AssetSummary] = Field(description="Each data asset with its latest version, by name.")


class AssetDetail(AssetVersion):
    """``GET /api/assets/{name}[/{version}]``: one version of a data asset, and the versions it has."""

    versions: list[AssetVersionInfo] = Field(description="Every version of the asset, oldest first.")
