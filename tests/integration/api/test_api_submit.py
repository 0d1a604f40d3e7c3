"""POST /api/pipelines on the local server: YAML, JSON, multipart with a code zip; errors; no user code."""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path

import httpx

from shared.orchestration import run_index
from shared.orchestration.contracts import RunStatus
from shared.orchestration.durabletask_adapter import DurableTaskClient
from shared.plan import BlobData, DataInput, LiteralInput
from shared.runs import load_plan
from shared.snapshot import load_manifest
from shared.storage import Container, StorageClients
from tests.integration.api.specs import BROKEN, SELF_CONTAINED, WITH_FOLDER, side_effect_script, zip_folder


def _accepted(answer: httpx.Response) -> str:
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert answer.headers["location"] == body["status_url"]
    assert body["status_url"].endswith(f"/api/runs/{body['run_id']}")
    return str(body["run_id"])


def test_yaml_body_starts_a_run(
    storage: StorageClients, api: httpx.Client, engine: DurableTaskClient
) -> None:
    run_id = _accepted(
        api.post("/pipelines", content=SELF_CONTAINED, headers={"content-type": "application/yaml"})
    )
    assert run_id.startswith("request-")
    plan = load_plan(storage, run_id)
    assert plan.display_name == "api-test"
    assert run_index.get_run(storage, run_id).status is RunStatus.QUEUED
    status = engine.get_status(run_id)
    assert status is not None
    assert status.name == "run_pipeline"
    assert api.get(f"/runs/{run_id}").json()["jobs"][0]["name"] == "count"


def test_json_body_with_overrides(storage: StorageClients, api: httpx.Client) -> None:
    body = {"spec": SELF_CONTAINED, "overrides": {"inputs.threshold": "0.9"}, "source": "nightly.yml"}
    run_id = _accepted(api.post("/pipelines", json=body))
    assert run_id.startswith("nightly-")
    threshold = load_plan(storage, run_id).inputs["threshold"]
    assert isinstance(threshold, LiteralInput)
    assert threshold.value == 0.9


def test_invalid_spec_is_400_with_located_issues(storage: StorageClients, api: httpx.Client) -> None:
    answer = api.post("/pipelines", content=BROKEN, headers={"content-type": "application/yaml"})
    assert answer.status_code == 400
    body = answer.json()
    assert body["error"] == "SpecError"
    (issue,) = body["issues"]
    assert (issue["file"], issue["line"], issue["column"], issue["path"]) == ("request", 4, 11, "jobs.a.type")
    assert "paralel" in issue["message"]


def test_relative_paths_without_a_zip_are_400(api: httpx.Client) -> None:
    answer = api.post("/pipelines", content=WITH_FOLDER, headers={"content-type": "text/yaml"})
    assert answer.status_code == 400
    assert "must be self-contained" in answer.text


def test_malformed_bodies(api: httpx.Client) -> None:
    answer = api.post("/pipelines", content=b"{not json", headers={"content-type": "application/json"})
    assert (answer.status_code, answer.json()["error"]) == (400, "ApiError")
    assert "malformed at line 1" in answer.json()["message"]
    answer = api.post("/pipelines", content=b"x", headers={"content-type": "image/png"})
    assert answer.status_code == 415
    answer = api.post(
        "/pipelines", content=b"--x\r\nbroken", headers={"content-type": "multipart/form-data; boundary=x"}
    )
    assert answer.status_code == 400


