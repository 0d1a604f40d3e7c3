"""Uploading local files to blobs: a submission's code and data content-addressed, job folders mirrored.

:class:`SubmissionUploader` is the ``rewrite`` callback of ``shared.spec.bundle_file``: for each local
path a spec names it uploads the content and answers the URI the spec says instead:

- ``code`` folder: builds a snapshot (ignore file, limits, content hash; only missing file contents
  are sent) and answers ``azureml://datastores/snapshots/paths/<snapshot id>``;
- ``data`` file: stores it as ``uploads/sha256-<hash>/<file name>`` in the ``data`` container and
  answers ``azureml://datastores/workspaceblobstore/paths/uploads/sha256-<hash>/<file name>``;
- ``data`` folder: stores it with its layout under ``uploads/sha256-<tree hash>/`` and answers that
  prefix; a marker (``.fanout/uploads/<tree hash>.json``) written after the last file means "complete",
  so an unchanged folder costs one request.

Unchanged data is never uploaded twice: contents are named by their SHA-256, checked before sending, and
local hashes are cached by (path, size, mtime) (:class:`shared.snapshot.HashCache`), so an unchanged
10 GB file costs a ``stat`` and a HEAD request.

:func:`upload_folder` copies a local folder to a blob prefix (a command job's ./outputs when it ends).

What a submission does with these uploads — compile, bundle, rewrite ``--set`` values, then put the spec
blob that starts the run — is :mod:`shared.submission`; this module only moves bytes and names them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, TYPE_CHECKING, Literal

from azure.core.exceptions import ResourceExistsError
from azure.storage.blob import ContainerClient
from pydantic import Field

from shared.models import FrozenModel
from shared.plan import DataInput, LocalData
from shared.settings import Settings, get_settings
from shared.snapshot import HashCache, build_snapshot, scan_folder, snapshot_uri, tree_id
from shared.snapshot.models import REGULAR_MODE, SnapshotFile
from shared.snapshot.store import put_if_absent
from shared.storage import Container, StorageClients

if TYPE_CHECKING:
    from shared.plan import RunPlan
    from shared.spec import PathUse

logger = logging.getLogger(__name__)

#: The datastore name written into rewritten data URIs (it maps to the ``data`` container).
DATASTORE = "workspaceblobstore"
#: The blob prefix in the ``data`` container under which uploaded data is stored by content hash.
UPLOADS_PREFIX = "uploads"
_MARKERS_PREFIX = ".fanout/uploads"
_THREADS = 16


def data_uri(blob_path: str) -> str:
    """``azureml://datastores/workspaceblobstore/paths/<blob path>`` (a path in the ``data`` container)."""
    return f"azureml://datastores/{DATASTORE}/paths/{blob_path}"


class UploadRecord(FrozenModel):
    """One local path that a submission uploaded (or found already uploaded)."""

    kind: Literal["code", "data"] = Field(description="A job's code folder, or a data file/folder.")
    local_path: str = Field(description="The absolute local path.")
    uri: str = Field(description="What the spec now says instead of the local path.")
    content_id: str = Field(description="sha256-<hex>: snapshot id, file hash or folder tree hash.")
    file_count: int = Field(ge=0)
    total_bytes: int = Field(ge=0)
    uploaded_files: int = Field(default=0, ge=0, description="Files actually sent (0 when unchanged).")
    uploaded_bytes: int = Field(default=0, ge=0)


