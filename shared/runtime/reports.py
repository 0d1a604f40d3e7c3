"""The texts of ``job_result.txt``, ``job_error.txt``, the last progress line and the job report's
``process_summary.csv`` / ``node_summary.csv`` (pure functions)."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass

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
    """The job's last progress line: how it ended, its mini-batch counts and the reason."""
    progress = result.progress
    counts = ""
    if progress is not None:
        counts = (
            f" {progress.settled_mini_batches} of {progress.total_mini_batches} mini-batches processed, "
            f"{progress.failed_mini_batches} failed."
        )
    return f"The job {result.status.value.lower()}.{counts} {result.reason}".rstrip()


PROCESS_SUMMARY_COLUMNS = (
    "Node",
    "Process",
    "Tries",
    "Mini-batches Done",
    "Failed Tries",
    "Items",
    "Items Succeeded",
    "Items Failed",
    "Elapsed Seconds",
    "Process Seconds",
    "Run Method Seconds",
    "Average Run Method Seconds",
    "First Start Time (UTC)",
)
NODE_SUMMARY_COLUMNS = ("Node", "Processes", *PROCESS_SUMMARY_COLUMNS[2:])


@dataclass
class _Totals:
    tries: int = 0
    done: int = 0
    items: int = 0
    succeeded: int = 0
    failed: int = 0
    elapsed: float = 0.0
    process: float = 0.0
    run: float = 0.0
    first_start: str = ""

    def add(self, row: dict[str, str]) -> None:
        self.tries += 1
        self.done += row.get("Status") == "RUN_DONE"
        self.items += _int(row.get("Total"))
        self.succeeded += _int(row.get("Succeeded"))
        self.failed += _int(row.get("Failed"))
        self.elapsed += _float(row.get("Elapsed Seconds"))
        self.process += _float(row.get("Process Seconds"))
        self.run += _float(row.get("Run Method Seconds"))
        start = row.get("Start Time (UTC)", "")
        if start and (not self.first_start or start < self.first_start):
            self.first_start = start

    def cells(self) -> list[object]:
        average = self.run / self.tries if self.tries else 0.0
        return [
            self.tries,
            self.done,
            self.tries - self.done,
            self.items,
            self.succeeded,
            self.failed,
            f"{self.elapsed:.3f}",
            f"{self.process:.3f}",
            f"{self.run:.3f}",
            f"{average:.3f}",
            self.first_start,
        ]


def job_summaries(processed_csv: str, columns: Sequence[str]) -> tuple[str, str]:
    """``process_summary.csv`` and ``node_summary.csv``: the tries of ``processed_mini-batches.csv``
    (one row per try, with ``columns``) summed by process and by node.

    A try is *done* when its status is ``RUN_DONE``; every other status is a failed try (retried or
    not). Seconds are sums over the tries; the average is per try. Rows that do not parse are skipped.
    """
    by_process: dict[tuple[str, str], _Totals] = {}
    by_node: dict[str, _Totals] = {}
    processes: dict[str, set[str]] = {}
    for cells in csv.reader(io.StringIO(processed_csv)):
        if len(cells) != len(columns) or tuple(cells) == tuple(columns):
            continue  # the header, or a line cut short
        row = dict(zip(columns, cells, strict=True))
        node, process = row.get("Node", ""), row.get("Process", "")
        by_process.setdefault((node, process), _Totals()).add(row)
        by_node.setdefault(node, _Totals()).add(row)
        processes.setdefault(node, set()).add(process)
    process_rows = [
        [node, process, *totals.cells()] for (node, process), totals in sorted(by_process.items(), key=_order)
    ]
    node_rows = [
        [node, len(processes[node]), *totals.cells()]
        for node, totals in sorted(by_node.items(), key=lambda item: _node_key(item[0]))
    ]
    return _csv(PROCESS_SUMMARY_COLUMNS, process_rows), _csv(NODE_SUMMARY_COLUMNS, node_rows)


def _order(item: tuple[tuple[str, str], _Totals]) -> tuple[tuple[int, str], str]:
    (node, process), _ = item
    return _node_key(node), process


def _node_key(node: str) -> tuple[int, str]:
    return (int(node), "") if node.isdigit() else (1 << 30, node)


def _csv(header: Sequence[str], rows: list[list[object]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def _int(text: str | None) -> int:
    try:
        return int(text or 0)
    except ValueError:
        return 0


def _float(text: str | None) -> float:
    try:
        return float(text or 0)
    except ValueError:
        return 0.0
