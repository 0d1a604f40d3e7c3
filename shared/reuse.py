"""Step reuse: a job's fingerprint, and the index of completed steps whose outputs can stand in for it.

Azure ML reuses a step when "script_name, inputs and parameters" and the source directory are unchanged
(``allow_reuse=True`` by default; ``regenerate_outputs=True`` re-runs everything). Fanout does the same
with a fingerprint — SHA-256 over a canonical JSON document (:func:`fingerprint_document`) of:

- the code snapshot id (content hash of the code folder after its ignore file);
- the job type and everything in the job plan that can change results: entry script / command,
  program arguments, mini_batch_size, partition_keys, error thresholds, retry settings, append_row
  settings, environment and environment variables, output names/types and output locations (with the
  run id written as ``{run-id}``, so default locations compare equal across runs);
- every input: literal values (typed: ``1`` and ``"1"`` differ, ``1`` and ``1.0`` as a number do not)
  and, for data, the identity of what is behind the location *now*: name, size and Content-MD5 (or the
  ETag when the service kept no MD5) of every blob under it. So a one-byte change of data behind an
  unchanged path is seen — Azure ML, which compares paths, misses it.

Left out, because they change how a job runs but not what it produces (:data:`NOT_RESULT_JOB_FIELDS`,
:data:`NOT_RESULT_PARALLEL_FIELDS`, :data:`NOT_RESULT_COMMAND_FIELDS`, :data:`NOT_RESULT_FLAGS`): job
name and display name, compute, instance_count, max_concurrency_per_instance, logging level, the
timeouts that only bound waiting (task overhead, progress update, first task creation, command
timeout), resource monitoring, copy_logs_to_parent, dependencies (their data is fingerprinted instead),
allow_reuse itself and asset registration names. Anything else a plan gains later counts by default:
a missed reuse costs time, a wrong reuse costs correctness.

Reuse is checked only when :func:`reuse_enabled` (the job's ``allow_reuse`` — false for
``is_deterministic: false`` components — and neither the spec's ``settings.force_rerun`` nor
``--force-rerun``). A hit (:func:`find_reusable`) is a *completed* step with the same fingerprint whose
outputs still exist; the index lives in the ``fanoutreuse`` table (partition = fingerprint).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from azure.core.exceptions import AzureError, ResourceNotFoundError
from azure.storage.blob import ContainerClient
from pydantic import Field

from shared.models import FrozenModel
from shared.orchestration.contracts import ResolvedInput, StepResult, StepStatus
from shared.plan import BlobData, DataInput, DataType, JobPlan, LiteralInput, LiteralType, RunPlan, UrlData
from shared.settings import get_settings
from shared.snapshot import HashCache, resolve_snapshot_ref, snapshot_id_of_folder
from shared.storage import StorageClients, Table

logger = logging.getLogger(__name__)

FINGERPRINT_PREFIX = "fp1-"
NOT_RESULT_JOB_FIELDS = frozenset(
    {"name", "display_name", "compute", "instance_count", "depends_on", "allow_reuse", "inputs", "code"}
)
NOT_RESULT_PARALLEL_FIELDS = frozenset(
    {
        "instance_count",
        "max_concurrency_per_instance",
        "logging_level",
        "task_overhead_timeout",
        "progress_update_timeout",
        "first_task_creation_timeout",
        "resource_monitor_interval",
        "copy_logs_to_parent",
    }
)
NOT_RESULT_COMMAND_FIELDS = frozenset({"timeout"})
NOT_RESULT_OUTPUT_FIELDS = frozenset({"asset_name", "asset_version", "mode"})
#: Runtime flags inside ``program_arguments`` that do not change results (each takes one value).
NOT_RESULT_FLAGS = frozenset(
    {
        "--logging_level",
        "--resource_monitor_interval",
        "--task_overhead_timeout",
        "--progress_update_timeout",
        "--first_task_creation_timeout",
        "--copy_logs_to_parent",
        "--metrics_name_prefix",
        "--push_metrics_to_parent",
        "--process_count_per_node",
        "--node_count",
        "--max_concurrency_per_instance",
        "--instance_count",
    }
)

StepInput = ResolvedInput | LiteralInput


# --- the fingerprint ----------------------------------------------------------------------------------


def reuse_enabled(plan: RunPlan, job: JobPlan, *, force_rerun: bool = False) -> bool:
    """Whether to look for (and record) reusable results of ``job`` in this run."""
    return job.allow_reuse and not plan.force_rerun and not force_rerun


def fingerprint_step(
    clients: StorageClients, plan: RunPlan, job: JobPlan, inputs: Mapping[str, StepInput]
) -> str:
    """The reuse key of a job whose inputs are resolved: ``fp1-<sha256 hex>``.

    Args:
        clients: storage (to read the identity of data inputs and resolve snapshot aliases).
        plan: the run (its id is factored out of output locations).
        job: the job.
        inputs: the job's inputs as resolved at step start (the ``StepDefinition.inputs``).

    Raises:
        SnapshotError: the job's code snapshot reference cannot be resolved.
    """
    document = fingerprint_document(clients, plan, job, inputs)
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return FINGERPRINT_PREFIX + hashlib.sha256(canonical.encode()).hexdigest()


def fingerprint_document(
    clients: StorageClients, plan: RunPlan, job: JobPlan, inputs: Mapping[str, StepInput]
) -> dict[str, Any]:
    """What the fingerprint is computed from, as JSON-ready data (shown when explaining a rerun)."""
    body = job.model_dump(mode="json", exclude=set(NOT_RESULT_JOB_FIELDS))
    if job.parallel is not None:
        parallel = job.parallel.model_dump(mode="json", exclude=set(NOT_RESULT_PARALLEL_FIELDS))
        parallel["program_arguments"] = result_arguments(job.parallel.program_arguments)
        body["parallel"] = parallel
    if job.command is not None:
        body["command"] = job.command.model_dump(mode="json", exclude=set(NOT_RESULT_COMMAND_FIELDS))
    body["outputs"] = {
        name: {
            **output.model_dump(mode="json", exclude=set(NOT_RESULT_OUTPUT_FIELDS) | {"location"}),
            "location": {
                "container": output.location.container,
                "path": output.location.path.replace(plan.run_id, "{run-id}"),
            },
        }
        for name, output in job.outputs.items()
    }
    return {
        "version": FINGERPRINT_PREFIX,
        "code": _code_identity(clients, job),
        "job": body,
        "inputs": {
            name: _input_identity(clients, job, name, value) for name, value in sorted(inputs.items())
        },
    }


def result_arguments(arguments: list[str]) -> list[str]:
    """``program_arguments`` without the runtime flags that do not change results (and their values)."""
    kept: list[str] = []
    skip_value = False
    for token in arguments:
        if skip_value:
            skip_value = False
            continue
        flag, has_value, _ = token.partition("=")
        if flag in NOT_RESULT_FLAGS:
            skip_value = not has_value
            continue
        kept.append(token)
    return kept


def _code_identity(clients: StorageClients, job: JobPlan) -> str | None:
    if job.code is None:
        return None
    if job.code.snapshot:
        return resolve_snapshot_ref(clients, job.code.snapshot)
    if job.code.local_path:
        with HashCache.in_home(get_settings().home) as cache:
            return snapshot_id_of_folder(Path(job.code.local_path), cache=cache)
    return None


def _literal(value: LiteralInput) -> dict[str, Any]:
    raw = value.value
    normal: str | int | float | bool
    if value.type is LiteralType.NUMBER and not isinstance(raw, bool):
        normal = float(raw)
    elif value.type is LiteralType.INTEGER and not isinstance(raw, bool):
        normal = int(raw)
    else:
        normal = raw
    return {"literal": value.type.value, "value": normal}


def _input_identity(clients: StorageClients, job: JobPlan, name: str, value: StepInput) -> dict[str, Any]:
    if isinstance(value, LiteralInput):
        return _literal(value)
    planned = job.inputs.get(name)
    dtype = planned.type if isinstance(planned, DataInput) else None
    mode = planned.mode.value if isinstance(planned, DataInput) else None
    return {
        "data": dtype.value if dtype else None,
        "mode": mode,
        "content": data_identity(clients, value.location, dtype),
    }


# --- identity of data in storage ----------------------------------------------------------------------


def data_identity(
    clients: StorageClients, location: BlobData | UrlData, dtype: DataType | None = None
) -> str:
    """A digest of what is stored at ``location`` now: name, size and Content-MD5/ETag of every blob.

    A ``uri_file`` location is one blob; anything else is every blob under the prefix. When the data
    cannot be read (another account without access), the identity is unique, so the step is never
    reused on a guess.
    """
    try:
        container, path = _locate(clients, location)
        entries: list[tuple[str, int, str]] = []
        if dtype in (None, DataType.URI_FILE) and path:
            try:
                props = container.get_blob_client(path).get_blob_properties()
                entries.append(
                    ("", int(props.size), _content_tag(props.content_settings.content_md5, props.etag))
                )
            except ResourceNotFoundError:
                pass
        if not entries:
            prefix = f"{path}/" if path else ""
            for blob in container.list_blobs(name_starts_with=prefix or None):
                tag = _content_tag(blob.content_settings.content_md5, blob.etag)
                entries.append((blob.name[len(prefix) :], int(blob.size), tag))
    except AzureError as exc:
        logger.warning("cannot read %s to fingerprint it (%s); the step will not be reused", location, exc)
        return "unreadable-" + uuid.uuid4().hex
    digest = hashlib.sha256()
    for entry in sorted(entries):
        digest.update(json.dumps(entry).encode() + b"\n")
    return f"{len(entries)}:{digest.hexdigest()}"


def _content_tag(md5: bytes | bytearray | None, etag: str | None) -> str:
    if md5:
        return "md5:" + base64.b64encode(bytes(md5)).decode()
    return f"etag:{(etag or '').strip(chr(34))}"


def _locate(clients: StorageClients, location: BlobData | UrlData) -> tuple[ContainerClient, str]:
    if isinstance(location, BlobData):
        return clients.blob.get_container_client(location.container), location.path.strip("/")
    parts = urlsplit(location.url)
    segments = [s for s in parts.path.split("/") if s]
    if ".blob." not in (parts.hostname or "") and segments:  # path-style endpoint (emulators)
        account = segments.pop(0)
        base = f"{parts.scheme}://{parts.netloc}/{account}"
    else:
        base = f"{parts.scheme}://{parts.netloc}"
    container_name = segments.pop(0) if segments else ""
    container_url = urlunsplit((*urlsplit(f"{base}/{container_name}")[:3], parts.query, ""))
    credential = None if parts.query else clients.blob.credential
    return ContainerClient.from_container_url(container_url, credential=credential), "/".join(segments)


# --- the reuse index ----------------------------------------------------------------------------------


class ReuseHit(FrozenModel):
    """A completed step whose outputs can stand in for a job with the same fingerprint."""

    fingerprint: str = Field(description="The reuse key the hit was found under.")
    run_id: str = Field(description="The run that produced the outputs.")
    job: str = Field(description="The job (in that run) that produced them.")
    outputs: dict[str, BlobData] = Field(default_factory=dict, description="Output name -> location.")
    recorded_at: datetime = Field(description="When the producing step completed.")


def record_reusable(clients: StorageClients, fingerprint: str, result: StepResult) -> None:
    """Remember a completed step's outputs under its fingerprint (a no-op for any other status).

    Idempotent: recording the same run and job again replaces its entry. Call it only for jobs whose
    :func:`reuse_enabled` is true (a non-deterministic job's outputs must never stand in for another).
    """
    if result.status is not StepStatus.COMPLETED or not fingerprint:
        logger.debug("not recording %s/%s for reuse: %s", result.step.run_id, result.step.job, result.status)
        return
    outputs = {
        name: {**location.model_dump(mode="json"), "present": _exists(clients, location)}
        for name, location in result.outputs.items()
    }
    entity = {
        "PartitionKey": fingerprint,
        "RowKey": _row_key(result.step.run_id, result.step.job),
        "RunId": result.step.run_id,
        "Job": result.step.job,
        "Outputs": json.dumps(outputs),
        "RecordedAt": datetime.now(UTC),
    }
    table = clients.table.get_table_client(Table.REUSE.value)
    try:
        table.upsert_entity(entity)
    except ResourceNotFoundError:
        clients.table.create_table_if_not_exists(Table.REUSE.value)
        table.upsert_entity(entity)


def find_reusable(clients: StorageClients, fingerprint: str) -> ReuseHit | None:
    """The newest completed step with this fingerprint whose outputs still exist, or None."""
    table = clients.table.get_table_client(Table.REUSE.value)
    try:
        entities = list(table.query_entities("PartitionKey eq @pk", parameters={"pk": fingerprint}))
    except ResourceNotFoundError:
        return None
    entities.sort(key=lambda e: e["RecordedAt"], reverse=True)
    for entity in entities:
        outputs: dict[str, dict[str, Any]] = json.loads(entity["Outputs"])
        locations = {
            name: BlobData(container=value["container"], path=value["path"])
            for name, value in outputs.items()
        }
        missing = [
            name
            for name, value in outputs.items()
            if value.get("present") and not _exists(clients, locations[name])
        ]
        if missing:
            logger.info(
                "not reusing %s/%s: output(s) %s no longer exist",
                entity["RunId"],
                entity["Job"],
                ", ".join(missing),
            )
            continue
        return ReuseHit(
            fingerprint=fingerprint,
            run_id=entity["RunId"],
            job=entity["Job"],
            outputs=locations,
            recorded_at=entity["RecordedAt"],
        )
    return None


def _row_key(run_id: str, job: str) -> str:
    return hashlib.sha256(f"{run_id}/{job}".encode()).hexdigest()[:32]


def _exists(clients: StorageClients, location: BlobData) -> bool:
    """True when the blob, or at least one blob under the prefix, exists."""
    container = clients.blob.get_container_client(location.container)
    path = location.path.strip("/")
    if path and container.get_blob_client(path).exists():
        return True
    try:
        return (
            next(
                iter(container.list_blobs(name_starts_with=f"{path}/" if path else None, results_per_page=1)),
                None,
            )
            is not None
        )
    except ResourceNotFoundError:
        return False
