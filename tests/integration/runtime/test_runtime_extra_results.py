"""§9.10 with real workers: run() returning more items than it received is capped, warned about in the
job's logs, and processing goes on."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from shared.runtime.records import read_progress
from shared.storage import StorageClients
from tests.integration.runtime.stepkit import make_step

TRIPLING_SCRIPT = """
def run(mini_batch):
    return mini_batch * 3
"""


def test_more_results_than_items_are_capped_with_a_warning_in_the_logs(
    storage: StorageClients, tmp_path: Path
) -> None:
    step = make_step(storage, tmp_path, TRIPLING_SCRIPT, files=4, mini_batch_size=2)
    assert step.run_agent(workers=1) == 0
    # succeeded = min(k, n): 2 per mini-batch, none failed, and both mini-batches were processed.
    progress = read_progress(storage, step.ref)
    assert (progress.succeeded_mini_batches, progress.failed_mini_batches) == (2, 0)
    assert (progress.items_succeeded, progress.items_failed) == (4, 0)
    rows = list(csv.DictReader(io.StringIO(step.log("sys/job_report/processed_mini-batches.csv"))))
    assert sorted((row["Total"], row["Succeeded"], row["Failed"], row["Status"]) for row in rows) == [
        ("2", "2", "0", "RUN_DONE"),
        ("2", "2", "0", "RUN_DONE"),
    ]
    # The warning is in the process's log of the entry script, one line per mini-batch.
    log = step.log("user/stdout/0/process000.stdout.txt")
    warnings = [line for line in log.splitlines() if "|WARNING|" in line]
    assert sorted(line.split("|", 4)[4] for line in warnings) == [
        "run() returned 6 results for mini-batch 0 of 2 items; counting 2 as succeeded",
        "run() returned 6 results for mini-batch 1 of 2 items; counting 2 as succeeded",
    ]
