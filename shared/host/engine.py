"""The in-process durable engine of the local host, ``fanout run`` and the tests.

:func:`local_engine` starts, in this process:

1. durabletask's in-memory backend (``durabletask.testing``) — a real replay engine — serving gRPC on
   127.0.0.1 only, on a free port;
2. a ``TaskHubGrpcWorker`` with both orchestrators and every activity registered, the activities bound
   to the storage clients and executor given (installed in :mod:`shared.orchestration.dependencies`);
3. the events pump (``shared/host/events.py``) that turns events-queue messages into external events;

and yields a :class:`LocalEngine` whose ``client`` implements the durable-client protocol. Everything
is stopped, in reverse order, when the block ends.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping
from concurrent import futures
from dataclasses import dataclass

import grpc
from durabletask.client import TaskHubGrpcClient
from durabletask.internal import orchestrator_service_pb2_grpc as stubs
from durabletask.testing import InMemoryOrchestrationBackend
from durabletask.worker import ConcurrencyOptions, TaskHubGrpcWorker

from shared.compute.base import Executor
from shared.host.events import EventsPump
from shared.orchestration import dependencies, names
from shared.orchestration.activities import ActivityBody, bound_activities
from shared.orchestration.context import Orchestrator
from shared.orchestration.durabletask_adapter import DurableTaskClient, register
from shared.orchestration.pipeline import run_pipeline
from shared.orchestration.step import run_step
from shared.storage import StorageClients

logger = logging.getLogger(__name__)

#: Threads running activities and orchestrator episodes in the local engine.
ACTIVITY_THREADS = 32
ORCHESTRATORS: Mapping[str, Orchestrator] = {names.RUN_PIPELINE: run_pipeline, names.RUN_STEP: run_step}
#: durabletask's own loggers are chatty at INFO (every work item); they speak at WARNING and above.
_QUIET_LOGGER = logging.getLogger("fanout.durabletask")


class _ShutdownNoise(logging.Filter):
    """Drops the worker's warning about its own stream being cancelled when the engine stops."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Locally cancelled by application" not in record.getMessage()


_QUIET_LOGGER.addFilter(_ShutdownNoise())


class LoopbackBackend(InMemoryOrchestrationBackend):
    """The in-memory backend bound to 127.0.0.1 on a port the OS picks (the stock one binds [::])."""

    def start(self) -> str:
        """Serve the backend on a free loopback port; returns its ``host:port`` address."""
        self._shutdown_event.clear()
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
        stubs.add_TaskHubSidecarServiceServicer_to_server(self, server)  # type: ignore[no-untyped-call]
        self._port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        self._server = server
        return f"127.0.0.1:{self._port}"


@dataclass
class LocalEngine:
    """A running in-process engine (:func:`local_engine`): its client, backend and events pump."""

    client: DurableTaskClient
    backend: InMemoryOrchestrationBackend
    address: str
    pump: EventsPump | None


@contextlib.contextmanager
def local_engine(
    clients: StorageClients,
    executor: Executor,
    *,
    activity_overrides: Mapping[str, ActivityBody] | None = None,
    pump_events: bool = True,
    max_history_size: int = 10_000,
) -> Iterator[LocalEngine]:
    """Run the durable engine in this process for the duration of the block (see the module docstring).

    Args:
        clients: storage for the activities and the events pump.
        executor: where activities start agents.
        activity_overrides: replace some activity bodies (tests of the orchestration logic).
        pump_events: poll the events queue (off for tests that raise events themselves).
        max_history_size: the backend's per-orchestration history limit.
    """
    _QUIET_LOGGER.setLevel(max(logging.WARNING, logging.getLogger().getEffectiveLevel()))
    backend = LoopbackBackend(max_history_size=max_history_size)
    address = backend.start()
    # Activities mostly wait on storage and processes (stopping agents takes seconds): more threads than
    # durabletask's default (cores + 4) keep a wide pipeline's steps from queueing behind each other.
    concurrency = ConcurrencyOptions(maximum_thread_pool_workers=ACTIVITY_THREADS)
    worker = TaskHubGrpcWorker(host_address=address, logger=_QUIET_LOGGER, concurrency_options=concurrency)
    register(worker, ORCHESTRATORS, bound_activities(overrides=activity_overrides))
    dependencies.install(dependencies.ActivityDependencies(clients=clients, executor=executor))
    client = DurableTaskClient(TaskHubGrpcClient(host_address=address, logger=_QUIET_LOGGER))
    pump: EventsPump | None = None
    worker.start()  # type: ignore[no-untyped-call]
    try:
        if pump_events:
            pump = EventsPump(clients, client.raise_event).start()
        logger.info("durable engine listening on %s", address)
        yield LocalEngine(client=client, backend=backend, address=address, pump=pump)
    finally:
        if pump is not None:
            pump.stop()
        worker.stop()  # type: ignore[no-untyped-call]
        client.close()
        backend.stop(grace=1.0)
        dependencies.uninstall()
