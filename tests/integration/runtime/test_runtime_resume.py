"""Resuming a parallel step on real agents: only what did not succeed runs again, the output's bytes
are those of a clean run, counts and logs cover the whole job, chains of resumes work, and a step
whose input changed carries nothing."""

from __future__ import annotations

import csv
import hashlib
import io
import uuid
from pathlib import Path

from shared.orchestration.contracts import StepDefinition, StepFinalize, StepRef, StepStatus
from shared.orchestration.resume import resumed_plan
from shared.plan import BlobData, DataType, RetrySettings
from shared.reuse import data_identity, fingerprint_step
from shared.runs import load_step_definition, save_plan, save_step_definition
from shared.runtime import phases
from shared.runtime.appendrow import append_row_location
from shared.runtime.logs import PROCESSED_CSV
from shared.runtime.records import read_progress, read_records, read_step_document, update_step_document
from shared.runtime.resume import load_summary
from shared.storage import Container, StorageClients
from tests.integration.runtime.stepkit import Step, make_step

# One file per mini-batch ("item N"). Items listed in FAIL_FILE raise; the others write a file of their
# own next to the output; item 3 returns no rows (a partial mini-batch: its item fails, the mini-batch
# completes). Every call is counted per item.
SCRIPT = """
import os
from pathlib import Path

COUNTS = Path(os.environ["COUNTS_DIR"])
FAIL_FILE = Path(os.environ["FAIL_FILE"])

def run(mini_batch):
    index = int(Path(mini_batch[0]).read_text().split()[1])
    COUNTS.mkdir(parents=True, exist_ok=True)
    with open(COUNTS / f"{index}.txt", "a") as handle:
        handle.write("x")
    if FAIL_FILE.exists() and str(index) in FAIL_FILE.read_text().split():
        raise RuntimeError(f"item {index} is broken")
    Path(os.environ["AZUREML_BI_OUTPUT_PATH"], f"{index}.out").write_text(f"file of {index}")
    if index == 3:
        return []
    return [f"{index}: a", f"{index}: b"]
"""


def _expected(items: int) -> bytes:
    return "".join(f"{i}: a\n{i}: b\n" for i in range(items) if i != 3).encode()


def _counts(tmp_path: Path, items: int) -> list[int]:
    folder = tmp_path / "counts"
    return [
        len((folder / f"{i}.txt").read_text()) if (folder / f"{i}.txt").exists() else 0 for i in range(items)
    ]


def _first_step(storage: StorageClients, tmp_path: Path, failing: str, **options: object) -> Step:
    (tmp_path / "fail.txt").write_text(failing)
    step = make_step(
        storage,
        tmp_path,
        SCRIPT,
        append_row=DataType.URI_FILE,
        environment_variables={
            "COUNTS_DIR": str(tmp_path / "counts"),
            "FAIL_FILE": str(tmp_path / "fail.txt"),
        },
        retry=RetrySettings(max_retries=0, timeout=30),
        **options,  # type: ignore[arg-type]
    )
    _fingerprint(step.clients, step)
    return step


def _fingerprint(clients: StorageClients, step: Step) -> None:
    definition = load_step_definition(clients, step.ref)
    fingerprint = fingerprint_step(clients, step.plan, step.plan.job(step.ref.job), definition.inputs)
    save_step_definition(clients, definition.model_copy(update={"fingerprint": fingerprint}))


def _resume(old: Step, blocks_per_blob: int | None = None) -> Step:
    """What a resumed run does for this job: the resumed plan, step.json, plan (carry) and dispatch."""
    clients = old.clients
    plan = resumed_plan(old.plan, f"{old.ref.run_id[:20]}-r{uuid.uuid4().hex[:6]}", trace={}, pinned={})
    save_plan(clients, plan)
    ref = StepRef(run_id=plan.run_id, job=old.ref.job)
    job = plan.job(ref.job)
    inputs = load_step_definition(clients, old.ref).inputs
    fingerprint = fingerprint_step(clients, plan, job, inputs)
    save_step_definition(
        clients, StepDefinition(step=ref, inputs=inputs, outputs=job.outputs, fingerprint=fingerprint)
    )
    if blocks_per_blob is not None:
        update_step_document(clients, ref, blocks_per_blob=blocks_per_blob)
    planned = phases.plan_step(clients, ref)
    phases.dispatch_step(clients, ref)
    assert job.parallel is not None
    output = append_row_location(job.outputs["result"], job.parallel)
    return Step(clients, ref, plan, old.code_dir, old.files, output, extra={"planned": planned})


