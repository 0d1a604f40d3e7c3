"""A small client of Fanout's HTTP API, for the CLI (``submit``, ``status``, ``logs``, ``cancel``,
``resume``).

It talks to a deployed Function App or ``fanout serve`` (``FANOUT_API_URL`` + ``FANOUT_API_KEY``), or —
with only storage configured — answers in this process with the same route handlers over the storage
account (:class:`InProcessTransport`): listing and reading runs and logs needs no server. Cancelling
needs the durable engine, so it needs a server.

Every error answer becomes an :class:`~shared.errors.ApiError` (``NotFoundError`` for 404) carrying the
server's message, so the CLI prints what the server said.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

import httpx

from shared.errors import ApiError, ConfigurationError, NotFoundError
from shared.settings import Settings
from shared.storage import StorageClients
from shared.telemetry import inject_trace_context

logger = logging.getLogger(__name__)

KEY_HEADER = "x-functions-key"
TIMEOUT = httpx.Timeout(60.0, connect=10.0)


@dataclass(frozen=True)
class LogChunk:
    """Bytes of a log file from an offset, where to continue, and the file's size."""

    data: bytes
    next_offset: int
    size: int


class InProcessTransport(httpx.BaseTransport):
    """Answers API requests in this process with the route handlers over ``clients`` (no server)."""

    def __init__(self, clients: StorageClients, settings: Settings) -> None:
        self._clients = clients
        self._settings = settings

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Answer ``request`` with its route's handler in this process.

        Routes that need the durable engine (submit, cancel, resume) get a 400 that says how to reach a
        Fanout host instead.
        """
        from shared.api.app import ROUTES
        from shared.api.context import ApiContext
        from shared.api.http import ApiRequest
        from shared.api.routes import dispatch, match_route

        path = request.url.raw_path.decode("ascii").split("?", 1)[0]
        api_request = ApiRequest.build(
            request.method,
            str(request.url),
            query=dict(request.url.params),
            headers=dict(request.headers),
            body=request.read(),
        )
        try:
            found = match_route(ROUTES, request.method, path.removeprefix("/api/"))
        except ApiError as exc:
            return httpx.Response(exc.status, json=exc.to_dict())
        if found is None:
            return httpx.Response(404, json={"error": "NotFoundError", "message": f"no API route {path}"})
        route, params = found
        if route.needs_durable:
            return httpx.Response(
                400,
                json={
                    "error": "ConfigurationError",
                    "message": f"{route.name} needs a Fanout host: set FANOUT_API_URL and FANOUT_API_KEY "
                    "(`fanout serve` prints them) or deploy the Function App",
                },
            )
        routed = replace(api_request, route_params=params)
        answer = dispatch(route, ApiContext(clients=self._clients, settings=self._settings), routed)
        return httpx.Response(
            answer.status,
            content=answer.body,
            headers={**answer.headers, "content-type": answer.content_type},
        )


class FanoutClient:
    """The API's operations as methods returning parsed JSON.

    Args:
        http: an httpx client whose base URL is the API root (``.../api``) and that sends the key.
    """

    def __init__(self, http: httpx.Client) -> None:
        self._http = http

    @classmethod
    def connect(cls, base_url: str, key: str | None) -> FanoutClient:
        """A client of the API at ``base_url`` (``http://127.0.0.1:7071`` or ``.../api``)."""
        root = base_url.rstrip("/")
        root = root if root.endswith("/api") else root + "/api"
        headers = {KEY_HEADER: key} if key else {}
        return cls(httpx.Client(base_url=root, headers=headers, timeout=TIMEOUT))

    @classmethod
    def in_process(cls, clients: StorageClients, settings: Settings) -> FanoutClient:
        """A client answered by this process over storage (read-only operations)."""
        transport = InProcessTransport(clients, settings)
        return cls(httpx.Client(base_url="http://in-process/api", transport=transport, timeout=TIMEOUT))

    @classmethod
    def from_settings(cls, settings: Settings) -> FanoutClient:
        """The API at ``FANOUT_API_URL`` when set, else in-process over the configured storage.

        Raises:
            ConfigurationError: neither an API URL nor storage is configured.
        """
        if settings.api_url:
            return cls.connect(settings.api_url, settings.api_key)
        if settings.storage_configured:
            return cls.in_process(StorageClients.from_settings(settings), settings)
        raise ConfigurationError(
            "no Fanout to talk to: set FANOUT_API_URL and FANOUT_API_KEY (a deployed app, or what "
            "`fanout serve` prints), or FANOUT_STORAGE_CONNECTION_STRING"
        )

    def close(self) -> None:
        """Close the client's HTTP connections."""
        self._http.close()

    def __enter__(self) -> FanoutClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- operations ------------------------------------------------------------------------------

    def submit(
        self,
        spec_text: str,
        *,
        source: str,
        overrides: Mapping[str, str] | None = None,
        snapshot: bytes | None = None,
    ) -> dict[str, Any]:
        """POST /api/pipelines: a multipart body with the spec, the overrides and the code zip."""
        files: list[tuple[str, tuple[str | None, bytes | str, str]]] = [
            ("spec", (source, spec_text.encode(), "application/yaml"))
        ]
        if snapshot is not None:
            files.append(("snapshot", ("code.zip", snapshot, "application/zip")))
        for name, value in (overrides or {}).items():
            files.append(("set", (None, f"{name}={value}", "text/plain")))
        return self._json("POST", "/pipelines", files=files)

    def list_runs(self, *, status: str | None = None, limit: int = 50) -> Iterator[dict[str, Any]]:
        """Every run (newest first), following continuation tokens."""
        token: str | None = None
        while True:
            params: dict[str, str] = {"limit": str(limit)}
            if status:
                params["status"] = status
            if token:
                params["continuation_token"] = token
            page = self._json("GET", "/runs", params=params)
            yield from page["runs"]
            token = page.get("continuation_token")
            if not token:
                return

    def get_run(self, run_id: str) -> dict[str, Any]:
        """GET /api/runs/{id}: the run's status and each job's progress, outputs and log links."""
        return self._json("GET", f"/runs/{run_id}")

    def cancel(self, run_id: str) -> dict[str, Any]:
        """POST /api/runs/{id}/cancel: ask the host to cancel the run (needs a server, not in-process)."""
        return self._json("POST", f"/runs/{run_id}/cancel")

    def resume(self, run_id: str) -> dict[str, Any]:
        """POST /api/runs/{id}/resume: the new run (``run_id``) that resumes ``run_id``."""
        return self._json("POST", f"/runs/{run_id}/resume")

    def log_files(self, run_id: str, job: str) -> list[dict[str, Any]]:
        """The files of one job's log tree (``path``, ``size``, ``modified_at``, ``url`` each)."""
        files: list[dict[str, Any]] = self._json("GET", f"/runs/{run_id}/logs/{job}/")["files"]
        return files

    def read_log(self, run_id: str, job: str, path: str, offset: int = 0) -> LogChunk:
        """One log file's bytes from ``offset``, with where to continue (to follow a growing log)."""
        answer = self._send("GET", f"/runs/{run_id}/logs/{job}/{path}", params={"offset": str(offset)})
        return LogChunk(
            data=answer.content,
            next_offset=int(answer.headers.get("x-fanout-next-offset", offset + len(answer.content))),
            size=int(answer.headers.get("x-fanout-log-size", 0)),
        )

    def list_assets(self) -> list[dict[str, Any]]:
        """GET /api/assets: every data asset with its latest version, by name."""
        assets: list[dict[str, Any]] = self._json("GET", "/assets")["assets"]
        return assets

    def get_asset(self, name: str, version: str | None = None) -> dict[str, Any]:
        """GET /api/assets/{name}[/{version}]: one version (the latest by default) and every version."""
        return self._json("GET", f"/assets/{name}/{version}" if version else f"/assets/{name}")

    # --- plumbing ----------------------------------------------------------------------------------

    def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        body: dict[str, Any] = self._send(method, path, **kwargs).json()
        return body

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = inject_trace_context()  # the server's spans join this command's trace
        try:
            answer = self._http.request(method, path, headers=headers, **kwargs)
        except httpx.TransportError as exc:
            raise ApiError(
                f"cannot reach the Fanout API at {self._http.base_url}: {exc}", status=503
            ) from exc
        if answer.status_code < 400:
            return answer
        try:
            error = answer.json()
            message = str(error.get("message") or error)
        except ValueError:
            error, message = {}, answer.text[:500] or answer.reason_phrase
        context = (
            {k: v for k, v in error.items() if k not in {"message", "status"}}
            if isinstance(error, dict)
            else {}
        )
        if answer.status_code == 404:
            raise NotFoundError(message, **context)
        raise ApiError(message, status=answer.status_code, **context)
