"""Submitting a spec: upload what it needs, then drop the self-contained spec into storage — last.

``fanout run``/``fanout submit`` (and ``POST /api/pipelines``) turn a spec on a local disk into a
self-contained spec in storage:

1. compile the spec once (every mistake reported before anything is uploaded);
2. bundle it (``shared.spec.bundle_file``) with :class:`shared.upload.SubmissionUploader` as the
   ``rewrite`` callback, which uploads each local code folder and data path content-addressed and
   answers its storage URI;
3. ``--set`` overrides that name local data are uploaded the same way and rewritten to their URI;
4. :func:`submit_spec` uploads the spec to the ``specs`` container — last, because its arrival starts
   the run — with the overrides in the blob's metadata (:func:`read_spec_overrides`).

The spec blob and its metadata are the contract with ingestion (``shared.ingest``), which is why they
live here and not beside the byte-moving of :mod:`shared.upload`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import ContentSettings
from pydantic import Field

from shared.errors import StorageError
from shared.models import FrozenModel
from shared.settings import Settings
from shared.snapshot import HashCache
from shared.storage import Container, StorageClients
from shared.upload import SubmissionUploader, UploadRecord

logger = logging.getLogger(__name__)

_OVERRIDES_METADATA = "fanout_overrides"
_MAX_METADATA_BYTES = 7 * 1024


class Submission(FrozenModel):
    """A spec ready to submit: self-contained text, its overrides, and what was uploaded for it."""

    spec_text: str = Field(description="The bundled spec; every local path replaced by a storage URI.")
    source: str = Field(description="The spec file it came from.")
    overrides: dict[str, str] = Field(default_factory=dict, description="--set pairs, local paths rewritten.")
    uploads: list[UploadRecord] = Field(default_factory=list)


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


__all__ = ["Submission", "prepare_submission", "read_spec_overrides", "submit_spec"]
