"""What a resumed step copies from the step it resumes besides records: output files and report rows.

- :func:`copy_output_files`: files the entry script wrote into the job's outputs (per-item results
  next to the ``append_row_to`` file, say) belong to the carried mini-batches too. Every file of the
  old step's output locations except its ``append_row_to`` file is copied server-side (Copy Blob from
  a short-lived read SAS, which keeps Content-MD5) to the same place under the new step's locations,
  before dispatch; a mini-batch that runs again overwrites the files it writes again.
- :func:`copy_report_rows`: the rows of ``processed_mini-batches.csv`` of the carried mini-batches
  (every try), so the new log tree lists every mini-batch of the job.
"""

from __future__ import annotations

import logging
import posixpath
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from azure.core.exceptions import ResourceNotFoundError

from shared.errors import ExecutionError
from shared.orchestration.contracts import StepDefinition, StepRef
from shared.plan import BlobData, DataType
from shared.runs import load_plan
from shared.runtime import logs
from shared.runtime.appendrow import append_row_location, blob_ref, readable_url
from shared.storage import Container, StorageClients

logger = logging.getLogger(__name__)

_COPY_THREADS = 8
#: Longest wait for one server-side copy the service reports pending (large blobs).
_COPY_TIMEOUT = 3600.0


def copy_output_files(
    clients: StorageClients,
    old: StepRef,
    old_definition: StepDefinition,
    step: StepRef,
    definition: StepDefinition,
) -> int:
    """Copy what the old step wrote into its outputs to the same places under the new step's outputs
    (server-side), except its ``append_row_to`` file; returns the files copied.

    A folder output is its prefix. A ``uri_file`` output is the file, plus the files beside it (where
    an entry script's ``AZUREML_BI_OUTPUT_PATH`` files go) when its folder differs from the new one's;
    files inside another output's location are that output's.
    """
    old_job = load_plan(clients, old.run_id).job(old.job)
    new_job = load_plan(clients, step.run_id).job(step.job)
    old_outputs = {**old_job.outputs, **old_definition.outputs}
    new_outputs = {**new_job.outputs, **definition.outputs}
    skip: set[str] = set()
    if old_job.parallel is not None and old_job.parallel.append_row_to in old_outputs:
        skip.add(blob_ref(append_row_location(old_outputs[old_job.parallel.append_row_to], old_job.parallel)))
    pairs: dict[str, tuple[BlobData, BlobData]] = {}
    for name, output in old_outputs.items():
        target = new_outputs.get(name)
        if target is None or target.location == output.location:
            continue
        source, destination = output.location, target.location
        others = [o.location for n, o in old_outputs.items() if n != name]
        if output.type is DataType.URI_FILE:
            if _exists(clients, source):
                pairs.setdefault(blob_ref(source), (source, destination))
            source_root, destination_root = (
                posixpath.dirname(source.path),
                posixpath.dirname(destination.path),
            )
            if source_root == destination_root and source.container == destination.container:
                continue
        else:
            source_root, destination_root = source.path.rstrip("/"), destination.path.rstrip("/")
        for path in _files_under(clients, source.container, source_root, others):
            copy = BlobData(
                container=destination.container, path=f"{destination_root}/{path[len(source_root) + 1 :]}"
            )
            pairs.setdefault(
                f"{source.container}/{path}", (BlobData(container=source.container, path=path), copy)
            )
    todo = [pair for key, pair in pairs.items() if key not in skip]
    if todo:
        with ThreadPoolExecutor(max_workers=_COPY_THREADS) as pool:
            list(pool.map(lambda pair: _copy_blob(clients, *pair), todo))
        logger.info("%s/%s: copied %d output files of run %s", step.run_id, step.job, len(todo), old.run_id)
    return len(todo)


def _files_under(clients: StorageClients, container: str, root: str, others: Sequence[BlobData]) -> list[str]:
    """Blob names under ``root/``, leaving out those inside another output's (deeper) location."""
    inner = [o.path.rstrip("/") for o in others if o.container == container and o.path.startswith(root + "/")]
    names = clients.blob.get_container_client(container).list_blobs(name_starts_with=root + "/")
    return [
        blob.name for blob in names if not any(blob.name == o or blob.name.startswith(o + "/") for o in inner)
    ]


def _exists(clients: StorageClients, location: BlobData) -> bool:
    return bool(clients.blob.get_blob_client(location.container, location.path).exists())


def _copy_blob(clients: StorageClients, source: BlobData, destination: BlobData) -> None:
    """Server-side Copy Blob from a short-lived read SAS; waits while the service reports it pending."""
    source_client = clients.blob.get_blob_client(source.container, source.path)
    target = clients.blob.get_blob_client(destination.container, destination.path)
    answer = target.start_copy_from_url(readable_url(clients.blob, source_client))
    status = answer.get("copy_status")
    deadline = time.monotonic() + _COPY_TIMEOUT
    while status == "pending" and time.monotonic() < deadline:
        time.sleep(0.5)
        status = target.get_blob_properties().copy.status
    if status != "success":
        raise ExecutionError(
            f"copying {source.container}/{source.path} to {destination.container}/{destination.path} "
            f"ended {status!r}",
            path=source.path,
        )


def copy_report_rows(clients: StorageClients, old: StepRef, step: StepRef, indexes: set[int]) -> int:
    """Append the old ``processed_mini-batches.csv`` rows of ``indexes`` to the new one (once: only
    while the new one holds just its header, i.e. before any agent wrote to it). Returns the rows."""
    logs.ensure_processed_csv(clients, step)
    header_size = len((",".join(logs.PROCESSED_COLUMNS) + "\n").encode())
    blob = clients.container(Container.RUNS).get_blob_client(logs.blob_path(step, logs.PROCESSED_CSV))
    if blob.get_blob_properties().size > header_size:
        return 0
    try:
        text = logs.read_text(clients, old, logs.PROCESSED_CSV)
    except ResourceNotFoundError:
        return 0
    rows = [
        line
        for line in text.splitlines(keepends=True)[1:]
        if line.endswith("\n") and _row_index(line) in indexes
    ]
    if rows:
        logs.append_text(clients, step, logs.PROCESSED_CSV, "".join(rows))
    return len(rows)


def _row_index(line: str) -> int | None:
    first = line.split(",", 1)[0]
    return int(first) if first.isdigit() else None
