"""The :class:`~shared.orchestration.client.DurableClient` protocol over Durable Functions' client.

Durable Functions hands an ``async`` :class:`DurableOrchestrationClient` to functions that declare a
``durable_client_input``; Fanout's handlers are synchronous (and do blocking storage I/O). So a trigger
runs its handler in a worker thread (``asyncio.to_thread``) and gives it a :class:`FunctionsDurableClient`
bound to the invocation's event loop: each call schedules the client's coroutine back on that loop
(where the client's shared aiohttp session lives) and waits for its result.

Mapping (DF 1.x client -> protocol):

==========================  =============================================================
``start_new``               ``schedule`` (after ``get_status``: an existing instance is kept)
``get_status``              ``get_status`` (an empty status = no such instance -> None)
``raise_event``             ``raise_event`` (404 -> NotFoundError; 410 "gone" -> dropped)
``terminate``               ``terminate`` (404 -> NotFoundError; 410 -> nothing to do)
``get_status`` polling      ``wait``
==========================  =============================================================
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from shared.errors import NotFoundError, OrchestrationError
from shared.orchestration.client import InstanceStatus, RuntimeStatus

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Seconds one call to the Durable extension may take before the handler gives up.
CALL_TIMEOUT = 120.0
_WAIT_INTERVAL = 1.0


class OrchestrationClient(Protocol):
    """The methods of ``azure.durable_functions.DurableOrchestrationClient`` used here (async)."""

    async def start_new(
        self, orchestration_function_name: str, instance_id: str | None = None, client_input: Any = None
    ) -> str:
        """Start an orchestration; returns its instance id."""

    async def get_status(self, instance_id: str) -> Any:
        """The instance's ``DurableOrchestrationStatus`` (empty when there is no such instance)."""

    async def raise_event(self, instance_id: str, event_name: str, event_data: Any = None) -> None:
        """Raise an external event on the instance (a plain Exception on 404 or 410)."""

    async def terminate(self, instance_id: str, reason: str) -> None:
        """Terminate the instance (a plain Exception on 404 or 410)."""


class FunctionsDurableClient:
    """A synchronous DurableClient over a ``DurableOrchestrationClient`` on an event loop.

    Args:
        client: the binding's client.
        loop: the event loop the client belongs to (the invocation's); calls must come from another
            thread.
    """

    def __init__(self, client: OrchestrationClient, loop: asyncio.AbstractEventLoop) -> None:
        self._client = client
        self._loop = loop

    def _call(self, make: Callable[[], Awaitable[T]]) -> T:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            raise OrchestrationError(
                "the durable client was called on its own event loop; use a worker thread"
            )

        async def run() -> T:
            return await make()

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout=CALL_TIMEOUT)

    def schedule(self, orchestrator: str, instance_id: str, input: Any) -> bool:
        """Start ``orchestrator`` as ``instance_id``; False when that instance already exists."""
        if self.get_status(instance_id) is not None:
            return False
        started = self._call(
            lambda: self._client.start_new(orchestrator, instance_id=instance_id, client_input=input)
        )
        logger.info("started %s as %s", orchestrator, started)
        return True

    def get_status(self, instance_id: str) -> InstanceStatus | None:
        """The instance's status; None when there is no such instance."""
        status = self._call(lambda: self._client.get_status(instance_id))
        if not status or status.runtime_status is None:
            return None
        return InstanceStatus(
            instance_id=status.instance_id or instance_id,
            name=status.name or "",
            runtime_status=_runtime_status(status.runtime_status.value),
            custom_status=status.custom_status,
            output=status.output,
            failure=str(status.output) if status.runtime_status.value == "Failed" else None,
            created_at=_aware(status.created_time),
            last_updated_at=_aware(status.last_updated_time),
        )

    def raise_event(self, instance_id: str, event: str, data: Any = None) -> None:
        """Raise ``event`` on the instance; dropped when it has finished.

        Raises:
            NotFoundError: there is no such instance.
            OrchestrationError: the extension refused the event.
        """
        try:
            self._call(lambda: self._client.raise_event(instance_id, event, data))
        except Exception as exc:  # noqa: BLE001 - DF 1.x reports every status as a plain Exception
            _raise_mapped(exc, instance_id, f"raise event {event!r}")

    def terminate(self, instance_id: str, reason: str) -> None:
        """Terminate the instance with ``reason``; nothing to do when it has finished.

        Raises:
            NotFoundError: there is no such instance.
            OrchestrationError: the extension refused.
        """
        try:
            self._call(lambda: self._client.terminate(instance_id, reason))
        except Exception as exc:  # noqa: BLE001 - see raise_event
            _raise_mapped(exc, instance_id, "terminate")

    def wait(self, instance_id: str, timeout: float) -> InstanceStatus | None:
        """Poll the instance until it ends; its final status (None: no such instance).

        Raises:
            TimeoutError: it is still running after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while True:
            status = self.get_status(instance_id)
            if status is None or status.runtime_status.is_terminal:
                return status
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"instance {instance_id} still {status.runtime_status.value} after {timeout}s"
                )
            time.sleep(min(_WAIT_INTERVAL, max(deadline - time.monotonic(), 0.0)))


def _raise_mapped(exc: Exception, instance_id: str, action: str) -> None:
    message = str(exc)
    if "is gone" in message:
        logger.info("%s on %s dropped: the instance has finished", action, instance_id)
        return
    if "No instance with ID" in message:
        raise NotFoundError(f"no orchestration instance {instance_id!r}", instance_id=instance_id) from exc
    raise OrchestrationError(
        f"could not {action} on {instance_id}: {message}", instance_id=instance_id
    ) from exc


def _runtime_status(value: str) -> RuntimeStatus:
    if value == "Canceled":  # DF's "canceled gracefully" ends like a termination
        return RuntimeStatus.TERMINATED
    return RuntimeStatus(value)


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def run_with_client(client: OrchestrationClient, body: Callable[[FunctionsDurableClient], T]) -> T:
    """Run the synchronous ``body`` in a worker thread with a protocol client over ``client``."""
    durable = FunctionsDurableClient(client, asyncio.get_running_loop())
    return await asyncio.to_thread(body, durable)
