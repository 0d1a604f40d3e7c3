"""Resuming a parallel step: the finished mini-batches of the run it resumes are carried over, not rerun.

A run started by ``fanout resume`` (``RunPlan.resumed_from``) plans each parallel step afresh, then
:func:`carry_over` takes from the same job of the resumed run every mini-batch that is safe to keep:

1. **Same step.** The job's fingerprint (code snapshot, settings, the identity of every input's data —
   :mod:`shared.reuse`) must be the one the old step had; otherwise nothing is carried and every
   mini-batch runs again (the data or code changed since: redo what changed).
2. **Same mini-batch.** Mini-batch *i* is carried only when its descriptor in both manifests is the
   same — files with their sizes and modification times under the same root, or the same byte ranges
   and row groups of the same source files read the same way (:func:`mini_batch_key`). An index alone
   is not enough: a manifest could be split differently.
3. **Finished.** Its old record is final and not failed (``succeeded`` or ``partial``); failed,
   retrying and never-run mini-batches are dispatched again.
4. **Its rows exist.** With ``append_row_to``, the rows must be in a committed blob: the old step's
   own rows are committed by :func:`shared.runtime.appendrow.keep_rows` (at its failed finalize, or
   here), rows it had carried itself stay where they are (a chain of resumes). A mini-batch whose rows
   cannot be found (its staged block expired, say) runs again.

Files the entry script wrote into the job's outputs belong to the carried mini-batches too: when
anything is carried they are copied, server-side, to the new step's outputs before dispatch
(:mod:`shared.runtime.resume_files`).

What is written for the new step (idempotent: a retried plan writes the same): a final record per
carried mini-batch (``carried_from``; its rows as a committed range, never a second copy), one tally
shard ``shard-carried`` with their counts (so progress, thresholds — ``error_threshold`` counts the
items of the whole job — and ``job_result.txt`` see the whole job), their rows of
``processed_mini-batches.csv``, and ``resume.json`` (:class:`CarrySummary`): what was carried, as
index ranges, which ``dispatch_step`` leaves out.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import UpdateMode
from pydantic import Field

from shared.data import Manifest
from shared.errors import NotFoundError
from shared.models import FrozenModel
from shared.orchestration.contracts import StepDefinition, StepRef
from shared.plan import JobPlan
from shared.runs import load_plan, load_step_definition
from shared.runtime import inputs, logs
from shared.runtime.appendrow import (
    append_row_location,
    blob_ref,
    committed_ranges,
    keep_rows,
    output_target,
    parse_blob_ref,
)
from shared.runtime.records import (
    AgentShard,
    MiniBatchRecord,
    StepDocument,
    minibatch_table,
    read_records,
    read_step_document,
    record_to_entity,
    shard_to_entity,
    step_key,
)
from shared.runtime.resume_files import copy_output_files, copy_report_rows
from shared.storage import Container, StorageClients, job_path, logs_path

logger = logging.getLogger(__name__)

#: The tally shard that holds the counts of carried mini-batches (``shard-carried``).
CARRIED_AGENT = "carried"
SUMMARY_FILE = "resume.json"
_TRANSACTION = 100
_WRITERS = 8


class CarrySummary(FrozenModel):
    """What a resumed step took over from the run it resumes (``runs/<run>/<job>/resume.json``)."""

    from_run: str = Field(description="The run resumed.")
    carried: int = Field(default=0, ge=0, description="Mini-batches carried over (not run again).")
    items_succeeded: int = Field(default=0, ge=0, description="Their succeeded items.")
    items_failed: int = Field(default=0, ge=0, description="Their failed items (partial mini-batches).")
    ranges: list[tuple[int, int]] = Field(
        default_factory=list, description="Carried mini-batches as [start, end) index ranges, sorted."
    )
    reason: str = Field(default="", description="Why nothing was carried, when nothing was.")


def carry_over(
    clients: StorageClients, step: StepRef, job: JobPlan, definition: StepDefinition, manifest: Manifest
) -> CarrySummary:
    """Carry the finished mini-batches of the resumed run's step into ``step`` (module docstring)."""
    from_run = load_plan(clients, step.run_id).resumed_from
    if not from_run:
        return CarrySummary(from_run="", reason="the run resumes no other run")
    old = StepRef(run_id=from_run, job=step.job)
    summary = _carry(clients, old, step=step, job=job, definition=definition, manifest=manifest)
    save_summary(clients, step, summary)
    if summary.carried:
        line = (
            f"Resumed from run {from_run}: {summary.carried} of {manifest.count} mini-batches carried over "
            f"({summary.items_succeeded} items succeeded, {summary.items_failed} failed); they are not run "
            f"again, and their logs stay in run {from_run}'s log tree."
        )
    else:
        line = f"Resumed from run {from_run}: no mini-batch carried over ({summary.reason})."
    logs.append_line(clients, step, logs.MASTER_ROLE, line)
    logger.info("%s/%s: %s", step.run_id, step.job, line)
    return summary


