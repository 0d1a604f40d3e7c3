"""POST /api/runs/{id}/resume and `fanout resume` through the API: a new run that names the run it
resumes; 409 for runs that did not fail or are being resumed; 404 for unknown runs."""

from __future__ import annotations

import uuid

import httpx
import pytest
from click.testing import CliRunner

from shared.cli.main import cli
from shared.host.server import ApiServer
from shared.orchestration import names, run_index
from shared.orchestration.contracts import RunStatus
from shared.orchestration.durabletask_adapter import DurableTaskClient
from shared.runs import load_plan
from shared.storage import StorageClients
from tests.integration.api.conftest import seed_run


def _run_id(kind: str) -> str:
    return f"resume-api-{kind}-{uuid.uuid4().hex[:8]}"


def _end(engine: DurableTaskClient, run_id: str) -> None:
    """The stand-in orchestration of a started run waits for "cancel": end it."""
    engine.raise_event(names.instance_id_for(run_id), names.CANCEL_EVENT, None)
    engine.wait(names.instance_id_for(run_id), timeout=30)


def test_resume_starts_a_new_run_that_names_the_failed_one(
    storage: StorageClients, api: httpx.Client, engine: DurableTaskClient
) -> None:
    old = _run_id("failed")
    seed_run(storage, old, "score", status=RunStatus.FAILED)

    answer = api.post(f"/runs/{old}/resume")
    assert answer.status_code == 202, answer.text
    body = answer.json()
    new = body["run_id"]
    assert new != old
    assert new.startswith("resume-")
    assert body["resumed_from"] == old
    assert body["status"] == "Queued"
    assert answer.headers["location"] == body["status_url"]
    assert body["status_url"].endswith(f"/api/runs/{new}")
    assert body["cancel_url"].endswith(f"/api/runs/{new}/cancel")

    assert engine.get_status(names.instance_id_for(new)) is not None  # its orchestration was scheduled
    plan = load_plan(storage, new)
    assert plan.resumed_from == old
    assert plan.job("score").outputs["scores"].location.path == f"{new}/score/outputs/scores"
    detail = api.get(f"/runs/{new}").json()
    assert detail["resumed_from"] == old
    assert detail["links"]["resume"].endswith(f"/api/runs/{new}/resume")
    assert api.get(f"/runs/{old}").json()["resumed_by"] == new
    listed = {run["run_id"]: run for run in api.get("/runs", params={"limit": "500"}).json()["runs"]}
    assert listed[new]["resumed_from"] == old

    # While that resume runs, another is refused; once it failed, the old run can be resumed again.
    again = api.post(f"/runs/{old}/resume")
    assert again.status_code == 409
    assert f"already being resumed by run '{new}'" in again.json()["message"]
    _end(engine, new)
    run_index.set_status(storage, new, RunStatus.FAILED, "still broken")
    third = api.post(f"/runs/{old}/resume")
    assert third.status_code == 202
    _end(engine, third.json()["run_id"])


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (RunStatus.COMPLETED, "completed; there is nothing to resume"),
        (RunStatus.RUNNING, "is Running; only a Failed or Canceled run can be resumed"),
        (RunStatus.QUEUED, "is Queued; only a Failed or Canceled run can be resumed"),
        (RunStatus.CANCEL_REQUESTED, "is CancelRequested; only a Failed or Canceled run can be resumed"),
    ],
)
def test_only_failed_or_canceled_runs_can_be_resumed(
    storage: StorageClients, api: httpx.Client, status: RunStatus, message: str
) -> None:
    run_id = _run_id(status.value.lower())
    seed_run(storage, run_id, "score", status=status)
    answer = api.post(f"/runs/{run_id}/resume")
    assert answer.status_code == 409
    assert answer.json()["error"] == "ConflictError"
    assert message in answer.json()["message"]
    assert run_index.get_run(storage, run_id).resumed_by == ""  # nothing changed


def test_unknown_and_malformed_runs(api: httpx.Client) -> None:
    assert api.post("/runs/nobody-here/resume").status_code == 404
    assert api.post("/runs/-bad-/resume").status_code == 400
    assert api.get("/runs/nobody-here/resume").status_code == 405


def test_fanout_resume_through_the_api(
    storage: StorageClients, server: ApiServer, engine: DurableTaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shared.settings import get_settings

    monkeypatch.setenv("FANOUT_API_URL", server.url)
    monkeypatch.setenv("FANOUT_API_KEY", server.key)
    monkeypatch.delenv("FANOUT_STORAGE_CONNECTION_STRING")
    get_settings.cache_clear()
    canceled, completed = _run_id("canceled"), _run_id("completed")
    seed_run(storage, canceled, "score", status=RunStatus.CANCELED)
    seed_run(storage, completed, "score", status=RunStatus.COMPLETED)
    runner = CliRunner()

    started = runner.invoke(cli, ["resume", canceled], standalone_mode=False)
    assert started.exception is None, started.output
    new = run_index.get_run(storage, canceled).resumed_by
    assert started.output == f"run id: {new} (resumes run {canceled})\n"
    _end(engine, new)

    refused = runner.invoke(cli, ["resume", completed], standalone_mode=False)
    assert refused.exception is not None
    assert "nothing to resume" in str(refused.exception)
