"""The HTTP and activity adapters of the Function App, called as the Python worker calls them.

Submitting (a YAML body; a multipart body with a zip) goes through the durable client binding to the
stand-in engine; the asset routes read a registered asset; every activity trigger gets its input the
way the worker decodes it (``ActivityTriggerConverter`` over the JSON text the Durable extension
sends) and its output is encoded back the same way. Storage is the session's Azurite.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import azure.functions as func
import httpx
import pytest
from azure.functions import meta
from azure.functions.durable_functions import ActivityTriggerConverter

from shared.compute.base import AgentStatus, AgentTask
from shared.orchestration import dependencies, names, run_index
from shared.orchestration.activities import cancel_requested
from shared.orchestration.contracts import (
    RunStatus,
    StepFinalize,
    StepRef,
    StepResult,
    StepStart,
    StepStatus,
)
from shared.orchestration.models import CancelSteps, RunStatusUpdate, SkippedSteps
from shared.plan import (
    BlobData,
    CodeRef,
    DataInput,
    DataType,
    JobPlan,
    JobType,
    OutputPlan,
    ParallelSettings,
    RunPlan,
)
from shared.registry import register_asset
from shared.runs import load_plan, load_step_definition, load_step_result, save_plan
from shared.runtime.logs import read_text
from shared.storage import Container, StorageClients, output_path, work_queue_name
from tests.integration.api.durable_stand_in import DurableFunctionsHost
from tests.integration.api.specs import SELF_CONTAINED, WITH_FOLDER, zip_folder
from tests.integration.functions.conftest import Invoker

BASE = "https://fanout-test.azurewebsites.net/api/"


def _request(
    method: str,
    route: str,
    *,
    route_params: dict[str, str] | None = None,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
) -> func.HttpRequest:
    return func.HttpRequest(
        method, BASE + route, route_params=route_params or {}, body=body, headers=headers or {}
    )


def _started(host: DurableFunctionsHost, run_id: str) -> bool:
    return ("POST", f"/durabletask/orchestrators/{names.RUN_PIPELINE}/{run_id}") in host.calls


def _accepted(answer: func.HttpResponse) -> dict[str, Any]:
    assert answer.status_code == 202, answer.get_body()
    body: dict[str, Any] = json.loads(answer.get_body())
    assert answer.headers["location"] == body["status_url"] == f"{BASE}runs/{body['run_id']}"
    return body


# --- submit_pipeline ---------------------------------------------------------------------------------


def test_submit_a_yaml_body_starts_the_run(
    invoke: Invoker, app_storage: StorageClients, df_host: DurableFunctionsHost
) -> None:
    request = _request(
        "POST", "pipelines", body=SELF_CONTAINED.encode(), headers={"Content-Type": "application/yaml"}
    )
    run_id = _accepted(invoke("submit_pipeline", req=request))["run_id"]
    assert _started(df_host, run_id)
    status = df_host.engine.get_status(run_id)
    assert status is not None
    assert status.name == names.RUN_PIPELINE
    assert run_index.get_run(app_storage, run_id).status is RunStatus.QUEUED
    assert load_plan(app_storage, run_id).display_name == "api-test"


def test_submit_a_multipart_body_with_a_zip_starts_the_run(
    invoke: Invoker, app_storage: StorageClients, df_host: DurableFunctionsHost
) -> None:
    archive = zip_folder({"src/side_effect.py": "print('hi')\n", "data/numbers/1.txt": "1\n"})
    built = httpx.Request(
        "POST",
        BASE + "pipelines",
        files={
            "spec": ("zipped.yml", WITH_FOLDER.encode(), "application/yaml"),
            "snapshot": ("project.zip", archive, "application/zip"),
        },
    )
    body = built.read()
    request = _request(
        "POST", "pipelines", body=body, headers={"Content-Type": built.headers["content-type"]}
    )
    answer = _accepted(invoke("submit_pipeline", req=request))
    run_id = answer["run_id"]
    assert answer["snapshot"].startswith("sha256-")
    assert _started(df_host, run_id)
    assert df_host.engine.get_status(run_id) is not None
    (job,) = load_plan(app_storage, run_id).jobs
    assert job.code is not None
    assert job.code.snapshot is not None
    assert run_index.get_run(app_storage, run_id).status is RunStatus.QUEUED


# --- assets ------------------------------------------------------------------------------------------


def test_list_and_get_assets_through_the_functions(invoke: Invoker, app_storage: StorageClients) -> None:
    name = f"fn-asset-{uuid.uuid4().hex[:8]}"
    register_asset(app_storage, name, BlobData(container="data", path=f"{name}/v1"), description="first")
    register_asset(app_storage, name, BlobData(container="data", path=f"{name}/v2"))

    listed = invoke("list_assets", req=_request("GET", "assets"))
    assert listed.status_code == 200
    (summary,) = [a for a in json.loads(listed.get_body())["assets"] if a["name"] == name]
    assert (summary["latest_version"], summary["version_count"]) == ("2", 2)

    def get(version: str) -> func.HttpResponse:
        route = f"assets/{name}/{version}" if version else f"assets/{name}"
        answer = invoke(
            "get_asset", req=_request("GET", route, route_params={"name": name, "version": version})
        )
        assert isinstance(answer, func.HttpResponse)
        return answer

    first = get("1")
    assert first.status_code == 200
    assert first.mimetype == "application/json"
    body = json.loads(first.get_body())
    assert (body["name"], body["version"], body["description"]) == (name, "1", "first")
    assert body["location"] == {"kind": "blob", "container": "data", "path": f"{name}/v1"}
    assert body["uri"] == f"azureml://datastores/workspaceblobstore/paths/{name}/v1"
    # No version (the host passes the optional route value as empty) and @latest are the latest.
    for latest in ("", "latest"):
        answer = get(latest)
        assert answer.status_code == 200
        assert json.loads(answer.get_body())["version"] == "2"
    missing = get("7")
    assert missing.status_code == 404
    error = json.loads(missing.get_body())
    assert error["error"] == "NotFoundError"
    assert error["message"] == f"data asset '{name}' has no version '7' (versions: 1, 2)"


# --- every activity trigger --------------------------------------------------------------------------


@dataclass
class RecordingExecutor:
    """The compute boundary: records what the activities ask for (no agents run here)."""

    started: list[AgentTask] = field(default_factory=list)
    stopped: list[tuple[str, str]] = field(default_factory=list)

    def start(self, task: AgentTask) -> None:
        self.started.append(task)

    def stop(self, run_id: str, job: str) -> None:
        self.stopped.append((run_id, job))

    def status(self, run_id: str, job: str) -> list[AgentStatus]:
        return []


@pytest.fixture
def executor(app_storage: StorageClients) -> Iterator[RecordingExecutor]:
    """The activities' dependencies for this process: Azurite and a recording executor."""
    recording = RecordingExecutor()
    dependencies.install(dependencies.ActivityDependencies(clients=app_storage, executor=recording))
    yield recording
    dependencies.uninstall()


