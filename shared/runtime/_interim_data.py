"""A minimal stand-in for ``shared.data`` (file lists only) until the data package lands.

Same names and shapes as the agreed API (``plan_mini_batches``, ``save_manifest``, ``load_manifest``,
``materialize``, ``materialize_input``); :mod:`shared.runtime.inputs` prefers the real package.
"""

from __future__ import annotations

import posixpath
from pathlib import Path
from typing import Any, Literal

from pydantic import ConfigDict, Field

from shared.errors import DataError
from shared.models import FrozenModel
from shared.orchestration.contracts import ResolvedInput, StepDefinition, StepRef
from shared.plan import BlobData, DataType, InputMode, JobPlan, UrlData
from shared.storage import Container, StorageClients, job_path


class MiniBatch(FrozenModel):
    index: int
    items: int | None = None
    partition_key_value: dict[str, Any] | None = None
    files: list[str] = Field(default_factory=list)


class Manifest(FrozenModel):
    kind: Literal["files", "tabular"] = "files"
    base: BlobData
    mini_batches: list[MiniBatch]
    total_items: int | None = None


class MaterializedBatch(FrozenModel):
    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True, extra="forbid")
    data: Any
    items: int
    partition_key_value: dict[str, Any] | None = None


def plan_mini_batches(clients: StorageClients, job: JobPlan, definition: StepDefinition) -> Manifest:
    assert job.parallel is not None
    source = definition.inputs[job.parallel.input_data]
    if not isinstance(source, ResolvedInput) or not isinstance(source.location, BlobData):
        raise DataError("interim planner: only blob inputs", input=job.parallel.input_data)
    base = source.location
    container = clients.blob.get_container_client(base.container)
    prefix = base.path.rstrip("/") + "/"
    names = sorted(b.name[len(prefix) :] for b in container.list_blobs(name_starts_with=prefix))
    size = job.parallel.mini_batch_size or 10
    by_dir: dict[str, list[str]] = {}
    for name in names:
        by_dir.setdefault(posixpath.dirname(name), []).append(name)
    batches: list[MiniBatch] = []
    for directory in sorted(by_dir):
        files = by_dir[directory]
        for start in range(0, len(files), size):
            chunk = files[start : start + size]
            batches.append(MiniBatch(index=len(batches), items=len(chunk), files=chunk))
    return Manifest(base=base, mini_batches=batches, total_items=len(names))


def _manifest_path(step: StepRef) -> str:
    return job_path(step.run_id, step.job, "manifest.json")


def save_manifest(clients: StorageClients, step: StepRef, manifest: Manifest) -> None:
    blob = clients.container(Container.RUNS).get_blob_client(_manifest_path(step))
    blob.upload_blob(manifest.model_dump_json().encode(), overwrite=True)


def load_manifest(clients: StorageClients, step: StepRef) -> Manifest:
    blob = clients.container(Container.RUNS).get_blob_client(_manifest_path(step))
    return Manifest.model_validate_json(blob.download_blob().readall())


def materialize(
    clients: StorageClients, manifest: Manifest, mini_batch: MiniBatch, cache_dir: Path
) -> MaterializedBatch:
    container = clients.blob.get_container_client(manifest.base.container)
    paths: list[str] = []
    for name in mini_batch.files:
        local = cache_dir / name
        if not local.exists():
            local.parent.mkdir(parents=True, exist_ok=True)
            data = container.download_blob(f"{manifest.base.path.rstrip('/')}/{name}").readall()
            tmp = local.with_name(local.name + ".part")
            tmp.write_bytes(data)
            tmp.replace(local)
        paths.append(str(local.resolve()))
    return MaterializedBatch(data=paths, items=len(paths), partition_key_value=mini_batch.partition_key_value)


def materialize_input(
    clients: StorageClients, location: BlobData | UrlData, type: DataType, mode: InputMode, dest: Path
) -> Path:
    del mode  # the interim reader always downloads
    if not isinstance(location, BlobData):
        raise DataError("interim materialize_input: only blob inputs")
    container = clients.blob.get_container_client(location.container)
    if type is DataType.URI_FILE:
        target = dest / posixpath.basename(location.path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(container.download_blob(location.path).readall())
        return target
    prefix = location.path.rstrip("/") + "/"
    for blob in container.list_blobs(name_starts_with=prefix):
        target = dest / blob.name[len(prefix) :]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(container.download_blob(blob.name).readall())
    dest.mkdir(parents=True, exist_ok=True)
    return dest
