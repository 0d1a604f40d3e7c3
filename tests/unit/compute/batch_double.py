"""A test double of the Azure Batch service at the HTTP transport level (unit-test fake, no network).

``BatchClient(..., transport=BatchDouble())`` sends every request here instead of the network. The
double records each request (method, path, query, JSON body) and answers from routes: a method and a
path pattern mapped to a list of replies used in order (the last one repeats). A reply is either a
:class:`Reply` or a function of the request returning one. Retry sleeps are recorded, not slept, so the
azure-core retry policy (429/5xx, ``Retry-After``) runs at full speed and can be asserted.

By default it behaves like a healthy Batch account with one pool per ``pools`` entry.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from azure.core.credentials import AccessToken
from azure.core.pipeline.transport import HttpTransport
from azure.core.rest import HttpRequest, HttpResponse
from azure.core.rest._http_response_impl import HttpResponseImpl
from azure.core.utils import CaseInsensitiveDict

ENDPOINT = "https://fanouttest.westeurope.batch.azure.com"
JSON_TYPE = "application/json;odata=minimalmetadata"


class StaticToken:
    """A TokenCredential that hands out a fixed bearer token (what Entra ID would give the Function App)."""

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes = scopes
        return AccessToken("test-token", int((datetime.now(UTC) + timedelta(hours=1)).timestamp()))


@dataclass
class Reply:
    """A scripted answer: JSON ``body`` (or raw bytes), status and headers."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any


Responder = Reply | Callable[[Recorded], Reply]


def batch_error(status: int, code: str, message: str = "", **headers: str) -> Reply:
    """A Batch error response (the service's OData error shape)."""
    body = {"odata.metadata": "x", "code": code, "message": {"lang": "en-US", "value": message or code}}
    return Reply(status, body, dict(headers))


