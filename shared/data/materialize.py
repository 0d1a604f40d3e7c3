"""Materialising data on a node: a mini-batch for ``run()``, and whole inputs for ``${{inputs.x}}``.

- :func:`materialize` turns a mini-batch descriptor into what ``run(mini_batch)`` receives: a list of
  absolute local paths that exist (file lists) or a pandas DataFrame (tabular: only the batch's byte
  ranges / row groups are downloaded).
- :func:`materialize_input` downloads a non-split input (a model folder, a ``uri_file``, an MLTable
  folder) once per node and returns the local path to substitute for ``${{inputs.x}}``;
  :func:`input_argument` does the same but honours ``mode: direct`` by returning a URL instead.

Local layout: each storage root gets its own folder under the cache directory
(``<cache>/<container>-<hash>/``), with blob paths below it kept as they are — so workers and steps
sharing a cache directory share downloads. A file is downloaded to a temporary name and renamed into
place, stamped with the blob's size and Last-Modified time; a file already there with the same stamp
is reused, so concurrent workers and retries never see half-written files and never download twice.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import sys
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.storage.blob import ContainerSasPermissions, generate_container_sas

from shared.data.fetch import download_to
from shared.data.locations import BlobFile, BlobRoot, list_files, open_container, root_of
from shared.data.manifest import KeyValue, Manifest, MiniBatch
from shared.data.sources import single_file
from shared.errors import DataError
from shared.plan import BlobData, DataType, InputMode, UrlData
from shared.storage import StorageClients

if TYPE_CHECKING:  # pandas is imported only when a tabular mini-batch is read
    import pandas as pd

logger = logging.getLogger(__name__)

#: Parallel downloads per mini-batch / input.
DOWNLOAD_THREADS = 8
#: Lifetime of the SAS put on ``direct`` input URLs when Fanout holds an account key.
DIRECT_SAS_LIFETIME = timedelta(hours=8)


@dataclass(frozen=True)
class MiniBatchDataset:
    """What ``mini_batch_context.dataset`` offers: the mini-batch's own slice of the input.

    Mirrors the two Azure ML dataset calls scripts use: ``to_path()`` (files) and
    ``to_pandas_dataframe()`` (tables).
    """

    input_name: str
    files: list[str] | None = None
    frame: pd.DataFrame | None = None

    def to_path(self) -> list[str]:
        """Local paths of the mini-batch's files (file inputs)."""
        if self.files is None:
            raise DataError("this mini-batch is tabular: use to_pandas_dataframe()")
        return list(self.files)

    def to_pandas_dataframe(self) -> pd.DataFrame:
        """The mini-batch's rows (tabular inputs)."""
        if self.frame is None:
            raise DataError("this mini-batch is a list of files: use to_path()")
        return self.frame


@dataclass(frozen=True)
class MaterializedBatch:
    """A mini-batch ready for ``run()``: ``data`` is what ``run`` receives; ``items == len(data)``."""

    index: int
    data: list[str] | pd.DataFrame
    items: int
    partition_key_value: dict[str, KeyValue] | None = None
    dataset: MiniBatchDataset = field(default_factory=lambda: MiniBatchDataset(input_name=""))


def materialize(
    clients: StorageClients, manifest: Manifest, mini_batch: MiniBatch, cache_dir: Path
) -> MaterializedBatch:
    """Download (or reuse) one mini-batch's data and return it in ``run()``'s shape.

    Args:
        clients: storage clients.
        manifest: the step's manifest (``load_manifest``), loaded once per worker.
        mini_batch: the descriptor to materialise (``manifest.mini_batches[i]``).
        cache_dir: where files are downloaded (may be shared by the node's workers).

    Raises:
        DataError: a blob vanished, cannot be read or parsed.
    """
    key = mini_batch.partition_key_value
    if manifest.kind == "tabular":
        from shared.data.readers import read_mini_batch

        frame = read_mini_batch(clients, manifest, mini_batch)
        dataset = MiniBatchDataset(input_name=manifest.input_name, frame=frame)
        return MaterializedBatch(mini_batch.index, frame, len(frame), key, dataset)
    root = manifest.roots[mini_batch.root]
    files = [
        BlobFile(path=p, size=s, modified=m)
        for p, s, m in zip(mini_batch.files, mini_batch.sizes, mini_batch.modified, strict=True)
    ]
    paths = download_files(clients, root, files, local_root(cache_dir, root))
    local = [str(p) for p in paths]
    dataset = MiniBatchDataset(input_name=manifest.input_name, files=local)
    return MaterializedBatch(mini_batch.index, local, len(local), key, dataset)


def local_root(cache_dir: Path, root: BlobRoot) -> Path:
    """The folder under ``cache_dir`` that mirrors ``root``."""
    identity = f"{root.account_url or ''}|{root.container}|{root.prefix}"
    digest = hashlib.sha256(identity.encode()).hexdigest()[:10]
    return (cache_dir / f"{root.container}-{digest}").absolute()