def _carry(
    clients: StorageClients,
    old: StepRef,
    *,
    step: StepRef,
    job: JobPlan,
    definition: StepDefinition,
    manifest: Manifest,
) -> CarrySummary:
    def nothing(reason: str) -> CarrySummary:
        return CarrySummary(from_run=old.run_id, reason=reason)

    try:
        old_definition = load_step_definition(clients, old)
    except NotFoundError:
        return nothing(f"the job did not start in run {old.run_id}")
    if old_definition.fingerprint != definition.fingerprint:
        return nothing(f"its code, inputs or settings changed since run {old.run_id}; every mini-batch runs")
    document = read_step_document(clients, old)
    if document is None or document.planned_at is None:
        return nothing(f"the job was not planned in run {old.run_id}")
    try:
        old_manifest = inputs.load_manifest(clients, old)
    except NotFoundError:
        return nothing(f"run {old.run_id} has no manifest for the job")
    same = {
        index
        for index in range(min(old_manifest.count, manifest.count))
        if mini_batch_key(old_manifest, index) == mini_batch_key(manifest, index)
    }
    records = [r for r in read_records(clients, old) if r.final and not r.counts_as_failed]
    candidates = [r for r in records if r.index in same]
    if job.parallel is not None and job.parallel.append_row_to:
        candidates = _locate_rows(
            clients,
            old,
            old_definition=old_definition,
            document=document,
            records=records,
            candidates=candidates,
        )
    carried = [r.model_copy(update={"carried_from": r.carried_from or old.run_id}) for r in candidates]
    if not carried:
        return nothing(f"no mini-batch of run {old.run_id} finished with the same data")
    copy_output_files(clients, old, old_definition, step, definition)
    _write_records(clients, step, carried)
    _write_shard(clients, step, old.run_id, carried)
    copy_report_rows(clients, old, step, {r.index for r in carried})
    return CarrySummary(
        from_run=old.run_id,
        carried=len(carried),
        items_succeeded=sum(r.items_succeeded for r in carried),
        items_failed=sum(r.items_failed for r in carried),
        ranges=index_ranges(r.index for r in carried),
    )


def mini_batch_key(manifest: Manifest, index: int) -> str:
    """A digest of everything that decides what mini-batch ``index`` reads (not its position alone)."""
    batch = manifest.mini_batch(index)
    document: dict[str, Any] = {
        "kind": manifest.kind,
        "input": manifest.input_name,
        "batch": batch.model_dump(mode="json", exclude={"index"}),
    }
    if manifest.kind == "files":
        document["root"] = manifest.roots[batch.root].model_dump(mode="json")
    else:
        sources = [manifest.sources[part.source] for part in batch.parts]
        document["sources"] = [
            {**source.model_dump(mode="json"), "root": manifest.roots[source.root].model_dump(mode="json")}
            for source in sources
        ]
        document["read"] = manifest.read.model_dump(mode="json") if manifest.read else None
        document["transformations"] = [t.model_dump(mode="json") for t in manifest.transformations]
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _locate_rows(
    clients: StorageClients,
    old: StepRef,
    *,
    old_definition: StepDefinition,
    document: StepDocument,
    records: Sequence[MiniBatchRecord],
    candidates: Sequence[MiniBatchRecord],
) -> list[MiniBatchRecord]:
    """``candidates`` whose rows are in a committed blob, each pointing at its range; the others drop."""
    old_job = load_plan(clients, old.run_id).job(old.job)
    if old_job.parallel is None or not old_job.parallel.append_row_to:
        return [r for r in candidates if not (r.block_id or r.rows_blob)]
    plans = {**old_job.outputs, **old_definition.outputs}
    final = append_row_location(plans[old_job.parallel.append_row_to], old_job.parallel)
    target = output_target(old, final, document.total_mini_batches, document.blocks_per_blob)
    keep_rows(clients, target, records)  # a no-op when its failed finalize kept them already
    layouts: dict[str, dict[str, tuple[int, int]]] = {}
    present: dict[str, bool] = {}
    located: list[MiniBatchRecord] = []
    for record in candidates:
        if record.rows_blob:  # carried into the old run itself: its rows stay where they are
            if record.rows_blob not in present:
                location = parse_blob_ref(record.rows_blob)
                present[record.rows_blob] = clients.blob.get_blob_client(
                    location.container, location.path
                ).exists()
            if present[record.rows_blob]:
                located.append(record)
        elif record.block_id:
            if not target.run_private:
                continue  # staged into a blob other runs commit too: its rows cannot be kept
            blob = target.staging_blob(record.index)
            if blob.path not in layouts:
                layouts[blob.path] = committed_ranges(clients, blob)
            found = layouts[blob.path].get(record.block_id)
            if found is not None:
                offset, length = found
                update = {
                    "block_id": "",
                    "rows_blob": blob_ref(blob),
                    "rows_offset": offset,
                    "rows_length": length,
                }
                located.append(record.model_copy(update=update))
        else:
            located.append(record)  # no rows to move
    dropped = len(candidates) - len(located)
    if dropped:
        logger.info(
            "%s/%s: the rows of %d finished mini-batches are gone; they run again",
            old.run_id,
            old.job,
            dropped,
        )
    return located