def _finalize(step: Step, status: StepStatus) -> None:
    phases.finalize_step(step.clients, StepFinalize(step=step.ref, status=status, reason="test"))


def _report_rows(step: Step) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(step.log(PROCESSED_CSV))))


def test_a_chain_of_resumes_runs_each_mini_batch_until_it_succeeds_and_writes_a_clean_runs_bytes(
    storage: StorageClients, tmp_path: Path
) -> None:
    first = _first_step(storage, tmp_path, "2 5", files=8)
    assert first.run_agent(workers=1) == 0
    assert read_progress(storage, first.ref).failed_mini_batches == 2
    _finalize(first, StepStatus.FAILED)
    # The failed step keeps the rows of its succeeded mini-batches, committed in order.
    assert first.output_bytes() == b"0: a\n0: b\n1: a\n1: b\n4: a\n4: b\n6: a\n6: b\n7: a\n7: b\n"

    (tmp_path / "fail.txt").write_text("5")  # half of the cause fixed
    second = _resume(first)
    assert second.extra["planned"].carried == 6  # 0 1 3 4 6 7; 2 and 5 failed
    assert second.run_agent(workers=1) == 0
    assert _counts(tmp_path, 8) == [1, 1, 2, 1, 1, 2, 1, 1]
    progress = read_progress(storage, second.ref)
    assert (progress.succeeded_mini_batches, progress.failed_mini_batches) == (7, 1)
    assert progress.carried_mini_batches == 6
    assert (progress.items_succeeded, progress.items_failed) == (6, 2)  # item 3 (partial) and item 5
    _finalize(second, StepStatus.FAILED)

    (tmp_path / "fail.txt").unlink()  # fixed
    third = _resume(second)
    assert third.extra["planned"].carried == 7
    assert third.run_agent(workers=1) == 0
    assert _counts(tmp_path, 8) == [1, 1, 2, 1, 1, 3, 1, 1]  # only 5 ran again
    _finalize(third, StepStatus.COMPLETED)

    assert third.output_bytes() == _expected(8)
    final = storage.blob.get_blob_client(third.output.container, third.output.path)  # type: ignore[union-attr]
    assert final.get_blob_properties().content_settings.content_md5 == hashlib.md5(_expected(8)).digest()
    committed, _ = final.get_block_list("committed")
    assert len(committed) == 5  # copies of 0-1 (first run), 2 (second run), 4, 6-7; 5's own block
    twin = BlobData(container=Container.DATA.value, path=f"twins/{uuid.uuid4().hex}.txt")
    storage.blob.get_blob_client(twin.container, twin.path).upload_blob(_expected(8))
    assert data_identity(storage, third.output, DataType.URI_FILE) == data_identity(
        storage, twin, DataType.URI_FILE
    )

    folder = third.output.path.rsplit("/", 1)[0]  # type: ignore[union-attr]
    files = {
        b.name.rsplit("/", 1)[1]: b
        for b in storage.container(Container.RUNS).list_blobs(name_starts_with=folder + "/")
    }
    assert sorted(files) == [*(f"{i}.out" for i in range(8)), "aggregated.txt"]  # copied, then written
    six = storage.blob.get_blob_client("runs", f"{folder}/6.out").download_blob().readall()
    assert six == b"file of 6"

    records = third.records()
    assert {i: r.carried_from for i, r in records.items()} == {
        0: first.ref.run_id,
        1: first.ref.run_id,
        2: second.ref.run_id,
        3: first.ref.run_id,
        4: first.ref.run_id,
        5: "",
        6: first.ref.run_id,
        7: first.ref.run_id,
    }
    progress = read_progress(storage, third.ref)
    assert (progress.succeeded_mini_batches, progress.items_succeeded, progress.items_failed) == (8, 7, 1)
    rows = _report_rows(third)
    assert sorted(int(row["Mini-batch Id"]) for row in rows) == list(range(8))  # one try per mini-batch
    assert {row["Status"] for row in rows} == {"RUN_DONE"}
    result = third.log("job_result.txt")
    assert "8 succeeded, 0 failed" in result
    assert f"Resumed from run {second.ref.run_id}: 7 mini-batches carried over" in result
    assert "carried over from run" in third.log("job_progress_overview." + _hour(third) + ".txt")