def _activity(invoke: Invoker, name: str, payload: Any) -> Any:
    """Call an activity as the worker does: decode the extension's JSON text, encode the result."""
    decoded = ActivityTriggerConverter.decode(meta.Datum(json.dumps(payload), "string"), trigger_metadata={})
    result = invoke(name, payload=decoded)
    encoded = ActivityTriggerConverter.encode(result, expected_type=None)
    return json.loads(encoded.value)


def _saved_run(storage: StorageClients, tmp_path: Path) -> StepRef:
    """A queued run with one parallel job over three files in Azurite (as start_run leaves it)."""
    run_id = f"fnact-{uuid.uuid4().hex[:8]}"
    prefix = f"inputs/{run_id}/files"
    for index in range(3):
        storage.container(Container.DATA).upload_blob(f"{prefix}/f{index}.txt", f"{index}\n".encode())
    code = tmp_path / "code"
    code.mkdir()
    (code / "score.py").write_text("def run(mini_batch):\n    return mini_batch\n")
    job = JobPlan(
        name="score",
        type=JobType.PARALLEL,
        code=CodeRef(local_path=str(code)),
        inputs={"data": DataInput(type=DataType.URI_FOLDER, source=BlobData(container="data", path=prefix))},
        outputs={
            "out": OutputPlan(location=BlobData(container="runs", path=output_path(run_id, "score", "out")))
        },
        parallel=ParallelSettings(input_data="data", entry_script="score.py", mini_batch_size=1),
    )
    plan = RunPlan(run_id=run_id, jobs=[job])
    save_plan(storage, plan)
    run_index.add_run(storage, run_index.entry_for(plan))
    return StepRef(run_id=run_id, job="score")


def _queued(storage: StorageClients, step: StepRef) -> int:
    properties = storage.queue_client(work_queue_name(step.run_id, step.job)).get_queue_properties()
    return int(properties.approximate_message_count)


Check = Callable[[StorageClients, StepRef, RecordingExecutor, Any], None]


def _check_set_run_status(storage: StorageClients, step: StepRef, _: RecordingExecutor, output: Any) -> None:
    assert output is None
    assert run_index.get_run(storage, step.run_id).status is RunStatus.RUNNING


def _check_prepare(storage: StorageClients, step: StepRef, _: RecordingExecutor, output: Any) -> None:
    assert output["error"] is None
    assert output["value"]["fingerprint"].startswith("fp1-")
    assert load_step_definition(storage, step).fingerprint == output["value"]["fingerprint"]


