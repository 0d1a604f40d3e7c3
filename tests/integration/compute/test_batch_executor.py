"""The Batch executor end to end against a transport double of Batch and a real Azurite.

Storage is real (the run plan, the wheel's ETag, the step's logs); Batch is the HTTP double of
``tests/unit/compute/batch_double.py``, which records the REST calls the executor makes.
"""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

import pytest
from azure.batch import BatchClient
from azure.core.exceptions import ResourceExistsError

from shared.compute.base import AgentState, AgentTask
from shared.compute.batch import BatchExecutor, batch_job_id
from shared.errors import ComputeError, ConfigurationError
from shared.plan import EnvironmentPlan, JobPlan, JobType, ParallelSettings, RunPlan
from shared.runs import save_plan
from shared.settings import ComputeTarget, PoolKind, Settings
from shared.storage import Container, StorageClients, logs_path
from tests.unit.compute.batch_double import ENDPOINT, BatchDouble, Reply, StaticToken, batch_error

IDENTITY = (
    "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/fanout"
)
WHEEL = "fanout-0.1.0-py3-none-any.whl"
AGENT_CONTAINER = "agent-test"


@pytest.fixture
def wheel_url(storage: StorageClients) -> str:
    container = storage.blob.get_container_client(AGENT_CONTAINER)
    with contextlib.suppress(ResourceExistsError):
        container.create_container()
    container.upload_blob(WHEEL, b"PK fake wheel", overwrite=True)
    return f"{storage.blob.url.rstrip('/')}/{AGENT_CONTAINER}/{WHEEL}"


def make_settings(wheel_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "executor": "batch",
        "batch_endpoint": ENDPOINT,
        "batch_identity_resource_id": IDENTITY,
        "agent_package_url": wheel_url,
        "storage_blob_url": "https://acct.blob.core.windows.net",
        "storage_queue_url": "https://acct.queue.core.windows.net",
        "storage_table_url": "https://acct.table.core.windows.net",
        "storage_client_id": "client-id",
        "compute_targets": {
            "cpu-cluster": ComputeTarget(pool_id="fanout-cpu", kind=PoolKind.CPU, cores=4),
            "gpu-cluster": ComputeTarget(
                pool_id="fanout-gpu", kind=PoolKind.GPU, gpus=2, cores=8, task_slots=8
            ),
        },
        **overrides,
    }
    return Settings(**values)


def save_run(
    storage: StorageClients, *, compute: str = "gpu-cluster", environment: EnvironmentPlan | None = None
) -> str:
    run_id = f"run-{uuid.uuid4().hex[:8]}"
    job = JobPlan(
        name="score",
        type=JobType.PARALLEL,
        compute=compute,
        environment=environment,
        parallel=ParallelSettings(input_data="data", entry_script="score.py"),
    )
    save_plan(storage, RunPlan(run_id=run_id, jobs=[job]))
    return run_id


@pytest.fixture
def double() -> BatchDouble:
    return BatchDouble(
        pools={
            "fanout-cpu": {"taskSlotsPerNode": 1, "container": True},
            "fanout-gpu": {"taskSlotsPerNode": 8, "container": True},
        }
    )


def executor(storage: StorageClients, settings: Settings, double: BatchDouble) -> BatchExecutor:
    client = BatchClient(endpoint=ENDPOINT, credential=StaticToken(), transport=double)
    return BatchExecutor(settings, storage, client)


@pytest.fixture
def batch(storage: StorageClients, wheel_url: str, double: BatchDouble) -> BatchExecutor:
    """The executor with the usual settings, talking to the double."""
    return executor(storage, make_settings(wheel_url), double)


def read_log(storage: StorageClients, run_id: str, name: str) -> str:
    blob = storage.container(Container.RUNS).download_blob(logs_path(run_id, "score", "sys", "batch", name))
    return blob.readall().decode()


