"""The API's routes: each parses its raw request into a request model and calls one handler.

``ROUTES`` is the single list both hosts serve and the OpenAPI document describes. Route names are
the Azure Functions' names (``functions/http_api.py`` registers one function per route).
"""

from __future__ import annotations

from shared.api import assets, logs, pipelines, runs
from shared.api.context import ApiContext
from shared.api.http import ApiRequest, ApiResponse, json_response
from shared.api.models import (
    AssetDetail,
    AssetList,
    AssetRequest,
    CancelAccepted,
    ListRunsRequest,
    LogListing,
    LogsRequest,
    NoParameters,
    ResumeAccepted,
    RunDetail,
    RunList,
    RunRequest,
    SubmitAccepted,
    SubmitPipelineJson,
)
from shared.api.routes import Route, parse_parameters

_YAML_BODY = {"type": "string", "description": "The pipeline spec (YAML or JSON text)."}
_MULTIPART_BODY = {
    "type": "object",
    "required": ["spec"],
    "properties": {
        "spec": {"type": "string", "description": "The pipeline spec (a file or text)."},
        "snapshot": {
            "type": "string",
            "contentMediaType": "application/zip",
            "description": (
                "The folder the spec's relative paths are relative to, as a zip: each code: folder "
                "and local input inside it is bundled as `fanout submit` does."
            ),
        },
        "set": {
            "type": "array",
            "items": {"type": "string"},
            "description": "Overrides, one 'path=value' per field (like `fanout submit --set`).",
        },
        "overrides": {"type": "string", "description": "Overrides as a JSON object of path -> value."},
    },
}


def _submit(context: ApiContext, request: ApiRequest) -> ApiResponse:
    if request.query:
        parse_parameters(NoParameters, request)
    submission = pipelines.parse_submit_request(request)
    answer, status = pipelines.submit_pipeline(context, submission, request.api_base)
    return json_response(answer, status, headers={"Location": answer.status_url, "Retry-After": "5"})


def _list_runs(context: ApiContext, request: ApiRequest) -> ApiResponse:
    answer, status = runs.list_runs(context, parse_parameters(ListRunsRequest, request), request.api_base)
    return json_response(answer, status)


def _get_run(context: ApiContext, request: ApiRequest) -> ApiResponse:
    answer, status = runs.get_run(context, parse_parameters(RunRequest, request), request.api_base)
    return json_response(answer, status)


def _cancel_run(context: ApiContext, request: ApiRequest) -> ApiResponse:
    answer, status = runs.cancel_run(context, parse_parameters(RunRequest, request), request.api_base)
    return json_response(answer, status, headers={"Location": answer.status_url})


def _resume_run(context: ApiContext, request: ApiRequest) -> ApiResponse:
    answer, status = runs.resume_run(context, parse_parameters(RunRequest, request), request.api_base)
    return json_response(answer, status, headers={"Location": answer.status_url, "Retry-After": "5"})


def _read_logs(context: ApiContext, request: ApiRequest) -> ApiResponse:
    answer = logs.read_logs(context, parse_parameters(LogsRequest, request), request.api_base)
    if isinstance(answer, ApiResponse):
        return answer
    listing, status = answer
    return json_response(listing, status)


def _list_assets(context: ApiContext, request: ApiRequest) -> ApiResponse:
    parse_parameters(NoParameters, request)
    answer, status = assets.list_assets(context)
    return json_response(answer, status)


def _get_asset(context: ApiContext, request: ApiRequest) -> ApiResponse:
    answer, status = assets.get_asset(context, parse_parameters(AssetRequest, request))
    return json_response(answer, status)


def _openapi(context: ApiContext, request: ApiRequest) -> ApiResponse:  # noqa: ARG001 - route signature
    from shared.api.openapi import openapi_json

    return ApiResponse(status=200, body=openapi_json(ROUTES).encode())


_NOT_FOUND = ("No such run (or job, log file, asset).", None)

ROUTES: list[Route] = [
    Route(
        name="submit_pipeline",
        method="POST",
        template="pipelines",
        handler=_submit,
        summary="Submit a pipeline spec (with an optional code zip and overrides); starts a run.",
        request_bodies={
            "application/yaml": _YAML_BODY,
            "application/json": SubmitPipelineJson,
            "multipart/form-data": _MULTIPART_BODY,
        },
        responses={202: ("The run was started.", SubmitAccepted), 415: ("Unsupported Content-Type.", None)},
        needs_durable=True,
    ),
    Route(
        name="list_runs",
        method="GET",
        template="runs",
        handler=_list_runs,
        summary="List runs, newest first, optionally by status; paged with a continuation token.",
        parameters=ListRunsRequest,
        responses={200: ("A page of runs.", RunList)},
    ),
    Route(
        name="get_run",
        method="GET",
        template="runs/{run_id}",
        handler=_get_run,
        summary="A run's status and each job's progress, outputs and logs.",
        parameters=RunRequest,
        responses={200: ("The run.", RunDetail), 404: _NOT_FOUND},
    ),
    Route(
        name="cancel_run",
        method="POST",
        template="runs/{run_id}/cancel",
        handler=_cancel_run,
        summary="Cancel a run: running steps stop, jobs not finished become Canceled.",
        parameters=RunRequest,
        responses={
            202: ("Cancellation requested.", CancelAccepted),
            404: _NOT_FOUND,
            409: ("The run has already ended.", None),
        },
        needs_durable=True,
    ),
    Route(
        name="resume_run",
        method="POST",
        template="runs/{run_id}/resume",
        handler=_resume_run,
        summary="Resume a failed or canceled run: a new run that keeps its finished jobs and mini-batches.",
        parameters=RunRequest,
        responses={
            202: ("A new run was started; it resumes this one.", ResumeAccepted),
            404: _NOT_FOUND,
            409: ("The run has not failed or been canceled, or is being resumed already.", None),
        },
        needs_durable=True,
    ),
    Route(
        name="read_logs",
        method="GET",
        template="runs/{run_id}/logs/{*path}",
        handler=_read_logs,
        summary="List a run's jobs, a job's log files ('<job>/'), or read one file ('<job>/<file>').",
        parameters=LogsRequest,
        responses={
            200: ("A listing (JSON), or the file's text from `offset` (text/plain).", LogListing),
            404: _NOT_FOUND,
        },
    ),
    Route(
        name="list_assets",
        method="GET",
        template="assets",
        handler=_list_assets,
        summary="List registered data assets, each with its latest version.",
        responses={200: ("The data assets.", AssetList)},
    ),
    Route(
        name="get_asset",
        method="GET",
        template="assets/{name}/{version?}",
        handler=_get_asset,
        summary="One data asset version (the latest when no version is given).",
        parameters=AssetRequest,
        responses={200: ("The asset version and the versions it has.", AssetDetail), 404: _NOT_FOUND},
    ),
    Route(
        name="openapi",
        method="GET",
        template="openapi.json",
        handler=_openapi,
        summary="This OpenAPI document.",
        responses={200: ("The OpenAPI 3.1 document.", None)},
    ),
]


def route_named(name: str) -> Route:
    """The route called ``name``. Raises KeyError when there is none."""
    for route in ROUTES:
        if route.name == name:
            return route
    raise KeyError(name)