def _check_plan(storage: StorageClients, step: StepRef, _: RecordingExecutor, output: Any) -> None:
    assert output["error"] is None
    assert output["value"]["mini_batches"] == 3


def _check_dispatch(storage: StorageClients, step: StepRef, _: RecordingExecutor, output: Any) -> None:
    assert output["mini_batches"] == 3
    assert _queued(storage, step) == 3


def _check_start(storage: StorageClients, step: StepRef, executor: RecordingExecutor, output: Any) -> None:
    assert output == {"value": None, "error": None}
    assert executor.started == [AgentTask(run_id=step.run_id, job=step.job, instance_count=1)]


def _check_read(storage: StorageClients, step: StepRef, _: RecordingExecutor, output: Any) -> None:
    assert output["cancel_requested"] is False
    assert output["progress"]["total_mini_batches"] == 3
    assert output["progress"]["dispatched"] is True
    assert (output["progress"]["succeeded_mini_batches"], output["progress"]["failed_mini_batches"]) == (0, 0)


def _check_stop(storage: StorageClients, step: StepRef, executor: RecordingExecutor, output: Any) -> None:
    assert output is None
    assert executor.stopped == [(step.run_id, step.job)]
    assert _queued(storage, step) == 0


def _check_finalize(storage: StorageClients, step: StepRef, _: RecordingExecutor, output: Any) -> None:
    assert output["status"] == "Failed"
    assert load_step_result(storage, step).status is StepStatus.FAILED
    assert "given up by the test" in read_text(storage, step, "job_result.txt")


def _check_skip(storage: StorageClients, step: StepRef, _: RecordingExecutor, output: Any) -> None:
    assert output is None
    assert load_step_result(storage, step).status is StepStatus.SKIPPED
    assert "upstream failed" in read_text(storage, step, "job_result.txt")


def _check_cancel(storage: StorageClients, step: StepRef, _: RecordingExecutor, output: Any) -> None:
    assert output is None
    assert cancel_requested(storage, step.run_id)
    assert run_index.get_run(storage, step.run_id).status is RunStatus.CANCEL_REQUESTED


def _payload(name: str, step: StepRef) -> Any:
    ref = step.model_dump(mode="json")
    return {
        names.SET_RUN_STATUS: RunStatusUpdate(run_id=step.run_id, status=RunStatus.RUNNING),
        names.PREPARE_STEP: StepStart(step=step),
        names.PLAN_STEP: step,
        names.DISPATCH_STEP: step,
        names.START_AGENTS: AgentTask(run_id=step.run_id, job=step.job),
        names.READ_PROGRESS: step,
        names.STOP_AGENTS: step,
        names.FINALIZE_STEP: StepFinalize(step=step, status=StepStatus.FAILED, reason="given up by the test"),
        names.SKIP_STEPS: SkippedSteps(
            results=[StepResult(step=step, status=StepStatus.SKIPPED, reason="upstream failed")]
        ),
        names.CANCEL_STEPS: CancelSteps(run_id=step.run_id, jobs=[step.job]),
    }.get(name, ref).model_dump(mode="json")  # type: ignore[union-attr]


#: activity -> (activities that must have run before it, what its output and storage must show).
CASES: dict[str, tuple[tuple[str, ...], Check]] = {
    names.SET_RUN_STATUS: ((), _check_set_run_status),
    names.PREPARE_STEP: ((), _check_prepare),
    names.PLAN_STEP: ((names.PREPARE_STEP,), _check_plan),
    names.DISPATCH_STEP: ((names.PREPARE_STEP, names.PLAN_STEP), _check_dispatch),
    names.START_AGENTS: ((names.PREPARE_STEP, names.PLAN_STEP, names.DISPATCH_STEP), _check_start),
    names.READ_PROGRESS: ((names.PREPARE_STEP, names.PLAN_STEP, names.DISPATCH_STEP), _check_read),
    names.STOP_AGENTS: ((names.PREPARE_STEP, names.PLAN_STEP, names.DISPATCH_STEP), _check_stop),
    names.FINALIZE_STEP: ((names.PREPARE_STEP, names.PLAN_STEP), _check_finalize),
    names.SKIP_STEPS: ((), _check_skip),
    names.CANCEL_STEPS: ((), _check_cancel),
}


def test_every_activity_has_a_case() -> None:
    assert set(CASES) == set(names.ACTIVITIES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_activity_trigger_runs_its_body_against_azurite(
    name: str, invoke: Invoker, app_storage: StorageClients, executor: RecordingExecutor, tmp_path: Path
) -> None:
    step = _saved_run(app_storage, tmp_path)
    before, check = CASES[name]
    for earlier in before:
        _activity(invoke, earlier, _payload(earlier, step))
    output = _activity(invoke, name, _payload(name, step))
    check(app_storage, step, executor, output)