def download_files(
    clients: StorageClients, root: BlobRoot, files: Sequence[BlobFile], target: Path
) -> list[Path]:
    """Make every file of ``files`` exist under ``target`` (reusing identical ones); their paths, in order."""
    paths = [_inside(target, item.path) for item in files]

    def fetch(position: int) -> None:
        item, path = files[position], paths[position]
        if _is_current(path, item):
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.partial")
        try:
            with partial.open("wb") as handle:
                download_to(clients, root, root.blob_name(item.path), item.size, handle)
            os.utime(partial, (item.modified, item.modified))
            os.replace(partial, path)
        except ResourceNotFoundError as exc:
            raise DataError(
                f"{root.describe()}/{item.path} does not exist (deleted after the step was planned?)"
            ) from exc
        except HttpResponseError as exc:
            raise DataError(f"cannot download {root.describe()}/{item.path}: {exc.message or exc}") from exc
        finally:
            with contextlib.suppress(FileNotFoundError):
                partial.unlink()

    if len(files) <= 1:
        for position in range(len(files)):
            fetch(position)
    else:
        with ThreadPoolExecutor(max_workers=min(DOWNLOAD_THREADS, len(files))) as pool:
            list(pool.map(fetch, range(len(files))))
    return paths


def _inside(target: Path, relative: str) -> Path:
    """``target/relative``, refusing blob names that would escape ``target`` (``../`` segments)."""
    parts = [p for p in relative.replace("\\", "/").split("/") if p not in {"", "."}]
    if any(p == ".." for p in parts) or not parts:
        raise DataError(
            f"refusing to download the blob path {relative!r}: it would leave the download folder"
        )
    return target.joinpath(*parts)


def _is_current(path: Path, item: BlobFile) -> bool:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return False
    return stat.st_size == item.size and int(stat.st_mtime) == item.modified


# --- whole inputs -------------------------------------------------------------------------------------


def materialize_input(
    clients: StorageClients, location: BlobData | UrlData, type: DataType, mode: InputMode, dest: Path
) -> Path:
    """Download a whole (non-split) input into ``dest`` once per node; the path for ``${{inputs.x}}``.

    ``uri_file`` returns ``dest/<file name>``; ``uri_folder`` and ``mltable`` return ``dest`` holding
    the folder's files (an MLTable folder keeps its ``MLTable`` file, so relative paths inside it
    still work). Workers of one node calling this at the same time take turns on a lock file; the
    first downloads, the others find the files current. Every mode downloads — ``ro_mount``,
    ``rw_mount``, ``download``, ``eval_*`` alike; for ``direct`` use :func:`input_argument`.

    Raises:
        DataError: the input does not exist or cannot be read.
    """
    del mode  # every mode is a download; the parameter keeps call sites explicit
    root = root_of(location)
    dest = dest.absolute()
    dest.mkdir(parents=True, exist_ok=True)
    with _node_lock(dest.parent / f".{dest.name}.lock"):
        if type == DataType.URI_FILE:
            found = single_file(clients, root)
            parent, item = found.roots[0], found.files[0][1]
            return download_files(clients, parent, [item], dest)[0]
        files = list_files(clients, root)
        if not files:
            raise DataError(f"the {type.value} input {root.describe()} is empty or does not exist")
        download_files(clients, root, files, dest)
        return dest


def input_argument(
    clients: StorageClients, location: BlobData | UrlData, type: DataType, mode: InputMode, dest: Path
) -> str:
    """What replaces ``${{inputs.x}}``: a local path, or for ``mode: direct`` the input's URL.

    A direct URL carries the input's own SAS, or a read/list SAS valid for
    :data:`DIRECT_SAS_LIFETIME` when Fanout holds the account key (Azurite, key-based accounts);
    with Entra ID it is the plain URL and the node's identity must be allowed to read it.
    """
    if mode == InputMode.DIRECT:
        return direct_url(clients, location)
    return str(materialize_input(clients, location, type, mode, dest))


def direct_url(clients: StorageClients, location: BlobData | UrlData) -> str:
    """An https URL of the input (blob or folder prefix) that a script can read, with a SAS when possible."""
    root = root_of(location)
    container = open_container(clients, root)
    url = (
        f"{container.url.split('?')[0].rstrip('/')}/{root.prefix}"
        if root.prefix
        else container.url.split("?")[0]
    )
    if root.sas:
        return f"{url}?{root.sas}"
    credential = getattr(container.credential, "account_key", None)
    if credential is None:
        return url
    token = generate_container_sas(
        container.account_name or "",
        container.container_name,
        account_key=credential,
        permission=ContainerSasPermissions(read=True, list=True),
        expiry=datetime.now(UTC) + DIRECT_SAS_LIFETIME,
    )
    return f"{url}?{token}"


@contextlib.contextmanager
def _node_lock(path: Path) -> Iterator[None]:
    """An exclusive lock between processes of one machine (released if the holder dies)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+b") as handle:
        if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
            import msvcrt

            handle.seek(0)
            msvcrt.locking(handle.fileno(), msvcrt.LK_LOCK, 1)
            try:
                yield
            finally:
                handle.seek(0)
                msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)
        else:
            import fcntl

            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