def _write_records(clients: StorageClients, step: StepRef, records: Sequence[MiniBatchRecord]) -> None:
    """Upsert the carried records, 100 per entity-group transaction, several transactions at a time."""
    table = minibatch_table(clients)
    key = step_key(step)
    chunks = [records[start : start + _TRANSACTION] for start in range(0, len(records), _TRANSACTION)]

    def write(chunk: Sequence[MiniBatchRecord]) -> None:
        table.submit_transaction(
            [("upsert", record_to_entity(key, r), {"mode": UpdateMode.REPLACE}) for r in chunk]
        )

    with ThreadPoolExecutor(max_workers=_WRITERS) as pool:
        list(pool.map(write, chunks))


def _write_shard(
    clients: StorageClients, step: StepRef, from_run: str, records: Sequence[MiniBatchRecord]
) -> None:
    shard = AgentShard(
        agent_id=CARRIED_AGENT,
        succeeded_mini_batches=len(records),
        items_succeeded=sum(r.items_succeeded for r in records),
        items_failed=sum(r.items_failed for r in records),
        attempts=sum(r.attempts for r in records),
        rows=sum(r.rows for r in records),
        exited=True,
        exit_reason=f"mini-batches carried over from run {from_run}",
    )
    minibatch_table(clients).upsert_entity(shard_to_entity(step_key(step), shard), mode=UpdateMode.REPLACE)


def index_ranges(indexes: Any) -> list[tuple[int, int]]:
    """Sorted ``[start, end)`` ranges covering ``indexes`` exactly."""
    ranges: list[tuple[int, int]] = []
    for index in sorted(set(indexes)):
        if ranges and ranges[-1][1] == index:
            ranges[-1] = (ranges[-1][0], index + 1)
        else:
            ranges.append((index, index + 1))
    return ranges


def dispatch_ranges(
    total: int, per_message: int, carried: Sequence[tuple[int, int]]
) -> list[tuple[int, int]]:
    """The ``[start, end)`` ranges of the work messages: every mini-batch not carried, ``per_message``
    at most per message, in index order (no message spans a carried mini-batch)."""
    messages: list[tuple[int, int]] = []
    position = 0
    for start, end in [*sorted(carried), (total, total)]:
        messages += [(s, min(s + per_message, start)) for s in range(position, start, per_message)]
        position = max(position, end)
    return messages


def summary_path(step: StepRef) -> str:
    """``<run>/<job>/resume.json`` in ``runs``: where the step's :class:`CarrySummary` is kept."""
    return job_path(step.run_id, step.job, SUMMARY_FILE)


def save_summary(clients: StorageClients, step: StepRef, summary: CarrySummary) -> None:
    """Store what the step carried over (overwriting: planning may run twice)."""
    clients.container(Container.RUNS).upload_blob(
        summary_path(step), summary.model_dump_json().encode(), overwrite=True
    )


def load_summary(clients: StorageClients, step: StepRef) -> CarrySummary | None:
    """The step's :class:`CarrySummary`, None when it resumed nothing."""
    blob = clients.container(Container.RUNS).get_blob_client(summary_path(step))
    try:
        return CarrySummary.model_validate_json(blob.download_blob().readall())
    except ResourceNotFoundError:
        return None


def resume_note(summary: CarrySummary, job: str) -> str:
    """The line ``job_result.txt`` gets in a resumed step."""
    if not summary.carried:
        return f"Resumed from run {summary.from_run}: nothing carried over ({summary.reason})."
    return (
        f"Resumed from run {summary.from_run}: {summary.carried} mini-batches carried over (not run again); "
        f"their logs are in {logs_path(summary.from_run, job)}/ (or in the run that one resumed)."
    )
