"""HTTP triggers: one function per API route, each a thin adapter over :mod:`shared.api`.

A function turns the ``func.HttpRequest`` into an :class:`~shared.api.http.ApiRequest`, dispatches it to
its route (:data:`shared.api.app.ROUTES`) and turns the answer into a ``func.HttpResponse``. Every route
needs the function key (``func.AuthLevel.FUNCTION``). Routes that talk to the durable engine (submit,
cancel, resume) also get the durable client binding and run their handler in a worker thread.
"""

from __future__ import annotations

import azure.durable_functions as df
import azure.functions as func

from functions.client import FunctionsDurableClient, run_with_client
from functions.constants import CLIENT_ARG
from shared.api.http import ApiRequest, ApiResponse

bp = df.Blueprint()

_AUTH = func.AuthLevel.FUNCTION


def to_api_request(req: func.HttpRequest) -> ApiRequest:
    """The host-independent request of a Functions HTTP request (empty route values dropped)."""
    return ApiRequest.build(
        req.method,
        req.url,
        route_params={key: value for key, value in req.route_params.items() if value},
        query=dict(req.params),
        headers=dict(req.headers),
        body=req.get_body() or b"",
    )


def to_http_response(answer: ApiResponse) -> func.HttpResponse:
    """The Functions response of an answer (the worker sets Content-Type from ``mimetype``)."""
    return func.HttpResponse(
        body=answer.body,
        status_code=answer.status,
        headers=dict(answer.headers),
        mimetype=answer.content_type.split(";", 1)[0].strip(),
        charset="utf-8",
    )


def respond(
    route_name: str, req: func.HttpRequest, durable: FunctionsDurableClient | None = None
) -> func.HttpResponse:
    """Answer ``req`` with the route called ``route_name`` (synchronous; blocking I/O)."""
    from functions.runtime import configure, storage_clients
    from shared.api.app import route_named
    from shared.api.context import ApiContext
    from shared.api.routes import dispatch

    context = ApiContext(clients=storage_clients(), settings=configure(), durable=durable)
    return to_http_response(dispatch(route_named(route_name), context, to_api_request(req)))


async def respond_with_client(
    route_name: str, req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """Like :func:`respond`, for a route that talks to the durable engine: the handler runs in a worker
    thread with a synchronous client over the binding's ``client``."""
    return await run_with_client(client, lambda durable: respond(route_name, req, durable))


@bp.function_name("submit_pipeline")
@bp.route(route="pipelines", methods=["POST"], auth_level=_AUTH)
@bp.durable_client_input(client_name=CLIENT_ARG)
async def submit_pipeline(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """POST /api/pipelines: submit a pipeline spec (with code and overrides) and start its run."""
    return await respond_with_client("submit_pipeline", req, client)


@bp.function_name("list_runs")
@bp.route(route="runs", methods=["GET"], auth_level=_AUTH)
def list_runs(req: func.HttpRequest) -> func.HttpResponse:
    """GET /api/runs: a page of runs, newest first."""
    return respond("list_runs", req)


@bp.function_name("get_run")
@bp.route(route="runs/{run_id}", methods=["GET"], auth_level=_AUTH)
def get_run(req: func.HttpRequest) -> func.HttpResponse:
    """GET /api/runs/{run_id}: a run's status and each job's progress."""
    return respond("get_run", req)


@bp.function_name("cancel_run")
@bp.route(route="runs/{run_id}/cancel", methods=["POST"], auth_level=_AUTH)
@bp.durable_client_input(client_name=CLIENT_ARG)
async def cancel_run(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """POST /api/runs/{run_id}/cancel: cancel a run."""
    return await respond_with_client("cancel_run", req, client)


@bp.function_name("resume_run")
@bp.route(route="runs/{run_id}/resume", methods=["POST"], auth_level=_AUTH)
@bp.durable_client_input(client_name=CLIENT_ARG)
async def resume_run(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """POST /api/runs/{run_id}/resume: start a new run that resumes a failed or canceled one."""
    return await respond_with_client("resume_run", req, client)


@bp.function_name("read_logs")
@bp.route(route="runs/{run_id}/logs/{*path}", methods=["GET"], auth_level=_AUTH)
def read_logs(req: func.HttpRequest) -> func.HttpResponse:
    """GET /api/runs/{run_id}/logs/{path}: list a run's jobs or log files, or read one file."""
    return respond("read_logs", req)


@bp.function_name("list_assets")
@bp.route(route="assets", methods=["GET"], auth_level=_AUTH)
def list_assets(req: func.HttpRequest) -> func.HttpResponse:
    """GET /api/assets: the registered data assets."""
    return respond("list_assets", req)


@bp.function_name("get_asset")
@bp.route(route="assets/{name}/{version?}", methods=["GET"], auth_level=_AUTH)
def get_asset(req: func.HttpRequest) -> func.HttpResponse:
    """GET /api/assets/{name}/{version}: one data asset version (the latest without a version)."""
    return respond("get_asset", req)


@bp.function_name("openapi")
@bp.route(route="openapi.json", methods=["GET"], auth_level=_AUTH)
def openapi(req: func.HttpRequest) -> func.HttpResponse:
    """GET /api/openapi.json: the API's OpenAPI document."""
    return respond("openapi", req)
