"""Pure pieces of resuming a step: which mini-batches are "the same", dispatch around carried ones,
the resumed plan, and progress with carried counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.api.runs import estimate_seconds_left
from shared.data.locations import BlobRoot
from shared.data.manifest import Manifest, ManifestBuilder, TabularPart
from shared.orchestration.contracts import StepProgress, StepRef
from shared.orchestration.resume import resumed_plan
from shared.plan import (
    AssetRef,
    BlobData,
    DataInput,
    DataType,
    JobPlan,
    JobType,
    OutputPlan,
    ParallelSettings,
    RunPlan,
)
from shared.runtime.resume import dispatch_ranges, index_ranges, mini_batch_key


def _files(*batches: list[tuple[str, int, int]], prefix: str = "in") -> Manifest:
    builder = ManifestBuilder("files", "data", [BlobRoot(container="data", prefix=prefix)])
    for batch in batches:
        builder.add_files([f for f, _, _ in batch], [s for _, s, _ in batch], [m for _, _, m in batch])
    return builder.build()


def test_a_mini_batch_is_the_same_only_with_the_same_files_sizes_times_and_root() -> None:
    old = _files([("a.txt", 1, 10)], [("b.txt", 2, 20)], [("c.txt", 3, 30)])
    same = _files([("a.txt", 1, 10)], [("b.txt", 2, 20)], [("c.txt", 3, 30)])
    changed = _files([("a.txt", 1, 10)], [("b.txt", 2, 21)], [("d.txt", 3, 30)])
    moved = _files([("a.txt", 1, 10)], [("b.txt", 2, 20)], [("c.txt", 3, 30)], prefix="other")
    key = mini_batch_key
    assert [key(old, i) == key(same, i) for i in range(3)] == [True, True, True]
    assert [key(old, i) == key(changed, i) for i in range(3)] == [True, False, False]
    assert not any(key(old, i) == key(moved, i) for i in range(3))
    assert key(old, 0) != key(old, 1)


def test_tabular_mini_batches_compare_their_ranges_and_the_files_they_read() -> None:
    def table(size: int, end: int) -> Manifest:
        builder = ManifestBuilder("tabular", "data", [BlobRoot(container="data", prefix="t")])
        builder.add_parts([TabularPart(source=0, start=0, end=end)])
        return builder.build(
            sources=[{"path": "x.csv", "size": size, "display": "x.csv"}],
            read={"format": "delimited"},
        )

    assert mini_batch_key(table(100, 50), 0) == mini_batch_key(table(100, 50), 0)
    assert mini_batch_key(table(100, 50), 0) != mini_batch_key(table(100, 60), 0)
    assert mini_batch_key(table(100, 50), 0) != mini_batch_key(table(101, 50), 0)


@pytest.mark.parametrize(
    ("total", "per_message", "carried", "expected"),
    [
        (7, 3, [], [(0, 3), (3, 6), (6, 7)]),
        (8, 3, [(0, 2), (5, 6)], [(2, 5), (6, 8)]),
        (8, 2, [(1, 2), (3, 4)], [(0, 1), (2, 3), (4, 6), (6, 8)]),
        (4, 5, [(0, 4)], []),
        (4, 5, [(3, 4)], [(0, 3)]),
    ],
)
def test_messages_leave_out_the_carried_mini_batches(
    total: int, per_message: int, carried: list[tuple[int, int]], expected: list[tuple[int, int]]
) -> None:
    messages = dispatch_ranges(total, per_message, carried)
    assert messages == expected
    sent = {i for start, end in messages for i in range(start, end)}
    kept = {i for start, end in carried for i in range(start, end)}
    assert sent | kept == set(range(total))
    assert not sent & kept


def test_index_ranges() -> None:
    assert index_ranges([5, 0, 1, 2, 7, 6, 9]) == [(0, 3), (5, 8), (9, 10)]
    assert index_ranges([]) == []


def test_the_resumed_plan_moves_outputs_and_pins_latest_assets() -> None:
    parallel = ParallelSettings(input_data="data", entry_script="s.py")
    job = JobPlan(
        name="score",
        type=JobType.PARALLEL,
        parallel=parallel,
        inputs={
            "data": DataInput(type=DataType.URI_FOLDER, source=AssetRef(name="images")),
            "model": DataInput(type=DataType.URI_FOLDER, source=AssetRef(name="model", version="3")),
        },
        outputs={
            "scores": OutputPlan(location=BlobData(container="runs", path="old-1/score/outputs/scores")),
            "shared": OutputPlan(location=BlobData(container="data", path="fixed/scores")),
        },
    )
    old = RunPlan(run_id="old-1", jobs=[job], trace={"traceparent": "00-old"}, force_rerun=True)
    plan = resumed_plan(old, "new-2", trace={"traceparent": "00-new"}, pinned={"score": {"data": "7"}})
    assert (plan.run_id, plan.resumed_from, plan.trace) == ("new-2", "old-1", {"traceparent": "00-new"})
    assert plan.force_rerun  # the old run's settings are kept
    new = plan.job("score")
    assert new.outputs["scores"].location.path == "new-2/score/outputs/scores"
    assert new.outputs["shared"].location.path == "fixed/scores"
    assert new.inputs["data"].source == AssetRef(name="images", version="7")  # type: ignore[union-attr]
    assert new.inputs["model"].source == AssetRef(name="model", version="3")  # type: ignore[union-attr]
    assert new.parallel == parallel
    assert RunPlan.model_validate_json(plan.model_dump_json()) == plan


def test_the_pace_of_a_resumed_step_leaves_out_what_was_carried() -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    progress = StepProgress(
        step=StepRef(run_id="r", job="j"),
        total_mini_batches=100,
        dispatched=True,
        succeeded_mini_batches=60,
        carried_mini_batches=50,
        first_activity_at=now - timedelta(seconds=10),
    )
    # 10 settled in this run in 10 s, 40 left: 40 s (not 40 × 10 / 60).
    assert estimate_seconds_left(progress, now) == 40.0
    only_carried = progress.model_copy(update={"succeeded_mini_batches": 50})
    assert estimate_seconds_left(only_carried, now) is None
    done = progress.model_copy(update={"succeeded_mini_batches": 100})
    assert estimate_seconds_left(done, now) == 0.0
