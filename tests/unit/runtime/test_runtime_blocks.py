"""Block ids and staging targets of the exactly-once append_row output."""

from __future__ import annotations

import base64

from shared.orchestration.contracts import StepRef
from shared.plan import BlobData, DataType, OutputPlan, ParallelSettings
from shared.runtime.appendrow import (
    append_row_location,
    block_index,
    copy_block_id,
    header_block_id,
    output_target,
    row_block_id,
)

STEP = StepRef(run_id="r1", job="score")
FINAL = BlobData(container="data", path="out/result.csv")


def test_block_ids_have_one_length_and_carry_their_index() -> None:
    ids = [row_block_id(i) for i in (0, 7, 49_999, 10**9)] + [header_block_id(), copy_block_id(3, 12)]
    assert len({len(base64.b64decode(i)) for i in ids}) == 1
    assert [block_index(i) for i in ids[:4]] == [0, 7, 49_999, 10**9]


def test_each_try_gets_its_own_block_id() -> None:
    assert row_block_id(5) != row_block_id(5)
    assert row_block_id(5, "abcd1234") == row_block_id(5, "abcd1234")


def test_small_steps_stage_into_the_final_blob_in_the_runs_folder() -> None:
    final = BlobData(container="runs", path="r1/score/outputs/result/parallel_run_step.txt")
    target = output_target(STEP, final, total_mini_batches=49_999)
    assert target.run_private
    assert not target.two_level
    assert target.staging_blob(49_998) == final


def test_an_output_outside_the_runs_folder_is_staged_in_the_runs_part_blobs() -> None:
    # Another run (or a run called r10) could commit a blob outside r1/: r1 stages in its own parts.
    for final in (FINAL, BlobData(container="runs", path="r10/score/outputs/result.txt")):
        target = output_target(STEP, final, total_mini_batches=3)
        assert not target.run_private
        assert target.two_level
        assert target.staging_blob(2).path == "r1/score/append_row/part-000000"


def test_large_steps_stage_into_part_blobs() -> None:
    target = output_target(STEP, FINAL, total_mini_batches=120_000)
    assert target.two_level
    assert target.staging_blob(0) == target.staging_blob(49_999)
    assert target.staging_blob(50_000).path == "r1/score/append_row/part-000001"
    assert target.staging_blob(119_999).container == "runs"


def test_append_row_location_for_files_and_folders() -> None:
    settings = ParallelSettings(input_data="d", entry_script="s.py")
    file_output = OutputPlan(type=DataType.URI_FILE, location=FINAL)
    assert append_row_location(file_output, settings) == FINAL
    folder = OutputPlan(type=DataType.URI_FOLDER, location=BlobData(container="runs", path="r/j/outputs/o/"))
    assert append_row_location(folder, settings).path == "r/j/outputs/o/parallel_run_step.txt"
    named = ParallelSettings(input_data="d", entry_script="s.py", append_row_file_name="scores.csv")
    table = OutputPlan(type=DataType.MLTABLE, location=BlobData(container="runs", path="r/j/outputs/t"))
    assert append_row_location(table, named).path == "r/j/outputs/t/scores.csv"