def _hour(step: Step) -> str:
    names = [n for n in step.log_names() if n.startswith("job_progress_overview.")]
    return names[0].removeprefix("job_progress_overview.").removesuffix(".txt")


def test_a_canceled_step_with_part_blobs_resumes_into_the_same_bytes(
    storage: StorageClients, tmp_path: Path
) -> None:
    first = _first_step(storage, tmp_path, "1 4", files=7, blocks_per_blob=3)
    assert first.run_agent(workers=2) == 0
    _finalize(first, StepStatus.CANCELED)
    parts = sorted(
        b.name
        for b in storage.container(Container.RUNS).list_blobs(
            name_starts_with=f"{first.ref.run_id}/score/append_row/"
        )
    )
    assert len(parts) == 3  # the kept rows stay in the canceled step's parts

    (tmp_path / "fail.txt").unlink()
    second = _resume(first, blocks_per_blob=3)
    assert second.extra["planned"].carried == 5
    assert second.run_agent(workers=2) == 0
    assert _counts(tmp_path, 7) == [1, 2, 1, 1, 2, 1, 1]
    _finalize(second, StepStatus.COMPLETED)
    assert second.output_bytes() == _expected(7)
    staging = f"{second.ref.run_id}/score/append_row/"
    assert list(storage.container(Container.RUNS).list_blobs(name_starts_with=staging)) == []


def test_a_step_whose_input_changed_carries_nothing(storage: StorageClients, tmp_path: Path) -> None:
    first = _first_step(storage, tmp_path, "2", files=4, dispatch=True)
    assert first.run_agent(workers=1) == 0
    _finalize(first, StepStatus.FAILED)
    data = storage.container(Container.DATA)
    prefix = f"inputs/{first.ref.run_id}/folder"
    data.upload_blob(f"{prefix}/f001.txt", b"item 1 changed\n", overwrite=True)

    second = _resume(first)
    assert second.extra["planned"].carried == 0
    summary = load_summary(storage, second.ref)
    assert summary is not None
    assert "changed since run" in summary.reason
    document = read_step_document(storage, second.ref)
    assert document is not None
    assert (document.carried_mini_batches, document.dispatched_through) == (0, 4)
    assert read_records(storage, second.ref) == []
    assert "no mini-batch carried over" in second.log("sys/master_role.0.txt")


def test_a_step_that_failed_before_it_was_planned_finalizes_without_rows(storage: StorageClients) -> None:
    from shared.plan import JobPlan, JobType, OutputPlan, ParallelSettings, RunPlan

    run_id = f"unplanned-{uuid.uuid4().hex[:8]}"
    output = OutputPlan(
        type=DataType.URI_FILE, location=BlobData(container="runs", path=f"{run_id}/j/out.txt")
    )
    parallel = ParallelSettings(input_data="data", entry_script="s.py", append_row_to="result")
    job = JobPlan(name="j", type=JobType.PARALLEL, parallel=parallel, outputs={"result": output})
    save_plan(storage, RunPlan(run_id=run_id, jobs=[job]))
    ref = StepRef(run_id=run_id, job="j")
    save_step_definition(storage, StepDefinition(step=ref, outputs=job.outputs))
    result = phases.finalize_step(
        storage, StepFinalize(step=ref, status=StepStatus.FAILED, reason="bad data")
    )
    assert (result.status, result.reason) == (StepStatus.FAILED, "bad data")
    assert not storage.blob.get_blob_client("runs", f"{run_id}/j/out.txt").exists()