class BatchDouble(HttpTransport):  # type: ignore[type-arg]
    def __init__(self, pools: dict[str, dict[str, Any]] | None = None) -> None:
        self.requests: list[Recorded] = []
        self.sleeps: list[float] = []
        self._routes: list[tuple[str, re.Pattern[str], list[Responder]]] = []
        self._lock = threading.Lock()
        self.pools = (
            pools if pools is not None else {"fanout-cpu": {"taskSlotsPerNode": 1, "container": True}}
        )
        self.jobs: dict[str, dict[str, Any]] = {}
        self.tasks: dict[str, dict[str, dict[str, Any]]] = {}

    # --- scripting --------------------------------------------------------------------------------

    def reply(self, method: str, path: str, *responses: Responder) -> None:
        """Answer ``method`` requests whose path fully matches the regex ``path`` (newest route wins)."""
        self._routes.insert(0, (method.upper(), re.compile(path), list(responses)))

    def calls(self, method: str | None = None, path: str | None = None) -> list[Recorded]:
        return [
            r
            for r in self.requests
            if (method is None or r.method == method.upper()) and (path is None or re.fullmatch(path, r.path))
        ]

    # --- transport --------------------------------------------------------------------------------

    def __enter__(self) -> BatchDouble:
        return self

    def __exit__(self, *args: object) -> None:
        return None

    def open(self) -> None:
        return None

    def close(self) -> None:
        return None

    def sleep(self, duration: float) -> None:
        self.sleeps.append(duration)

    def send(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:  # type: ignore[override]
        url = urlparse(request.url)
        raw = request.content
        body = json.loads(raw) if raw else None
        recorded = Recorded(
            request.method, unquote(url.path), parse_qs(url.query), dict(request.headers), body
        )
        with self._lock:
            self.requests.append(recorded)
            reply = self._answer(recorded)
        return self._response(request, reply)

    def _answer(self, recorded: Recorded) -> Reply:
        for method, pattern, responses in self._routes:
            if method == recorded.method and pattern.fullmatch(recorded.path):
                responder = responses.pop(0) if len(responses) > 1 else responses[0]
                return responder(recorded) if callable(responder) else responder
        return self._default(recorded)

    @staticmethod
    def _response(request: HttpRequest, reply: Reply) -> HttpResponse:
        if isinstance(reply.body, bytes):
            content = reply.body
        else:
            content = b"" if reply.body is None else json.dumps(reply.body).encode()
        headers = CaseInsensitiveDict({"content-type": JSON_TYPE, "request-id": "r", **reply.headers})
        response = HttpResponseImpl(
            request=request,
            internal_response=None,
            status_code=reply.status,
            reason="scripted",
            content_type=headers["content-type"],
            headers=headers,
            stream_download_generator=None,
        )
        response._content = content
        response._is_closed = True
        response._is_stream_consumed = True
        return response

    # --- a small, healthy Batch account -----------------------------------------------------------

    def _default(self, r: Recorded) -> Reply:  # noqa: PLR0911 - one branch per REST operation
        parts = r.path.strip("/").split("/")
        if r.method == "GET" and len(parts) == 2 and parts[0] == "pools":
            pool = self.pools.get(parts[1])
            if pool is None:
                return batch_error(404, "PoolNotFound", "The specified pool does not exist.")
            vm: dict[str, Any] = {"imageReference": {}, "nodeAgentSKUId": "batch.node.ubuntu 24.04"}
            if pool.get("container"):
                vm["containerConfiguration"] = {"type": "dockerCompatible"}
            return Reply(
                200,
                {
                    "id": parts[1],
                    "vmSize": pool.get("vmSize", "standard_d4s_v5"),
                    "taskSlotsPerNode": pool.get("taskSlotsPerNode", 1),
                    "virtualMachineConfiguration": vm,
                    "resizeErrors": pool.get("resizeErrors", []),
                },
            )
        if r.method == "POST" and parts == ["jobs"]:
            if r.body["id"] in self.jobs:
                return batch_error(409, "JobExists", "The specified job already exists.")
            self.jobs[r.body["id"]] = {**r.body, "state": "active"}
            self.tasks[r.body["id"]] = {}
            return Reply(201)
        if len(parts) >= 2 and parts[0] == "jobs" and parts[1] not in self.jobs:
            return batch_error(404, "JobNotFound", "The specified job does not exist.")
        if r.method == "GET" and len(parts) == 2 and parts[0] == "jobs":
            return Reply(200, self.jobs[parts[1]])
        if r.method == "PATCH" and len(parts) == 2 and parts[0] == "jobs":
            self.jobs[parts[1]].update(r.body)
            return Reply(200)
        if r.method == "POST" and len(parts) == 3 and parts[2] == "addtaskcollection":
            return Reply(200, {"value": self._add(parts[1], r.body["value"])})
        if r.method == "POST" and len(parts) == 3 and parts[2] == "terminate":
            job = self.jobs[parts[1]]
            job["state"] = "completed"
            job["executionInfo"] = {"startTime": "2026-01-01T00:00:00Z", **(r.body or {})}
            return Reply(202)
        if r.method == "GET" and len(parts) == 3 and parts[2] == "tasks":
            return Reply(200, {"value": list(self.tasks[parts[1]].values())})
        if r.method == "GET" and len(parts) == 3 and parts[2] == "jobpreparationandreleasetaskstatus":
            return Reply(200, {"value": []})
        return batch_error(400, "UnexpectedRequest", f"the double has no answer for {r.method} {r.path}")

    def _add(self, job_id: str, tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
        results = []
        for task in tasks:
            if task["id"] in self.tasks[job_id]:
                error = {"code": "TaskExists", "message": {"value": "The specified task already exists."}}
                results.append({"status": "clienterror", "taskId": task["id"], "error": error})
            else:
                self.tasks[job_id][task["id"]] = {**task, "state": "active"}
                results.append({"status": "success", "taskId": task["id"]})
        return results
