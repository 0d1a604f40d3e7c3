"""The job report's summaries: tries of processed_mini-batches.csv summed by process and by node."""

from __future__ import annotations

import csv
import io

from shared.runtime.logs import PROCESSED_COLUMNS
from shared.runtime.reports import NODE_SUMMARY_COLUMNS, PROCESS_SUMMARY_COLUMNS, job_summaries


def _row(node: int, process: str, status: str, *, total: int, ok: int, run: float, start: str) -> str:
    cells = [
        1,
        1,
        node,
        process,
        start,
        total,
        ok,
        total - ok,
        run + 0.5,
        run + 0.1,
        run,
        status,
        "",
        "",
        "{}",
    ]
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(cells)
    return buffer.getvalue()


def _read(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_tries_are_summed_by_process_and_by_node_in_node_order() -> None:
    processed = (
        ",".join(PROCESSED_COLUMNS)
        + "\n"
        + _row(10, "process000", "RUN_DONE", total=4, ok=4, run=1.0, start="2026-01-01 00:00:02.000")
        + _row(2, "process001", "RUN_EXCEPTION", total=3, ok=0, run=0.5, start="2026-01-01 00:00:05.000")
        + _row(2, "process000", "RUN_DONE", total=2, ok=2, run=2.0, start="2026-01-01 00:00:03.000")
        + _row(2, "process001", "RUN_DONE", total=3, ok=3, run=1.5, start="2026-01-01 00:00:01.000")
        + "1,1,2,process000,cut short\n"  # a partial line is skipped
    )
    by_process, by_node = job_summaries(processed, PROCESSED_COLUMNS)
    processes = _read(by_process)
    assert tuple(processes[0]) == PROCESS_SUMMARY_COLUMNS
    assert [(r["Node"], r["Process"]) for r in processes] == [
        ("2", "process000"),
        ("2", "process001"),
        ("10", "process000"),
    ]
    second = processes[1]
    assert (second["Tries"], second["Mini-batches Done"], second["Failed Tries"]) == ("2", "1", "1")
    assert (second["Items"], second["Items Succeeded"], second["Items Failed"]) == ("6", "3", "3")
    assert (second["Run Method Seconds"], second["Average Run Method Seconds"]) == ("2.000", "1.000")
    assert second["First Start Time (UTC)"] == "2026-01-01 00:00:01.000"
    nodes = _read(by_node)
    assert tuple(nodes[0]) == NODE_SUMMARY_COLUMNS
    assert [(r["Node"], r["Processes"], r["Tries"], r["Failed Tries"]) for r in nodes] == [
        ("2", "2", "3", "1"),
        ("10", "1", "1", "0"),
    ]
    assert nodes[0]["Elapsed Seconds"] == f"{(0.5 + 2.0 + 1.5) + 3 * 0.5:.3f}"


def test_no_tries_gives_headers_only() -> None:
    by_process, by_node = job_summaries("", PROCESSED_COLUMNS)
    assert by_process == ",".join(PROCESS_SUMMARY_COLUMNS) + "\n"
    assert by_node == ",".join(NODE_SUMMARY_COLUMNS) + "\n"
