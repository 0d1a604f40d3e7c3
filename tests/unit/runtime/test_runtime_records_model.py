"""Records and shards as table entities; the texts of job_result.txt and job_error.txt."""

from __future__ import annotations

from datetime import UTC, datetime

from shared.orchestration.contracts import StepProgress, StepRef, StepResult, StepStatus
from shared.plan import BlobData, ParallelSettings
from shared.runtime.records import (
    AgentShard,
    MiniBatchRecord,
    RecordStatus,
    record_from_entity,
    record_row,
    record_to_entity,
    shard_from_entity,
    shard_to_entity,
    step_key,
)
from shared.runtime.reports import final_line, job_error, job_result


def test_step_keys_escape_what_table_keys_forbid() -> None:
    assert step_key(StepRef(run_id="run-1", job="score")) == "run-1|score"
    key = step_key(StepRef(run_id="a/b#c?d\\e", job="j"))
    assert not set("/#?\\") & set(key)


def test_record_rows_sort_in_index_order() -> None:
    rows = [record_row(i) for i in (10, 2, 100_000, 0)]
    assert sorted(rows) == [record_row(i) for i in (0, 2, 10, 100_000)]


def test_a_record_round_trips_through_an_entity() -> None:
    record = MiniBatchRecord(
        index=7,
        status=RecordStatus.FAILED,
        final=True,
        attempts=3,
        items=2,
        items_failed=2,
        started_at=datetime(2026, 1, 1, tzinfo=UTC),
        error_category="RUN_EXCEPTION",
        error_message="x" * 10_000,
    )
    entity = record_to_entity("run|job", record)
    assert entity["PartitionKey"] == "run|job"
    assert entity["RowKey"] == "mb-0000000007"
    assert entity["status"] == "failed"
    assert len(entity["error_message"]) == 4000  # the full traceback is in the logs
    back = record_from_entity({**entity, "odata.etag": "ignored"})
    assert back.model_copy(update={"error_message": record.error_message}) == record
    assert back.counts_as_failed
    partial = record.model_copy(update={"status": RecordStatus.PARTIAL})
    assert not partial.counts_as_failed  # a partial result fails items, not the mini-batch


def test_a_shard_round_trips_through_an_entity() -> None:
    shard = AgentShard(agent_id="0-abc", node_id=0, succeeded_mini_batches=4, items_failed=2, exited=True)
    entity = shard_to_entity("k", shard)
    assert entity["RowKey"] == "shard-0-abc"
    assert shard_from_entity(entity) == shard


def test_job_result_says_why_and_where_to_look() -> None:
    step = StepRef(run_id="r", job="j")
    progress = StepProgress(
        step=step,
        total_mini_batches=4,
        dispatched=True,
        succeeded_mini_batches=3,
        failed_mini_batches=1,
        items_failed=1,
        attempts=6,
    )
    failed = StepResult(
        step=step,
        status=StepStatus.FAILED,
        reason="Exceeded error threshold: 1 items failed",
        progress=progress,
    )
    text = job_result(failed, ParallelSettings(input_data="d", entry_script="s.py", error_threshold=0))
    assert text.startswith("Result: Failed\nReason: Exceeded error threshold")
    assert "4 in total, 3 succeeded, 1 failed (6 tries)" in text
    assert "max_retries=2 (up to 3 tries)" in text
    assert "logs/user/error/<node>/<process>.txt" in text
    done = StepResult(
        step=step,
        status=StepStatus.COMPLETED,
        progress=progress,
        outputs={"o": BlobData(container="runs", path="r/j/o")},
    )
    assert "Output o: runs/r/j/o" in job_result(done, ParallelSettings(input_data="d", entry_script="s.py"))
    assert final_line(done) == "The job completed. 4 of 4 mini-batches processed, 1 failed."


def test_job_error_lists_failures_and_short_results() -> None:
    records = [
        MiniBatchRecord(index=0, status=RecordStatus.SUCCEEDED, final=True, items=1, items_succeeded=1),
        MiniBatchRecord(
            index=1,
            status=RecordStatus.FAILED,
            final=True,
            attempts=3,
            items=2,
            items_failed=2,
            node_id=1,
            process="process002",
            error_category="RUN_TIMEOUT",
            error_message="mini batch 1 did not finish in 60 seconds.\nmore",
        ),
        MiniBatchRecord(
            index=2,
            status=RecordStatus.PARTIAL,
            final=True,
            items=5,
            rows=1,
            items_succeeded=1,
            items_failed=4,
        ),
        MiniBatchRecord(index=3, status=RecordStatus.RETRYING, final=False, items=1),
    ]
    text = job_error(records)
    assert text.startswith("1 mini-batches failed.\n")
    assert (
        "mini-batch 1 (3 tries, 2 of 2 items failed, node 1 process002): "
        "RUN_TIMEOUT: mini batch 1 did not finish in 60 seconds.\n" in text
    )
    assert "mini-batch 2: 1 results for 5 items" in text
    assert job_error(records[:1]) == "No mini-batch failed.\n"