def test_start_submits_job_then_tasks_then_sets_terminate_on_completion(
    storage: StorageClients, wheel_url: str, batch: BatchExecutor, double: BatchDouble
) -> None:
    run_id = save_run(storage)
    batch.start(AgentTask(run_id=run_id, job="score", instance_count=3))

    job_id = batch_job_id(run_id, "score")
    steps = [(r.method, r.path) for r in double.requests]
    assert steps == [
        ("GET", "/pools/fanout-gpu"),
        ("POST", "/jobs"),
        ("POST", f"/jobs/{job_id}/addtaskcollection"),
        ("PATCH", f"/jobs/{job_id}"),
    ]
    assert all(r.headers["Authorization"] == "Bearer test-token" for r in double.requests)
    assert double.requests[-1].body == {"onAllTasksComplete": "terminatejob"}
    tasks = double.requests[2].body["value"]
    assert [t["id"] for t in tasks] == ["agent-0", "agent-1", "agent-2"]
    assert {t["requiredSlots"] for t in tasks} == {8}  # the pool's real slot count
    assert tasks[0]["containerSettings"]["containerRunOptions"] == "--gpus all"
    assert tasks[0]["commandLine"].endswith("--node-id 0 --workers 2\n'")  # workers default to the GPUs
    job = double.requests[1].body
    assert job["poolInfo"] == {"poolId": "fanout-gpu"}
    (wheel,) = job["jobPreparationTask"]["resourceFiles"]
    assert wheel == {
        "httpUrl": wheel_url,
        "filePath": f"fanout-agent/{WHEEL}",
        "fileMode": "0644",
        "identityReference": {"resourceId": IDENTITY},
    }
    submission = read_log(storage, run_id, "submission.txt")
    assert job_id in submission
    assert "agent-0, agent-1, agent-2" in submission


def test_a_second_start_adds_nothing(
    storage: StorageClients, batch: BatchExecutor, double: BatchDouble
) -> None:
    run_id = save_run(storage)
    task = AgentTask(run_id=run_id, job="score", instance_count=2, workers_per_agent=1)
    batch.start(task)
    batch.start(task)
    job_id = batch_job_id(run_id, "score")
    assert len(double.tasks[job_id]) == 2
    assert len(double.calls("POST", "/jobs")) == 2  # the second one answered JobExists
    assert double.jobs[job_id]["onAllTasksComplete"] == "terminatejob"


def test_start_of_a_finished_job_does_nothing(
    storage: StorageClients, batch: BatchExecutor, double: BatchDouble
) -> None:
    run_id = save_run(storage)
    batch.start(AgentTask(run_id=run_id, job="score"))
    batch.stop(run_id, "score")
    before = len(double.calls("POST", r"/jobs/.*/addtaskcollection"))
    batch.start(AgentTask(run_id=run_id, job="score"))
    assert len(double.calls("POST", r"/jobs/.*/addtaskcollection")) == before


def test_workers_given_by_the_job_win(
    storage: StorageClients, batch: BatchExecutor, double: BatchDouble
) -> None:
    run_id = save_run(storage, compute="azureml:cpu-cluster")
    batch.start(AgentTask(run_id=run_id, job="score", workers_per_agent=3))
    (task,) = double.calls("POST", r"/jobs/.*/addtaskcollection")[0].body["value"]
    assert task["commandLine"].endswith("--workers 3\n'")
    assert task["requiredSlots"] == 1
    assert task["containerSettings"]["containerRunOptions"] == ""


def test_a_redeployed_wheel_gets_a_new_environment(
    storage: StorageClients, wheel_url: str, double: BatchDouble
) -> None:
    settings = make_settings(wheel_url)

    def env_key() -> str:
        run_id = save_run(storage)
        executor(storage, settings, double).start(AgentTask(run_id=run_id, job="score"))
        prep = double.calls("POST", "/jobs")[-1].body["jobPreparationTask"]
        return next(e["value"] for e in prep["environmentSettings"] if e["name"] == "FANOUT_ENV_KEY")

    first, same = env_key(), env_key()
    storage.blob.get_blob_client(AGENT_CONTAINER, WHEEL).upload_blob(b"PK new build", overwrite=True)
    assert first == same != env_key()


