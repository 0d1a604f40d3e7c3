"""The Batch REST objects of one step: its job (with the environment's preparation task) and its tasks.

Pure functions of a :class:`JobSubmission`; the executor gathers the submission (plan, pool, wheel) and
sends what these build. What a node gets, and why:

- **Job preparation task** ``fanout-environment``: downloads the Fanout wheel (the only resource file,
  read with the pool's user-assigned identity, or a short-lived read-only SAS when no identity is
  configured) and builds the job's environment once per node (:mod:`shared.compute.environment`). It
  runs in the same image as the agents, under the pool-wide auto-user, and re-runs harmlessly. Images
  from an Azure Container Registry are pulled with the pool identity (which needs ``AcrPull`` there).
- **Agent tasks** ``agent-<i>``, one per instance: ``fanout agent --run R --job J --node-id i
  --workers W`` via ``/bin/bash -c`` inside the prepared environment; ``required_slots`` = all the node's
  slots, so an agent owns its node's cores and GPUs; ``maxTaskRetryCount`` covers agent crashes. The
  code snapshot is *not* a resource file: the agent reads it from storage itself, with the same identity.
- **Settings** are environment variables: storage endpoints and the identity's client id
  (``FANOUT_STORAGE_*``), ``FANOUT_EXECUTOR=batch``, the run/job/node ids and the node's GPU count. No
  account key or connection string is ever sent to Batch.
- **Logs**: each agent task's ``stdout.txt``/``stderr.txt`` are uploaded (with the pool identity) to
  ``runs/<run>/<job>/logs/sys/batch/node_<i>/`` when the task completes, whatever its outcome.
- The job starts with ``onAllTasksComplete = noaction``; the executor switches it to ``terminatejob``
  only after every task is added (a job with no tasks yet would otherwise end at once).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from azure.batch import models as batch_models

from shared.compute.base import AgentTask, agent_argv
from shared.compute.batch.targets import agent_task_id
from shared.compute.environment import (
    WHEEL_DIR,
    NodeEnvironment,
    agent_script,
    bash_command_line,
    preparation_script,
    preparation_settings,
)
from shared.settings import PoolKind
from shared.storage import logs_path

PREPARATION_TASK_ID = "fanout-environment"
#: How long the environment build may take on a node (conda solves can be slow).
PREPARATION_TIMEOUT = timedelta(hours=2)
#: Retries of a failed environment build on one node (network hiccups while installing).
PREPARATION_RETRIES = 2
#: How long Batch keeps a finished task's files on the node.
RETENTION = timedelta(days=2)
#: Terminate reason Fanout gives when it stops a job (tells "stopped" apart from "failed").
STOP_REASON = "FanoutStopped"


@dataclass(frozen=True)
class AgentPackage:
    """The Fanout wheel as Batch downloads it."""

    url: str
    file_name: str
    version: str = ""
    download_url: str = ""
    identity_resource_id: str | None = None

    def resource_file(self) -> batch_models.ResourceFile:
        """The wheel as a resource file: identity-read when the pool has an identity, else a SAS URL."""
        reference = (
            batch_models.BatchNodeIdentityReference(resource_id=self.identity_resource_id)
            if self.identity_resource_id
            else None
        )
        return batch_models.ResourceFile(
            http_url=self.download_url or self.url,
            file_path=f"{WHEEL_DIR}/{self.file_name}",
            file_mode="0644",
            identity_reference=reference,
        )


@dataclass(frozen=True)
class JobSubmission:
    """Everything needed to build the Batch objects of one step."""

    task: AgentTask
    batch_job_id: str
    pool_id: str
    kind: PoolKind
    task_slots: int
    containers: bool
    gpus: int
    environment: NodeEnvironment
    package: AgentPackage
    retries: int
    settings: dict[str, str] = field(default_factory=dict)
    logs_container_url: str | None = None


def _env(settings: dict[str, str]) -> list[batch_models.EnvironmentSetting]:
    return [batch_models.EnvironmentSetting(name=k, value=v) for k, v in sorted(settings.items())]


def _pool_user() -> batch_models.UserIdentity:
    # One pool-wide auto-user for the preparation task and the agents: the agents run what it built.
    return batch_models.UserIdentity(
        auto_user=batch_models.AutoUserSpecification(
            scope=batch_models.AutoUserScope.POOL,
            elevation_level=batch_models.ElevationLevel.NON_ADMIN,
        )
    )


def container_settings(submission: JobSubmission) -> batch_models.BatchTaskContainerSettings | None:
    """Container settings of the step's tasks (None when the pool runs tasks on the host)."""
    image = submission.environment.image
    if not submission.containers or not image:
        return None
    return batch_models.BatchTaskContainerSettings(
        image_name=image,
        container_run_options="--gpus all" if submission.kind is PoolKind.GPU else "",
        registry=registry_for(image, submission.package.identity_resource_id),
        working_directory=batch_models.ContainerWorkingDirectory.TASK_WORKING_DIRECTORY,
    )


