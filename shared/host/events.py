"""The local stand-in for the Function App's events-queue trigger: a thread that polls ``fanout-events``.

Each message is handed to :func:`shared.orchestration.events.handle_completion_message` with the local
engine's ``raise_event``, then deleted. A message whose handling fails (storage hiccup, engine not
answering) is left on the queue and comes back after its visibility timeout; after
``MAX_DEQUEUE_COUNT`` deliveries it is dropped with a warning, like the Functions host's poison
handling (events only wake orchestrations early, so nothing is lost but latency).
"""

from __future__ import annotations

import logging
import threading
from types import TracebackType

from azure.core.exceptions import AzureError

from shared.errors import FanoutError
from shared.orchestration.events import RaiseEvent, handle_completion_message
from shared.storage import StorageClients

logger = logging.getLogger(__name__)

MAX_DEQUEUE_COUNT = 5
#: Seconds a received message stays invisible while it is handled.
VISIBILITY_TIMEOUT = 30


class EventsPump:
    """Polls the events queue on a daemon thread until :meth:`stop`.

    Args:
        clients: storage with the events queue.
        raise_event: the durable client's ``raise_event``.
        idle_interval: seconds between polls while the queue is empty (busy queues are drained at once).
        visibility_timeout: seconds a message stays invisible while handled (and before a retry).
    """

    def __init__(
        self,
        clients: StorageClients,
        raise_event: RaiseEvent,
        *,
        idle_interval: float = 0.2,
        visibility_timeout: int = VISIBILITY_TIMEOUT,
    ) -> None:
        self._clients = clients
        self._raise_event = raise_event
        self._idle_interval = idle_interval
        self._visibility_timeout = visibility_timeout
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> EventsPump:
        """Start polling in a daemon thread; returns the pump for chaining."""
        self._thread = threading.Thread(target=self._run, name="fanout-events-pump", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop polling; waits up to ``timeout`` seconds for the message in hand."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def __enter__(self) -> EventsPump:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def drain_once(self) -> int:
        """Handle the messages visible now (up to 32); how many were taken off the queue."""
        queue = self._clients.events_queue()
        handled = 0
        for message in queue.receive_messages(max_messages=32, visibility_timeout=self._visibility_timeout):
            try:
                handle_completion_message(self._clients, self._raise_event, message.content)
            except (FanoutError, AzureError, OSError) as exc:
                if (message.dequeue_count or 0) < MAX_DEQUEUE_COUNT:
                    logger.warning(
                        "event handling failed (attempt %d), will retry: %s", message.dequeue_count, exc
                    )
                    continue
                logger.warning("dropping an event after %d attempts: %s", message.dequeue_count, exc)
            queue.delete_message(message)
            handled += 1
        return handled

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                handled = self.drain_once()
            except (AzureError, OSError) as exc:
                logger.warning("events queue not readable: %s", exc)
                handled = 0
            if not handled:
                self._stopping.wait(self._idle_interval)
