"""The HTTP API on the local server over Azurite: keys, runs, progress, cancel, logs, errors."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
import pytest

from shared.host.server import ApiServer
from shared.orchestration import names, run_index
from shared.orchestration.contracts import (
    RunStatus,
    StepDefinition,
    StepProgress,
    StepRef,
    StepResult,
    StepStatus,
)
from shared.orchestration.durabletask_adapter import DurableTaskClient
from shared.plan import BlobData
from shared.runs import save_step_definition, save_step_result
from shared.storage import Container, StorageClients, logs_path
from tests.helpers import newer_than_every_indexed_run
from tests.integration.api.conftest import seed_run
from tests.integration.api.durable_stand_in import start_waiting


def _run_id(prefix: str = "run") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


# --- the key ---------------------------------------------------------------------------------------


def test_every_route_needs_the_function_key(server: ApiServer) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as bare:
        for method, path in [("GET", "/api/runs"), ("GET", "/api/openapi.json"), ("POST", "/api/pipelines")]:
            answer = bare.request(method, path)
            assert answer.status_code == 401, path
            assert "x-functions-key" in answer.json()["message"]
        assert bare.get("/api/runs", headers={"x-functions-key": "wrong"}).status_code == 401
        assert bare.get("/api/runs", params={"code": server.key}).status_code == 200
        assert bare.get("/api/runs", headers={"x-functions-key": server.key}).status_code == 200
        assert bare.get("/elsewhere").status_code == 404


def test_unknown_routes_and_methods(api: httpx.Client) -> None:
    answer = api.get("/nothing")
    assert answer.status_code == 404
    assert answer.json()["error"] == "NotFoundError"
    answer = api.delete("/runs/x")
    assert answer.status_code == 405
    assert "use GET" in answer.json()["message"]


def test_openapi_document_is_served(api: httpx.Client) -> None:
    document = api.get("/openapi.json").json()
    assert document["openapi"] == "3.1.0"
    assert "/api/runs/{run_id}" in document["paths"]


# --- listing ---------------------------------------------------------------------------------------


def test_runs_are_listed_newest_first_in_pages(storage: StorageClients, api: httpx.Client) -> None:
    base = newer_than_every_indexed_run(storage)
    mine = [_run_id("page") for _ in range(5)]
    for offset, run_id in enumerate(mine):
        seed_run(storage, run_id, "score", created=base + timedelta(minutes=offset))
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        params = {"limit": "2", **({"continuation_token": token} if token else {})}
        page = api.get("/runs", params=params).json()
        pages += 1
        assert len(page["runs"]) <= 2
        seen += [run["run_id"] for run in page["runs"]]
        token = page["continuation_token"]
        if token is None:
            break
    assert len(seen) == len(set(seen)), "a run appeared on two pages"
    assert [run_id for run_id in seen if run_id in mine] == list(reversed(mine))
    assert seen[:5] == list(reversed(mine))  # the newest runs come first
    assert pages >= 3


def test_runs_filter_by_status(storage: StorageClients, api: httpx.Client) -> None:
    failed, running = _run_id("failed"), _run_id("running")
    seed_run(storage, failed, "a", status=RunStatus.FAILED)
    seed_run(storage, running, "a", status=RunStatus.RUNNING)
    runs = api.get("/runs", params={"status": "failed", "limit": "500"}).json()["runs"]
    assert {run["status"] for run in runs} == {"Failed"}
    assert failed in {run["run_id"] for run in runs}
    assert running not in {run["run_id"] for run in runs}
    summary = next(run for run in runs if run["run_id"] == failed)
    assert summary["url"].endswith(f"/api/runs/{failed}")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"continuation_token": "garbage!"}, "continuation_token"),
        ({"status": "Sleeping"}, "unknown run status 'Sleeping'"),
        ({"limit": "0"}, "query parameter 'limit'"),
        ({"sort": "asc"}, "unknown query parameter: sort"),
    ],
)
def test_bad_listing_parameters_are_400(api: httpx.Client, params: dict[str, str], message: str) -> None:
    answer = api.get("/runs", params=params)
    assert answer.status_code == 400
    assert message in answer.json()["message"]


# --- one run ---------------------------------------------------------------------------------------


def test_run_detail_shows_each_jobs_state(storage: StorageClients, api: httpx.Client) -> None:
    run_id = _run_id()
    seed_run(storage, run_id, "prep", "score", "report", display_name="Nightly", tags={"team": "ml"})
    done = StepRef(run_id=run_id, job="prep")
    output = BlobData(container="runs", path=f"{run_id}/prep/outputs/scores")
    progress = StepProgress(
        step=done,
        total_mini_batches=4,
        dispatched=True,
        succeeded_mini_batches=3,
        failed_mini_batches=1,
        items_succeeded=30,
        items_failed=2,
    )
    save_step_result(
        storage,
        StepResult(
            step=done,
            status=StepStatus.COMPLETED,
            outputs={"scores": output},
            progress=progress,
            reason="3 of 4 mini-batches succeeded",
        ),
    )
    save_step_definition(storage, StepDefinition(step=StepRef(run_id=run_id, job="score")))

    detail = api.get(f"/runs/{run_id}").json()
    assert detail["run_id"] == run_id
    assert detail["status"] == "Running"
    assert detail["display_name"] == "Nightly"
    assert detail["tags"] == {"team": "ml"}
    jobs = {job["name"]: job for job in detail["jobs"]}
    assert [job["name"] for job in detail["jobs"]] == ["prep", "score", "report"]
    assert jobs["prep"]["status"] == "Completed"
    assert jobs["prep"]["mini_batches_total"] == 4
    assert (jobs["prep"]["mini_batches_succeeded"], jobs["prep"]["mini_batches_failed"]) == (3, 1)
    assert (jobs["prep"]["items_succeeded"], jobs["prep"]["items_failed"]) == (30, 2)
    assert jobs["prep"]["reason"] == "3 of 4 mini-batches succeeded"
    assert jobs["prep"]["outputs"]["scores"]["path"] == output.path
    assert jobs["prep"]["outputs"]["scores"]["href"].endswith(f"/runs/{output.path}")
    assert jobs["prep"]["logs"]["href"].endswith(f"/api/runs/{run_id}/logs/prep/")
    assert jobs["score"]["status"] == "Running"
    assert jobs["report"]["status"] == "NotStarted"
    assert detail["links"]["cancel"].endswith(f"/api/runs/{run_id}/cancel")


@pytest.mark.parametrize(
    "path", ["/runs/no-such-run", "/runs/no-such-run/logs/", "/runs/no-such-run/logs/a/b.txt"]
)
def test_unknown_run_is_404(api: httpx.Client, path: str) -> None:
    answer = api.get(path)
    assert answer.status_code == 404
    assert "no-such-run" in answer.json()["message"]


def test_malformed_run_id_is_400(api: httpx.Client) -> None:
    answer = api.get("/runs/bad%20id%21")
    assert answer.status_code == 400
    assert "path parameter 'run_id'" in answer.json()["message"]


# --- cancel ----------------------------------------------------------------------------------------


def test_cancel_raises_the_event_and_marks_the_run(
    storage: StorageClients, api: httpx.Client, engine: DurableTaskClient
) -> None:
    run_id = _run_id("cancel")
    seed_run(storage, run_id, "score")
    start_waiting(engine, names.instance_id_for(run_id))

    answer = api.post(f"/runs/{run_id}/cancel")
    assert answer.status_code == 202
    assert answer.json()["status"] == "CancelRequested"
    assert answer.headers["location"].endswith(f"/api/runs/{run_id}")
    final = engine.wait(run_id, timeout=30)
    assert final is not None
    assert final.output == "Canceled"
    assert run_index.get_run(storage, run_id).status is RunStatus.CANCEL_REQUESTED


def test_cancel_of_an_ended_or_absent_run(storage: StorageClients, api: httpx.Client) -> None:
    ended = _run_id("ended")
    seed_run(storage, ended, "score", status=RunStatus.COMPLETED)
    answer = api.post(f"/runs/{ended}/cancel")
    assert answer.status_code == 409
    assert "already ended (Completed)" in answer.json()["message"]
    orphan = _run_id("orphan")  # indexed, but its orchestration never started
    seed_run(storage, orphan, "score", status=RunStatus.QUEUED)
    answer = api.post(f"/runs/{orphan}/cancel")
    assert answer.status_code == 409
    assert "not running" in answer.json()["message"]
    assert api.post("/runs/nobody/cancel").status_code == 404


# --- logs ------------------------------------------------------------------------------------------


def _write_log(storage: StorageClients, run_id: str, job: str, path: str, text: str) -> None:
    storage.container(Container.RUNS).upload_blob(logs_path(run_id, job, path), text.encode(), overwrite=True)


def test_logs_list_and_read_from_an_offset(storage: StorageClients, api: httpx.Client) -> None:
    run_id = _run_id("logs")
    seed_run(storage, run_id, "score", "report")
    _write_log(storage, run_id, "score", "job_result.txt", "Completed\n")
    _write_log(storage, run_id, "score", "user/stdout/0/process000.stdout.txt", "line one\nline two\n")

    root = api.get(f"/runs/{run_id}/logs/").json()
    assert root["jobs"] == ["score", "report"]
    listing = api.get(f"/runs/{run_id}/logs/score/").json()
    files = {item["path"]: item for item in listing["files"]}
    assert set(files) == {"job_result.txt", "user/stdout/0/process000.stdout.txt"}
    assert files["job_result.txt"]["size"] == len("Completed\n")
    assert files["job_result.txt"]["url"].endswith(f"/api/runs/{run_id}/logs/score/job_result.txt")

    answer = api.get(f"/runs/{run_id}/logs/score/user/stdout/0/process000.stdout.txt")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    assert answer.text == "line one\nline two\n"
    assert answer.headers["x-fanout-next-offset"] == str(len(answer.content))
    tail = api.get(f"/runs/{run_id}/logs/score/user/stdout/0/process000.stdout.txt", params={"offset": "9"})
    assert tail.text == "line two\n"
    past = api.get(f"/runs/{run_id}/logs/score/job_result.txt", params={"offset": "1000"})
    assert (past.status_code, past.content, past.headers["x-fanout-log-size"]) == (200, b"", "10")
    assert api.get(f"/runs/{run_id}/logs/report/").json()["files"] == []


def test_log_errors(storage: StorageClients, api: httpx.Client) -> None:
    run_id = _run_id("logs")
    seed_run(storage, run_id, "score")
    other = _run_id("secret")
    seed_run(storage, other, "score")
    _write_log(storage, other, "score", "job_result.txt", "TOP-SECRET-CONTENT")
    missing = api.get(f"/runs/{run_id}/logs/score/nothing.txt")
    assert missing.status_code == 404
    assert "no log file 'nothing.txt'" in missing.json()["message"]
    unknown_job = api.get(f"/runs/{run_id}/logs/nojob/x.txt")
    assert unknown_job.status_code == 404
    assert "has no job 'nojob'" in unknown_job.json()["message"]
    for path in [
        f"score/..%2F..%2F{other}%2Fscore%2Flogs%2Fjob_result.txt",
        "score/%2E%2E/x",
        "score%5C..%5Cx",
    ]:
        answer = api.get(f"/runs/{run_id}/logs/{path}")
        assert answer.status_code == 400, path
        assert "is not allowed" in answer.json()["message"]
        assert "TOP-SECRET-CONTENT" not in answer.text
