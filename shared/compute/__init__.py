"""Executors that place agents on compute: local processes or Azure Batch (see :mod:`.base`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.compute.base import Executor
    from shared.settings import Settings
    from shared.storage import StorageClients


def get_executor(settings: Settings, clients: StorageClients) -> Executor:
    """The executor the settings choose: agent processes on this machine (default) or Azure Batch.

    Imported lazily: the Batch SDK is only loaded where the Batch executor is used.
    """
    from shared.settings import ExecutorKind

    if settings.executor is ExecutorKind.BATCH:
        from shared.compute.batch import BatchExecutor

        return BatchExecutor(settings, clients)
    from shared.compute.local import LocalExecutor

    return LocalExecutor(settings, clients)
