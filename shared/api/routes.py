"""The route table of the HTTP API, route matching for the local host, and dispatch.

Each :class:`Route` names one Azure Function (``name``), its method and route template (Functions
syntax: ``{param}``, optional ``{param?}``, catch-all ``{*param}``; relative to ``/api/``), the handler
and what the OpenAPI document says about it. ``functions/http_api.py`` registers one function per route;
the local host matches paths with :func:`match_route`. Both then call :func:`dispatch`, which runs the
handler and turns every :class:`~shared.errors.FanoutError` into a JSON error answer.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import unquote

from pydantic import BaseModel, ValidationError

from shared.api.context import ApiContext
from shared.api.http import ApiRequest, ApiResponse, error_response, json_response
from shared.errors import ApiError, FanoutError
from shared.telemetry import attached_trace_context

logger = logging.getLogger(__name__)

Handler = Callable[[ApiContext, ApiRequest], ApiResponse]
ModelT = TypeVar("ModelT", bound=BaseModel)


@dataclass(frozen=True)
class Route:
    """One operation of the API.

    Attributes:
        name: the Azure Function's name and the OpenAPI ``operationId``.
        method: HTTP method.
        template: route template relative to ``/api/`` (``runs/{run_id}/logs/{*path}``).
        handler: parses the request and calls the plain handler function.
        summary: one line for the OpenAPI document.
        parameters: model of the path and query parameters (OpenAPI parameters come from its fields).
        request_bodies: content type -> body model or JSON schema (OpenAPI ``requestBody``).
        responses: status -> (description, body model or None).
        needs_durable: the handler talks to the durable engine (the Function gets a client binding).
    """

    name: str
    method: str
    template: str
    handler: Handler
    summary: str
    parameters: type[BaseModel] | None = None
    request_bodies: Mapping[str, type[BaseModel] | dict[str, Any]] = field(default_factory=dict)
    responses: Mapping[int, tuple[str, type[BaseModel] | None]] = field(default_factory=dict)
    needs_durable: bool = False

    @property
    def path_parameters(self) -> list[str]:
        """Names of the template's parameters, in order."""
        return [name for _, name, _ in _PARAM.findall(self.template)]

    @property
    def openapi_path(self) -> str:
        """The template as an OpenAPI path: ``/api/runs/{run_id}/logs/{path}``."""
        return "/api/" + _PARAM.sub(lambda m: "{" + m.group(2) + "}", self.template)


_PARAM = re.compile(r"\{(\*?)([A-Za-z_][A-Za-z0-9_]*)(\??)\}")


def _compile(template: str) -> re.Pattern[str]:
    pattern = ""
    position = 0
    for match in _PARAM.finditer(template):
        literal = template[position : match.start()]
        star, name, optional = match.groups()
        if optional and literal.endswith("/"):
            pattern += re.escape(literal[:-1]) + f"(?:/(?P<{name}>[^/]+))?"
        elif star:
            pattern += re.escape(literal) + f"(?P<{name}>.*)"
        else:
            pattern += re.escape(literal) + f"(?P<{name}>[^/]+)"
        position = match.end()
    return re.compile(pattern + re.escape(template[position:]) + r"/?\Z")


def match_route(routes: list[Route], method: str, path: str) -> tuple[Route, dict[str, str]] | None:
    """The route for ``method`` and ``path`` (relative to ``/api/``, still URL-encoded) and its
    decoded parameters; ``None`` when no route has that path.

    Raises:
        ApiError: 405 when the path exists but not for this method.
    """
    allowed: list[str] = []
    for route in routes:
        found = _compile(route.template).match(path)
        if found is None:
            continue
        if route.method != method.upper():
            allowed.append(route.method)
            continue
        return route, {key: unquote(value) for key, value in found.groupdict().items() if value is not None}
    if allowed:
        raise ApiError(
            f"method {method.upper()} is not allowed here; use {' or '.join(sorted(set(allowed)))}",
            status=405,
        )
    return None


def dispatch(route: Route, context: ApiContext, request: ApiRequest) -> ApiResponse:
    """Run the route's handler; FanoutErrors become their JSON answers, anything else a 500.

    A ``traceparent`` header of the caller becomes the parent of the handler's spans.
    """
    try:
        with attached_trace_context(request.headers):  # a client's traceparent: one trace end to end
            return route.handler(context, request)
    except FanoutError as exc:
        logger.info("%s %s -> %s: %s", request.method, route.name, type(exc).__name__, exc.message)
        return error_response(exc)
    except Exception:
        logger.exception("%s %s failed", request.method, route.name)
        return json_response(
            {"error": "InternalError", "message": "the server failed to answer; see its log"}, status=500
        )


def parse_parameters(model: type[ModelT], request: ApiRequest) -> ModelT:
    """The route and query parameters of ``request`` as ``model``.

    Raises:
        ApiError: 400 naming each parameter that is missing or invalid, and why.
    """
    values: dict[str, Any] = {**request.query, **request.route_params}
    known = set(model.model_fields)
    unknown = sorted(set(request.query) - known - {"code"})  # `code` is the function key
    if unknown:
        raise ApiError(
            f"unknown query parameter{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}; "
            f"expected {', '.join(sorted(known - set(request.route_params))) or 'none'}",
            parameters=unknown,
        )
    values = {key: value for key, value in values.items() if key in known}
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        problems = [
            f"{'path' if str(err['loc'][0]) in request.route_params else 'query'} parameter "
            f"{'.'.join(str(p) for p in err['loc'])!r}: {err['msg']}"
            for err in exc.errors()
        ]
        raise ApiError("; ".join(problems), parameters=[str(e["loc"][0]) for e in exc.errors()]) from exc
