"""Small helpers shared by the tests: polling instead of sleeping, times for the run index."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from shared.orchestration import run_index
from shared.storage import StorageClients

T = TypeVar("T")


def wait_until(
    condition: Callable[[], T], *, timeout: float = 30.0, interval: float = 0.05, message: str = ""
) -> T:
    """Poll ``condition`` until it returns something truthy and return that; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message or condition!r}")
        time.sleep(interval)


def newer_than_every_indexed_run(clients: StorageClients) -> datetime:
    """A creation time after every run in the run index, so runs created from it list first.

    The session's Azurite is shared by the tests of one worker, in any order: a test about the
    newest-first order must not depend on which runs other tests left behind.
    """
    newest, _ = run_index.list_page(clients, limit=1)
    return max([datetime.now(UTC), *(entry.created_at for entry in newest)]) + timedelta(days=1)
