"""The phases of a parallel step, as plain functions (the orchestration wraps them as durable activities).

Every phase is idempotent: an activity may run twice (a retry after a timeout, a replay of a crashed
worker), so each one checks the step document first and resumes rather than repeats.

- :func:`plan_step` partitions the input (``shared.data``), stores the manifest once, creates the
  step's queue and writes the step document (how many mini-batches, how many per message). In a run
  that resumes another, it first carries that run's finished mini-batches over
  (:mod:`shared.runtime.resume`).
- :func:`dispatch_step` enqueues the mini-batch ranges (all but the carried ones), several
  mini-batches per message and several sends in flight, checkpointing how far it got; a second call
  resumes from the checkpoint.
- :func:`read_progress` is :func:`shared.runtime.records.read_progress`.
- :func:`stop_step` sets the stop flag agents poll, stops the executor's agents and drains the queue.
- :func:`finalize_step` commits the ``append_row_to`` output in mini-batch order and stores its
  Content-MD5 (or, for a failed or canceled step, keeps the rows of its succeeded mini-batches for a
  resume), writes ``job_result.txt`` / ``job_error.txt`` and the last progress line, deletes the
  queue, and stores ``result.json``. It does not register assets (the registry does that after it,
  on success).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.queue import QueueClient

from shared.compute.base import Executor
from shared.errors import ExecutionError
from shared.orchestration.contracts import StepFinalize, StepPlanned, StepRef, StepResult, StepStatus
from shared.plan import BlobData, JobPlan, ParallelSettings
from shared.policy import NO_RESULT_MESSAGE
from shared.runs import load_plan, load_step_definition, save_step_result
from shared.runtime import inputs, logs, reports
from shared.runtime.appendrow import (
    append_row_location,
    commit_output,
    keep_rows,
    output_target,
)
from shared.runtime.contentmd5 import set_content_md5
from shared.runtime.messages import MAX_MINI_BATCHES_PER_MESSAGE, WorkMessage
from shared.runtime.records import (
    MiniBatchRecord,
    StepDocument,
    read_progress,
    read_records,
    read_step_document,
    request_stop,
    update_step_document,
)
from shared.runtime.resume import carry_over, dispatch_ranges, load_summary, resume_note
from shared.settings import get_settings
from shared.storage import StorageClients, logs_path, work_queue_name
from shared.telemetry import inject_trace_context

logger = logging.getLogger(__name__)

#: Sends in flight while dispatching (one queue takes ~2,000 messages/s; one HTTP call ~ms).
DISPATCH_THREADS = 8
# How long agents get to exit on their own (last logs uploaded) when a step is stopped, and how often
# their heartbeats are read meanwhile.
AGENTS_EXIT_GRACE_SECONDS = 10.0
AGENTS_EXIT_POLL_SECONDS = 0.2
#: Messages between two checkpoints of the dispatch position.
DISPATCH_CHECKPOINT = 512

__all__ = ["dispatch_step", "finalize_step", "plan_step", "read_progress", "stop_step"]


def _parallel_job(clients: StorageClients, step: StepRef) -> tuple[JobPlan, ParallelSettings]:
    job = load_plan(clients, step.run_id).job(step.job)
    if job.parallel is None:
        raise ExecutionError(f"job {step.job} is not a parallel job", run_id=step.run_id, job=step.job)
    return job, job.parallel


def mini_batches_per_message(total: int, parallelism: int) -> int:
    """How many mini-batches one work message carries.

    Enough messages that every worker gets several (load spreads across nodes), few enough that dispatch
    of 100,000 mini-batches is a few hundred sends: ``total / (4 × parallelism)``, within 1..128.
    """
    if total <= 0:
        return 1
    return max(1, min(MAX_MINI_BATCHES_PER_MESSAGE, total // max(1, 4 * parallelism)))


def plan_step(clients: StorageClients, step: StepRef) -> StepPlanned:
    """Partition the step's input into mini-batches, store the manifest, create the queue."""
    queue_name = work_queue_name(step.run_id, step.job)
    document = read_step_document(clients, step)
    if document is not None and document.planned_at is not None:
        return StepPlanned(
            step=step,
            mini_batches=document.total_mini_batches,
            items=document.total_items,
            queue=queue_name,
            carried=document.carried_mini_batches,
        )
    plan = load_plan(clients, step.run_id)
    job, parallel = _parallel_job(clients, step)
    definition = load_step_definition(clients, step)
    began = time.monotonic()
    manifest = inputs.plan(clients, job, definition)
    inputs.save_manifest(clients, step, manifest)
    total = manifest.count
    logs.write_text(clients, step, "readme.txt", logs.README)
    logs.append_line(
        clients,
        step,
        logs.MASTER_ROLE,
        f"Planned {total} mini-batches ({_items(manifest.total_items)}) from input "
        f"{parallel.input_data!r} in {time.monotonic() - began:.1f} seconds.",
    )
    carried = carry_over(clients, step, job, definition, manifest) if plan.resumed_from else None
    remaining = total - (carried.carried if carried else 0)
    _create_queue(clients.queue_client(queue_name))
    workers = parallel.max_concurrency_per_instance or 2
    update_step_document(
        clients,
        step,
        total_mini_batches=total,
        total_items=manifest.total_items,
        planned_at=datetime.now(UTC),
        mini_batches_per_message=mini_batches_per_message(remaining, parallel.instance_count * workers),
        carried_mini_batches=carried.carried if carried else 0,
        carried_from=carried.from_run if carried else "",
    )
    return StepPlanned(
        step=step,
        mini_batches=total,
        items=manifest.total_items,
        queue=queue_name,
        carried=carried.carried if carried else 0,
    )


