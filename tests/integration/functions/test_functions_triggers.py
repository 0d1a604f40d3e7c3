"""Each trigger of the Function App, called with real azure.functions objects against Azurite."""

from __future__ import annotations

import asyncio
import io
import json
import uuid
import zipfile

import azure.functions as func
import pytest
from azure.durable_functions import DurableOrchestrationClient

from functions.client import FunctionsDurableClient, run_with_client
from shared.errors import NotFoundError, OrchestrationError
from shared.ingest import ingest_spec_blob
from shared.orchestration import names, run_index
from shared.orchestration.contracts import RunStatus
from shared.orchestration.durabletask_adapter import DurableTaskClient
from shared.orchestration.events import NoticeKind, OrchestrationNotice
from shared.plan import BlobData
from shared.registry import register_asset
from shared.snapshot import resolve_snapshot_ref
from shared.storage import Container, StorageClients, logs_path
from tests.helpers import wait_until
from tests.integration.api.conftest import seed_run
from tests.integration.api.durable_stand_in import DurableFunctionsHost, start_waiting
from tests.integration.functions.conftest import Invoker

BASE = "https://fanout-test.azurewebsites.net/api/"


def _run_id(prefix: str = "fn") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _request(
    method: str, route: str, *, route_params: dict[str, str] | None = None, **kwargs: object
) -> func.HttpRequest:
    return func.HttpRequest(method, BASE + route, route_params=route_params or {}, body=b"", **kwargs)  # type: ignore[arg-type]


# --- HTTP ------------------------------------------------------------------------------------------


def test_get_run_and_logs_through_the_functions(invoke: Invoker, app_storage: StorageClients) -> None:
    run_id = _run_id()
    seed_run(app_storage, run_id, "score")
    app_storage.container(Container.RUNS).upload_blob(
        logs_path(run_id, "score", "job_result.txt"), b"Completed\n"
    )

    answer = invoke("get_run", req=_request("GET", f"runs/{run_id}", route_params={"run_id": run_id}))
    assert isinstance(answer, func.HttpResponse)
    assert answer.status_code == 200
    assert answer.mimetype == "application/json"
    body = json.loads(answer.get_body())
    assert body["run_id"] == run_id
    assert body["links"]["self"] == f"{BASE}runs/{run_id}"

    answer = invoke(
        "read_logs",
        req=_request(
            "GET",
            f"runs/{run_id}/logs/score/job_result.txt",
            route_params={"run_id": run_id, "path": "score/job_result.txt"},
        ),
    )
    assert (answer.status_code, answer.get_body()) == (200, b"Completed\n")
    answer = invoke(
        "read_logs",
        req=_request("GET", f"runs/{run_id}/logs/../x", route_params={"run_id": run_id, "path": "../x"}),
    )
    assert answer.status_code == 400

    answer = invoke("list_runs", req=_request("GET", "runs", params={"status": "Running", "limit": "500"}))
    assert run_id in {run["run_id"] for run in json.loads(answer.get_body())["runs"]}
    answer = invoke("get_run", req=_request("GET", "runs/missing", route_params={"run_id": "missing"}))
    assert answer.status_code == 404
    answer = invoke("openapi", req=_request("GET", "openapi.json"))
    assert json.loads(answer.get_body())["openapi"] == "3.1.0"
    # An optional route value the host passes as empty is treated as absent: the latest version.
    asset = f"fn-{run_id}"
    register_asset(app_storage, asset, BlobData(container="data", path=f"{asset}/v1"))
    answer = invoke(
        "get_asset", req=_request("GET", f"assets/{asset}", route_params={"name": asset, "version": ""})
    )
    assert answer.status_code == 200, answer.get_body()
    assert (json.loads(answer.get_body())["name"], json.loads(answer.get_body())["version"]) == (asset, "1")


def test_cancel_through_the_durable_client_binding(
    invoke: Invoker, app_storage: StorageClients, engine: DurableTaskClient, df_host: DurableFunctionsHost
) -> None:
    run_id = _run_id("cancel")
    seed_run(app_storage, run_id, "score")
    start_waiting(engine, names.instance_id_for(run_id))

    answer = invoke(
        "cancel_run", req=_request("POST", f"runs/{run_id}/cancel", route_params={"run_id": run_id})
    )
    assert answer.status_code == 202, answer.get_body()
    final = engine.wait(run_id, timeout=30)
    assert final is not None
    assert final.output == "Canceled"
    assert run_index.get_run(app_storage, run_id).status is RunStatus.CANCEL_REQUESTED
    assert ("POST", f"/durabletask/instances/{run_id}/raiseEvent/cancel") in df_host.calls

    # Not running any more: the extension answers 410, the API 409 (the run index is not terminal yet).
    answer = invoke(
        "cancel_run", req=_request("POST", f"runs/{run_id}/cancel", route_params={"run_id": run_id})
    )
    assert answer.status_code == 409


