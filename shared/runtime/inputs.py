"""The runtime's one door to the data package: planning, manifests, and materialising mini-batches.

``shared.data`` (planning and reading inputs) is written by another module owner; the runtime only calls
the agreed functions through here, so the agent and the workers do not depend on its internals. A
worker receives the manifest *header* once (the manifest without its mini-batch list) and each
mini-batch descriptor with its task, so no worker loads a 100,000-entry manifest.
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path
from types import ModuleType
from typing import Any

from shared.orchestration.contracts import StepDefinition, StepRef
from shared.plan import BlobData, DataType, InputMode, JobPlan, UrlData
from shared.storage import StorageClients

logger = logging.getLogger(__name__)

_REQUIRED = ("plan_mini_batches", "save_manifest", "load_manifest", "materialize", "materialize_input")


def data_api() -> ModuleType:
    """``shared.data`` when it provides the agreed functions, else the runtime's interim file-list one."""
    try:
        module = importlib.import_module("shared.data")
    except (ImportError, SyntaxError):  # interim: the data package is being written concurrently
        logger.warning("shared.data cannot be imported; using the interim file-list reader", exc_info=True)
        return importlib.import_module("shared.runtime._interim_data")
    if all(hasattr(module, name) for name in _REQUIRED):
        return module
    return importlib.import_module("shared.runtime._interim_data")


def plan(clients: StorageClients, job: JobPlan, definition: StepDefinition) -> Any:
    return data_api().plan_mini_batches(clients, job, definition)


def save_manifest(clients: StorageClients, step: StepRef, manifest: Any) -> None:
    data_api().save_manifest(clients, step, manifest)


def load_manifest(clients: StorageClients, step: StepRef) -> Any:
    return data_api().load_manifest(clients, step)


def manifest_json(manifest: Any) -> str:
    """The manifest as JSON, written once per node for its workers."""
    text: str = manifest.model_dump_json()
    return text


def descriptor(manifest: Any, index: int) -> dict[str, Any]:
    """Mini-batch ``index`` as JSON-ready data (sent to a worker with its task)."""
    batch = manifest.mini_batches[index]
    result: dict[str, Any] = batch.model_dump(mode="json")
    return result


def item_count(manifest: Any, index: int) -> int | None:
    items: int | None = manifest.mini_batches[index].items
    return items


class BatchReader:
    """Worker side: loads the node's copy of the manifest once and materialises descriptors."""

    def __init__(self, clients: StorageClients, manifest_file: Path, cache_dir: Path, module: str) -> None:
        self._api = importlib.import_module(module)
        self._clients = clients
        self._manifest = self._api.Manifest.model_validate_json(manifest_file.read_bytes())
        self._cache_dir = cache_dir

    def materialize(self, descriptor: dict[str, Any]) -> Any:
        """The data package's MaterializedBatch (``data``, ``items``, ``partition_key_value``)."""
        batch = self._api.MiniBatch.model_validate(descriptor)
        return self._api.materialize(self._clients, self._manifest, batch, self._cache_dir)


def input_argument(
    clients: StorageClients, location: BlobData | UrlData, type: DataType, mode: InputMode, dest: Path
) -> str:
    """What ``${{inputs.x}}`` becomes for a whole (not split) input: a local path, or a URL (``direct``)."""
    api = data_api()
    if hasattr(api, "input_argument"):
        return str(api.input_argument(clients, location, type, mode, dest))
    return str(api.materialize_input(clients, location, type, mode, dest))
