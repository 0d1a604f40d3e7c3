"""The texts of ``job_result.txt``, ``job_error.txt`` and the last progress line (pure functions)."""

from __future__ import annotations

from collections.abc import Sequence

from shared.orchestration.contracts import StepResult, StepStatus
from shared.plan import ParallelSettings
from shared.runtime.records import MiniBatchRecord, RecordStatus

#: Failed mini-batches listed in job_error.txt (the CSV report has every attempt).
MAX_ERRORS_LISTED = 100


def job_result(result: StepResult, parallel: ParallelSettings) -> str:
    """Why the job succeeded or failed, the counts, and where to look next."""
    progress = result.progress
    lines = [f"Result: {result.status.value}"]
    if result.reason:
        lines.append(f"Reason: {result.reason}")
    if progress is not None:
        lines += [
            f"Mini-batches: {progress.total_mini_batches} in total, "
            f"{progress.succeeded_mini_batches} succeeded, {progress.failed_mini_batches} failed "
            f"({progress.attempts} tries).",
            f"Items: {progress.items_succeeded} succeeded, {progress.items_failed} failed.",
        ]
    lines.append(
        "Thresholds: "
        f"error_threshold={parallel.error_threshold}, "
        f"mini_batch_error_threshold={parallel.mini_batch_error_threshold}, "
        f"allowed_failed_percent={parallel.allowed_failed_percent:g}, "
        f"max_retries={parallel.retry.max_retries} (up to {parallel.retry.max_retries + 1} tries), "
        f"timeout={parallel.retry.timeout}s."
    )
    for name, location in sorted(result.outputs.items()):
        lines.append(f"Output {name}: {location.container}/{location.path}")
    if result.status is StepStatus.COMPLETED:
        lines.append("Where to look: logs/sys/job_report/processed_mini-batches.csv lists every mini-batch.")
    else:
        lines += [
            "Where to look:",
            "  logs/job_error.txt                       the failed mini-batches and their errors",
            "  logs/user/error/<node>/<process>.txt     full tracebacks from init() and run()",
            "  logs/user/stdout/<node>/<process>.stdout.txt   what the entry script printed",
            "  logs/sys/node/<node>/_main.txt           worker exits, timeouts and init failures",
            "  logs/sys/job_report/processed_mini-batches.csv   every attempt with its error",
            "You can check logs/readme.txt for the layout of logs.",
        ]
    return "\n".join(lines) + "\n"


def job_error(records: Sequence[MiniBatchRecord]) -> str:
    """Failed mini-batches with their last error, then mini-batches that returned too few results."""
    failed = [r for r in records if r.counts_as_failed]
    short = [r for r in records if r.final and r.status is RecordStatus.PARTIAL]
    if not failed and not short:
        return "No mini-batch failed.\n"
    lines = [f"{len(failed)} mini-batches failed."]
    for record in failed[:MAX_ERRORS_LISTED]:
        where = f"node {record.node_id} {record.process}".strip()
        error = record.error_message.splitlines()[0] if record.error_message else record.status.value
        category = f"{record.error_category}: " if record.error_category else ""
        lines.append(
            f"mini-batch {record.index} ({record.attempts} tries, {record.items_failed} of {record.items} "
            f"items failed, {where}): {category}{error}"
        )
    if len(failed) > MAX_ERRORS_LISTED:
        lines.append(
            f"... and {len(failed) - MAX_ERRORS_LISTED} more (see sys/job_report/processed_mini-batches.csv)"
        )
    if short:
        lines.append(
            f"{len(short)} mini-batches returned fewer results than items (their missing items count as "
            "failed items):"
        )
        lines += [
            f"mini-batch {r.index}: {r.rows} results for {r.items} items" for r in short[:MAX_ERRORS_LISTED]
        ]
    lines.append("Full tracebacks: logs/user/error/<node>/<process>.txt")
    return "\n".join(lines) + "\n"


def final_line(result: StepResult) -> str:
    progress = result.progress
    counts = ""
    if progress is not None:
        counts = (
            f" {progress.settled_mini_batches} of {progress.total_mini_batches} mini-batches processed, "
            f"{progress.failed_mini_batches} failed."
        )
    return f"The job {result.status.value.lower()}.{counts} {result.reason}".rstrip()
