"""Resuming on Azurite: which runs may be resumed, the resumed plan (assets pinned to what the old run
read), and which jobs of the old run a resumed run takes over in ``prepare_step``."""

from __future__ import annotations

import uuid

import pytest

from shared.errors import ConflictError, NotFoundError
from shared.orchestration import activities, run_index
from shared.orchestration.contracts import RunStatus, StepRef, StepResult, StepStart, StepStatus
from shared.orchestration.dependencies import ActivityDependencies
from shared.orchestration.models import Outcome, StepPrepared
from shared.orchestration.resume import prepare_resume
from shared.plan import (
    AssetRef,
    BlobData,
    CommandSettings,
    DataInput,
    DataType,
    JobPlan,
    JobType,
    OutputPlan,
    RunPlan,
)
from shared.registry import register_asset
from shared.runs import save_plan, save_step_result
from shared.storage import Container, StorageClients, output_path
from tests.integration.orchestration.conftest import NoExecutor


def _deps(storage: StorageClients) -> ActivityDependencies:
    return ActivityDependencies(clients=storage, executor=NoExecutor())


def _command(run_id: str, name: str, source: object) -> JobPlan:
    output = OutputPlan(location=BlobData(container="runs", path=output_path(run_id, name, "out")))
    return JobPlan(
        name=name,
        type=JobType.COMMAND,
        command=CommandSettings(command="true"),
        inputs={"data": DataInput(type=DataType.URI_FOLDER, source=source)},  # type: ignore[arg-type]
        outputs={"out": output},
    )


def _old_run(storage: StorageClients, *jobs: JobPlan, run_id: str, **fields: object) -> RunPlan:
    plan = RunPlan(run_id=run_id, jobs=list(jobs), **fields)  # type: ignore[arg-type]
    save_plan(storage, plan)
    run_index.add_run(storage, run_index.entry_for(plan))
    return plan


def _prepare(storage: StorageClients, run_id: str, job: str) -> StepPrepared:
    start = StepStart(step=StepRef(run_id=run_id, job=job))
    outcome = Outcome.model_validate(activities.prepare_step(_deps(storage), start.model_dump(mode="json")))
    assert outcome.error is None, outcome.error
    return StepPrepared.model_validate(outcome.value)


def _ended(storage: StorageClients, run_id: str, job: str, status: StepStatus, *, output: bool) -> None:
    location = BlobData(container="runs", path=output_path(run_id, job, "out"))
    if output:
        storage.container(Container.RUNS).upload_blob(f"{location.path}/part.txt", b"done", overwrite=True)
    outputs = {"out": location} if status is StepStatus.COMPLETED else {}
    save_step_result(
        storage, StepResult(step=StepRef(run_id=run_id, job=job), status=status, outputs=outputs)
    )


def test_a_resumed_run_takes_over_completed_jobs_whose_fingerprint_is_unchanged(
    storage: StorageClients,
) -> None:
    old = f"res-{uuid.uuid4().hex[:8]}"
    data = storage.container(Container.DATA)
    for name in ("same", "changed", "gone", "failed"):
        data.upload_blob(f"resume/{old}/{name}/x.txt", b"1", overwrite=True)
    jobs = [
        _command(old, name, BlobData(container="data", path=f"resume/{old}/{name}"))
        for name in ("same", "changed", "gone", "failed")
    ]
    # force_rerun: step reuse is off, yet a resume continues the run and keeps its completed jobs.
    _old_run(storage, *jobs, run_id=old, force_rerun=True)
    for name in ("same", "changed", "gone", "failed"):
        _prepare(storage, old, name)
    _ended(storage, old, "same", StepStatus.COMPLETED, output=True)
    _ended(storage, old, "changed", StepStatus.COMPLETED, output=True)
    _ended(storage, old, "gone", StepStatus.COMPLETED, output=False)  # its output was deleted since
    _ended(storage, old, "failed", StepStatus.FAILED, output=False)
    run_index.set_status(storage, old, RunStatus.FAILED, "job failed failed")
    data.upload_blob(f"resume/{old}/changed/x.txt", b"2", overwrite=True)  # new data behind the path

    plan = prepare_resume(storage, old)
    save_plan(storage, plan)
    taken = {
        name: _prepare(storage, plan.run_id, name).reused_from
        for name in ("same", "changed", "gone", "failed")
    }
    assert taken == {"same": old, "changed": None, "gone": None, "failed": None}


def test_the_resumed_plan_reads_the_asset_versions_the_old_run_read(storage: StorageClients) -> None:
    old = f"res-{uuid.uuid4().hex[:8]}"
    asset = f"resume-asset-{old}"
    register_asset(storage, asset, BlobData(container="data", path=f"resume/{old}/v1"))
    _old_run(
        storage,
        _command(old, "started", AssetRef(name=asset)),
        _command(old, "never", AssetRef(name=asset)),
        run_id=old,
    )
    _prepare(storage, old, "started")  # read version 1 (latest then)
    run_index.set_status(storage, old, RunStatus.CANCELED)
    register_asset(storage, asset, BlobData(container="data", path=f"resume/{old}/v2"))

    plan = prepare_resume(storage, old, trace={"traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01"})
    assert plan.resumed_from == old
    assert plan.job("started").inputs["data"].source == AssetRef(name=asset, version="1")  # type: ignore[union-attr]
    assert plan.job("never").inputs["data"].source == AssetRef(name=asset)  # type: ignore[union-attr]
    assert plan.trace["traceparent"].startswith("00-111")
    assert run_index.get_run(storage, old).resumed_by == plan.run_id


def test_what_cannot_be_resumed(storage: StorageClients) -> None:
    with pytest.raises(NotFoundError, match="does not exist"):
        prepare_resume(storage, "res-nobody")
    done = f"res-{uuid.uuid4().hex[:8]}"
    _old_run(storage, run_id=done)
    run_index.set_status(storage, done, RunStatus.COMPLETED)
    with pytest.raises(ConflictError, match="completed; there is nothing to resume"):
        prepare_resume(storage, done)
    failed = f"res-{uuid.uuid4().hex[:8]}"
    _old_run(storage, run_id=failed)
    run_index.set_status(storage, failed, RunStatus.FAILED)
    first = prepare_resume(storage, failed)
    run_index.add_run(storage, run_index.entry_for(first))  # what start_run does: it is Queued now
    with pytest.raises(ConflictError, match=f"already being resumed by run '{first.run_id}'"):
        prepare_resume(storage, failed)
    # A resume that lost the race for the index row is refused, not started twice.
    _, etag = run_index.read_for_update(storage, failed)
    run_index.set_status(storage, first.run_id, RunStatus.FAILED)
    assert run_index.set_resumed_by(storage, failed, "someone-else", etag=etag) is True
    assert run_index.set_resumed_by(storage, failed, "too-late", etag=etag) is False
    assert run_index.get_run(storage, failed).resumed_by == "someone-else"
