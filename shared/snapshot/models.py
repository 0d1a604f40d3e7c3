"""What a code snapshot is: its files, its id, and the records the store returns.

A snapshot is the set of files of a job's code folder (after the ignore file) with, for each file, its
relative POSIX path, a normalised mode and the SHA-256 of its bytes. The snapshot id is the SHA-256 of
a canonical listing of those three things, so it depends on nothing else: not timestamps, not the order
in which a folder is walked or an archive lists its entries, not the machine or the umask.

Modes are normalised the way git does it: a file is either executable (``0o755``) or not (``0o644``).
"""

from __future__ import annotations

import hashlib
import json
import re
import stat
import unicodedata
from collections.abc import Iterable
from datetime import datetime

from pydantic import Field

from shared.models import FrozenModel

#: Prefix of every content id (snapshot ids, data tree ids): the hash algorithm, readable in paths.
ID_PREFIX = "sha256-"
_SNAPSHOT_ID = re.compile(r"^sha256-[0-9a-f]{64}$")
_HEADER = "fanout-snapshot-v1\n"

EXECUTABLE_MODE = 0o755
REGULAR_MODE = 0o644


def normalize_mode(st_mode: int) -> int:
    """``0o755`` when any execute bit is set, else ``0o644`` (git's rule: only the x bit matters)."""
    return EXECUTABLE_MODE if st_mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH) else REGULAR_MODE


def normalize_relative_path(path: str) -> str:
    """A relative path in the form every snapshot uses: ``/`` separators, Unicode NFC.

    macOS reports names in NFD; Linux and zip tools usually in NFC. Normalising keeps the id of the same
    folder identical on every machine.
    """
    return unicodedata.normalize("NFC", path.replace("\\", "/"))


def is_snapshot_id(value: str) -> bool:
    """True for ``sha256-<64 hex>``."""
    return bool(_SNAPSHOT_ID.match(value))


class SnapshotFile(FrozenModel):
    """One file of a snapshot."""

    path: str = Field(description="Relative POSIX path inside the code folder, NFC-normalised.")
    size: int = Field(ge=0, description="Size in bytes.")
    mode: int = Field(description="0o755 (executable) or 0o644.")
    sha256: str = Field(description="Hex SHA-256 of the file's bytes; the file's name in the store.")


def tree_id(files: Iterable[SnapshotFile]) -> str:
    """The content id of a set of files: ``sha256-<hex>`` over (path, mode, content hash), sorted by path.

    Sizes are implied by the content hashes; paths are JSON-quoted so no name can forge a line.
    """
    digest = hashlib.sha256(_HEADER.encode())
    for file in sorted(files, key=lambda f: f.path.encode()):
        line = f"{file.mode:06o} {file.sha256} {json.dumps(file.path, ensure_ascii=False)}\n"
        digest.update(line.encode())
    return ID_PREFIX + digest.hexdigest()


class SnapshotManifest(FrozenModel):
    """The stored description of one snapshot (``manifests/<id>.json`` in the ``snapshots`` container)."""

    snapshot_id: str = Field(description="sha256-<hex> of the canonical file listing.")
    files: list[SnapshotFile] = Field(description="Every file, sorted by path.")

    @property
    def total_bytes(self) -> int:
        """The size of the snapshot's files, summed."""
        return sum(f.size for f in self.files)


class SnapshotRecord(FrozenModel):
    """What building or ingesting a snapshot did; JSON-ready for the CLI and the HTTP API."""

    snapshot_id: str = Field(
        description="sha256-<hex>; reference it as azureml://datastores/snapshots/paths/<id>."
    )
    source: str = Field(description="The folder or archive (blob name) the snapshot was taken from.")
    file_count: int = Field(ge=0, description="Files in the snapshot (after the ignore file).")
    total_bytes: int = Field(ge=0, description="Bytes in the snapshot (after the ignore file).")
    ignore_file: str | None = Field(
        default=None, description="'.amlignore' or '.gitignore' when one was applied, else None."
    )
    ignored_count: int = Field(default=0, ge=0, description="Files left out by the ignore file.")
    uploaded_files: int = Field(default=0, ge=0, description="File contents uploaded by this call.")
    uploaded_bytes: int = Field(default=0, ge=0, description="Bytes uploaded by this call.")
    already_stored: bool = Field(
        default=False, description="True when an identical snapshot was already stored (nothing uploaded)."
    )


class SnapshotAlias(FrozenModel):
    """``aliases/<drop blob>.json``: which snapshot a zip dropped under ``incoming/`` became."""

    snapshot_id: str = Field(description="The snapshot the archive was ingested as.")
    source: str = Field(description="Blob name of the archive, e.g. 'incoming/score.zip'.")
    source_etag: str | None = Field(default=None, description="ETag of the archive blob that was ingested.")
    ingested_at: datetime = Field(description="When it was ingested (UTC).")
