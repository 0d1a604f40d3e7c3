"""The local host's HTTP server: the Function App's API on 127.0.0.1, with the same handlers and keys.

``fanout serve`` runs this beside the in-process durable engine. Like the Functions host it serves
``/api/<route>`` and requires a function key, as the ``x-functions-key`` header or the ``code`` query
parameter; the key is generated at start (or given) and printed. It binds to 127.0.0.1 by default.
Each request runs on its own thread (``ThreadingHTTPServer``) and builds its
:class:`~shared.api.context.ApiContext` from the factory it was given.
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
import threading
from collections.abc import Callable
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from shared.api.app import ROUTES
from shared.api.context import ApiContext
from shared.api.http import MAX_BODY_BYTES, ApiRequest, ApiResponse, error_response, json_response
from shared.api.routes import Route, dispatch, match_route
from shared.errors import ApiError

logger = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7071
KEY_HEADER = "x-functions-key"
KEY_QUERY = "code"
API_PREFIX = "/api/"


def generate_key() -> str:
    """A new random function key (URL-safe, 256 bits)."""
    return secrets.token_urlsafe(32)


def key_matches(request: ApiRequest, key: str) -> bool:
    """True when the request carries ``key`` in the header or the ``code`` query parameter."""
    given = request.headers.get(KEY_HEADER) or request.query.get(KEY_QUERY) or ""
    return hmac.compare_digest(given.encode(), key.encode())


class ApiServer:
    """The API on a local port. Use as a context manager, or :meth:`start` / :meth:`stop`.

    Args:
        context_factory: builds the handlers' dependencies (called per request).
        key: the function key clients must send; a random one when None (see :attr:`key`).
        host: interface to bind; 127.0.0.1 unless you mean to expose the API.
        port: TCP port; 0 picks a free one (see :attr:`url`).
        routes: the route table (the API's by default).
    """

    def __init__(
        self,
        context_factory: Callable[[], ApiContext],
        *,
        key: str | None = None,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        routes: list[Route] | None = None,
    ) -> None:
        self.key = key or generate_key()
        self._context_factory = context_factory
        self._routes = routes if routes is not None else ROUTES
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """``http://host:port`` of the running server."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> ApiServer:
        """Serve in a background thread; returns self."""
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fanout-api", daemon=True
        )
        self._thread.start()
        logger.info("API listening on %s/api/", self.url)
        return self

    def stop(self) -> None:
        """Stop serving and close the socket (waits for the serving thread)."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=10)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> ApiServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def handle(self, request: ApiRequest, path: str) -> ApiResponse:
        """Answer one request for ``path`` (the URL path, still encoded). Public for tests."""
        if not path.startswith(API_PREFIX):
            return json_response({"error": "NotFoundError", "message": f"no such path {path!r}"}, status=404)
        if not key_matches(request, self.key):
            return json_response(
                {
                    "error": "Unauthorized",
                    "message": f"missing or wrong function key: send it as the {KEY_HEADER} header "
                    f"or the {KEY_QUERY} query parameter",
                },
                status=401,
            )
        try:
            found = match_route(self._routes, request.method, path[len(API_PREFIX) :])
        except ApiError as exc:
            return error_response(exc)
        if found is None:
            return json_response(
                {"error": "NotFoundError", "message": f"no API route {request.method} {path}"}, status=404
            )
        route, params = found
        routed = replace(request, route_params=params)
        try:
            context = self._context_factory()
        except Exception:
            logger.exception("could not build the API context")
            return json_response({"error": "InternalError", "message": "the host is not ready"}, status=503)
        return dispatch(route, context, routed)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "fanout-serve"

            def do_GET(self) -> None:
                self._serve()

            def do_POST(self) -> None:
                self._serve()

            def do_PUT(self) -> None:
                self._serve()

            def do_DELETE(self) -> None:
                self._serve()

            def do_PATCH(self) -> None:
                self._serve()

            def log_message(self, format: str, *args: Any) -> None:
                logger.debug("%s %s", self.address_string(), format % args)

            def _serve(self) -> None:
                response = self._answer()
                self.send_response(response.status)
                self.send_header("Content-Type", response.content_type)
                self.send_header("Content-Length", str(len(response.body)))
                for name, value in response.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(response.body)

            def _answer(self) -> ApiResponse:
                length_header = self.headers.get("Content-Length")
                try:
                    length = int(length_header) if length_header else 0
                except ValueError:
                    self.close_connection = True
                    return _error(400, "the Content-Length header is not a number")
                if length < 0 or length > MAX_BODY_BYTES:
                    self.close_connection = True
                    return _error(413, f"the body is larger than {MAX_BODY_BYTES} bytes")
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                host = self.headers.get("Host") or server.url.removeprefix("http://")
                request = ApiRequest.build(
                    self.command,
                    f"http://{host}{self.path}",
                    query=dict(parse_qsl(parts.query, keep_blank_values=True)),
                    headers=dict(self.headers.items()),
                    body=body,
                )
                return server.handle(request, parts.path)

        return Handler


def _error(status: int, message: str) -> ApiResponse:
    return ApiResponse(status=status, body=json.dumps({"error": "ApiError", "message": message}).encode())
