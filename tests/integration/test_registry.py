"""Data assets on Azurite: versions, @latest, concurrency, idempotency, lineage, and the CLI."""

from __future__ import annotations

import json
import threading
import uuid

import pytest
from click.testing import CliRunner

from shared.cli.main import cli
from shared.errors import NotFoundError, RegistryError
from shared.orchestration.contracts import ResolvedInput, StepDefinition, StepRef, StepResult, StepStatus
from shared.plan import (
    AssetRef,
    BlobData,
    DataType,
    JobPlan,
    JobType,
    LiteralInput,
    LiteralType,
    OutputPlan,
    RunPlan,
)
from shared.registration import register_outputs
from shared.registry import (
    AssetLineage,
    get_asset,
    list_assets,
    list_versions,
    register_asset,
    resolve_asset,
)
from shared.runs import save_step_definition
from shared.storage import Container, StorageClients, output_path


def asset_name() -> str:
    return f"asset-{uuid.uuid4().hex[:10]}"


def where(path: str) -> BlobData:
    return BlobData(container="runs", path=path)


def test_versions_increment_and_latest_resolves(storage: StorageClients) -> None:
    name = asset_name()
    made = [register_asset(storage, name, where(f"r{i}/out")).version for i in range(3)]
    assert made == ["1", "2", "3"]
    latest = resolve_asset(storage, AssetRef(name=name))
    assert latest == ResolvedInput(location=where("r2/out"), asset=f"{name}:3")
    assert resolve_asset(storage, AssetRef(name=name, version="2")).location == where("r1/out")
    assert [v.version for v in list_versions(storage, name)] == ["1", "2", "3"]
    asset = get_asset(storage, name, "1")
    assert asset.uri == "azureml://datastores/runs/paths/r0/out"
    assert asset.type is DataType.URI_FOLDER


def test_latest_is_the_most_recently_created_version(storage: StorageClients) -> None:
    name = asset_name()
    register_asset(storage, name, where("a"), version="10")
    register_asset(storage, name, where("b"))  # next integer after 10
    labelled = register_asset(storage, name, where("c"), version="2024.01-final")
    assert [v.version for v in list_versions(storage, name)][-1] == "2024.01-final"
    assert get_asset(storage, name).version == labelled.version
    assert get_asset(storage, name, "11").location == where("b")


def test_an_existing_explicit_version_is_never_replaced(storage: StorageClients) -> None:
    name = asset_name()
    register_asset(storage, name, where("first"), version="1")
    with pytest.raises(RegistryError, match="already has a version '1'; versions are immutable"):
        register_asset(storage, name, where("second"), version="1")
    assert get_asset(storage, name, "1").location == where("first")