def dispatch_step(clients: StorageClients, step: StepRef) -> StepPlanned:
    """Enqueue every mini-batch of a planned step; resumes where an interrupted call stopped."""
    queue_name = work_queue_name(step.run_id, step.job)
    document = read_step_document(clients, step)
    if document is None or document.planned_at is None:
        raise ExecutionError(
            f"step {step.run_id}/{step.job} is not planned: run plan_step first",
            run_id=step.run_id,
            job=step.job,
        )
    planned = StepPlanned(
        step=step, mini_batches=document.total_mini_batches, items=document.total_items, queue=queue_name
    )
    if document.dispatched:
        return planned
    began = time.monotonic()
    _create_queue(clients.queue_client(queue_name))
    logs.ensure_processed_csv(clients, step)
    carrier = inject_trace_context() or dict(load_plan(clients, step.run_id).trace)
    total, per_message = document.total_mini_batches, document.mini_batches_per_message
    summary = load_summary(clients, step) if document.carried_mini_batches else None
    carried = summary.ranges if summary is not None else []
    messages = [
        r for r in dispatch_ranges(total, per_message, carried) if r[0] >= document.dispatched_through
    ]
    local = threading.local()
    senders = clients.with_resolved_environment()  # proxies etc. read once, not on every send

    def send(bounds: tuple[int, int]) -> None:
        if not hasattr(local, "client"):
            local.client = senders.queue_client(queue_name)
        message = WorkMessage(
            run_id=step.run_id,
            job=step.job,
            start=bounds[0],
            end=bounds[1],
            traceparent=carrier.get("traceparent"),
            tracestate=carrier.get("tracestate"),
        )
        local.client.send_message(message.model_dump_json(exclude_none=True), time_to_live=-1)

    with ThreadPoolExecutor(max_workers=DISPATCH_THREADS) as pool:
        for offset in range(0, len(messages), DISPATCH_CHECKPOINT):
            chunk = messages[offset : offset + DISPATCH_CHECKPOINT]
            list(pool.map(send, chunk))
            update_step_document(clients, step, dispatched_through=chunk[-1][1])
    now = datetime.now(UTC)
    update_step_document(clients, step, dispatched=True, dispatched_at=now, dispatched_through=total)
    seconds = time.monotonic() - began
    scheduled = total - document.carried_mini_batches
    line = (
        f"Scheduling finished. Scheduled {scheduled} mini batches in {seconds:.1f} seconds. There are "
        f"{len(messages)} work messages with {_items(document.total_items)}."
    )
    if document.carried_mini_batches:
        line += f" {document.carried_mini_batches} more were carried over from run {document.carried_from}."
    logs.append_line(clients, step, logs.progress_overview_name(now), line)
    logs.append_line(clients, step, logs.MASTER_ROLE, line)
    return planned


def stop_step(clients: StorageClients, executor: Executor, step: StepRef, reason: str = "") -> None:
    """Stop the step's agents and drain its queue.

    Agents see the stop request within about a second and exit on their own, after uploading their
    last log lines and report rows (finalize summarises those rows). They get
    :data:`AGENTS_EXIT_GRACE_SECONDS` to do so before the executor kills what is left: on Batch,
    terminating the job kills its tasks at once.
    """
    request_stop(clients, step, reason or "the step was stopped")
    _wait_for_agents_to_exit(clients, step)
    executor.stop(step.run_id, step.job)
    with contextlib.suppress(ResourceNotFoundError):
        clients.queue_client(work_queue_name(step.run_id, step.job)).clear_messages()
    logs.append_line(clients, step, logs.MASTER_ROLE, f"Stopped the agents{f': {reason}' if reason else ''}.")


