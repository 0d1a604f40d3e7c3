"""The session's events queue is shared by every test of a worker: tests take their own messages off it."""

from __future__ import annotations

from shared.storage import StorageClients


def take_events(storage: StorageClients, run_id: str) -> list[str]:
    """Remove the events-queue messages of ``run_id`` (tests share one queue per Azurite); their texts."""
    queue = storage.events_queue()
    taken = []
    for message in queue.receive_messages(max_messages=32, visibility_timeout=1):
        if run_id in message.content:
            taken.append(message.content)
            queue.delete_message(message)
    return taken
