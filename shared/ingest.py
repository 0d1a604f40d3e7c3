"""Bodies of the blob triggers: a spec dropped into ``specs``, a zip dropped into ``snapshots/incoming``.

A spec blob is read, validated and frozen into a plan, and its run is started with a run id derived
from the blob's name and ETag (:func:`run_id_for_blob`) — the ETag changes with every write, so each
upload is one run, and a duplicate delivery of the same upload (Event Grid and the Functions host both
deliver at least once) finds its run already started and does nothing. A spec that fails validation
gets ``<blob>.error.json`` beside it with every located issue, and nothing else happens; a later good
upload of the same name removes the stale error file.

Blobs Fanout writes into the drop zones itself (``*.error.json``) and files that are not specs are
ignored, so the app never triggers on its own output. Nothing a spec names is imported or run here.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from azure.core.exceptions import ResourceNotFoundError

from shared.errors import ApiError, FanoutError, SnapshotError, SpecError
from shared.orchestration.client import DurableClient, start_run
from shared.orchestration.names import instance_id_for
from shared.plan import DataInput, LocalData, RunPlan
from shared.snapshot import pin_code_snapshots
from shared.storage import Container, StorageClients
from shared.telemetry import inject_trace_context, start_span

logger = logging.getLogger(__name__)

ERROR_SUFFIX = ".error.json"
SPEC_SUFFIXES = (".yml", ".yaml", ".json")
SNAPSHOT_PREFIX = "incoming/"
SNAPSHOT_SUFFIX = ".zip"
MAX_SPEC_BYTES = 4 * 1024 * 1024

_SLUG = re.compile(r"[^a-z0-9]+")
#: ``shared.submission.submit_spec``'s blob stems: ``20261121T083328Z-<stem>-<12 hex>``.
_SUBMITTED = re.compile(r"^\d{8}T\d{6}Z-(.+)-[0-9a-f]{12}$", re.IGNORECASE)
_GENERIC_STEMS = frozenset({"pipeline", "spec", "job"})


# --- run ids -------------------------------------------------------------------------------------


def _slug(text: str, limit: int = 40) -> str:
    """A readable run-id prefix from a file or blob name: its stem, lower case, ``[a-z0-9-]``.

    ``fanout submit``'s blob names (``<UTC time>-<stem>-<12 hex>``) give their stem; a generic
    ``pipeline.yml`` gives its folder's name, as ``fanout run`` does.
    """
    parts = [part for part in text.replace("\\", "/").split("/") if part]
    stem = parts[-1] if parts else ""
    for suffix in (*SPEC_SUFFIXES, SNAPSHOT_SUFFIX):
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    stem = _SUBMITTED.sub(r"\1", stem)
    if stem.lower() in _GENERIC_STEMS and len(parts) > 1 and parts[-2] != "submitted":
        stem = parts[-2]
    slug = _SLUG.sub("-", stem.lower()).strip("-")[:limit].strip("-")
    return slug or "run"


def run_id_for_blob(blob_name: str, etag: str) -> str:
    """The run id of one upload of a spec blob: ``<readable name>-<12 hex of hash(name, ETag)>``.

    Deterministic, so a repeated trigger for the same upload finds the same run; a new upload (new
    ETag) is a new run. Valid as a durable instance id and a blob folder name.
    """
    digest = hashlib.sha256(f"{blob_name}\n{etag.strip(chr(34))}".encode()).hexdigest()[:12]
    return f"{_slug(blob_name)}-{digest}"


def new_run_id(hint: str = "run", now: datetime | None = None) -> str:
    """A fresh run id for a submission that is not a blob: ``<name>-<UTC time>-<6 random hex>``."""
    moment = (now or datetime.now(UTC)).strftime("%Y%m%d%H%M%S")
    return f"{_slug(hint, 30)}-{moment}-{secrets.token_hex(3)}"


# --- what the triggers react to ------------------------------------------------------------------


def blob_path(name: str, container: Container) -> str:
    """A trigger's blob name without the container prefix (``specs/a.yml`` -> ``a.yml``)."""
    prefix = container.value + "/"
    return name[len(prefix) :] if name.startswith(prefix) else name