class SubmissionUploader:
    """Uploads the local paths of one submission; each path once, whatever number of times it is used.

    Args:
        clients: storage.
        settings: for the snapshot limits; default: the process's settings.
        cache: local hash cache; default: the one in Fanout's home folder.
    """

    def __init__(
        self, clients: StorageClients, *, settings: Settings | None = None, cache: HashCache | None = None
    ) -> None:
        self.clients = clients
        self.settings = settings or get_settings()
        self._owns_cache = cache is None
        self.cache = cache if cache is not None else HashCache.in_home(self.settings.home)
        self.records: list[UploadRecord] = []
        self._done: dict[tuple[str, str], UploadRecord] = {}

    def close(self) -> None:
        """Close the hash cache if this uploader opened it."""
        if self._owns_cache:
            self.cache.close()

    def rewrite(self, use: PathUse) -> str:
        """The ``rewrite`` callback of ``bundle_file``: upload ``use.path`` and return its URI."""
        if use.kind == "code":
            return self.upload_code(Path(use.path)).uri
        return self.upload_data(Path(use.path)).uri

    def upload_code(self, folder: Path) -> UploadRecord:
        """Snapshot a code folder (see :func:`shared.snapshot.build_snapshot`)."""
        key = ("code", str(folder.absolute()))
        if key not in self._done:
            snap = build_snapshot(self.clients, folder, settings=self.settings, cache=self.cache)
            self._remember(
                key,
                UploadRecord(
                    kind="code",
                    local_path=key[1],
                    uri=snapshot_uri(snap.snapshot_id),
                    content_id=snap.snapshot_id,
                    file_count=snap.file_count,
                    total_bytes=snap.total_bytes,
                    uploaded_files=snap.uploaded_files,
                    uploaded_bytes=snap.uploaded_bytes,
                ),
            )
        return self._done[key]

    def upload_data(self, path: Path) -> UploadRecord:
        """Upload a data file or folder content-addressed; nothing is sent when it is stored already."""
        key = ("data", str(path.absolute()))
        if key not in self._done:
            record = self._upload_file(path) if path.is_file() else self._upload_folder(path)
            self._remember(key, record)
        return self._done[key]

    def _remember(self, key: tuple[str, str], record: UploadRecord) -> None:
        self._done[key] = record
        self.records.append(record)
        logger.info(
            "%s %s -> %s (%d of %d files sent)",
            record.kind,
            record.local_path,
            record.uri,
            record.uploaded_files,
            record.file_count,
        )

    def _upload_file(self, path: Path) -> UploadRecord:
        st = path.stat()
        digest = self.cache.sha256(path, st)
        blob_path = f"{UPLOADS_PREFIX}/sha256-{digest}/{path.name}"
        sent = put_if_absent(self._data(), blob_path, st.st_size, lambda: path.open("rb"), sha256=digest)
        return UploadRecord(
            kind="data",
            local_path=str(path.absolute()),
            uri=data_uri(blob_path),
            content_id=f"sha256-{digest}",
            file_count=1,
            total_bytes=st.st_size,
            uploaded_files=1 if sent is not None else 0,
            uploaded_bytes=sent or 0,
        )

    def _upload_folder(self, folder: Path) -> UploadRecord:
        scan = scan_folder(folder, use_ignore_file=False, confine_links=False)
        files = [
            (
                f,
                SnapshotFile(
                    path=f.path, size=f.size, mode=REGULAR_MODE, sha256=self.cache.sha256(f.source, f.stat)
                ),
            )
            for f in scan.files
        ]
        content_id = tree_id(file for _, file in files)
        prefix = f"{UPLOADS_PREFIX}/{content_id}"
        container = self._data()
        marker = container.get_blob_client(f"{_MARKERS_PREFIX}/{content_id}.json")
        sent: list[int] = []
        if not marker.exists():
            with ThreadPoolExecutor(max_workers=_THREADS) as pool:
                results = pool.map(
                    lambda item: put_if_absent(
                        container,
                        f"{prefix}/{item[1].path}",
                        item[1].size,
                        _opener(item[0].source),
                        sha256=item[1].sha256,
                    ),
                    files,
                )
                sent = [size for size in results if size is not None]
            document = {"content_id": content_id, "files": [f.model_dump() for _, f in files]}
            try:
                marker.upload_blob(json.dumps(document).encode(), overwrite=False)
            except ResourceExistsError:
                logger.debug("folder %s completed concurrently by another upload", content_id)
        return UploadRecord(
            kind="data",
            local_path=str(folder.absolute()),
            uri=data_uri(prefix),
            content_id=content_id,
            file_count=len(files),
            total_bytes=scan.total_bytes,
            uploaded_files=len(sent),
            uploaded_bytes=sum(sent),
        )

    def _data(self) -> ContainerClient:
        return self.clients.container(Container.DATA)

    def rewrite_overrides(self, plan: RunPlan, overrides: Mapping[str, str]) -> dict[str, str]:
        """``--set`` pairs with every value that named local data replaced by the uploaded URI."""
        result = dict(overrides)
        for key in overrides:
            name = key.removeprefix("inputs.")
            planned = plan.inputs.get(name)
            if isinstance(planned, DataInput) and isinstance(planned.source, LocalData):
                result[key] = self.upload_data(Path(planned.source.path)).uri
        return result


def _opener(path: Path) -> Callable[[], IO[bytes]]:
    return lambda: path.open("rb")


def upload_folder(clients: StorageClients, local_dir: Path, container: Container, prefix: str) -> int:
    """Upload every file under ``local_dir`` to ``container/prefix/<relative path>``; the count sent.

    A missing folder sends nothing; files that vanish while being walked are skipped.
    """
    if not local_dir.is_dir():
        return 0
    target = clients.container(container)
    prefix = prefix.strip("/")

    def send(path: Path) -> bool:
        rel = path.relative_to(local_dir).as_posix()
        try:
            with path.open("rb") as handle:
                target.upload_blob(f"{prefix}/{rel}" if prefix else rel, handle, overwrite=True)
        except FileNotFoundError:
            return False
        return True

    files = [path for path in sorted(local_dir.rglob("*")) if path.is_file()]
    with ThreadPoolExecutor(max_workers=_THREADS) as pool:
        return sum(pool.map(send, files))


__all__ = [
    "DATASTORE",
    "SubmissionUploader",
    "UploadRecord",
    "data_uri",
    "upload_folder",
]
