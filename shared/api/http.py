"""The raw HTTP request and response of the API, independent of the host that received them.

``functions/http_api.py`` builds an :class:`ApiRequest` from a ``func.HttpRequest`` and turns the
:class:`ApiResponse` into a ``func.HttpResponse``; the local host (:mod:`shared.host.server`) does the
same with ``http.server``. Everything between is plain Python, tested without either host.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel

from shared.errors import (
    ApiError,
    DataError,
    FanoutError,
    RegistryError,
    SnapshotError,
    SpecError,
    StorageError,
)

JSON = "application/json"
MAX_BODY_BYTES = 350 * 1024 * 1024
"""Largest request body accepted (a snapshot may be up to 300 MB, plus the spec and the framing)."""


@dataclass(frozen=True)
class ApiRequest:
    """One HTTP request, as both hosts see it.

    Attributes:
        method: upper-case HTTP method.
        url: the full request URL (used to build links in answers).
        route_params: values of the route template's parameters, e.g. ``{"run_id": "r1"}``.
        query: query parameters; a repeated key keeps its last value (as in Azure Functions).
        headers: request headers, with lower-case names.
        body: the raw body.
    """

    method: str
    url: str
    route_params: Mapping[str, str] = field(default_factory=dict)
    query: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""

    @classmethod
    def build(
        cls,
        method: str,
        url: str,
        *,
        route_params: Mapping[str, str] | None = None,
        query: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        body: bytes = b"",
    ) -> ApiRequest:
        """A request with normalised method and header names."""
        return cls(
            method=method.upper(),
            url=url,
            route_params=dict(route_params or {}),
            query=dict(query or {}),
            headers={name.lower(): value for name, value in (headers or {}).items()},
            body=body,
        )

    @property
    def content_type(self) -> str:
        """The media type of the body, lower case, without parameters (``""`` when absent)."""
        return self.headers.get("content-type", "").split(";", 1)[0].strip().lower()

    @property
    def api_base(self) -> str:
        """``scheme://host[:port]/api`` of this request, the prefix of every link in answers."""
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}/api"


@dataclass(frozen=True)
class ApiResponse:
    """One HTTP answer: status, body bytes, content type and extra headers."""

    status: int
    body: bytes = b""
    content_type: str = JSON
    headers: Mapping[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        """The body parsed as JSON (for tests and the client)."""
        return json.loads(self.body)


def json_response(
    payload: BaseModel | Mapping[str, Any], status: int = 200, headers: Mapping[str, str] | None = None
) -> ApiResponse:
    """A JSON answer from a model (by alias, ``None`` fields kept) or a plain mapping."""
    if isinstance(payload, BaseModel):
        body = payload.model_dump_json(by_alias=True).encode()
    else:
        body = json.dumps(payload, default=str).encode()
    return ApiResponse(status=status, body=body, headers=dict(headers or {}))


def status_for(error: FanoutError) -> int:
    """The HTTP status of a Fanout error: what an ApiError carries; 400 for errors about what the
    caller sent (a spec, a snapshot, data, an asset); 503 for storage; 500 for the rest."""
    if isinstance(error, ApiError):
        return error.status
    if isinstance(error, SpecError | SnapshotError | DataError | RegistryError):
        return 400
    if isinstance(error, StorageError):
        return 503
    return 500


def error_response(error: FanoutError) -> ApiResponse:
    """The JSON answer of a Fanout error: its ``to_dict()`` with the status of :func:`status_for`."""
    return json_response(error.to_dict(), status=status_for(error))
