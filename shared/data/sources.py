"""Input resolution: from a step input's location to the ordered list of files it stands for.

- ``uri_file``: the one blob.
- ``uri_folder``: every blob under the prefix, in ``os.walk(topdown=True)`` order with sorted names
  (a folder's own files first, then its sub-folders, recursively) — the order Azure ML's file
  provider walks a mounted folder in.
- ``mltable``: the ``MLTable`` file in the folder (or the blob itself when the location names it),
  then its ``paths`` in the order written: ``file`` (must exist), ``folder`` (walked as above) and
  ``pattern`` (globs; matches in walk order). Relative paths are relative to the MLTable folder; a
  file listed twice is kept once; the ``MLTable`` file itself is never selected by a folder or glob.

Files live under one or more :class:`BlobRoot`\\ s; root 0 is the input itself (the folder, or the
MLTable folder), other roots come from absolute URIs in MLTable paths or relative paths that climb
out of the MLTable folder.
"""

from __future__ import annotations

import logging
import posixpath
from dataclasses import dataclass, field

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from shared.data.locations import BlobFile, BlobRoot, blob_properties, list_files, open_container, parse_uri
from shared.data.mltable import MLTABLE_FILE, MLTable
from shared.data.mltable_parser import parse_mltable
from shared.data.patterns import compile_glob, glob_prefix, has_wildcard
from shared.errors import DataError
from shared.storage import StorageClients

logger = logging.getLogger(__name__)


@dataclass
class FileSet:
    """Files in plan order, each under one of ``roots``."""

    roots: list[BlobRoot] = field(default_factory=list)
    files: list[tuple[int, BlobFile]] = field(default_factory=list)

    def root_index(self, root: BlobRoot) -> int:
        """Index of ``root`` in :attr:`roots`, adding it when new."""
        for position, known in enumerate(self.roots):
            if known == root:
                return position
        self.roots.append(root)
        return len(self.roots) - 1

    def display(self, root: int, path: str) -> str:
        """How a file is shown (``Path`` column, partition formats): relative under root 0, else full."""
        return path if root == 0 else f"{self.roots[root].describe()}/{path}"


def walk_order(files: list[BlobFile]) -> list[BlobFile]:
    """``files`` in ``os.walk(topdown=True)`` order with sorted names."""

    def key(item: BlobFile) -> tuple[tuple[str, ...], str]:
        folder, _, name = item.path.rpartition("/")
        return (tuple(folder.split("/")) if folder else (), name)

    return sorted(files, key=key)


def folder_files(clients: StorageClients, root: BlobRoot) -> FileSet:
    """Every file under ``root`` (a ``uri_folder`` input), in walk order."""
    return FileSet(roots=[root], files=[(0, f) for f in walk_order(list_files(clients, root))])


def single_file(clients: StorageClients, root: BlobRoot) -> FileSet:
    """A ``uri_file`` input: its root is the blob's folder, the file its name.

    Raises:
        DataError: the blob does not exist.
    """
    folder, _, name = root.prefix.rpartition("/")
    parent = root.model_copy(update={"prefix": folder})
    found = blob_properties(clients, parent, name)
    if found is None:
        raise DataError(f"the uri_file input {root.describe()} does not exist")
    return FileSet(roots=[parent], files=[(0, found)])


def load_mltable(clients: StorageClients, root: BlobRoot) -> tuple[MLTable, BlobRoot]:
    """The MLTable of an ``mltable`` input and the folder its relative paths start from.

    Raises:
        DataError: no ``MLTable`` file in the folder (nor at the location itself).
        MLTableError: the file is malformed or uses something unsupported.
    """
    container = open_container(clients, root)
    candidates = [(root, root.blob_name(MLTABLE_FILE))]
    if root.prefix.rpartition("/")[2] == MLTABLE_FILE:
        candidates.insert(
            0, (root.model_copy(update={"prefix": root.prefix.rpartition("/")[0]}), root.prefix)
        )
    for folder, blob in candidates:
        try:
            text = container.download_blob(blob).readall().decode("utf-8-sig")
        except ResourceNotFoundError:
            continue
        except HttpResponseError as exc:
            raise DataError(f"cannot read {root.describe()}/{MLTABLE_FILE}: {exc.message or exc}") from exc
        source = f"{folder.describe()}/{MLTABLE_FILE}"
        return parse_mltable(text, source), folder
    raise DataError(
        f"the mltable input {root.describe()} has no {MLTABLE_FILE} file; an mltable input is a folder "
        f"holding a file named exactly '{MLTABLE_FILE}' (use type uri_folder for a plain folder)",
        path=root.describe(),
    )


def mltable_files(clients: StorageClients, table: MLTable, folder: BlobRoot) -> FileSet:
    """The files an MLTable's ``paths`` select, in order, without duplicates.

    Raises:
        DataError: a ``file`` path does not exist, a ``folder``/``pattern`` matches nothing, or a
            relative path climbs above its container.
    """
    found = FileSet(roots=[folder])
    seen: set[tuple[int, str]] = set()
    source = f"{folder.describe()}/{MLTABLE_FILE}"
    for entry in table.paths:
        root, path = _entry_root(folder, entry.value, source)
        if entry.kind == "file":
            listed = _one_file(clients, root, path, source)
        elif entry.kind == "folder":
            listed = _under(clients, root, path)
        else:
            listed = _matching(clients, root, path)
        if not listed:
            raise DataError(f"{source}: {entry.kind} {entry.value!r} matches no file", path=source)
        for relative_root, item in listed:
            index = found.root_index(relative_root)
            if index == 0 and item.path == MLTABLE_FILE and entry.kind != "file":
                continue  # the MLTable file describes the data; a folder or glob never selects it
            if (index, item.path) not in seen:
                seen.add((index, item.path))
                found.files.append((index, item))
    return found


def _entry_root(folder: BlobRoot, value: str, source: str) -> tuple[BlobRoot, str]:
    """The root a path entry is listed under and the path relative to it."""
    absolute = parse_uri(value)
    if absolute is not None:
        return absolute
    relative = posixpath.normpath(value.replace("\\", "/")).lstrip("/")
    if relative == ".":
        relative = ""
    if relative == ".." or relative.startswith("../"):
        full = posixpath.normpath(posixpath.join(folder.prefix, relative)) if folder.prefix else relative
        if full == ".." or full.startswith("../"):
            raise DataError(f"{source}: the path {value!r} climbs above the container", path=source)
        return folder.model_copy(update={"prefix": ""}), "" if full == "." else full
    return folder, relative


def _one_file(
    clients: StorageClients, root: BlobRoot, path: str, source: str
) -> list[tuple[BlobRoot, BlobFile]]:
    found = blob_properties(clients, root, path) if path else None
    if found is None:
        raise DataError(f"{source}: file {path!r} does not exist in {root.describe()}", path=source)
    return [(root, found)]


def _under(clients: StorageClients, root: BlobRoot, path: str) -> list[tuple[BlobRoot, BlobFile]]:
    return [(root, item) for item in walk_order(list_files(clients, root, path))]


def _matching(clients: StorageClients, root: BlobRoot, pattern: str) -> list[tuple[BlobRoot, BlobFile]]:
    if not has_wildcard(pattern):
        return _under(clients, root, pattern) or [
            (root, item)
            for item in list_files(clients, root, pattern.rpartition("/")[0])
            if item.path == pattern
        ]
    regex = compile_glob(pattern)
    listed = list_files(clients, root, glob_prefix(pattern))
    return [(root, item) for item in walk_order([i for i in listed if regex.fullmatch(i.path)])]