def test_multipart_with_the_code_folder_as_a_zip(
    storage: StorageClients, api: httpx.Client, tmp_path: Path
) -> None:
    marker = tmp_path / "user-code-ran.txt"
    module = f"fanout_side_effect_{uuid.uuid4().hex[:8]}"
    archive = zip_folder(
        {
            "src/side_effect.py": side_effect_script(marker),
            f"src/{module}.py": side_effect_script(marker),
            "src/__init__.py": side_effect_script(marker),
            "data/numbers/1.txt": "1\n",
            "data/numbers/2.txt": "2\n",
        }
    )
    answer = api.post(
        "/pipelines",
        files={
            "spec": ("zipped.yml", WITH_FOLDER.encode(), "application/yaml"),
            "snapshot": ("project.zip", archive),
        },
        data={"set": "inputs.numbers=./data/numbers"},
    )
    run_id = _accepted(answer)
    assert answer.json()["snapshot"].startswith("sha256-")
    plan = load_plan(storage, run_id)
    (job,) = plan.jobs
    assert job.code is not None
    assert job.code.local_path is None
    manifest = load_manifest(storage, str(job.code.snapshot))
    assert {file.path for file in manifest.files} == {"side_effect.py", f"{module}.py", "__init__.py"}
    numbers = plan.inputs["numbers"]
    assert isinstance(numbers, DataInput)
    assert isinstance(numbers.source, BlobData)
    assert numbers.source.container == Container.DATA.value
    uploaded = {
        b.name.rsplit("/", 1)[-1] for b in storage.container(Container.DATA).list_blobs(numbers.source.path)
    }
    assert {"1.txt", "2.txt"} <= uploaded
    # Validation is static: the entry script was neither imported nor run by the server.
    assert not marker.exists()
    assert module not in sys.modules
    assert not any(name.startswith("fanout_side_effect_") for name in sys.modules)


def test_unsafe_zip_is_400_and_nothing_is_started(storage: StorageClients, api: httpx.Client) -> None:
    before = {entry.run_id for entry in run_index.list_runs(storage, limit=100_000)}
    archive = zip_folder({"../escape.py": "x = 1\n", "src/a.py": "y = 2\n"})
    answer = api.post(
        "/pipelines", files={"spec": ("s.yml", WITH_FOLDER.encode()), "snapshot": ("bad.zip", archive)}
    )
    assert answer.status_code == 400
    body = answer.json()
    assert body["error"] == "SnapshotError"
    assert "escape.py" in json.dumps(body)
    after = {entry.run_id for entry in run_index.list_runs(storage, limit=100_000)}
    assert after == before
    not_a_zip = api.post(
        "/pipelines", files={"spec": ("s.yml", WITH_FOLDER.encode()), "snapshot": ("x.zip", b"nope")}
    )
    assert (not_a_zip.status_code, not_a_zip.json()["error"]) == (400, "SnapshotError")


def test_spec_errors_with_a_zip_are_located_in_the_spec_not_the_server(api: httpx.Client) -> None:
    archive = zip_folder({"src/a.py": "y = 2\n"})
    answer = api.post(
        "/pipelines", files={"spec": ("broken.yml", BROKEN.encode()), "snapshot": ("p.zip", archive)}
    )
    assert answer.status_code == 400
    (issue,) = answer.json()["issues"]
    assert (issue["file"], issue["line"]) == ("broken.yml", 4)
    assert "fanout-submit-" not in answer.text


def test_a_zipped_spec_cannot_make_the_server_upload_its_own_files(
    storage: StorageClients, api: httpx.Client, tmp_path: Path
) -> None:
    secret = tmp_path / "server-secret"
    secret.mkdir()
    (secret / "key.txt").write_text("do not upload\n")
    archive = zip_folder({"src/a.py": "y = 2\n", "data/numbers/1.txt": "1\n"})
    before = {entry.run_id for entry in run_index.list_runs(storage, limit=100_000)}
    attempts = [
        (WITH_FOLDER.replace("./data/numbers", str(secret)), {}),
        (WITH_FOLDER.replace("./data/numbers", "../../../../" + str(secret).lstrip("/")), {}),
        (WITH_FOLDER, {"set": f"inputs.numbers={secret}"}),
    ]
    for spec, form in attempts:
        answer = api.post(
            "/pipelines",
            files={"spec": ("escape.yml", spec.encode()), "snapshot": ("p.zip", archive)},
            data=form,
        )
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"] == "SpecError"
    uploaded = [b.name for b in storage.container(Container.DATA).list_blobs() if b.name.endswith("key.txt")]
    assert uploaded == []
    assert {entry.run_id for entry in run_index.list_runs(storage, limit=100_000)} == before
