"""Tabular inputs (MLTable) in real workers: DataFrames, byte-range mini-batches, partition_keys."""

from __future__ import annotations

from pathlib import Path

from shared.orchestration.contracts import StepFinalize, StepStatus
from shared.plan import AppendRowFormat, DataType
from shared.runtime import phases
from shared.runtime.records import read_progress
from shared.storage import StorageClients
from tests.integration.runtime.stepkit import make_step

MLTABLE = b"""\
paths:
  - pattern: ./*.csv
transformations:
  - read_delimited:
      delimiter: ","
      header: all_files_same_headers
"""

SCORE = """
import pandas as pd

def run(mini_batch):
    assert isinstance(mini_batch, pd.DataFrame), type(mini_batch)
    out = mini_batch.copy()
    out["double"] = out["x"] * 2
    return out
"""


def _csv(name: str, rows: range) -> bytes:
    return ("x,label\n" + "".join(f"{i},{name}-{i}\n" for i in rows)).encode()


def test_a_tabular_input_reaches_run_as_dataframes_and_comes_back_in_order(
    storage: StorageClients, tmp_path: Path
) -> None:
    files = {"MLTable": MLTABLE, "a.csv": _csv("a", range(300)), "b.csv": _csv("b", range(300, 340))}
    step = make_step(
        storage,
        tmp_path,
        SCORE,
        files=files,
        input_type=DataType.MLTABLE,
        mini_batch_size=1024,  # bytes: a.csv (~3.6 KB) becomes several mini-batches, b.csv one
        append_row=DataType.URI_FILE,
        append_row_format=AppendRowFormat.CSV,
    )
    assert step.run_agent(workers=2) == 0
    progress = read_progress(storage, step.ref)
    assert progress.total_mini_batches >= 4
    assert progress.items_succeeded == 340
    assert progress.failed_mini_batches == 0
    phases.finalize_step(storage, StepFinalize(step=step.ref, status=StepStatus.COMPLETED))
    expected = "x,label,double\n" + "".join(
        f"{i},{'a' if i < 300 else 'b'}-{i},{2 * i}\n" for i in range(340)
    )
    assert step.output_bytes().decode() == expected


PER_PARTITION = """
def run(mini_batch, mini_batch_context):
    key = mini_batch_context.partition_key_value
    quantity = int(mini_batch["Quantity"].sum())
    return [f"{key['Store']}/{key['Brand']}: {len(mini_batch)} rows, quantity {quantity}"]
"""

PARTITIONED_MLTABLE = b"""\
paths:
  - pattern: ./**/*.csv
transformations:
  - read_delimited:
      delimiter: ","
      header: all_files_same_headers
  - extract_columns_from_partition_format:
      partition_format: "{Store}/{Brand}/{file_name}.csv"
  - drop_columns: [file_name]
"""


def test_partition_keys_give_one_mini_batch_per_key_combination(
    storage: StorageClients, tmp_path: Path
) -> None:
    files = {"MLTable": PARTITIONED_MLTABLE}
    for store, brand, day, quantity in [
        ("1001", "dominicks", "mon", 3),
        ("1001", "dominicks", "tue", 4),
        ("1001", "tropicana", "mon", 5),
        ("1002", "dominicks", "mon", 6),
    ]:
        files[f"{store}/{brand}/{day}.csv"] = f"Quantity\n{quantity}\n{quantity}\n".encode()
    step = make_step(
        storage,
        tmp_path,
        PER_PARTITION,
        files=files,
        input_type=DataType.MLTABLE,
        partition_keys=["Store", "Brand"],
        append_row=DataType.URI_FILE,
        mini_batch_error_threshold=0,
    )
    assert step.run_agent(workers=2) == 0
    progress = read_progress(storage, step.ref)
    # §9.8: one mini-batch per (Store, Brand) present; returning one row per partition fails items only.
    assert progress.total_mini_batches == 3
    assert progress.failed_mini_batches == 0
    assert progress.items_succeeded == 3
    assert progress.items_failed == 8 - 3
    phases.finalize_step(storage, StepFinalize(step=step.ref, status=StepStatus.COMPLETED))
    lines = sorted(step.output_bytes().decode().splitlines())
    assert lines == [
        "1001/dominicks: 4 rows, quantity 14",
        "1001/tropicana: 2 rows, quantity 10",
        "1002/dominicks: 2 rows, quantity 12",
    ]
