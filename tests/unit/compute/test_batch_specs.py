"""The REST bodies of a step's Batch job and agent tasks, as the service receives them."""

from __future__ import annotations

import shlex
from typing import Any

import pytest
from azure.batch import BatchClient

from shared.compute.base import AgentTask
from shared.compute.batch.specs import AgentPackage, JobSubmission, build_job, build_tasks
from shared.compute.environment import node_environment
from shared.plan import EnvironmentPlan
from shared.settings import PoolKind
from tests.unit.compute.batch_double import ENDPOINT, BatchDouble, StaticToken

IDENTITY = (
    "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/fanout"
)
WHEEL_URL = "https://acct.blob.core.windows.net/agent/fanout-0.1.0-py3-none-any.whl"
NODE_SETTINGS = {
    "FANOUT_STORAGE_BLOB_URL": "https://acct.blob.core.windows.net",
    "FANOUT_STORAGE_QUEUE_URL": "https://acct.queue.core.windows.net",
    "FANOUT_STORAGE_TABLE_URL": "https://acct.table.core.windows.net",
    "FANOUT_STORAGE_CLIENT_ID": "client-id",
}


def submission(
    *,
    kind: PoolKind = PoolKind.CPU,
    containers: bool = True,
    identity: str | None = IDENTITY,
    instances: int = 2,
    environment: EnvironmentPlan | None = None,
) -> JobSubmission:
    env = node_environment(
        environment,
        default_image="mcr.microsoft.com/mirror/docker/library/python:3.11-slim" if containers else None,
        agent_package="fanout-0.1.0-py3-none-any.whl",
        agent_package_version='"0x8DC"',
    )
    return JobSubmission(
        task=AgentTask(run_id="run-1", job="score", instance_count=instances, workers_per_agent=4),
        batch_job_id="fanout-run-1-score-abc",
        pool_id="fanout-gpu" if kind is PoolKind.GPU else "fanout-cpu",
        kind=kind,
        task_slots=4,
        containers=containers,
        gpus=1 if kind is PoolKind.GPU else 0,
        environment=env,
        package=AgentPackage(
            url=WHEEL_URL,
            file_name="fanout-0.1.0-py3-none-any.whl",
            version='"0x8DC"',
            download_url=WHEEL_URL if identity else WHEEL_URL + "?sv=x&sig=y",
            identity_resource_id=identity,
        ),
        retries=2,
        settings=NODE_SETTINGS,
        logs_container_url="https://acct.blob.core.windows.net/runs",
    )


def sent(payload_kind: str, sub: JobSubmission) -> Any:
    double = BatchDouble()
    client = BatchClient(endpoint=ENDPOINT, credential=StaticToken(), transport=double)
    if payload_kind == "job":
        client.create_job(build_job(sub))
        return double.calls("POST", "/jobs")[0].body
    client.create_job(build_job(sub))
    client.create_task_collection(sub.batch_job_id, task_collection={"value": build_tasks(sub)})
    return double.calls("POST", r"/jobs/.*/addtaskcollection")[0].body["value"]


def env_of(items: list[dict[str, str]]) -> dict[str, str]:
    return {item["name"]: item["value"] for item in items}


def test_job_body_targets_the_pool_and_ends_only_when_told() -> None:
    body = sent("job", submission())
    assert body["id"] == "fanout-run-1-score-abc"
    assert body["poolInfo"] == {"poolId": "fanout-cpu"}
    assert body["onAllTasksComplete"] == "noaction"  # switched to terminatejob after the tasks are added
    assert body["onTaskFailure"] == "noaction"
    assert body["constraints"] == {"maxTaskRetryCount": 2}
    assert {m["name"]: m["value"] for m in body["metadata"]} == {"fanout-run": "run-1", "fanout-job": "score"}


def test_job_settings_carry_endpoints_and_ids_but_never_a_key() -> None:
    body = sent("job", submission(kind=PoolKind.GPU))
    env = env_of(body["commonEnvironmentSettings"])
    assert env == {
        **NODE_SETTINGS,
        "FANOUT_EXECUTOR": "batch",
        "FANOUT_RUN_ID": "run-1",
        "FANOUT_JOB": "score",
        "FANOUT_GPU_COUNT": "1",
        "PYTHONUNBUFFERED": "1",
    }
    text = str(body).lower()
    assert "accountkey" not in text
    assert "connection_string" not in text


