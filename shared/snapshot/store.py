"""The content-addressed snapshot store in the ``snapshots`` container, and materialising from it.

Layout of the ``snapshots`` container (the container name itself comes from :mod:`shared.storage`):

    incoming/<name>.zip              drop zone: a zip put here is ingested (see ``drops.py``)
    incoming/<name>.zip.error.json   why a dropped zip was rejected
    objects/<2 hex>/<sha256 hex>     file contents, named by their SHA-256; written once, never replaced
    manifests/<snapshot id>.json     a :class:`SnapshotManifest`; written last, so its presence means
                                     every object it lists is stored
    aliases/incoming/<name>.zip.json a :class:`SnapshotAlias`: which snapshot a dropped zip became

Unchanged code is never uploaded twice: a snapshot whose manifest exists is done with one request, and
a file whose content is stored already (by this or any other snapshot) is not sent again. Every write
is conditional (``If-None-Match: *``), so concurrent writers of the same content cannot clobber each
other, and nothing already stored is ever replaced.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, cast

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.storage.blob import ContainerClient

from shared.errors import SnapshotError
from shared.plan import RunPlan
from shared.settings import Settings, get_settings
from shared.snapshot.hashing import HashCache, sha256_file
from shared.snapshot.models import (
    SnapshotAlias,
    SnapshotFile,
    SnapshotManifest,
    SnapshotRecord,
    is_snapshot_id,
    tree_id,
)
from shared.snapshot.scan import FolderScan, check_limits, scan_folder
from shared.storage import Container, StorageClients

logger = logging.getLogger(__name__)

INCOMING_PREFIX = "incoming/"
ERROR_SUFFIX = ".error.json"
#: ``code:`` URI of a stored snapshot: ``azureml://datastores/snapshots/paths/<snapshot id>``.
SNAPSHOT_URI_PREFIX = f"azureml://datastores/{Container.SNAPSHOTS.value}/paths/"

_UPLOAD_THREADS = 16
#: Files at least this big are checked with a HEAD before being sent; smaller ones are sent with
#: If-None-Match and a 409 answer means "already stored".
_HEAD_FIRST_BYTES = 1024 * 1024


def object_path(sha256: str) -> str:
    """Where a file's content is stored, fanned out by its first two hex digits."""
    return f"objects/{sha256[:2]}/{sha256}"


def manifest_path(snapshot_id: str) -> str:
    """Where a snapshot's manifest is stored; its presence means the snapshot is complete."""
    return f"manifests/{snapshot_id}.json"


def alias_path(blob_name: str) -> str:
    """Where the snapshot a dropped zip became is recorded (``blob_name`` is the zip's blob)."""
    return f"aliases/{blob_name}.json"


def error_path(blob_name: str) -> str:
    """Where the reason a dropped zip was rejected is written, beside the zip."""
    return blob_name + ERROR_SUFFIX


def snapshot_uri(snapshot_id: str) -> str:
    """The URI a spec's ``code:`` uses for a stored snapshot."""
    return SNAPSHOT_URI_PREFIX + snapshot_id


def _container(clients: StorageClients) -> ContainerClient:
    return clients.container(Container.SNAPSHOTS)


@dataclass(frozen=True)
class PendingFile:
    """A file to store: its description and a way to open its bytes."""

    file: SnapshotFile
    open: Callable[[], IO[bytes]]


# --- writing ------------------------------------------------------------------------------------------


def snapshot_exists(clients: StorageClients, snapshot_id: str) -> bool:
    """Whether the snapshot is fully stored (its manifest exists): then nothing needs uploading."""
    return bool(_container(clients).get_blob_client(manifest_path(snapshot_id)).exists())


def store_snapshot(clients: StorageClients, pending: Sequence[PendingFile]) -> tuple[str, int, int, bool]:
    """Store files content-addressed and write the manifest last.

    Returns:
        (snapshot id, files uploaded, bytes uploaded, already stored).
    """
    files = sorted((p.file for p in pending), key=lambda f: f.path.encode())
    snapshot_id = tree_id(files)
    if snapshot_exists(clients, snapshot_id):
        return snapshot_id, 0, 0, True
    container = _container(clients)
    unique: dict[str, PendingFile] = {}
    for item in pending:
        unique.setdefault(item.file.sha256, item)
    with ThreadPoolExecutor(max_workers=_UPLOAD_THREADS) as pool:
        sent = list(pool.map(lambda item: _ensure_object(container, item), unique.values()))
    manifest = SnapshotManifest(snapshot_id=snapshot_id, files=files)
    try:
        container.upload_blob(
            manifest_path(snapshot_id), manifest.model_dump_json().encode(), overwrite=False
        )
    except ResourceExistsError:
        logger.debug("manifest of %s written concurrently by another writer", snapshot_id)
    uploaded = [size for size in sent if size is not None]
    return snapshot_id, len(uploaded), sum(uploaded), False


