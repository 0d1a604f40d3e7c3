"""What activity bodies need — storage clients and the executor — held for the process.

The local engine installs them when it starts (:func:`install`) and removes them when it stops; in
the Function App nothing is installed and :func:`current` builds them from settings on first use
(never at import time, so the host can index the app before its settings exist).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from shared.compute.base import Executor
from shared.storage import StorageClients


@dataclass(frozen=True)
class ActivityDependencies:
    """The process's storage clients and executor, passed to every activity body (tests swap them)."""

    clients: StorageClients
    executor: Executor


_lock = threading.Lock()
_installed: ActivityDependencies | None = None


def install(dependencies: ActivityDependencies) -> None:
    """Use ``dependencies`` for every activity run by this process until :func:`uninstall`."""
    global _installed  # noqa: PLW0603 - the one process-wide holder, set by the engine that owns it
    with _lock:
        _installed = dependencies


def uninstall() -> None:
    """Forget the installed dependencies (the local engine stops); the next :func:`current` rebuilds."""
    global _installed  # noqa: PLW0603
    with _lock:
        _installed = None


def current() -> ActivityDependencies:
    """The installed dependencies, or (first call in the Function App) ones built from settings."""
    global _installed  # noqa: PLW0603
    with _lock:
        if _installed is None:
            from shared.compute import get_executor
            from shared.settings import get_settings

            settings = get_settings()
            clients = StorageClients.from_settings(settings)
            _installed = ActivityDependencies(clients=clients, executor=get_executor(settings, clients))
        return _installed