def test_preparation_task_downloads_the_wheel_with_the_pool_identity() -> None:
    prep = sent("job", submission())["jobPreparationTask"]
    assert prep["id"] == "fanout-environment"
    assert prep["resourceFiles"] == [
        {
            "httpUrl": WHEEL_URL,
            "filePath": "fanout-agent/fanout-0.1.0-py3-none-any.whl",
            "fileMode": "0644",
            "identityReference": {"resourceId": IDENTITY},
        }
    ]
    assert prep["waitForSuccess"] is True
    assert prep["rerunOnNodeRebootAfterSuccess"] is True
    assert prep["constraints"]["maxTaskRetryCount"] == 2
    assert prep["constraints"]["maxWallClockTime"] == "PT02H00M00S"
    assert prep["userIdentity"] == {"autoUser": {"scope": "pool", "elevationLevel": "nonadmin"}}
    assert shlex.split(prep["commandLine"])[:2] == ["/bin/bash", "-c"]
    assert "FANOUT_ENV_KEY" in env_of(prep["environmentSettings"])
    assert prep["containerSettings"]["imageName"].endswith("python:3.11-slim")


def test_without_identity_the_wheel_is_read_through_a_sas_url() -> None:
    prep = sent("job", submission(identity=None))["jobPreparationTask"]
    (resource,) = prep["resourceFiles"]
    assert resource["httpUrl"] == WHEEL_URL + "?sv=x&sig=y"
    assert "identityReference" not in resource


def test_conda_environment_is_handed_to_the_preparation_task() -> None:
    plan = EnvironmentPlan(
        image="myacr.azurecr.io/score:1", conda_file={"dependencies": ["python=3.11", "pip"]}
    )
    prep = sent("job", submission(environment=plan))["jobPreparationTask"]
    assert "FANOUT_CONDA_FILE_B64" in env_of(prep["environmentSettings"])
    assert prep["containerSettings"]["imageName"] == "myacr.azurecr.io/score:1"


def test_agent_tasks_take_whole_nodes_and_run_the_agent_in_the_environment() -> None:
    sub = submission(instances=3)
    tasks = sent("tasks", sub)
    assert [t["id"] for t in tasks] == ["agent-0", "agent-1", "agent-2"]
    for node_id, task in enumerate(tasks):
        assert task["requiredSlots"] == 4
        assert task["constraints"] == {"retentionTime": "P2D", "maxTaskRetryCount": 2}
        assert env_of(task["environmentSettings"]) == {"FANOUT_NODE_ID": str(node_id)}
        bash, dash_c, script = shlex.split(task["commandLine"])
        assert (bash, dash_c) == ("/bin/bash", "-c")
        exec_line = next(line for line in script.splitlines() if line.startswith("exec "))
        argv = shlex.split(exec_line)
        assert argv[1] == "$env_dir/bin/fanout"
        assert f'/fanout/envs/{sub.environment.key}"' in script.splitlines()[1]
        assert argv[2:] == [
            "agent",
            "--run",
            "run-1",
            "--job",
            "score",
            "--node-id",
            str(node_id),
            "--workers",
            "4",
        ]
        assert task["userIdentity"] == {"autoUser": {"scope": "pool", "elevationLevel": "nonadmin"}}


def test_agent_output_is_uploaded_with_the_pool_identity_whatever_the_outcome() -> None:
    (task,) = sent("tasks", submission(instances=1))
    (output,) = task["outputFiles"]
    assert output["filePattern"] == "../std*.txt"
    assert output["uploadOptions"] == {"uploadCondition": "taskcompletion"}
    assert output["destination"]["container"] == {
        "containerUrl": "https://acct.blob.core.windows.net/runs",
        "path": "run-1/score/logs/sys/batch/node_0",
        "identityReference": {"resourceId": IDENTITY},
    }
    (no_identity,) = sent("tasks", submission(instances=1, identity=None))
    assert "outputFiles" not in no_identity  # never a writable SAS


@pytest.mark.parametrize(("kind", "options"), [(PoolKind.GPU, "--gpus all"), (PoolKind.CPU, "")])
def test_container_settings_add_gpus_on_gpu_pools(kind: PoolKind, options: str) -> None:
    (task,) = sent("tasks", submission(kind=kind, instances=1))
    assert task["containerSettings"] == {
        "containerRunOptions": options,
        "imageName": "mcr.microsoft.com/mirror/docker/library/python:3.11-slim",
        "workingDirectory": "taskWorkingDirectory",
    }


def test_pools_without_containers_get_no_container_settings() -> None:
    sub = submission(containers=False, instances=1)
    (task,) = sent("tasks", sub)
    assert "containerSettings" not in task
    assert "containerSettings" not in sent("job", sub)["jobPreparationTask"]


def test_images_from_azure_container_registry_are_pulled_with_the_pool_identity() -> None:
    plan = EnvironmentPlan(image="myacr.azurecr.io/score:1")
    (task,) = sent("tasks", submission(environment=plan, instances=1))
    assert task["containerSettings"]["registry"] == {
        "registryServer": "myacr.azurecr.io",
        "identityReference": {"resourceId": IDENTITY},
    }
    public = EnvironmentPlan(image="mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest")
    (task,) = sent("tasks", submission(environment=public, instances=1))
    assert "registry" not in task["containerSettings"]