def _ensure_object(container: ContainerClient, item: PendingFile) -> int | None:
    """Upload one file's content unless stored; the bytes sent, or None when it was already there."""
    return put_if_absent(
        container, object_path(item.file.sha256), item.file.size, item.open, sha256=item.file.sha256
    )


def put_if_absent(
    container: ContainerClient,
    blob_name: str,
    size: int,
    open_data: Callable[[], IO[bytes]],
    *,
    sha256: str | None = None,
) -> int | None:
    """Write a content-addressed blob unless it exists; the bytes sent, or None when it was there.

    Big files are checked with a HEAD first (no bytes wasted); small ones are sent with
    ``If-None-Match: *`` and a conflict means "already stored". An existing blob is never replaced.
    With ``sha256`` the bytes actually sent are hashed on the way: if the file changed after it was
    hashed, the blob just written is deleted again and the upload fails, so a name never holds other
    content than its hash says.

    Raises:
        SnapshotError: the file changed while it was being uploaded.
    """
    blob = container.get_blob_client(blob_name)
    if size >= _HEAD_FIRST_BYTES and blob.exists():
        return None
    with open_data() as handle:
        reader = _HashingReader(handle)
        try:
            # one sequential reader, so the hash sees the bytes in order
            written = blob.upload_blob(
                cast(IO[bytes], reader), length=size, overwrite=False, max_concurrency=1
            )
        except ResourceExistsError:
            return None
    if sha256 is not None and (reader.count != size or reader.hexdigest() != sha256):
        with contextlib.suppress(ResourceNotFoundError, ResourceModifiedError):
            blob.delete_blob(etag=written.get("etag"), match_condition=MatchConditions.IfNotModified)
        raise SnapshotError(
            f"{blob_name}: the file changed while it was being uploaded; submit again", blob=blob_name
        )
    return size


class _HashingReader:
    """A read-only stream that hashes and counts what is read through it (sequential reads only)."""

    def __init__(self, inner: IO[bytes]) -> None:
        self._inner = inner
        self._digest = hashlib.sha256()
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        data = self._inner.read(size)
        self._digest.update(data)
        self.count += len(data)
        return data

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


def hash_folder(
    folder: Path, *, cache: HashCache | None = None, use_ignore_file: bool = True
) -> list[PendingFile]:
    """The files of a folder with their content hashes (from ``cache`` when unchanged)."""
    return pending_files(scan_folder(folder, use_ignore_file=use_ignore_file), cache)


def pending_files(scan: FolderScan, cache: HashCache | None) -> list[PendingFile]:
    """Hash every file of a scan (through ``cache`` when given)."""
    pending = []
    for f in scan.files:
        try:
            digest = cache.sha256(f.source, f.stat) if cache is not None else sha256_file(f.source)
        except OSError as exc:
            raise SnapshotError(f"cannot read {f.path}: {exc.strerror or exc}", path=str(f.source)) from exc
        pending.append(
            PendingFile(SnapshotFile(path=f.path, size=f.size, mode=f.mode, sha256=digest), _opener(f.source))
        )
    return pending


def _opener(path: Path) -> Callable[[], IO[bytes]]:
    return lambda: path.open("rb")


def snapshot_id_of_folder(folder: Path, *, cache: HashCache | None = None) -> str:
    """The id the folder's snapshot has (ignore file applied, limits not checked), without uploading."""
    return tree_id(p.file for p in hash_folder(folder, cache=cache))


def build_snapshot(
    clients: StorageClients,
    folder: Path,
    *,
    settings: Settings | None = None,
    cache: HashCache | None = None,
) -> SnapshotRecord:
    """Snapshot a local code folder into the store: ignore file, limits, hashes, upload what is missing.

    Args:
        clients: storage.
        folder: the job's ``code`` folder.
        settings: for the limits (``snapshot_max_bytes``/``snapshot_max_files``); default: the process's.
        cache: local hash cache, so unchanged files are not re-hashed.

    Raises:
        SnapshotError: the folder is missing, over a limit, or holds a link that escapes it.
    """
    settings = settings or get_settings()
    scan = scan_folder(folder)
    check_limits(
        str(folder),
        [(f.path, f.size) for f in scan.files],
        max_bytes=settings.snapshot_max_bytes,
        max_files=settings.snapshot_max_files,
    )
    pending = pending_files(scan, cache)
    snapshot_id, files, sent, stored = store_snapshot(clients, pending)
    logger.info("snapshot %s of %s: %d files, %d uploaded", snapshot_id, folder, len(pending), files)
    return SnapshotRecord(
        snapshot_id=snapshot_id,
        source=str(folder),
        file_count=len(pending),
        total_bytes=scan.total_bytes,
        ignore_file=scan.ignore_file,
        ignored_count=scan.ignored_count,
        uploaded_files=files,
        uploaded_bytes=sent,
        already_stored=stored,
    )


