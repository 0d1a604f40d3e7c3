"""Copying a finished run's outputs and logs to a local folder (``fanout run --outputs-dir``).

Layout: ``DIR/<job>/outputs/<name>`` for each named output (a folder output's files below it, a file
output as ``<name>/<file name>``), ``DIR/<job>/outputs/...`` for anything else the job kept in its
``outputs/`` folder (files a command wrote to ``./outputs``), and ``DIR/<job>/logs/`` for its log tree.
A reused job's outputs come from the run that produced them.
"""

from __future__ import annotations

import logging
from pathlib import Path, PurePosixPath

from azure.storage.blob import ContainerClient

from shared.errors import StorageError
from shared.orchestration.contracts import StepResult
from shared.plan import BlobData
from shared.storage import Container, StorageClients, job_path, logs_path

logger = logging.getLogger(__name__)


def download_run(clients: StorageClients, run_id: str, results: dict[str, StepResult], root: Path) -> int:
    """Download every job's outputs and logs under ``root``; how many files were written."""
    written = 0
    for job, result in results.items():
        target = root / job
        covered: set[str] = set()
        for name, location in result.outputs.items():
            written += _download(clients, location, target / "outputs" / name, covered)
        runs = clients.container(Container.RUNS)
        written += _download_prefix(runs, job_path(run_id, job, "outputs"), target / "outputs", covered)
        written += _download_prefix(runs, logs_path(run_id, job), target / "logs", set())
    return written


def _download(clients: StorageClients, location: BlobData, dest: Path, covered: set[str]) -> int:
    container = clients.blob.get_container_client(location.container)
    blob = container.get_blob_client(location.path)
    if blob.exists():  # a uri_file output
        covered.add(f"{location.container}/{location.path}")
        return _write(container, location.path, dest / PurePosixPath(location.path).name)
    return _download_prefix(container, location.path, dest, covered)


def _download_prefix(container: ContainerClient, prefix: str, dest: Path, covered: set[str]) -> int:
    written = 0
    for item in container.list_blobs(name_starts_with=prefix.rstrip("/") + "/"):
        key = f"{container.container_name}/{item.name}"
        if key in covered:
            continue
        covered.add(key)
        relative = PurePosixPath(item.name).relative_to(prefix.rstrip("/"))
        written += _write(container, item.name, dest.joinpath(*relative.parts))
    return written


def _write(container: ContainerClient, name: str, dest: Path) -> int:
    if any(part in ("..", "") for part in PurePosixPath(name).parts):
        raise StorageError(f"refusing to download {name!r}: unsafe path")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with dest.open("wb") as handle:
        container.download_blob(name).readinto(handle)
    return 1
