"""A real durable engine (durabletask's in-memory backend) with a stand-in ``run_pipeline``.

The API and trigger tests need an engine that holds instances, answers status queries and delivers
external events — not the whole pipeline logic (tested by the orchestration tests). The stand-in
orchestrator (registered under the real name) waits for the run's "cancel" event and then completes
with "Canceled"; a step's instance (``<run>:<job>``, also ``run_pipeline`` here) does the same with its
own events. :class:`DurableFunctionsHost` serves the Durable Functions extension's HTTP API over
this engine, so the Functions tests drive the real ``DurableOrchestrationClient``.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
from collections.abc import Generator, Iterator
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import grpc
from durabletask import task as dt
from durabletask.client import TaskHubGrpcClient
from durabletask.internal import orchestrator_service_pb2_grpc as stubs
from durabletask.testing import InMemoryOrchestrationBackend
from durabletask.worker import TaskHubGrpcWorker

from shared.errors import NotFoundError
from shared.orchestration import names
from shared.orchestration.durabletask_adapter import DurableTaskClient
from tests.helpers import wait_until


class _LoopbackBackend(InMemoryOrchestrationBackend):
    def start(self) -> str:
        self._shutdown_event.clear()
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        stubs.add_TaskHubSidecarServiceServicer_to_server(self, server)
        self._port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        self._server = server
        return f"127.0.0.1:{self._port}"


def stand_in_pipeline(ctx: dt.OrchestrationContext, _input: Any) -> Generator[Any, Any, str]:
    """Waits for "cancel" or "step_settled" and ends with "Canceled" or "Settled"."""
    ctx.set_custom_status({"waiting": True})
    cancel = ctx.wait_for_external_event(names.CANCEL_EVENT)
    settled = ctx.wait_for_external_event(names.STEP_SETTLED_EVENT)
    winner = yield dt.when_any([cancel, settled])
    return "Canceled" if winner is cancel else "Settled"


run_pipeline = stand_in_pipeline
run_pipeline.__name__ = names.RUN_PIPELINE


@contextlib.contextmanager
def stand_in_engine() -> Iterator[DurableTaskClient]:
    """The engine, with the stand-in orchestrator, for the duration of the block."""
    backend = _LoopbackBackend()
    address = backend.start()
    worker = TaskHubGrpcWorker(host_address=address)
    worker.add_orchestrator(run_pipeline)
    worker.start()
    client = DurableTaskClient(TaskHubGrpcClient(host_address=address))
    try:
        yield client
    finally:
        worker.stop()
        client.close()
        backend.stop(grace=1.0)


def start_waiting(engine: DurableTaskClient, instance_id: str) -> None:
    """Start the stand-in as ``instance_id`` and wait until it waits for its events."""
    engine.schedule(names.RUN_PIPELINE, instance_id, {})
    wait_until(
        lambda: (s := engine.get_status(instance_id)) is not None and s.custom_status,
        message=f"{instance_id} to wait for its events",
    )


_START = re.compile(r"^/durabletask/orchestrators/(?P<name>[^/]+)/(?P<id>[^/?]+)$")
_STATUS = re.compile(r"^/durabletask/instances/(?P<id>[^/?]+)$")
_RAISE = re.compile(r"^/durabletask/instances/(?P<id>[^/]+)/raiseEvent/(?P<event>[^/?]+)$")
_TERMINATE = re.compile(r"^/durabletask/instances/(?P<id>[^/]+)/terminate$")


class DurableFunctionsHost:
    """The Durable Functions extension's HTTP API (the part the Python client calls) over an engine.

    ``starter`` is the JSON the Functions host passes to a ``durable_client_input`` binding.
    """

    def __init__(self, engine: DurableTaskClient, task_hub: str = "fanout") -> None:
        self.engine = engine
        self.calls: list[tuple[str, str]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        host, port = self._server.server_address[:2]
        base = f"http://{host!s}:{port}/durabletask/"
        self.starter = json.dumps(
            {
                "taskHubName": task_hub,
                "creationUrls": {},
                "managementUrls": {},
                "rpcBaseUrl": base,
                "baseUrl": base,
            }
        )

    def __enter__(self) -> DurableFunctionsHost:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def answer(  # noqa: PLR0911 - one return per route and outcome, like the extension
        self, method: str, path: str, query: dict[str, list[str]], body: bytes
    ) -> tuple[int, Any]:
        self.calls.append((method, path))
        if method == "POST" and (match := _START.match(path)):
            instance = unquote(match["id"])
            scheduled = self.engine.schedule(unquote(match["name"]), instance, json.loads(body or b"null"))
            return (202, {"id": instance}) if scheduled else (500, {"Message": "instance exists"})
        if method == "GET" and (match := _STATUS.match(path)):
            status = self.engine.get_status(unquote(match["id"]))
            if status is None:
                return 404, None
            return 200, {
                "name": status.name,
                "instanceId": status.instance_id,
                "runtimeStatus": status.runtime_status.value,
                "customStatus": status.custom_status,
                "output": status.output,
                "createdTime": status.created_at.isoformat() if status.created_at else None,
                "lastUpdatedTime": status.last_updated_at.isoformat() if status.last_updated_at else None,
            }
        if method == "POST" and (match := _RAISE.match(path)):
            instance = unquote(match["id"])
            if refused := self._refusal(instance):
                return refused, None
            try:
                self.engine.raise_event(instance, unquote(match["event"]), json.loads(body or b"null"))
            except NotFoundError:
                return 404, None
            return 202, None
        if method == "POST" and (match := _TERMINATE.match(path)):
            instance = unquote(match["id"])
            if refused := self._refusal(instance):
                return refused, None
            self.engine.terminate(instance, query.get("reason", [""])[0])
            return 202, None
        return 400, {"Message": f"unsupported {method} {path}"}

    def _refusal(self, instance: str) -> int | None:
        """The extension's refusal of an event or terminate: 404 (unknown), 410 (ended), else None."""
        status = self.engine.get_status(instance)
        if status is None:
            return 404
        return 410 if status.runtime_status.is_terminal else None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        host = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                status, payload = host.answer(self.command, parts.path, parse_qs(parts.query), body)
                data = b"" if payload is None else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _serve

        return Handler