def _wait_for_agents_to_exit(clients: StorageClients, step: StepRef) -> None:
    deadline = time.monotonic() + AGENTS_EXIT_GRACE_SECONDS
    while (alive := read_progress(clients, step).agents_alive) > 0:
        if time.monotonic() >= deadline:
            logger.info("%d agents of %s/%s still running; stopping them", alive, step.run_id, step.job)
            return
        time.sleep(AGENTS_EXIT_POLL_SECONDS)


def finalize_step(clients: StorageClients, finalize: StepFinalize) -> StepResult:
    """Commit the aggregated output (on success), write the final logs, return the step's result."""
    step = finalize.step
    job, parallel = _parallel_job(clients, step)
    definition = load_step_definition(clients, step)
    progress = read_progress(clients, step)
    status, reason = finalize.status, finalize.reason
    plans = {**job.outputs, **definition.outputs}
    outputs: dict[str, BlobData] = {name: plan.location for name, plan in plans.items()}
    if parallel.append_row_to and status is StepStatus.COMPLETED and progress.items_succeeded == 0:
        status, reason = StepStatus.FAILED, NO_RESULT_MESSAGE
    records = read_records(clients, step)
    document = read_step_document(clients, step)
    if parallel.append_row_to and document is not None:
        final = append_row_location(plans[parallel.append_row_to], parallel)
        _finalize_rows(clients, step, status, final=final, document=document, records=records)
    elif parallel.append_row_to and status is StepStatus.COMPLETED:
        raise ExecutionError(f"step {step.run_id}/{step.job} has no step document", run_id=step.run_id)
    now = datetime.now(UTC)
    result = StepResult(
        step=step,
        status=status,
        reason=reason,
        outputs=outputs if status is StepStatus.COMPLETED else {},
        progress=progress,
        logs=logs_path(step.run_id, step.job),
    )
    report = reports.job_result(result, parallel)
    summary = load_summary(clients, step) if document is not None and document.carried_from else None
    if summary is not None:
        report += resume_note(summary, step.job) + "\n"
    logs.write_text(clients, step, "job_result.txt", report)
    logs.write_text(clients, step, "job_error.txt", reports.job_error(records))
    logs.append_line(clients, step, logs.progress_overview_name(now), reports.final_line(result))
    logs.write_job_summaries(clients, step)
    if parallel.copy_logs_to_parent:
        copied = logs.copy_to_parent(clients, step)
        logs.append_line(clients, step, logs.MASTER_ROLE, f"Copied {', '.join(copied)} to the run's logs.")
    logs.append_line(clients, step, logs.MASTER_ROLE, f"Finalized: {status.value}. {reason}".strip())
    with contextlib.suppress(ResourceNotFoundError):
        clients.queue_client(work_queue_name(step.run_id, step.job)).delete_queue()
    save_step_result(clients, result)
    return result


def _finalize_rows(
    clients: StorageClients,
    step: StepRef,
    status: StepStatus,
    *,
    final: BlobData,
    document: StepDocument,
    records: list[MiniBatchRecord],
) -> None:
    """Completed: commit the output in mini-batch order (once) and store its Content-MD5. Failed or
    canceled: keep the rows of the succeeded mini-batches, committed where they were staged."""
    target = output_target(step, final, document.total_mini_batches, document.blocks_per_blob)
    if status is not StepStatus.COMPLETED:
        kept = keep_rows(clients, target, records)
        if kept:
            logs.append_line(
                clients,
                step,
                logs.MASTER_ROLE,
                f"Kept the rows of {kept} succeeded mini-batches (committed where they were staged), so "
                "that a resume of this run does not run them again.",
            )
        return
    if not document.output_committed:  # a second finalize must not touch the committed output
        blocks = commit_output(clients, target, records)
        update_step_document(clients, step, output_committed=True)
        logs.append_line(
            clients,
            step,
            logs.MASTER_ROLE,
            f"Committed the rows of {blocks} mini-batches, in mini-batch order, to "
            f"{final.container}/{final.path}.",
        )
    set_content_md5(clients, final, max_bytes=get_settings().output_md5_max_bytes)


def _create_queue(client: QueueClient) -> None:
    with contextlib.suppress(ResourceExistsError):
        client.create_queue()


def _items(total_items: int | None) -> str:
    return f"{total_items} items" if total_items is not None else "an item count known only after reading"
