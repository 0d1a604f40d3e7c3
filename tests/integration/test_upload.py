"""Content-addressed uploads of a submission's code and data, the spec blob, and folder sync (Azurite)."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest

from shared.errors import SpecError, StorageError
from shared.plan import (
    BlobData,
    DataInput,
    DataType,
    JobPlan,
    JobType,
    LiteralInput,
    LiteralType,
    LocalData,
    RunPlan,
)
from shared.snapshot import HashCache, snapshot_exists, snapshot_id_of_folder
from shared.spec import PathUse, compile_text
from shared.storage import Container, StorageClients
from shared.submission import Submission, prepare_submission, read_spec_overrides, submit_spec
from shared.upload import SubmissionUploader, upload_folder


def aged(path: Path) -> Path:
    """Backdate a file so the hash cache may keep it (files written this instant are not cached)."""
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns - 10_000_000_000))
    return path


def data_blob(storage: StorageClients, uri: str) -> bytes:
    path = uri.removeprefix("azureml://datastores/workspaceblobstore/paths/")
    return storage.container(Container.DATA).download_blob(path).readall()


def test_a_data_file_is_uploaded_once_and_a_one_byte_change_is_seen(
    storage: StorageClients, tmp_path: Path
) -> None:
    source = tmp_path / "iris.csv"
    source.write_text(f"a,b\n1,{uuid.uuid4().hex}\n")
    aged(source)
    with HashCache(tmp_path / "hashes.sqlite") as cache:
        first = SubmissionUploader(storage, cache=cache).upload_data(source)
        assert first.uri.startswith("azureml://datastores/workspaceblobstore/paths/uploads/sha256-")
        assert first.uri.endswith("/iris.csv")
        assert (first.uploaded_files, first.uploaded_bytes) == (1, source.stat().st_size)
        assert data_blob(storage, first.uri) == source.read_bytes()

        again = SubmissionUploader(storage, cache=cache).upload_data(source)
        assert again.uri == first.uri
        assert (again.uploaded_files, again.uploaded_bytes) == (0, 0)
        assert cache.hits == 1  # not re-hashed: (path, size, mtime) unchanged

    source.write_text(source.read_text()[:-2] + "X\n")  # one byte changed: same path, same size
    with HashCache(tmp_path / "hashes.sqlite") as cache:
        changed = SubmissionUploader(storage, cache=cache).upload_data(source)
    assert changed.uri != first.uri
    assert changed.uploaded_files == 1
    assert data_blob(storage, changed.uri) == source.read_bytes()


def make_folder(root: Path) -> Path:
    marker = uuid.uuid4().hex
    for rel, text in {
        "MLTable": "paths:\n  - pattern: ./*.csv\n",
        "a.csv": marker,
        "sub/b.csv": "2",
        ".hidden": "h",
    }.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def test_a_data_folder_keeps_its_layout_under_its_tree_hash(storage: StorageClients, tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "table")
    uploader = SubmissionUploader(storage, cache=HashCache(None))
    record = uploader.upload_data(folder)
    prefix = record.uri.removeprefix("azureml://datastores/workspaceblobstore/paths/")
    assert prefix == f"uploads/{record.content_id}"
    names = sorted(
        b.name for b in storage.container(Container.DATA).list_blobs(name_starts_with=prefix + "/")
    )
    assert names == [f"{prefix}/{n}" for n in (".hidden", "MLTable", "a.csv", "sub/b.csv")]
    assert record.uploaded_files == 4
    assert uploader.upload_data(folder) is record  # the same path in one submission: once

    again = SubmissionUploader(storage, cache=HashCache(None)).upload_data(folder)
    assert again.uri == record.uri
    assert again.uploaded_files == 0

    (folder / "sub" / "b.csv").write_text("3")
    changed = SubmissionUploader(storage, cache=HashCache(None)).upload_data(folder)
    assert changed.content_id != record.content_id
    assert changed.uploaded_files == 4  # a new prefix holds the whole new version


def test_an_interrupted_folder_upload_resumes_with_what_is_missing(
    storage: StorageClients, tmp_path: Path
) -> None:
    folder = make_folder(tmp_path / "table")
    first = SubmissionUploader(storage, cache=HashCache(None)).upload_data(folder)
    container = storage.container(Container.DATA)
    container.delete_blob(f".fanout/uploads/{first.content_id}.json")  # as if it died before the marker
    container.delete_blob(f"uploads/{first.content_id}/a.csv")  # ... and before this file
    resumed = SubmissionUploader(storage, cache=HashCache(None)).upload_data(folder)
    assert resumed.uploaded_files == 1
    assert container.get_blob_client(f".fanout/uploads/{first.content_id}.json").exists()


def test_rewrite_snapshots_code_and_uploads_data(storage: StorageClients, tmp_path: Path) -> None:
    code = tmp_path / "src"
    code.mkdir()
    (code / "score.py").write_text(f"# {uuid.uuid4().hex}\n")
    data = tmp_path / "in.txt"
    data.write_text(uuid.uuid4().hex)
    uploader = SubmissionUploader(storage, cache=HashCache(None))
    code_uri = uploader.rewrite(PathUse(kind="code", path=code, type=None, where="jobs.j.code"))
    assert code_uri == f"azureml://datastores/snapshots/paths/{snapshot_id_of_folder(code)}"
    assert uploader.rewrite(PathUse(kind="code", path=code, type=None, where="jobs.j.code")) == code_uri
    assert uploader.rewrite(
        PathUse(kind="data", path=data, type=DataType.URI_FILE, where="inputs.x.path")
    ).endswith("/in.txt")
    assert [r.kind for r in uploader.records] == ["code", "data"]


def test_overrides_naming_local_data_are_uploaded_and_rewritten(
    storage: StorageClients, tmp_path: Path
) -> None:
    data = tmp_path / "other.csv"
    data.write_text(uuid.uuid4().hex)
    plan = RunPlan(
        run_id="r",
        inputs={
            "table": DataInput(type=DataType.URI_FILE, source=LocalData(path=str(data))),
            "rate": LiteralInput(type=LiteralType.NUMBER, value=0.5),
        },
        jobs=[JobPlan(name="j", type=JobType.COMMAND)],
    )
    uploader = SubmissionUploader(storage, cache=HashCache(None))
    rewritten = uploader.rewrite_overrides(plan, {"inputs.table": "./other.csv", "rate": "0.5"})
    assert rewritten["rate"] == "0.5"
    assert rewritten["inputs.table"].endswith("/other.csv")
    assert data_blob(storage, rewritten["inputs.table"]) == data.read_bytes()


def test_submit_spec_uploads_the_spec_with_its_overrides(storage: StorageClients) -> None:
    text = f"# {uuid.uuid4().hex}\ntype: pipeline\njobs: {{}}\n"
    submission = Submission(spec_text=text, source="/w/my pipeline.yml", overrides={"inputs.x": "1"})
    name = submit_spec(storage, submission)
    assert name.startswith("submitted/")
    assert name.endswith(".yml")
    assert "-my-pipeline-" in name
    specs = storage.container(Container.SPECS)
    assert specs.download_blob(name).readall().decode() == text
    assert read_spec_overrides(storage, name) == {"inputs.x": "1"}

    plain = submit_spec(storage, Submission(spec_text=text + "#\n", source="p.yml"))
    assert read_spec_overrides(storage, plain) == {}
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    traced = submit_spec(
        storage, Submission(spec_text=text + "##\n", source="p.yml"), metadata={"traceparent": traceparent}
    )
    assert specs.get_blob_client(traced).get_blob_properties().metadata["traceparent"] == traceparent
    assert read_spec_overrides(storage, "submitted/none.yml") == {}
    with pytest.raises(StorageError, match="more than the 7168 that fit in blob metadata"):
        submit_spec(storage, Submission(spec_text=text, source="p.yml", overrides={"x": "y" * 8000}))


def test_upload_folder_mirrors_the_folder_layout(storage: StorageClients, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    (logs / "sub").mkdir(parents=True)
    (logs / "a.txt").write_text("1")
    (logs / "sub" / "b.txt").write_text("2")
    prefix = f"run-{uuid.uuid4().hex}/job/logs/user"
    assert upload_folder(storage, logs, Container.RUNS, prefix) == 2
    (logs / "a.txt").write_text("1 and more")
    (logs / "c.txt").write_text("3")
    assert upload_folder(storage, logs, Container.RUNS, prefix) == 3
    runs = storage.container(Container.RUNS)
    assert runs.download_blob(f"{prefix}/a.txt").readall() == b"1 and more"
    assert sorted(b.name for b in runs.list_blobs(name_starts_with=prefix)) == [
        f"{prefix}/a.txt",
        f"{prefix}/c.txt",
        f"{prefix}/sub/b.txt",
    ]
    assert upload_folder(storage, tmp_path / "missing", Container.RUNS, prefix) == 0


EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "iris-batch-prediction"


def test_prepare_submission_uploads_once_and_rewrites_every_local_path(
    storage: StorageClients, tmp_path: Path
) -> None:
    example = Path(shutil.copytree(EXAMPLE, tmp_path / "iris"))
    with (example / "score" / "iris_prediction.py").open("a") as handle:
        handle.write(f"# {uuid.uuid4().hex}\n")
    other = tmp_path / "other-train.csv"
    other.write_bytes((example / "data" / "iris-train.csv").read_bytes() + b"\n")
    overrides = {"n_estimators": "60", "inputs.training_data": str(other)}
    cache = HashCache(tmp_path / "hashes.sqlite")

    first = prepare_submission(storage, example / "pipeline.yml", overrides, cache=cache)
    assert str(tmp_path) not in first.spec_text
    assert first.spec_text.count("azureml://datastores/snapshots/paths/sha256-") == 2  # train + score
    assert first.overrides["n_estimators"] == "60"
    assert first.overrides["inputs.training_data"].endswith("/other-train.csv")
    kinds = sorted((r.kind, Path(r.local_path).name) for r in first.uploads)
    assert kinds == [
        ("code", "score"),
        ("code", "train"),
        ("data", "iris-mltable"),
        ("data", "iris-train.csv"),
        ("data", "other-train.csv"),
    ]
    plan = compile_text(
        first.spec_text, source="submitted.yml", base_dir=None, run_id="r1", overrides=first.overrides
    )
    assert all(job.code is not None and job.code.snapshot for job in plan.jobs)
    training = plan.inputs["training_data"]
    assert isinstance(training, DataInput)
    assert training.source == BlobData(
        container="data", path=first.overrides["inputs.training_data"].split("/paths/", 1)[1]
    )

    second = prepare_submission(storage, example / "pipeline.yml", overrides, cache=cache)
    assert second.spec_text == first.spec_text
    assert [r.uploaded_files for r in second.uploads] == [0] * len(second.uploads)

    blob = submit_spec(storage, second)
    assert storage.container(Container.SPECS).download_blob(blob).readall().decode() == second.spec_text
    assert read_spec_overrides(storage, blob) == second.overrides

    with (example / "data" / "iris-train.csv").open("ab") as handle:
        handle.write(b"\n")
    third = prepare_submission(storage, example / "pipeline.yml", overrides, cache=cache)
    sent = {Path(r.local_path).name: r.uploaded_files for r in third.uploads}
    assert sent == {"train": 0, "iris-train.csv": 1, "iris-mltable": 0, "score": 0, "other-train.csv": 0}


def test_an_invalid_spec_uploads_nothing(storage: StorageClients, tmp_path: Path) -> None:
    code = tmp_path / "src"
    code.mkdir()
    (code / "main.py").write_text(f"# {uuid.uuid4().hex}\n")
    spec = tmp_path / "bad.yml"
    spec.write_text(
        "type: pipeline\njobs:\n  j:\n    type: command\n    code: ./src\n    command: python main.py\n"
        "    inputs:\n      table:\n        type: uri_file\n        path: ./nope.csv\n"
    )
    with pytest.raises(SpecError, match=r"nope\.csv"):
        prepare_submission(storage, spec, cache=HashCache(None))
    assert not snapshot_exists(storage, snapshot_id_of_folder(code))