def is_spec_blob(name: str) -> bool:
    """True for blobs of ``specs`` that are specs: ``.yml``/``.yaml``/``.json`` but not ``.error.json``."""
    lowered = name.lower()
    return lowered.endswith(SPEC_SUFFIXES) and not lowered.endswith(ERROR_SUFFIX)


def is_snapshot_blob(name: str) -> bool:
    """True for drops under ``snapshots/incoming/`` (never Fanout's own ``.error.json`` files); a drop
    that is not a zip is handed over too, and gets an error file saying so."""
    from shared.snapshot import is_snapshot_drop

    return is_snapshot_drop(name)


class IngestStatus(StrEnum):
    """What a trigger did with a dropped blob: started a run, found it started, rejected or ignored it."""

    STARTED = "started"
    ALREADY_STARTED = "already_started"
    REJECTED = "rejected"
    IGNORED = "ignored"


@dataclass(frozen=True)
class IngestOutcome:
    """What one trigger invocation did (logged, and asserted by tests)."""

    status: IngestStatus
    blob: str
    run_id: str | None = None
    error_blob: str | None = None
    snapshot_id: str | None = None


# --- specs ---------------------------------------------------------------------------------------


def ingest_spec_blob(clients: StorageClients, durable: DurableClient, blob_name: str) -> IngestOutcome:
    """Validate the spec blob ``blob_name`` (in ``specs``) and start its run, once per upload.

    Args:
        clients: storage clients.
        durable: the durable client the run is started with.
        blob_name: name inside the ``specs`` container (a ``specs/`` prefix is stripped).

    Returns:
        What was done: started, already started, rejected (``.error.json`` written) or ignored.

    Raises:
        StorageError and azure-core errors: storage could not be read or written (the trigger is
            retried by the host).
    """
    name = blob_path(blob_name, Container.SPECS)
    if not is_spec_blob(name):
        logger.info("specs/%s is not a spec (.yml, .yaml, .json); ignored", name)
        return IngestOutcome(IngestStatus.IGNORED, name)
    container = clients.container(Container.SPECS)
    try:
        download = container.download_blob(name)
        data = download.readall()
    except ResourceNotFoundError:
        logger.info("specs/%s was deleted before it could be read; ignored", name)
        return IngestOutcome(IngestStatus.IGNORED, name)
    etag = str(download.properties.etag)
    run_id = run_id_for_blob(name, etag)
    # The uploader may put its trace context into the blob's metadata: the run then joins its trace.
    metadata = dict(download.properties.metadata or {})
    attributes = {"fanout.blob": name, "fanout.run_id": run_id}
    with start_span("fanout.ingest_spec", carrier=metadata, attributes=attributes):
        if _already_started(durable, run_id):
            logger.info("specs/%s (ETag %s) already started run %s; nothing to do", name, etag, run_id)
            return IngestOutcome(IngestStatus.ALREADY_STARTED, name, run_id)
        try:
            plan = _compile(data, name, run_id, _stored_overrides(clients, name))
            # A zip named in the spec is pinned to its snapshot now: re-dropping the zip later cannot
            # change the code of this run.
            plan = pin_code_snapshots(clients, plan)
        except FanoutError as error:
            return _reject(clients, name, etag, error)
        plan = plan.model_copy(update={"trace": inject_trace_context()})
        started = start_run(clients, durable, plan)
    _remove_stale_error(clients, name)
    logger.info("specs/%s started run %s", name, started)
    return IngestOutcome(IngestStatus.STARTED, name, started)


def _stored_overrides(clients: StorageClients, name: str) -> dict[str, str]:
    """``--set`` overrides ``fanout submit`` stored in the blob's metadata."""
    from shared.submission import read_spec_overrides

    return read_spec_overrides(clients, name)


