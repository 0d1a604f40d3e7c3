"""Uploading what a submission needs — content-addressed — and the spec last.

``fanout run``/``fanout submit`` turn a spec on the user's disk into a self-contained spec in storage:

1. compile the spec once (every mistake reported before anything is uploaded);
2. bundle it (``shared.spec.bundle_file``) with a ``rewrite`` callback that, for each local path,
   - ``code`` folder: builds a snapshot (ignore file, limits, content hash; only missing file contents
     are sent) and answers ``azureml://datastores/snapshots/paths/<snapshot id>``;
   - ``data`` file: stores it as ``uploads/sha256-<hash>/<file name>`` in the ``data`` container and
     answers ``azureml://datastores/workspaceblobstore/paths/uploads/sha256-<hash>/<file name>``;
   - ``data`` folder: stores it with its layout under ``uploads/sha256-<tree hash>/`` and answers that
     prefix; a marker (``.fanout/uploads/<tree hash>.json``) written after the last file means "complete",
     so an unchanged folder costs one request;
3. ``--set`` overrides that name local data are uploaded the same way and rewritten to their URI;
4. :func:`submit_spec` uploads the spec to the ``specs`` container — last, because its arrival starts
   the run — with the overrides in the blob's metadata (:func:`read_spec_overrides`).

Unchanged data is never uploaded twice: contents are named by their SHA-256, checked before sending, and
local hashes are cached by (path, size, mtime) (:class:`shared.snapshot.HashCache`), so an unchanged
10 GB file costs a ``stat`` and a HEAD request.

:class:`FolderSync` / :func:`upload_folder` copy a local folder to a blob prefix (only new or changed
files on each call): the command runner uses it for a job's ``./outputs`` and ``./logs``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Literal

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import ContainerClient, ContentSettings
from pydantic import Field

from shared.errors import StorageError
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
UPLOADS_PREFIX = "uploads"
_MARKERS_PREFIX = ".fanout/uploads"
_OVERRIDES_METADATA = "fanout_overrides"
_MAX_METADATA_BYTES = 7 * 1024
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


class Submission(FrozenModel):
    """A spec ready to submit: self-contained text, its overrides, and what was uploaded for it."""

    spec_text: str = Field(description="The bundled spec; every local path replaced by a storage URI.")
    source: str = Field(description="The spec file it came from.")
    overrides: dict[str, str] = Field(default_factory=dict, description="--set pairs, local paths rewritten.")
    uploads: list[UploadRecord] = Field(default_factory=list)


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


# --- submission ---------------------------------------------------------------------------------------


def prepare_submission(
    clients: StorageClients,
    spec_path: Path,
    overrides: Mapping[str, str] | None = None,
    *,
    settings: Settings | None = None,
    cache: HashCache | None = None,
    confine_to: Path | None = None,
) -> Submission:
    """Validate a spec, upload its code and data content-addressed, and return the rewritten spec.

    Args:
        clients: storage.
        spec_path: the pipeline YAML on the local disk.
        overrides: ``--set`` pairs (``{"inputs.x": "value"}``); local data paths among them are uploaded.
        settings: limits and home folder; default: the process's settings.
        cache: local hash cache; default: the one in Fanout's home folder.
        confine_to: for specs from someone else (an archive unpacked on a server): every local path
            the spec or an override names must stay inside this folder, so a spec cannot make the
            server read and upload its own files.

    Raises:
        SpecError: the spec is invalid (nothing is uploaded).
        SnapshotError: a code folder is over a limit or unsafe.
    """
    from shared.spec import bundle_file, compile_file  # the spec compiler: imported when needed

    overrides = dict(overrides or {})
    plan = compile_file(spec_path, run_id="submission", overrides=overrides, confine_to=confine_to)
    uploader = SubmissionUploader(clients, settings=settings, cache=cache)
    try:
        text = bundle_file(spec_path, rewrite=uploader.rewrite, confine_to=confine_to)
        rewritten = uploader.rewrite_overrides(plan, overrides)
    finally:
        uploader.close()
    return Submission(spec_text=text, source=str(spec_path), overrides=rewritten, uploads=uploader.records)


def submit_spec(
    clients: StorageClients, submission: Submission, *, metadata: Mapping[str, str] | None = None
) -> str:
    """Upload the bundled spec to the ``specs`` container (the last upload: it starts the run).

    Args:
        clients: storage.
        submission: what :func:`prepare_submission` returned.
        metadata: extra blob metadata, e.g. the submitter's W3C trace context (``traceparent``), which
            ingestion continues so the run joins the submitter's trace.

    Returns:
        The blob name, ``submitted/<UTC time>-<spec name>-<12 hex>.yml``; unique per content.

    Raises:
        StorageError: the overrides are too large for blob metadata.
    """
    payload = json.dumps(submission.overrides, sort_keys=True)
    digest = hashlib.sha256((submission.spec_text + "\0" + payload).encode()).hexdigest()[:12]
    stem = (
        "".join(c if c.isalnum() or c in "-_." else "-" for c in Path(submission.source).stem)[:60] or "spec"
    )
    name = f"submitted/{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{stem}-{digest}.yml"
    metadata = dict(metadata or {})
    if submission.overrides:
        encoded = base64.urlsafe_b64encode(payload.encode()).decode()
        if len(encoded) > _MAX_METADATA_BYTES:
            raise StorageError(
                f"the --set overrides take {len(encoded)} bytes encoded, more than the {_MAX_METADATA_BYTES} "
                "that fit in blob metadata; pass long values through a file input instead"
            )
        metadata[_OVERRIDES_METADATA] = encoded
    container = clients.container(Container.SPECS)
    try:
        container.upload_blob(
            name,
            submission.spec_text.encode(),
            overwrite=False,
            metadata=metadata,
            content_settings=ContentSettings(content_type="application/yaml"),
        )
    except ResourceExistsError:
        logger.info("spec %s was already submitted this second; not submitting it twice", name)
    return name


def read_spec_overrides(clients: StorageClients, blob_name: str) -> dict[str, str]:
    """The ``--set`` overrides :func:`submit_spec` stored with a spec blob ({} when there are none)."""
    try:
        metadata = (
            clients.container(Container.SPECS).get_blob_client(blob_name).get_blob_properties().metadata
        )
    except ResourceNotFoundError:
        return {}
    encoded = (metadata or {}).get(_OVERRIDES_METADATA)
    if not encoded:
        return {}
    value = json.loads(base64.urlsafe_b64decode(encoded.encode()))
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


# --- folders of a running job -------------------------------------------------------------------------


class FolderSync:
    """Copy a local folder to ``container/prefix``, sending only files that are new or changed.

    Call :meth:`sync` as often as wanted (e.g. every few seconds for ``./logs``, once at the end for
    ``./outputs``); a file is sent again when its size or modification time changed since it was sent.
    Files that vanish while being walked are skipped.
    """

    def __init__(self, clients: StorageClients, local_dir: Path, container: Container, prefix: str) -> None:
        self.local_dir = local_dir
        self.prefix = prefix.strip("/")
        self._container = clients.container(container)
        self._sent: dict[str, tuple[int, int]] = {}

    def sync(self) -> int:
        """Upload what changed since the last call; returns the number of files sent."""
        if not self.local_dir.is_dir():
            return 0
        changed: list[tuple[str, Path, tuple[int, int]]] = []
        for path in sorted(self.local_dir.rglob("*")):
            try:
                st = path.stat()
            except FileNotFoundError:
                continue
            if not path.is_file():
                continue
            rel = path.relative_to(self.local_dir).as_posix()
            stamp = (st.st_size, st.st_mtime_ns)
            if self._sent.get(rel) != stamp:
                changed.append((rel, path, stamp))
        with ThreadPoolExecutor(max_workers=_THREADS) as pool:
            done = [r for r in pool.map(self._send, changed) if r is not None]
        for rel, stamp in done:
            self._sent[rel] = stamp
        return len(done)

    def _send(self, item: tuple[str, Path, tuple[int, int]]) -> tuple[str, tuple[int, int]] | None:
        rel, path, stamp = item
        name = f"{self.prefix}/{rel}" if self.prefix else rel
        try:
            with path.open("rb") as handle:
                self._container.upload_blob(name, handle, overwrite=True)
        except FileNotFoundError:
            return None
        return rel, stamp


def upload_folder(clients: StorageClients, local_dir: Path, container: Container, prefix: str) -> int:
    """Upload every file under ``local_dir`` to ``container/prefix/<relative path>``; the count sent."""
    return FolderSync(clients, local_dir, container, prefix).sync()


__all__ = [
    "DATASTORE",
    "FolderSync",
    "Submission",
    "SubmissionUploader",
    "UploadRecord",
    "data_uri",
    "prepare_submission",
    "read_spec_overrides",
    "submit_spec",
    "upload_folder",
]
