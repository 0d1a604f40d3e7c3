"""The runtime's one door to the data package: planning, manifests, and materialising mini-batches.

``shared.data`` plans a step's input into a compact manifest and reads a mini-batch back as ``run()``
wants it (local file paths or a DataFrame). The runtime calls it only through here. The agent writes
the step's manifest once to a node-local file that its workers load at start-up; a task then carries
only the mini-batch's descriptor.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shared.data import (
    Manifest,
    MaterializedBatch,
    MiniBatch,
    input_argument,
    load_manifest,
    materialize,
    plan_mini_batches,
    save_manifest,
)
from shared.orchestration.contracts import StepDefinition
from shared.plan import JobPlan
from shared.storage import StorageClients

__all__ = [
    "BatchReader",
    "Manifest",
    "descriptor",
    "input_argument",
    "item_count",
    "load_manifest",
    "plan",
    "save_manifest",
]


def plan(clients: StorageClients, job: JobPlan, definition: StepDefinition) -> Manifest:
    """Split the job's ``input_data`` into mini-batches."""
    return plan_mini_batches(clients, job, definition)


def descriptor(manifest: Manifest, index: int) -> dict[str, Any]:
    """Mini-batch ``index`` as JSON-ready data (sent to a worker with its task)."""
    return manifest.mini_batch(index).model_dump(mode="json", exclude_defaults=True)


def item_count(manifest: Manifest, index: int) -> int | None:
    """Items of mini-batch ``index`` when known before reading it (files, parquet rows)."""
    return manifest.mini_batch(index).items


class BatchReader:
    """Worker side: loads the node's copy of the manifest once and materialises descriptors."""

    def __init__(self, clients: StorageClients, manifest_file: Path, cache_dir: Path) -> None:
        self._clients = clients
        self._manifest = Manifest.model_validate_json(manifest_file.read_bytes())
        self._cache_dir = cache_dir

    def materialize(self, descriptor: dict[str, Any]) -> MaterializedBatch:
        """``run()``'s input for one mini-batch: ``data``, ``items``, ``partition_key_value``, ``dataset``."""
        batch = MiniBatch.model_validate(descriptor)
        return materialize(self._clients, self._manifest, batch, self._cache_dir)