def test_stop_terminates_the_job_and_tasks_report_stopped(
    storage: StorageClients, batch: BatchExecutor, double: BatchDouble
) -> None:
    run_id = save_run(storage)
    batch.start(AgentTask(run_id=run_id, job="score", instance_count=2))
    job_id = batch_job_id(run_id, "score")
    double.tasks[job_id]["agent-0"].update(
        state="completed",
        executionInfo={
            "retryCount": 0,
            "requeueCount": 0,
            "result": "failure",
            "failureInfo": {
                "category": "usererror",
                "code": "TaskEnded",
                "message": "Task Was Ended by User Request",
            },
        },
    )
    batch.stop(run_id, "score")
    (terminate,) = double.calls("POST", rf"/jobs/{job_id}/terminate")
    assert terminate.body == {"terminateReason": "FanoutStopped"}
    assert [s.state for s in batch.status(run_id, "score")] == [AgentState.STOPPED, AgentState.STOPPED]


def test_stopping_a_job_that_does_not_exist_or_already_ends_is_fine(
    storage: StorageClients, batch: BatchExecutor, double: BatchDouble
) -> None:
    batch.stop("never-started", "score")
    double.reply("POST", r"/jobs/.*/terminate", batch_error(409, "JobCompleted"))
    batch.stop("run", "score")
    assert batch.status("never-started", "score") == []


def test_status_maps_tasks_and_keeps_the_agents_log(
    storage: StorageClients, batch: BatchExecutor, double: BatchDouble
) -> None:
    run_id = save_run(storage)
    batch.start(AgentTask(run_id=run_id, job="score", instance_count=3))
    job_id = batch_job_id(run_id, "score")
    tasks = double.tasks[job_id]
    tasks["agent-0"].update(
        state="running", nodeInfo={"nodeId": "tvm-1"}, executionInfo={"retryCount": 0, "requeueCount": 1}
    )
    tasks["agent-1"].update(
        state="completed",
        executionInfo={
            "retryCount": 2,
            "requeueCount": 0,
            "exitCode": 1,
            "result": "failure",
            "failureInfo": {"category": "usererror", "code": "FailureExitCode", "message": "x"},
        },
    )
    statuses = batch.status(run_id, "score")
    assert [(s.node_id, s.state) for s in statuses] == [
        (0, AgentState.RUNNING),
        (1, AgentState.FAILED),
        (2, AgentState.PENDING),
    ]
    assert "re-run 1× by Batch" in statuses[0].detail
    assert statuses[1].exit_code == 1
    log = read_log(storage, run_id, "agents.txt")
    assert (
        "node 1: failed (exit code 1): the agent exited with code 1 (retried 2× after the agent crashed)"
        in log
    )


def test_pending_agents_say_why_the_pool_does_not_grow(
    storage: StorageClients, batch: BatchExecutor, double: BatchDouble
) -> None:
    run_id = save_run(storage)
    batch.start(AgentTask(run_id=run_id, job="score"))
    double.pools["fanout-gpu"]["resizeErrors"] = [
        {
            "code": "AccountVMSeriesCoreQuotaReached",
            "message": "The specified account has reached VM series core quota",
        }
    ]
    (pending,) = batch.status(run_id, "score")
    assert pending.state is AgentState.PENDING
    assert "AccountVMSeriesCoreQuotaReached" in pending.detail
    assert "request more cores" in pending.detail