# --- events queue ----------------------------------------------------------------------------------


def test_events_message_raises_the_event_on_the_step(invoke: Invoker, engine: DurableTaskClient) -> None:
    run_id = _run_id("events")
    step_instance = names.step_instance_id(run_id, "score")
    start_waiting(engine, step_instance)  # the stand-in waits for the step's events
    notice = OrchestrationNotice(kind=NoticeKind.STEP_SETTLED, run_id=run_id, job="score")
    message = func.QueueMessage(id="m1", body=notice.model_dump_json().encode(), pop_receipt="p")
    assert invoke("handle_events", message=message) is None
    final = engine.wait(step_instance, timeout=30)
    assert final is not None
    assert final.output == "Settled"


def test_malformed_events_message_is_dropped(invoke: Invoker) -> None:
    assert invoke("handle_events", message=func.QueueMessage(id="m2", body=b"not json")) is None


# --- blobs -----------------------------------------------------------------------------------------


def _zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _input_stream(container: str, name: str, data: bytes) -> func.blob.InputStream:
    return func.blob.InputStream(
        data=data, name=f"{container}/{name}", uri=f"http://127.0.0.1/{container}/{name}", length=len(data)
    )


def test_snapshot_drop_is_stored_and_a_bad_one_gets_its_error_file(
    invoke: Invoker, app_storage: StorageClients
) -> None:
    container = app_storage.container(Container.SNAPSHOTS)
    good = f"incoming/code-{uuid.uuid4().hex[:8]}.zip"
    data = _zip({"score.py": b"def run(batch):\n    return batch\n"})
    container.upload_blob(good, data)
    invoke("ingest_snapshot", blob=_input_stream("snapshots", good, data))
    assert resolve_snapshot_ref(app_storage, good).startswith("sha256-")

    bad = f"incoming/bad-{uuid.uuid4().hex[:8]}.zip"
    container.upload_blob(bad, b"this is not a zip")
    invoke(
        "ingest_snapshot", blob=_input_stream("snapshots", bad, b"this is not a zip")
    )  # no exception: no retry
    error = json.loads(container.download_blob(bad + ".error.json").readall())
    assert bad in json.dumps(error)


def test_spec_trigger_ignores_what_is_not_a_spec(
    invoke: Invoker, app_storage: StorageClients, df_host: DurableFunctionsHost
) -> None:
    container = app_storage.container(Container.SPECS)
    name = f"notes-{uuid.uuid4().hex[:8]}.yml.error.json"
    container.upload_blob(name, b"{}")
    calls = len(df_host.calls)
    invoke("ingest_spec", blob=_input_stream("specs", name, b"{}"))
    assert len(df_host.calls) == calls  # not even a status query: our own error files are not specs
    assert not container.get_blob_client(name + ".error.json").exists()
    assert ingest_spec_blob(app_storage, df_host.engine, f"specs/{name}").status.value == "ignored"


def test_durable_client_adapter_over_the_df_client(
    loop: asyncio.AbstractEventLoop, df_host: DurableFunctionsHost, engine: DurableTaskClient
) -> None:
    instance = _run_id("adapter")

    def body(durable: FunctionsDurableClient) -> list[object]:
        seen: list[object] = [durable.get_status(instance)]
        seen.append(durable.schedule(names.RUN_PIPELINE, instance, {"x": 1}))
        seen.append(durable.schedule(names.RUN_PIPELINE, instance, {"x": 1}))  # exists: not started twice
        wait_until(lambda: (s := durable.get_status(instance)) is not None and s.custom_status, message="up")
        durable.terminate(instance, "test")
        final = durable.wait(instance, timeout=30)
        seen.append(final.runtime_status.value if final else None)
        durable.raise_event(instance, names.CANCEL_EVENT)  # finished: dropped, no error
        with pytest.raises(NotFoundError):
            durable.raise_event(_run_id("absent"), names.CANCEL_EVENT)
        return seen

    client = DurableOrchestrationClient(df_host.starter)
    assert loop.run_until_complete(run_with_client(client, body)) == [None, True, False, "Terminated"]

    def misuse() -> None:
        FunctionsDurableClient(client, loop).get_status(instance)

    async def on_the_loop() -> None:
        misuse()

    with pytest.raises(OrchestrationError, match="its own event loop"):
        loop.run_until_complete(on_the_loop())
