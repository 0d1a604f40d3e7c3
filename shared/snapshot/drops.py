"""Zips dropped into ``snapshots/incoming/``: the blob trigger's body, error files and aliases.

A drop is checked and stored by :func:`shared.snapshot.archive.ingest_snapshot_archive`. A rejected drop
gets ``<blob>.error.json`` beside it (the error as JSON); the archive itself, earlier snapshots and the
alias of an earlier good upload under the same name are left as they were. An accepted drop records an
alias (``aliases/<blob>.json``) so specs can say ``azureml://datastores/snapshots/paths/incoming/<name>``.
"""

from __future__ import annotations

import contextlib
import json
import logging
from datetime import UTC, datetime

from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import ContainerClient

from shared.errors import SnapshotError
from shared.settings import Settings, get_settings
from shared.snapshot.archive import ingest_snapshot_archive, max_archive_bytes
from shared.snapshot.models import SnapshotAlias, SnapshotRecord
from shared.snapshot.store import ERROR_SUFFIX, INCOMING_PREFIX, alias_path, error_path
from shared.storage import Container, StorageClients

logger = logging.getLogger(__name__)


def is_snapshot_drop(blob_name: str) -> bool:
    """True for a blob the ``snapshots`` trigger must ingest: under ``incoming/``, not an ``.error.json``.

    Trigger adapters call this first and ignore other blobs (the store's own objects and manifests, and
    the error files this module writes).
    """
    return (
        blob_name.startswith(INCOMING_PREFIX)
        and not blob_name.endswith((ERROR_SUFFIX, "/"))
        and blob_name != INCOMING_PREFIX
    )


def ingest_snapshot_blob(
    clients: StorageClients, blob_name: str, *, settings: Settings | None = None
) -> SnapshotRecord:
    """The ``snapshots`` blob trigger's body: ingest ``incoming/<name>.zip`` and record its alias.

    On success ``azureml://datastores/snapshots/paths/incoming/<name>.zip`` resolves to the snapshot
    (see :func:`shared.snapshot.resolve_snapshot_ref`) and a stale ``.error.json`` is removed. On
    rejection ``<blob>.error.json`` is written beside the archive and the error re-raised; the alias of
    an earlier good archive of the same name is kept.

    Raises:
        SnapshotError: the blob is not a drop (nothing written), has vanished, or was rejected.
    """
    if not is_snapshot_drop(blob_name):
        raise SnapshotError(f"{blob_name} is not a snapshot drop (expected {INCOMING_PREFIX}<name>.zip)")
    settings = settings or get_settings()
    container = clients.container(Container.SNAPSHOTS)
    blob = container.get_blob_client(blob_name)
    try:
        props = blob.get_blob_properties()
    except ResourceNotFoundError as exc:
        raise SnapshotError(f"{blob_name} no longer exists", blob=blob_name) from exc
    try:
        if not blob_name.lower().endswith(".zip"):
            raise SnapshotError(
                f"{blob_name} is not a .zip archive; only zip files are accepted", blob=blob_name
            )
        if props.size > max_archive_bytes(settings):
            raise SnapshotError(
                f"archive {blob_name} is {props.size} bytes; no snapshot can be larger than "
                f"{max_archive_bytes(settings)} bytes compressed",
                blob=blob_name,
            )
        data = blob.download_blob().readall()
        record = ingest_snapshot_archive(clients, data, blob_name, settings=settings)
    except SnapshotError as exc:
        _write_error(container, blob_name, exc, props.etag)
        raise
    _record_alias(container, blob_name, record.snapshot_id, props.etag)
    return record


def _write_error(container: ContainerClient, blob_name: str, exc: SnapshotError, etag: str | None) -> None:
    document = {
        **exc.to_dict(),
        "blob": blob_name,
        "etag": etag,
        "rejected_at": datetime.now(UTC).isoformat(),
    }
    container.upload_blob(error_path(blob_name), json.dumps(document, indent=2).encode(), overwrite=True)
    logger.warning("snapshot archive %s rejected: %s", blob_name, exc.message)


def _record_alias(container: ContainerClient, blob_name: str, snapshot_id: str, etag: str | None) -> None:
    """Point the drop's name at its snapshot, unless a newer upload replaced the archive meanwhile."""
    current: str | None = etag
    with contextlib.suppress(ResourceNotFoundError):
        current = container.get_blob_client(blob_name).get_blob_properties().etag
    if current != etag:
        logger.info("%s changed while it was ingested; its newer version sets the alias", blob_name)
        return
    alias = SnapshotAlias(
        snapshot_id=snapshot_id, source=blob_name, source_etag=etag, ingested_at=datetime.now(UTC)
    )
    container.upload_blob(alias_path(blob_name), alias.model_dump_json().encode(), overwrite=True)
    with contextlib.suppress(ResourceNotFoundError):
        container.delete_blob(error_path(blob_name))