def test_a_failed_environment_build_fails_the_agents_and_the_report_shows_its_output(
    storage: StorageClients, batch: BatchExecutor, double: BatchDouble
) -> None:
    run_id = save_run(storage)
    batch.start(AgentTask(run_id=run_id, job="score"))
    job_id = batch_job_id(run_id, "score")
    prep = {
        "poolId": "fanout-gpu",
        "nodeId": "tvm-7",
        "jobPreparationTaskExecutionInfo": {
            "startTime": "2026-01-01T00:00:00Z",
            "state": "completed",
            "taskRootDirectory": f"workitems/{job_id}/job-1/fanout-environment",
            "exitCode": 1,
            "retryCount": 2,
            "result": "failure",
            "failureInfo": {"category": "usererror", "code": "FailureExitCode", "message": "exit code 1"},
        },
    }
    double.reply("GET", rf"/jobs/{job_id}/jobpreparationandreleasetaskstatus", Reply(200, {"value": [prep]}))
    stderr = "Collecting nosuchpkg\nERROR: No matching distribution found for nosuchpkg\n"

    double.reply(
        "GET",
        r"/pools/fanout-gpu/nodes/tvm-7/files/.*",
        Reply(200, stderr.encode(), {"content-type": "application/octet-stream"}),
    )
    (failed,) = batch.status(run_id, "score")
    assert failed.state is AgentState.FAILED
    assert "preparing the environment failed on Batch node tvm-7 (exit code 1: exit code 1)" in failed.detail
    text = batch.report(run_id, "score")
    assert "Agents: 1 failed." in text
    assert job_id in text
    assert read_log(storage, run_id, "report.txt").startswith("Agents: 1 failed.")
    assert read_log(storage, run_id, "node_tvm-7-environment-stderr.txt") == stderr.strip()
    (download,) = double.calls("GET", r"/pools/.*/files/.*")
    assert (
        download.path
        == f"/pools/fanout-gpu/nodes/tvm-7/files/workitems/{job_id}/job-1/fanout-environment/stderr.txt"
    )


def test_a_missing_pool_is_an_error_naming_the_compute(
    storage: StorageClients, batch: BatchExecutor, double: BatchDouble
) -> None:
    run_id = save_run(storage)
    del double.pools["fanout-gpu"]
    with pytest.raises(ComputeError, match="pool 'fanout-gpu' \\(compute 'gpu-cluster'\\) does not exist"):
        batch.start(AgentTask(run_id=run_id, job="score"))
    assert not double.calls("POST")


def test_an_image_on_a_pool_without_containers_is_refused(
    storage: StorageClients, batch: BatchExecutor, double: BatchDouble
) -> None:
    double.pools["fanout-cpu"]["container"] = False
    run_id = save_run(
        storage, compute="cpu-cluster", environment=EnvironmentPlan(image="myacr.azurecr.io/x:1")
    )
    with pytest.raises(ComputeError, match="runs no containers"):
        batch.start(AgentTask(run_id=run_id, job="score"))


def test_an_old_python_in_the_conda_file_is_refused_before_submitting(
    storage: StorageClients, batch: BatchExecutor, double: BatchDouble
) -> None:
    env = EnvironmentPlan(conda_file={"dependencies": ["python=3.8", "pip"]})
    run_id = save_run(storage, environment=env)
    with pytest.raises(ComputeError, match=r"python=3\.8"):
        batch.start(AgentTask(run_id=run_id, job="score"))
    assert not double.requests


def test_a_missing_wheel_says_how_to_upload_it(
    storage: StorageClients, wheel_url: str, double: BatchDouble
) -> None:
    run_id = save_run(storage)
    settings = make_settings(wheel_url.replace(WHEEL, "fanout-9.9.9-py3-none-any.whl"))
    with pytest.raises(ComputeError, match="azd deploy"):
        executor(storage, settings, double).start(AgentTask(run_id=run_id, job="score"))
    assert not double.requests


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"storage_blob_url": None}, "never given account keys"),
        ({"agent_package_url": None}, "FANOUT_AGENT_PACKAGE_URL"),
        (
            {"agent_package_url": "https://acct.blob.core.windows.net/agent/fanout.tar.gz"},
            "must name a wheel",
        ),
        ({"compute_targets": {}}, "FANOUT_COMPUTE_TARGETS"),
    ],
)
def test_missing_settings_are_configuration_errors(
    storage: StorageClients, wheel_url: str, double: BatchDouble, overrides: dict[str, Any], words: str
) -> None:
    run_id = save_run(storage)
    with pytest.raises(ConfigurationError, match=words):
        executor(storage, make_settings(wheel_url, **overrides), double).start(
            AgentTask(run_id=run_id, job="score")
        )
    assert not double.requests  # refused before anything reached Batch


def test_no_endpoint_is_a_configuration_error(storage: StorageClients) -> None:
    with pytest.raises(ConfigurationError, match="FANOUT_BATCH_ENDPOINT"):
        _ = BatchExecutor(Settings(), storage).client