def _compile(data: bytes, name: str, run_id: str, overrides: dict[str, str]) -> RunPlan:
    from shared.errors import SpecIssue
    from shared.spec import compile_text  # heavy: imported when a spec arrives

    if len(data) > MAX_SPEC_BYTES:
        raise SpecError(
            [SpecIssue(name, 1, 1, "", f"the spec is {len(data)} bytes; at most {MAX_SPEC_BYTES}")]
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(
            [SpecIssue(name, 1, 1, "", f"the spec is not UTF-8 text (byte {exc.start})", "a UTF-8 YAML file")]
        ) from exc
    plan: RunPlan = compile_text(text, source=name, base_dir=None, run_id=run_id, overrides=overrides)
    require_no_local_files(plan)
    return plan


def _already_started(durable: DurableClient, run_id: str) -> bool:
    return durable.get_status(instance_id_for(run_id)) is not None


def error_blob_name(name: str) -> str:
    """The blob beside a rejected spec ``name`` that says why it was rejected."""
    return name + ERROR_SUFFIX


def _reject(clients: StorageClients, name: str, etag: str, error: FanoutError) -> IngestOutcome:
    document = {**error.to_dict(), "blob": f"{Container.SPECS.value}/{name}", "etag": etag}
    error_name = error_blob_name(name)
    clients.container(Container.SPECS).upload_blob(
        error_name, json.dumps(document, indent=2).encode(), overwrite=True
    )
    logger.warning("specs/%s rejected (%s); wrote %s", name, error.message.splitlines()[0], error_name)
    return IngestOutcome(IngestStatus.REJECTED, name, error_blob=error_name)


def _remove_stale_error(clients: StorageClients, name: str) -> None:
    try:
        clients.container(Container.SPECS).delete_blob(error_blob_name(name))
    except ResourceNotFoundError:
        return
    logger.info("removed the stale specs/%s", error_blob_name(name))


# --- plans submitted to the server ----------------------------------------------------------------


def require_no_local_files(plan: RunPlan) -> None:
    """Raise ApiError naming every job code folder and input that is a path on the submitter's machine."""
    problems = [
        f"job {job.name!r}: code {job.code.local_path!r}"
        for job in plan.jobs
        if job.code is not None and job.code.snapshot is None
    ]
    for job in plan.jobs:
        for name, value in job.inputs.items():
            if isinstance(value, DataInput) and isinstance(value.source, LocalData):
                problems.append(f"job {job.name!r}: input {name!r} is the local path {value.source.path!r}")
    for name, value in plan.inputs.items():
        if isinstance(value, DataInput) and isinstance(value.source, LocalData):
            problems.append(f"pipeline input {name!r} is the local path {value.source.path!r}")
    if problems:
        raise ApiError(
            "the spec names files on your machine, which the server cannot read: "
            + "; ".join(problems)
            + ". Send the code folder as the 'snapshot' zip, refer to data in storage "
            "(azureml:<asset>, https://..., a datastore path), or use `fanout submit`, which uploads them.",
            problems=problems,
        )


# --- snapshots -------------------------------------------------------------------------------------


def ingest_snapshot(clients: StorageClients, blob_name: str) -> IngestOutcome:
    """Store a zip dropped under ``snapshots/incoming/`` (the snapshot module checks and records it)."""
    name = blob_path(blob_name, Container.SNAPSHOTS)
    if not is_snapshot_blob(name):
        logger.info("snapshots/%s is not a zip under %s; ignored", name, SNAPSHOT_PREFIX)
        return IngestOutcome(IngestStatus.IGNORED, name)
    from shared.snapshot import ingest_snapshot_blob

    with start_span("fanout.ingest_snapshot", attributes={"fanout.blob": name}):
        try:
            record = ingest_snapshot_blob(clients, name)
        except SnapshotError as exc:  # the error file is written; retrying cannot help
            logger.warning("snapshots/%s rejected: %s", name, exc.message)
            return IngestOutcome(IngestStatus.REJECTED, name, error_blob=name + ERROR_SUFFIX)
    logger.info("snapshots/%s stored as snapshot %s", name, record.snapshot_id)
    return IngestOutcome(IngestStatus.STARTED, name, snapshot_id=record.snapshot_id)