# --- reading ------------------------------------------------------------------------------------------


def load_manifest(clients: StorageClients, snapshot_id: str) -> SnapshotManifest:
    """The manifest of a stored snapshot. Raises SnapshotError when there is none."""
    try:
        data = _container(clients).download_blob(manifest_path(snapshot_id)).readall()
    except ResourceNotFoundError as exc:
        raise SnapshotError(f"snapshot {snapshot_id} does not exist", snapshot_id=snapshot_id) from exc
    return SnapshotManifest.model_validate_json(data)


def resolve_snapshot_ref(clients: StorageClients, ref: str) -> str:
    """The snapshot id a ``code:`` reference stands for.

    Accepts ``sha256-<hex>``, ``azureml://datastores/snapshots/paths/sha256-<hex>``, and the name of a zip
    dropped into the container (``incoming/<name>.zip``, with or without the ``azureml://`` prefix) once
    it has been ingested.

    Raises:
        SnapshotError: not a snapshot reference, no such snapshot, or the zip was not (or not yet)
            ingested — with the rejection reason when there is one.
    """
    text = ref.strip()
    if text.startswith(SNAPSHOT_URI_PREFIX):
        text = text[len(SNAPSHOT_URI_PREFIX) :]
    elif "://" in text:
        raise SnapshotError(
            f"{ref!r} is not a snapshot reference; expected {SNAPSHOT_URI_PREFIX}<snapshot id or "
            f"{INCOMING_PREFIX}<zip name>>",
            ref=ref,
        )
    text = text.strip("/")
    if is_snapshot_id(text):
        if not snapshot_exists(clients, text):
            raise SnapshotError(f"snapshot {text} does not exist", ref=ref)
        return text
    if text.startswith(INCOMING_PREFIX):
        return _resolve_alias(clients, text, ref)
    raise SnapshotError(
        f"{ref!r} is not a snapshot reference; expected sha256-<64 hex digits> or "
        f"{INCOMING_PREFIX}<zip name>",
        ref=ref,
    )


def pin_code_snapshots(clients: StorageClients, plan: RunPlan) -> RunPlan:
    """The plan with every job's ``code`` pinned to a snapshot id (``incoming/<zip>`` aliases resolved).

    Call it when a run is frozen: a zip re-dropped under the same name later then cannot change the code
    of a run in progress, and the reuse fingerprint and the agents see the same snapshot.

    Raises:
        SnapshotError: a reference cannot be resolved (with the rejection reason when there is one).
    """
    jobs = []
    for job in plan.jobs:
        code = job.code
        if code is not None and code.snapshot and not is_snapshot_id(code.snapshot):
            pinned = code.model_copy(update={"snapshot": resolve_snapshot_ref(clients, code.snapshot)})
            jobs.append(job.model_copy(update={"code": pinned}))
        else:
            jobs.append(job)
    return plan.model_copy(update={"jobs": jobs})


def _resolve_alias(clients: StorageClients, blob_name: str, ref: str) -> str:
    container = _container(clients)
    try:
        alias = SnapshotAlias.model_validate_json(container.download_blob(alias_path(blob_name)).readall())
    except ResourceNotFoundError:
        reason = _rejection_reason(container, blob_name)
        detail = f"; it was rejected: {reason}" if reason else " (is it still being ingested?)"
        raise SnapshotError(f"no snapshot was ingested from {blob_name}{detail}", ref=ref) from None
    return alias.snapshot_id


def _rejection_reason(container: ContainerClient, blob_name: str) -> str:
    """The message of ``<blob>.error.json``, or "" when the archive was not rejected."""
    try:
        document = json.loads(container.download_blob(error_path(blob_name)).readall())
    except ResourceNotFoundError:
        return ""
    except ValueError:
        return "see " + error_path(blob_name)
    return str(document.get("message", "")) if isinstance(document, dict) else ""
