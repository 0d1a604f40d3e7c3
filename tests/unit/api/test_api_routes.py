"""Route matching (Functions template syntax), parameter parsing and error answers of dispatch."""

from __future__ import annotations

from typing import Any

import pytest

from shared.api.app import ROUTES, route_named
from shared.api.context import ApiContext
from shared.api.http import ApiRequest, ApiResponse, error_response, status_for
from shared.api.models import ListRunsRequest, LogsRequest, RunRequest
from shared.api.routes import dispatch, match_route, parse_parameters
from shared.errors import (
    ApiError,
    ConfigurationError,
    NotFoundError,
    SnapshotError,
    SpecError,
    SpecIssue,
    StorageError,
)
from shared.settings import Settings


def _match(method: str, path: str) -> tuple[str, dict[str, str]] | None:
    found = match_route(ROUTES, method, path)
    return None if found is None else (found[0].name, found[1])


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("POST", "pipelines", ("submit_pipeline", {})),
        ("GET", "runs", ("list_runs", {})),
        ("GET", "runs/", ("list_runs", {})),
        ("GET", "runs/r-1", ("get_run", {"run_id": "r-1"})),
        ("POST", "runs/r-1/cancel", ("cancel_run", {"run_id": "r-1"})),
        ("GET", "runs/r-1/logs/", ("read_logs", {"run_id": "r-1", "path": ""})),
        (
            "GET",
            "runs/r-1/logs/score/user/stdout/0/p.txt",
            ("read_logs", {"run_id": "r-1", "path": "score/user/stdout/0/p.txt"}),
        ),
        ("GET", "runs/r-1/logs/a%2F..%2Fb", ("read_logs", {"run_id": "r-1", "path": "a/../b"})),
        ("GET", "assets", ("list_assets", {})),
        ("GET", "assets/iris", ("get_asset", {"name": "iris"})),
        ("GET", "assets/iris/3", ("get_asset", {"name": "iris", "version": "3"})),
        ("GET", "openapi.json", ("openapi", {})),
        ("GET", "nothing/here", None),
        ("GET", "runs/a/b", None),
    ],
)
def test_paths_match_their_route(method: str, path: str, expected: tuple[str, dict[str, str]] | None) -> None:
    assert _match(method, path) == expected


def test_a_known_path_with_the_wrong_method_is_405() -> None:
    with pytest.raises(ApiError, match="use POST") as caught:
        match_route(ROUTES, "GET", "runs/r-1/cancel")
    assert caught.value.status == 405


def test_route_templates_use_functions_syntax() -> None:
    assert route_named("read_logs").openapi_path == "/api/runs/{run_id}/logs/{path}"
    assert route_named("get_asset").openapi_path == "/api/assets/{name}/{version}"
    assert route_named("read_logs").path_parameters == ["run_id", "path"]
    names = [route.name for route in ROUTES]
    assert len(names) == len(set(names))


def _request(query: dict[str, str] | None = None, route_params: dict[str, str] | None = None) -> ApiRequest:
    return ApiRequest.build("GET", "http://127.0.0.1:7071/api/runs", query=query, route_params=route_params)


def test_parameters_parse_with_defaults_and_ignore_the_function_key() -> None:
    parsed = parse_parameters(ListRunsRequest, _request({"limit": "5", "code": "secret"}))
    assert parsed == ListRunsRequest(limit=5)


def test_unknown_query_parameter_is_named() -> None:
    with pytest.raises(
        ApiError, match="unknown query parameter: colour; expected continuation_token, limit, status"
    ):
        parse_parameters(ListRunsRequest, _request({"colour": "red"}))


def test_invalid_parameters_are_located() -> None:
    with pytest.raises(ApiError, match="query parameter 'limit': Input should be less than or equal to 500"):
        parse_parameters(ListRunsRequest, _request({"limit": "100000"}))
    with pytest.raises(ApiError, match="path parameter 'run_id'"):
        parse_parameters(RunRequest, _request(route_params={"run_id": "../etc"}))
    with pytest.raises(ApiError, match="query parameter 'offset'"):
        parse_parameters(LogsRequest, _request({"offset": "-1"}, {"run_id": "r", "path": "a/b"}))


def test_error_statuses() -> None:
    issue = SpecIssue("p.yml", 3, 5, "jobs.a", "bad")
    assert status_for(SpecError([issue])) == 400
    assert status_for(SnapshotError("too big")) == 400
    assert status_for(NotFoundError("gone")) == 404
    assert status_for(ApiError("conflict", status=409)) == 409
    assert status_for(StorageError("down")) == 503
    assert status_for(ConfigurationError("unset")) == 500
    answer = error_response(SpecError([issue])).json()
    assert answer["error"] == "SpecError"
    assert answer["issues"][0] == issue.to_dict()


def _context() -> ApiContext:
    return ApiContext(clients=None, settings=Settings())  # type: ignore[arg-type]


def test_dispatch_turns_errors_into_json_answers(caplog: pytest.LogCaptureFixture) -> None:
    from dataclasses import replace

    def missing(context: ApiContext, request: ApiRequest) -> ApiResponse:
        raise NotFoundError("run 'x' does not exist", run_id="x")

    def broken(context: ApiContext, request: ApiRequest) -> Any:
        raise RuntimeError("bug with a secret inside")

    route = route_named("get_run")
    answer = dispatch(replace(route, handler=missing), _context(), _request())
    assert answer.status == 404
    assert answer.json() == {"error": "NotFoundError", "message": "run 'x' does not exist", "run_id": "x"}
    answer = dispatch(replace(route, handler=broken), _context(), _request())
    assert answer.status == 500
    assert "secret" not in answer.body.decode()
    assert "bug with a secret inside" in caplog.text
