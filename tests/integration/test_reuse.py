"""Step reuse on Azurite: fingerprints of real code and data, the reuse index, and what defeats reuse."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from shared.orchestration.contracts import ResolvedInput, StepRef, StepResult, StepStatus
from shared.plan import (
    BlobData,
    CodeRef,
    DataInput,
    DataType,
    JobPlan,
    JobType,
    LiteralInput,
    LiteralType,
    OutputPlan,
    ParallelSettings,
    RunPlan,
    UrlData,
)
from shared.reuse import data_identity, find_reusable, fingerprint_step, record_reusable, reuse_enabled
from shared.snapshot import build_snapshot
from shared.spec import compile_file
from shared.storage import Container, StorageClients, output_path


@dataclass
class World:
    """A code folder and data in storage, unique to one test."""

    storage: StorageClients
    code: Path
    snapshot: str
    table: BlobData
    model: BlobData

    def job(self, run_id: str, *, code: CodeRef | None = None) -> JobPlan:
        return JobPlan(
            name="score",
            type=JobType.PARALLEL,
            code=code or CodeRef(snapshot=self.snapshot),
            inputs={
                "table": DataInput(type=DataType.URI_FOLDER, source=self.table),
                "model": DataInput(type=DataType.URI_FILE, source=self.model),
                "threshold": LiteralInput(type=LiteralType.NUMBER, value=0.5),
            },
            outputs={
                "scores": OutputPlan(
                    location=BlobData(container="runs", path=output_path(run_id, "score", "scores"))
                )
            },
            parallel=ParallelSettings(input_data="table", entry_script="score.py"),
        )

    def fingerprint(self, run_id: str, *, threshold: float = 0.5, code: CodeRef | None = None) -> str:
        job = self.job(run_id, code=code)
        plan = RunPlan(run_id=run_id, jobs=[job])
        inputs: dict[str, ResolvedInput | LiteralInput] = {
            "table": ResolvedInput(location=self.table),
            "model": ResolvedInput(location=self.model, asset="model:3"),
            "threshold": LiteralInput(type=LiteralType.NUMBER, value=threshold),
        }
        return fingerprint_step(self.storage, plan, job, inputs)

    def complete(
        self, run_id: str, fingerprint: str, status: StepStatus = StepStatus.COMPLETED
    ) -> StepResult:
        location = BlobData(container="runs", path=output_path(run_id, "score", "scores"))
        self.storage.container(Container.RUNS).upload_blob(
            f"{location.path}/parallel_run_step.txt", b"a 1\n", overwrite=True
        )
        result = StepResult(
            step=StepRef(run_id=run_id, job="score"), status=status, outputs={"scores": location}
        )
        record_reusable(self.storage, fingerprint, result)
        return result


@pytest.fixture
def world(storage: StorageClients, tmp_path: Path) -> World:
    tag = uuid.uuid4().hex
    code = tmp_path / "src"
    code.mkdir()
    (code / "score.py").write_text(f"TAG = {tag!r}\n")
    data = storage.container(Container.DATA)
    for name in ("a.csv", "b.csv"):
        data.upload_blob(f"{tag}/table/{name}", f"x,y\n1,{name}\n".encode())
    data.upload_blob(f"{tag}/model.pkl", b"model-bytes")
    return World(
        storage=storage,
        code=code,
        snapshot=build_snapshot(storage, code).snapshot_id,
        table=BlobData(container="data", path=f"{tag}/table"),
        model=BlobData(container="data", path=f"{tag}/model.pkl"),
    )


def run_id() -> str:
    return f"run-{uuid.uuid4().hex[:8]}"


def test_an_unchanged_second_run_reuses_the_completed_step(world: World) -> None:
    first_run = run_id()
    first = world.fingerprint(first_run)
    assert find_reusable(world.storage, first) is None
    world.complete(first_run, first)

    second = world.fingerprint(run_id())
    assert second == first
    hit = find_reusable(world.storage, second)
    assert hit is not None
    assert hit.run_id == first_run
    assert hit.job == "score"
    assert hit.outputs == {
        "scores": BlobData(container="runs", path=output_path(first_run, "score", "scores"))
    }


def test_a_one_byte_change_of_data_behind_the_same_path_is_not_reused(world: World) -> None:
    first_run = run_id()
    world.complete(first_run, world.fingerprint(first_run))
    data = world.storage.container(Container.DATA)
    data.upload_blob(f"{world.table.path}/b.csv", b"x,y\n1,b.csw\n", overwrite=True)  # same size, one byte
    changed = world.fingerprint(run_id())
    assert find_reusable(world.storage, changed) is None

    data.upload_blob(world.model.path, b"model-bytez", overwrite=True)  # the uri_file input too
    assert world.fingerprint(run_id()) != changed


def test_a_code_change_is_not_reused(world: World) -> None:
    first_run = run_id()
    first = world.fingerprint(first_run)
    world.complete(first_run, first)
    (world.code / "score.py").write_text((world.code / "score.py").read_text() + "# edit\n")
    new_snapshot = build_snapshot(world.storage, world.code).snapshot_id
    changed = world.fingerprint(run_id(), code=CodeRef(snapshot=new_snapshot))
    assert changed != first
    assert find_reusable(world.storage, changed) is None


def test_local_code_and_its_snapshot_fingerprint_alike(world: World) -> None:
    by_snapshot = world.fingerprint(run_id())
    by_folder = world.fingerprint(run_id(), code=CodeRef(local_path=str(world.code)))
    assert by_folder == by_snapshot


def test_a_changed_parameter_is_not_reused(world: World) -> None:
    first_run = run_id()
    world.complete(first_run, world.fingerprint(first_run, threshold=0.5))
    changed = world.fingerprint(run_id(), threshold=0.75)
    assert find_reusable(world.storage, changed) is None


def test_force_rerun_and_non_deterministic_jobs_skip_reuse(world: World) -> None:
    job = world.job(run_id())
    plan = RunPlan(run_id="r", jobs=[job])
    assert reuse_enabled(plan, job)
    assert not reuse_enabled(plan, job, force_rerun=True)  # --force-rerun
    assert not reuse_enabled(plan.model_copy(update={"force_rerun": True}), job)  # settings.force_rerun
    assert not reuse_enabled(plan, job.model_copy(update={"allow_reuse": False}))  # is_deterministic: false


def test_only_completed_steps_with_existing_outputs_are_reused(world: World) -> None:
    fingerprint = world.fingerprint(run_id())
    world.complete(run_id(), fingerprint, StepStatus.FAILED)
    assert find_reusable(world.storage, fingerprint) is None

    older, newer = run_id(), run_id()
    world.complete(older, fingerprint)
    world.complete(newer, fingerprint)
    hit = find_reusable(world.storage, fingerprint)
    assert hit is not None
    assert hit.run_id == newer

    runs = world.storage.container(Container.RUNS)
    runs.delete_blob(f"{output_path(newer, 'score', 'scores')}/parallel_run_step.txt")
    hit = find_reusable(world.storage, fingerprint)
    assert hit is not None
    assert hit.run_id == older  # the newer run's outputs are gone: fall back to the older one

    world.complete(older, fingerprint)  # recording again is idempotent
    runs.delete_blob(f"{output_path(older, 'score', 'scores')}/parallel_run_step.txt")
    assert find_reusable(world.storage, fingerprint) is None


def test_url_inputs_are_identified_like_blobs(world: World) -> None:
    url = UrlData(url=f"{world.storage.blob.url.rstrip('/')}/data/{world.table.path}")
    assert data_identity(world.storage, url, DataType.URI_FOLDER) == data_identity(
        world.storage, world.table, DataType.URI_FOLDER
    )
    unreadable = UrlData(url=f"{world.storage.blob.url.rstrip('/')}/no-such-container/x")
    assert data_identity(world.storage, unreadable) != data_identity(world.storage, unreadable)


def test_rewriting_identical_bytes_keeps_the_fingerprint(world: World) -> None:
    before = world.fingerprint(run_id())
    data = world.storage.container(Container.DATA)
    data.upload_blob(world.model.path, b"model-bytes", overwrite=True)  # new ETag, same content
    assert world.fingerprint(run_id()) == before


EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "iris-batch-prediction" / "pipeline.yml"


def example_fingerprints(storage: StorageClients, **overrides: str) -> dict[str, str]:
    """Fingerprint every job of the iris example compiled with ``--set`` overrides."""
    plan = compile_file(EXAMPLE, run_id=run_id(), overrides=overrides)
    prints = {}
    for job in plan.jobs:
        inputs: dict[str, ResolvedInput | LiteralInput] = {}
        for name, value in job.inputs.items():
            if isinstance(value, LiteralInput):
                inputs[name] = value
            else:  # the same data every time (uploads and upstream outputs are tested elsewhere)
                inputs[name] = ResolvedInput(location=BlobData(container="data", path=f"fixed-inputs/{name}"))
        prints[job.name] = fingerprint_step(storage, plan, job, inputs)
    return prints


def test_pipeline_parameters_reach_the_fingerprint(storage: StorageClients) -> None:
    base = example_fingerprints(storage, n_estimators="50", scoring_nodes="2")
    assert example_fingerprints(storage, n_estimators="50", scoring_nodes="2") == base
    more_trees = example_fingerprints(storage, n_estimators="60", scoring_nodes="2")
    assert more_trees["train_model"] != base["train_model"]  # a parameter the job reads
    more_nodes = example_fingerprints(storage, n_estimators="50", scoring_nodes="3")
    assert more_nodes == base  # instance_count does not change results
