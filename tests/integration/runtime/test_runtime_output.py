"""append_row_to: exact bytes, order, formats, retries, empty results, two-level composition."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.orchestration.contracts import StepFinalize, StepStatus
from shared.plan import AppendRowFormat, DataType, RetrySettings
from shared.policy import NO_RESULT_MESSAGE
from shared.runtime import phases
from shared.runtime.records import read_progress
from shared.storage import Container, StorageClients
from tests.integration.runtime.stepkit import Step, make_step

# One file per mini-batch, "item N"; odd items fail on their first try (in whichever worker), and
# mini-batch 3 returns no rows at all.
ROWS_SCRIPT = """
import os
from pathlib import Path

TRIES = Path(os.environ["TRIES_DIR"])

def run(mini_batch):
    TRIES.mkdir(parents=True, exist_ok=True)
    index = int(Path(mini_batch[0]).read_text().split()[1])
    marker = TRIES / f"{index}.txt"
    with open(marker, "a") as handle:
        handle.write("x")
    if index % 2 == 1 and len(marker.read_text()) == 1:
        raise RuntimeError("first try of an odd item fails")
    if index == 3:
        return []
    return [f"{index}: a", f"{index}: b"]
"""


def _finalize(step: Step, status: StepStatus = StepStatus.COMPLETED):  # type: ignore[no-untyped-def]
    return phases.finalize_step(step.clients, StepFinalize(step=step.ref, status=status))


def test_rows_are_written_once_in_mini_batch_order_after_forced_retries(
    storage: StorageClients, tmp_path: Path
) -> None:
    step = make_step(
        storage,
        tmp_path,
        ROWS_SCRIPT,
        files=8,
        append_row=DataType.URI_FILE,
        environment_variables={"TRIES_DIR": str(tmp_path / "tries")},
        retry=RetrySettings(max_retries=1, timeout=30),
    )
    assert step.run_agent(workers=2) == 0
    result = _finalize(step)
    assert result.status is StepStatus.COMPLETED
    expected = "".join(f"{i}: a\n{i}: b\n" for i in range(8) if i != 3)
    assert step.output_bytes().decode() == expected
    records = step.records()
    assert records[3].block_id == ""  # a mini-batch with zero rows stages nothing
    assert records[3].status.value == "partial"
    assert records[3].items_failed == 1
    assert all(records[i].attempts == 2 for i in (1, 5, 7))
    # §9.10: k results for n items: succeeded = min(k, n); more results than items are capped.
    progress = read_progress(storage, step.ref)
    assert (progress.items_succeeded, progress.items_failed) == (7, 1)
    assert result.outputs["result"].path.endswith("/aggregated.txt")
    # Finalizing again (an activity may run twice) leaves the same bytes.
    _finalize(step)
    assert step.output_bytes().decode() == expected


DATAFRAME_SCRIPT = """
import pandas as pd
from pathlib import Path

def run(mini_batch):
    index = int(Path(mini_batch[0]).read_text().split()[1])
    return pd.DataFrame({"name": [f"file {index}"], "score": [index / 2], "label": ["a b" if index else "x"]})
"""

# Azure ML's DataFrame rows: space-separated, no index, no header, pandas' quoting (§9.17).
ROWS = '"file 0" 0.0 x\n"file 1" 0.5 "a b"\n"file 2" 1.0 "a b"\n'


@pytest.mark.parametrize(
    ("fmt", "header", "expected"),
    [
        (AppendRowFormat.AZUREML, False, ROWS),
        (AppendRowFormat.AZUREML, True, "name score label\n" + ROWS),
        (AppendRowFormat.CSV, False, "name,score,label\nfile 0,0.0,x\nfile 1,0.5,a b\nfile 2,1.0,a b\n"),
    ],
)
def test_dataframe_results_in_each_row_format(
    storage: StorageClients, tmp_path: Path, fmt: AppendRowFormat, header: bool, expected: str
) -> None:
    step = make_step(
        storage,
        tmp_path,
        DATAFRAME_SCRIPT,
        files=3,
        append_row=DataType.URI_FOLDER,
        append_row_format=fmt,
        append_row_dataframe_header=header,
        append_row_file_name="out.csv",
    )
    assert step.run_agent(workers=2) == 0
    _finalize(step)
    assert step.output is not None
    assert step.output.path.endswith("/out.csv")
    assert step.output_bytes().decode() == expected


def test_jsonl_rows(storage: StorageClients, tmp_path: Path) -> None:
    script = """
