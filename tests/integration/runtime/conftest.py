"""Runtime integration tests share the session's Azurite: leave its shared events queue empty."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shared.storage import StorageClients


@pytest.fixture(autouse=True)
def empty_events_queue(storage: StorageClients) -> Iterator[None]:
    """Agents post completion events nobody consumes here; clear them after each test."""
    yield
    storage.events_queue().clear_messages()