def registry_for(
    image: str, identity_resource_id: str | None
) -> batch_models.ContainerRegistryReference | None:
    """Images in an Azure Container Registry are pulled with the pool identity (it needs AcrPull there);
    other registries must be public or configured on the pool."""
    host = image.split("/", 1)[0] if "/" in image else ""
    if not identity_resource_id or not host.endswith(".azurecr.io"):
        return None
    return batch_models.ContainerRegistryReference(
        registry_server=host,
        identity_reference=batch_models.BatchNodeIdentityReference(resource_id=identity_resource_id),
    )


def common_settings(submission: JobSubmission) -> dict[str, str]:
    """Environment variables every task of the step gets."""
    values = {
        **submission.settings,
        "FANOUT_EXECUTOR": "batch",
        "FANOUT_RUN_ID": submission.task.run_id,
        "FANOUT_JOB": submission.task.job,
        "PYTHONUNBUFFERED": "1",
    }
    # The agent gives each worker one GPU; tell it how many the node has (a GPU target without a
    # count leaves it to nvidia-smi on the node).
    if submission.kind is PoolKind.CPU:
        values["FANOUT_GPU_COUNT"] = "0"
    elif submission.gpus > 0:
        values["FANOUT_GPU_COUNT"] = str(submission.gpus)
    return values


def build_job(submission: JobSubmission) -> batch_models.BatchJobCreateOptions:
    """The step's Batch job, with its environment preparation task."""
    task = submission.task
    preparation = batch_models.BatchJobPreparationTask(
        id=PREPARATION_TASK_ID,
        command_line=bash_command_line(preparation_script(submission.environment)),
        container_settings=container_settings(submission),
        resource_files=[submission.package.resource_file()],
        environment_settings=_env(preparation_settings(submission.environment)),
        constraints=batch_models.BatchTaskConstraints(
            max_wall_clock_time=PREPARATION_TIMEOUT,
            retention_time=RETENTION,
            max_task_retry_count=PREPARATION_RETRIES,
        ),
        wait_for_success=True,
        user_identity=_pool_user(),
        rerun_on_node_reboot_after_success=True,
    )
    return batch_models.BatchJobCreateOptions(
        id=submission.batch_job_id,
        display_name=f"fanout {task.run_id} / {task.job}"[:1024],
        pool_info=batch_models.BatchPoolInfo(pool_id=submission.pool_id),
        job_preparation_task=preparation,
        common_environment_settings=_env(common_settings(submission)),
        constraints=batch_models.BatchJobConstraints(max_task_retry_count=submission.retries),
        all_tasks_complete_mode=batch_models.BatchAllTasksCompleteMode.NO_ACTION,
        task_failure_mode=batch_models.BatchTaskFailureMode.NO_ACTION,
        metadata=[
            batch_models.BatchMetadataItem(name="fanout-run", value=task.run_id),
            batch_models.BatchMetadataItem(name="fanout-job", value=task.job),
        ],
    )


def node_logs_prefix(run_id: str, job: str, node_id: int) -> str:
    """Where a node's Batch-level files (task stdout/stderr) go in the ``runs`` container."""
    return logs_path(run_id, job, "sys", "batch", f"node_{node_id}")


def _output_files(submission: JobSubmission, node_id: int) -> list[batch_models.OutputFile]:
    if not (submission.logs_container_url and submission.package.identity_resource_id):
        return []  # uploads need the pool identity: Fanout never hands Batch a writable SAS
    destination = batch_models.OutputFileDestination(
        container=batch_models.OutputFileBlobContainerDestination(
            container_url=submission.logs_container_url,
            path=node_logs_prefix(submission.task.run_id, submission.task.job, node_id),
            identity_reference=batch_models.BatchNodeIdentityReference(
                resource_id=submission.package.identity_resource_id
            ),
        )
    )
    return [
        batch_models.OutputFile(
            file_pattern="../std*.txt",
            destination=destination,
            upload_options=batch_models.OutputFileUploadConfiguration(
                upload_condition=batch_models.OutputFileUploadCondition.TASK_COMPLETION
            ),
        )
    ]


def build_tasks(submission: JobSubmission) -> list[batch_models.BatchTaskCreateOptions]:
    """One agent task per instance; task ``i`` is node ``i``."""
    tasks = []
    for node_id in range(submission.task.instance_count):
        script = agent_script(submission.environment, agent_argv(submission.task, node_id))
        tasks.append(
            batch_models.BatchTaskCreateOptions(
                id=agent_task_id(node_id),
                display_name=f"{submission.task.job} node {node_id}",
                command_line=bash_command_line(script),
                container_settings=container_settings(submission),
                environment_settings=_env({"FANOUT_NODE_ID": str(node_id)}),
                constraints=batch_models.BatchTaskConstraints(
                    retention_time=RETENTION, max_task_retry_count=submission.retries
                ),
                required_slots=submission.task_slots,
                user_identity=_pool_user(),
                output_files=_output_files(submission, node_id) or None,
            )
        )
    return tasks