def test_concurrent_registrations_never_collide(storage: StorageClients) -> None:
    name = asset_name()
    versions: list[str] = []
    errors: list[BaseException] = []

    def register(i: int) -> None:
        try:
            lineage = AssetLineage(run_id=f"run-{i}", job="j", output="o")
            versions.append(register_asset(storage, name, where(f"run-{i}/o"), lineage=lineage).version)
        except BaseException as exc:  # asserted below
            errors.append(exc)

    threads = [threading.Thread(target=register, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(versions, key=int) == [str(i) for i in range(1, 9)]
    locations = {get_asset(storage, name, v).location.path for v in versions}  # type: ignore[union-attr]
    assert len(locations) == 8


def test_not_found_errors_say_what_exists(storage: StorageClients) -> None:
    name = asset_name()
    with pytest.raises(NotFoundError, match=f"there is no data asset named '{name}'"):
        get_asset(storage, name)
    register_asset(storage, name, where("x"))
    with pytest.raises(NotFoundError, match=r"has no version '7' \(versions: 1\)"):
        get_asset(storage, name, "7")
    with pytest.raises(RegistryError, match="has no version '7'"):
        resolve_asset(storage, AssetRef(name=name, version="7"))
    with pytest.raises(RegistryError, match="is not a valid data asset name"):
        register_asset(storage, "bad/name", where("x"))
    with pytest.raises(RegistryError, match="is not a valid version"):
        register_asset(storage, name, where("x"), version="1/2")


# --- outputs of finished jobs -------------------------------------------------------------------------


def scoring_job(run_id: str, name: str, version: str | None = None) -> JobPlan:
    return JobPlan(
        name="score",
        type=JobType.PARALLEL,
        outputs={
            "scores": OutputPlan(
                location=where(output_path(run_id, "score", "scores")), asset_name=name, asset_version=version
            ),
            "unnamed": OutputPlan(location=where(output_path(run_id, "score", "unnamed"))),
        },
    )


def finish(run_id: str, job: JobPlan, status: StepStatus, reused_from: str | None = None) -> StepResult:
    outputs = {name: output.location for name, output in job.outputs.items()}
    return StepResult(
        step=StepRef(run_id=run_id, job=job.name), status=status, outputs=outputs, reused_from=reused_from
    )


def test_register_outputs_records_lineage_and_is_idempotent(storage: StorageClients) -> None:
    name, run_id = asset_name(), f"run-{uuid.uuid4().hex[:8]}"
    job = scoring_job(run_id, name)
    plan = RunPlan(run_id=run_id, jobs=[job])
    definition = StepDefinition(
        step=StepRef(run_id=run_id, job="score"),
        inputs={
            "table": ResolvedInput(location=BlobData(container="data", path="uploads/t"), asset="iris:4"),
            "model": ResolvedInput(location=BlobData(container="data", path="models/m.pkl")),
            "rate": LiteralInput(type=LiteralType.NUMBER, value=0.1),
        },
        fingerprint="fp1-abc",
    )
    save_step_definition(storage, definition)
    result = finish(run_id, job, StepStatus.COMPLETED)

    assert register_outputs(storage, plan, job, result) == [f"{name}:1"]
    asset = get_asset(storage, name)
    assert asset.location == where(output_path(run_id, "score", "scores"))
    assert asset.lineage == AssetLineage(
        run_id=run_id,
        job="score",
        output="scores",
        fingerprint="fp1-abc",
        inputs={"table": "iris:4", "model": "azureml://datastores/workspaceblobstore/paths/models/m.pkl"},
    )
    assert register_outputs(storage, plan, job, result) == [f"{name}:1"]  # a retried finalize
    assert [v.version for v in list_versions(storage, name)] == ["1"]

    second_run = f"run-{uuid.uuid4().hex[:8]}"
    second_job = scoring_job(second_run, name)
    second = finish(second_run, second_job, StepStatus.COMPLETED)
    assert register_outputs(storage, RunPlan(run_id=second_run, jobs=[second_job]), second_job, second) == [
        f"{name}:2"
    ]


def test_failed_or_canceled_jobs_register_nothing(storage: StorageClients) -> None:
    name, run_id = asset_name(), "run-failed"
    job = scoring_job(run_id, name)
    plan = RunPlan(run_id=run_id, jobs=[job])
    for status in (StepStatus.FAILED, StepStatus.CANCELED, StepStatus.SKIPPED):
        assert register_outputs(storage, plan, job, finish(run_id, job, status)) == []
    assert list_versions(storage, name) == []


def test_a_reused_step_does_not_pile_up_identical_versions(storage: StorageClients) -> None:
    name = asset_name()
    first_run, second_run = f"run-{uuid.uuid4().hex[:8]}", f"run-{uuid.uuid4().hex[:8]}"
    job = scoring_job(first_run, name)
    register_outputs(
        storage, RunPlan(run_id=first_run, jobs=[job]), job, finish(first_run, job, StepStatus.COMPLETED)
    )
    reused = finish(second_run, job, StepStatus.REUSED, reused_from=first_run)  # outputs of the first run
    again_plan = RunPlan(run_id=second_run, jobs=[job])
    assert register_outputs(storage, again_plan, job, reused) == [f"{name}:1"]
    other = asset_name()
    renamed = scoring_job(first_run, other)
    assert register_outputs(storage, again_plan, renamed, reused) == [f"{other}:1"]
    assert get_asset(storage, other).lineage.reused_from == first_run  # type: ignore[union-attr]


def test_explicit_output_version(storage: StorageClients) -> None:
    name, run_id = asset_name(), f"run-{uuid.uuid4().hex[:8]}"
    job = scoring_job(run_id, name, version="v1")
    plan = RunPlan(run_id=run_id, jobs=[job])
    assert register_outputs(storage, plan, job, finish(run_id, job, StepStatus.COMPLETED)) == [f"{name}:v1"]
    other_run = f"run-{uuid.uuid4().hex[:8]}"
    clash = scoring_job(other_run, name, version="v1")
    with pytest.raises(RegistryError, match="already has a version 'v1'"):
        register_outputs(
            storage,
            RunPlan(run_id=other_run, jobs=[clash]),
            clash,
            finish(other_run, clash, StepStatus.COMPLETED),
        )


# --- listing and the CLI --------------------------------------------------------------------------------


def test_list_assets_and_the_cli(storage: StorageClients) -> None:
    name = asset_name()
    register_asset(storage, name, where("one"), description="first")
    register_asset(
        storage,
        name,
        where("two"),
        lineage=AssetLineage(run_id="run-x", job="train", output="model", inputs={"d": "iris:1"}),
    )
    summary = next(s for s in list_assets(storage) if s.name == name)
    assert (summary.latest_version, summary.version_count) == ("2", 2)
    assert not any(s.name.startswith(name) and s.name != name for s in list_assets(storage))

    runner = CliRunner()
    listed = runner.invoke(cli, ["assets", "list"])
    assert listed.exit_code == 0, listed.output
    assert any(line.split()[:3] == [name, "2", "2"] for line in listed.output.splitlines())

    shown = runner.invoke(cli, ["assets", "show", name])
    assert shown.exit_code == 0, shown.output
    assert "version:     2" in shown.output
    assert "run:         run-x" in shown.output
    assert "input d: iris:1" in shown.output
    assert "versions:    1, 2 (shown)" in shown.output

    first = runner.invoke(cli, ["assets", "show", f"azureml:{name}:1", "--json"])
    document = json.loads(first.output)
    assert document["version"] == "1"
    assert document["uri"] == "azureml://datastores/runs/paths/one"
    assert [v["version"] for v in document["versions"]] == ["1", "2"]

    latest = runner.invoke(cli, ["assets", "show", f"{name}@latest", "--json"])
    assert json.loads(latest.output)["version"] == "2"
    as_json = json.loads(runner.invoke(cli, ["assets", "list", "--json"]).output)
    assert any(item["name"] == name and item["latest_version"] == "2" for item in as_json)

    missing = runner.invoke(cli, ["assets", "show", f"{name}:9"])
    assert missing.exit_code != 0
    assert isinstance(missing.exception, NotFoundError)
    bad_label = runner.invoke(cli, ["assets", "show", f"{name}@stable"])
    assert isinstance(bad_label.exception, RegistryError)


def test_registry_blobs_live_under_name_and_version(storage: StorageClients) -> None:
    name = asset_name()
    register_asset(storage, name, where("x"))
    blobs = [b.name for b in storage.container(Container.REGISTRY).list_blobs(name_starts_with=f"{name}/")]
    assert blobs == [f"{name}/1.json"]
