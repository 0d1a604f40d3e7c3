"""Code snapshots: ignore files, limits, content hashes, archive safety, the content-addressed store.

A job's ``code`` folder (or a zip of it) becomes a *snapshot*: the files left after the ignore file,
each stored once by its SHA-256, plus a manifest; the snapshot id (``sha256-<hex>``) depends only on
relative paths, file modes and bytes. Agents get the code back with :func:`materialize_snapshot`.

Modules: ``scan`` (ignore file, walk, limits), ``models`` (ids, manifest), ``hashing`` (local hash
cache), ``store`` (upload, resolve), ``materialize`` (the code on a node), ``archive`` (zip safety and
ingestion), ``drops`` (zips dropped into the ``snapshots`` container).
"""

from shared.snapshot.archive import MAX_COMPRESSION_RATIO, ingest_snapshot_archive
from shared.snapshot.drops import ingest_snapshot_blob, is_snapshot_drop
from shared.snapshot.hashing import HashCache, sha256_file
from shared.snapshot.materialize import materialize_snapshot
from shared.snapshot.models import (
    SnapshotAlias,
    SnapshotFile,
    SnapshotManifest,
    SnapshotRecord,
    is_snapshot_id,
    tree_id,
)
from shared.snapshot.scan import IGNORE_FILES, FolderScan, IgnoreRules, check_limits, scan_folder
from shared.snapshot.store import (
    INCOMING_PREFIX,
    SNAPSHOT_URI_PREFIX,
    build_snapshot,
    load_manifest,
    pin_code_snapshots,
    resolve_snapshot_ref,
    snapshot_exists,
    snapshot_id_of_folder,
    snapshot_uri,
)

__all__ = [
    "IGNORE_FILES",
    "INCOMING_PREFIX",
    "MAX_COMPRESSION_RATIO",
    "SNAPSHOT_URI_PREFIX",
    "FolderScan",
    "HashCache",
    "IgnoreRules",
    "SnapshotAlias",
    "SnapshotFile",
    "SnapshotManifest",
    "SnapshotRecord",
    "build_snapshot",
    "check_limits",
    "ingest_snapshot_archive",
    "ingest_snapshot_blob",
    "is_snapshot_drop",
    "is_snapshot_id",
    "load_manifest",
    "materialize_snapshot",
    "pin_code_snapshots",
    "resolve_snapshot_ref",
    "scan_folder",
    "sha256_file",
    "snapshot_exists",
    "snapshot_id_of_folder",
    "snapshot_uri",
    "tree_id",
]