from pathlib import Path
def run(mini_batch):
    return [{"file": Path(p).name, "n": i} for i, p in enumerate(mini_batch)]
"""
    step = make_step(
        storage,
        tmp_path,
        script,
        files=3,
        mini_batch_size=2,
        append_row=DataType.URI_FILE,
        append_row_format=AppendRowFormat.JSONL,
    )
    assert step.run_agent(workers=1) == 0
    _finalize(step)
    lines = [json.loads(line) for line in step.output_bytes().decode().splitlines()]
    assert lines == [{"file": "f000.txt", "n": 0}, {"file": "f001.txt", "n": 1}, {"file": "f002.txt", "n": 0}]


def test_no_succeeded_item_fails_the_step_with_azure_mls_message(
    storage: StorageClients, tmp_path: Path
) -> None:
    script = "def run(mini_batch):\n    return []\n"
    step = make_step(storage, tmp_path, script, files=2, append_row=DataType.URI_FILE)
    assert step.run_agent(workers=1) == 0
    progress = read_progress(storage, step.ref)
    assert progress.done
    assert progress.items_succeeded == 0
    assert progress.failed_mini_batches == 0  # they completed; all their items failed
    result = _finalize(step)
    assert result.status is StepStatus.FAILED
    assert result.reason == NO_RESULT_MESSAGE
    assert "There is no succeeded mini batch item returned from run()" in step.log("job_result.txt")
    assert not step.clients.blob.get_blob_client(step.output.container, step.output.path).exists()  # type: ignore[union-attr]


def test_without_append_row_to_no_file_is_written_but_results_still_count(
    storage: StorageClients, tmp_path: Path
) -> None:
    script = "def run(mini_batch):\n    return mini_batch[:1]\n"
    step = make_step(storage, tmp_path, script, files=4, mini_batch_size=2)
    assert step.run_agent(workers=1) == 0
    progress = read_progress(storage, step.ref)
    assert (progress.items_succeeded, progress.items_failed, progress.failed_mini_batches) == (2, 2, 0)
    result = _finalize(step)
    assert result.status is StepStatus.COMPLETED
    assert result.outputs == {}
    names = [
        b.name for b in storage.container(Container.RUNS).list_blobs(name_starts_with=f"{step.ref.run_id}/")
    ]
    assert not any("/outputs/" in n for n in names)


def test_more_mini_batches_than_blocks_compose_through_part_blobs(
    storage: StorageClients, tmp_path: Path
) -> None:
    script = """
from pathlib import Path
def run(mini_batch):
    return [Path(p).read_text().strip() for p in mini_batch]
"""
    # 3 mini-batches per part blob: 7 mini-batches need 3 parts, copied server-side into the final blob.
    step = make_step(storage, tmp_path, script, files=7, append_row=DataType.URI_FILE, blocks_per_blob=3)
    assert step.run_agent(workers=2) == 0
    _finalize(step)
    assert step.output_bytes().decode() == "".join(f"item {i}\n" for i in range(7))
    final = storage.blob.get_blob_client(step.output.container, step.output.path)  # type: ignore[union-attr]
    committed, _ = final.get_block_list("committed")
    assert len(committed) == 3  # one copied block per part
    staging = f"{step.ref.run_id}/{step.ref.job}/append_row/"
    assert list(storage.container(Container.RUNS).list_blobs(name_starts_with=staging)) == []
    _finalize(step)  # finalize may run twice: the parts are gone, the output stays as it is
    assert step.output_bytes().decode() == "".join(f"item {i}\n" for i in range(7))
