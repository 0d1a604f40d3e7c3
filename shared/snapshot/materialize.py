"""Materialising a stored snapshot on a node: download once, verify every file, rename atomically."""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from azure.storage.blob import ContainerClient

from shared.errors import SnapshotError
from shared.snapshot.hashing import sha256_file
from shared.snapshot.models import SnapshotFile, is_snapshot_id
from shared.snapshot.store import load_manifest, object_path, resolve_snapshot_ref
from shared.storage import Container, StorageClients

logger = logging.getLogger(__name__)

_DOWNLOAD_THREADS = 16


def materialize_snapshot(clients: StorageClients, snapshot_id: str, dest_cache: Path) -> Path:
    """The local folder holding a snapshot's files, downloaded once per ``dest_cache`` (one per node).

    The folder is ``dest_cache/<snapshot id>``. It is built in a private temporary folder and renamed
    into place atomically, so concurrent workers and agents on a node never see a half-written folder:
    the first rename wins and the others discard their copy. Every file's hash is verified. Treat the
    folder as read-only (it is shared); copy it if a job must write next to its code.

    Args:
        clients: storage.
        snapshot_id: ``sha256-<hex>`` (or any reference :func:`resolve_snapshot_ref` accepts).
        dest_cache: the node's snapshot cache folder.

    Raises:
        SnapshotError: the snapshot does not exist, or a stored file does not match its hash.
    """
    if not is_snapshot_id(snapshot_id):
        snapshot_id = resolve_snapshot_ref(clients, snapshot_id)
    final = dest_cache / snapshot_id
    if final.is_dir():
        return final
    manifest = load_manifest(clients, snapshot_id)
    dest_cache.mkdir(parents=True, exist_ok=True)
    staging = dest_cache / f".tmp-{snapshot_id[7:19]}-{uuid.uuid4().hex[:12]}"
    staging.mkdir()
    try:
        container = clients.container(Container.SNAPSHOTS)
        with ThreadPoolExecutor(max_workers=_DOWNLOAD_THREADS) as pool:
            list(pool.map(lambda f: _download(container, f, staging), manifest.files))
        try:
            os.rename(staging, final)
        except OSError:
            if not final.is_dir():
                raise
            logger.debug("snapshot %s materialised concurrently; using the other copy", snapshot_id)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return final


def _download(container: ContainerClient, file: SnapshotFile, root: Path) -> None:
    parts = file.path.split("/")
    if file.path.startswith("/") or any(part in ("", ".", "..") for part in parts):
        raise SnapshotError(f"manifest entry {file.path!r} is not a safe relative path", path=file.path)
    target = root.joinpath(*parts)
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("wb") as handle:
        container.download_blob(object_path(file.sha256), max_concurrency=2).readinto(handle)
    if sha256_file(target) != file.sha256:
        raise SnapshotError(
            f"stored content of {file.path} does not match its hash {file.sha256}", path=file.path
        )
    target.chmod(file.mode)
