"""The Azure Batch executor: one Batch job per step, one agent task per instance.

``start`` (idempotent):

1. read the run plan; check the settings nodes need (identity-based storage URLs, never keys); find the
   job's compute target (:func:`resolve_target`) and check its environment;
2. find the Fanout wheel (its ETag is part of the environment hash, so a redeployed wheel is rebuilt on
   the nodes) and how nodes read it: the pool identity, else a short-lived read-only user-delegation SAS;
3. read the pool (task slots per node, whether it runs containers; the target's values when the pool
   cannot be read) — a missing pool fails here, with the compute name;
4. create the Batch job (``JobExists`` → continue; an already finished job → nothing to do);
5. add the agent tasks (stable ids; ``TaskExists`` counts as added);
6. only then set ``onAllTasksComplete = terminatejob`` (``update_job``);
7. write what was submitted to ``logs/sys/batch/submission.txt``.

``stop`` terminates the Batch job (Batch kills running agents; fire-and-forget, the orchestrator polls).
``status`` maps the tasks to :class:`AgentStatus` with actionable details (:mod:`.diagnostics`) and keeps
``logs/sys/batch/agents.txt`` current; ``report`` adds the environment build's output of failed nodes and
returns the paragraph for ``job_result.txt``.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import unquote, urlparse

from azure.batch import BatchClient
from azure.batch import models as batch_models
from azure.batch.models._models import BatchJobTerminateOptions
from azure.core.credentials import TokenCredential
from azure.core.exceptions import AzureError, HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import BlobSasPermissions, UserDelegationKey, generate_blob_sas

from shared.compute.base import AgentState, AgentStatus, AgentTask
from shared.compute.batch.diagnostics import (
    PreparationFailure,
    agent_status,
    agents_report,
    job_stopped,
    scheduling_error,
)
from shared.compute.batch.specs import (
    STOP_REASON,
    AgentPackage,
    JobSubmission,
    build_job,
    build_tasks,
)
from shared.compute.batch.targets import batch_job_id, default_workers, node_id_of, resolve_target
from shared.compute.batch.tasks import add_tasks
from shared.compute.environment import environment_problems, node_environment
from shared.errors import ComputeError, ConfigurationError
from shared.runs import load_plan
from shared.settings import ComputeTarget, Settings
from shared.storage import Container, StorageClients, azure_credential, logs_path

logger = logging.getLogger(__name__)

#: Lifetime of the read-only SAS used when the pool has no identity (nodes may take a while to appear).
SAS_LIFETIME = timedelta(hours=12)
#: Bytes of a failed environment build's stderr kept in the report.
STDERR_TAIL = 2000
_FINISHED_JOB_STATES = {
    batch_models.BatchJobState.COMPLETED,
    batch_models.BatchJobState.TERMINATING,
    batch_models.BatchJobState.DELETING,
}


def make_batch_client(
    settings: Settings, credential: TokenCredential | None = None, **kwargs: Any
) -> BatchClient:
    """A Batch client for ``settings.batch_endpoint`` with Entra ID (the configured identity).

    ``kwargs`` go to the azure-core pipeline (e.g. ``transport=`` in tests, retry settings).

    Raises:
        ConfigurationError: no Batch endpoint is configured.
    """
    if not settings.batch_endpoint:
        raise ConfigurationError(
            "the Batch executor needs FANOUT_BATCH_ENDPOINT (https://<account>.<region>.batch.azure.com)"
        )
    return BatchClient(
        endpoint=settings.batch_endpoint, credential=credential or azure_credential(settings), **kwargs
    )


def node_settings(settings: Settings) -> dict[str, str]:
    """The settings agents on Batch nodes need, as environment variables (never a key or connection string).

    Raises:
        ConfigurationError: storage is not configured with account URLs (identity-based access).
    """
    if not (settings.storage_blob_url and settings.storage_queue_url and settings.storage_table_url):
        raise ConfigurationError(
            "the Batch executor needs FANOUT_STORAGE_BLOB_URL, FANOUT_STORAGE_QUEUE_URL and "
            "FANOUT_STORAGE_TABLE_URL: Batch nodes reach storage with the pool's managed identity and are "
            "never given account keys or connection strings"
        )
    values = {
        "FANOUT_STORAGE_BLOB_URL": settings.storage_blob_url,
        "FANOUT_STORAGE_QUEUE_URL": settings.storage_queue_url,
        "FANOUT_STORAGE_TABLE_URL": settings.storage_table_url,
        "FANOUT_DEFAULT_DATASTORE": settings.default_datastore,
    }
    if settings.storage_client_id:
        values["FANOUT_STORAGE_CLIENT_ID"] = settings.storage_client_id
    if settings.telemetry is not None:
        values["FANOUT_TELEMETRY"] = settings.telemetry.value
    if settings.applicationinsights_connection_string:
        values["APPLICATIONINSIGHTS_CONNECTION_STRING"] = settings.applicationinsights_connection_string
    return values


def read_sas_url(
    url: str, *, account_name: str, container: str, blob: str, key: UserDelegationKey, now: datetime
) -> str:
    """``url`` with a read-only user-delegation SAS for one blob, valid from 5 minutes ago for
    :data:`SAS_LIFETIME` (https only)."""
    token = generate_blob_sas(
        account_name=account_name,
        container_name=container,
        blob_name=blob,
        user_delegation_key=key,
        permission=BlobSasPermissions(read=True),
        start=now - timedelta(minutes=5),
        expiry=now + SAS_LIFETIME,
        protocol="https",
    )
    return f"{url}?{token}"


class BatchExecutor:
    """Runs a step's agents as tasks of one Azure Batch job (see the module docstring).

    Args:
        settings: Fanout settings (Batch endpoint, compute targets, storage URLs, identity, wheel URL).
        clients: storage clients (the run plan, the wheel's properties, the step's logs).
        client: a Batch client; by default one from :func:`make_batch_client`.
    """

    def __init__(
        self, settings: Settings, clients: StorageClients, client: BatchClient | None = None
    ) -> None:
        self._settings = settings
        self._clients = clients
        self._client = client
        self._last_written: dict[str, str] = {}

    @property
    def client(self) -> BatchClient:
        if self._client is None:
            self._client = make_batch_client(self._settings)
        return self._client

    # --- start ------------------------------------------------------------------------------------

    def start(self, task: AgentTask) -> None:
        """Submit the step's Batch job and agent tasks (a second call adds nothing).

        Raises:
            ConfigurationError: settings the executor needs are missing or name no pool for the job.
            ComputeError: the pool does not exist, the environment cannot work, or Batch refused the job.
        """
        submission = self._submission(task)
        job_id = submission.batch_job_id
        if not self._create_job(submission):
            return
        added = add_tasks(self.client, job_id, build_tasks(submission))
        self.client.update_job(
            job_id,
            batch_models.BatchJobUpdateOptions(
                all_tasks_complete_mode=batch_models.BatchAllTasksCompleteMode.TERMINATE_JOB
            ),
        )
        env = submission.environment
        self._write_log(
            task.run_id,
            task.job,
            "submission.txt",
            "\n".join(
                [
                    f"Batch job:    {job_id}",
                    f"pool:         {submission.pool_id} ({submission.kind.value}, {submission.task_slots} "
                    "task slot(s) per node, each agent takes all of them)",
                    f"agents:       {len(added)} task(s): {', '.join(sorted(added))}",
                    f"workers:      {submission.task.workers_per_agent} per agent",
                    f"image:        {env.image or '(host, no container)'}",
                    f"environment:  {env.key} ($AZ_BATCH_NODE_SHARED_DIR/fanout/envs/{env.key})",
                    f"agent wheel:  {submission.package.url}",
                    f"task output:  {logs_path(task.run_id, task.job, 'sys', 'batch')}/node_<n>/",
                    "",
                ]
            ),
        )
        logger.info("started %d agent task(s) in Batch job %s", len(added), job_id)

    def _submission(self, task: AgentTask) -> JobSubmission:
        try:
            plan = load_plan(self._clients, task.run_id)
            job = plan.job(task.job)
        except KeyError as exc:
            raise ComputeError(f"run '{task.run_id}' has no job '{task.job}'", run_id=task.run_id) from exc
        node_values = node_settings(self._settings)  # configuration first: nothing is sent before it
        compute_name, target = resolve_target(
            self._settings, task.compute or job.compute or plan.default_compute
        )
        problems = environment_problems(job.environment)
        if problems:
            raise ComputeError(
                f"job '{task.job}' cannot run on Batch: " + "; ".join(problems),
                run_id=task.run_id,
                job=task.job,
            )
        package = self._agent_package()
        task_slots, containers = self._pool_shape(compute_name, target)
        if job.environment and job.environment.image and not containers:
            raise ComputeError(
                f"job '{task.job}' names the image '{job.environment.image}', but pool "
                f"'{target.pool_id}' (compute '{compute_name}') runs no containers: use a "
                "container-enabled pool or drop the image",
                run_id=task.run_id,
                job=task.job,
            )
        workers = task.workers_per_agent or default_workers(target)
        environment = node_environment(
            job.environment,
            default_image=target.image if containers else None,
            agent_package=package.file_name,
            agent_package_version=package.version,
        )
        blob_url = (self._settings.storage_blob_url or "").rstrip("/")
        return JobSubmission(
            task=task.model_copy(update={"workers_per_agent": workers, "compute": compute_name}),
            batch_job_id=batch_job_id(task.run_id, task.job),
            pool_id=target.pool_id,
            kind=target.kind,
            task_slots=task_slots,
            containers=containers,
            gpus=target.gpus,
            environment=environment,
            package=package,
            retries=self._settings.batch_task_retries,
            settings=node_values,
            logs_container_url=f"{blob_url}/{Container.RUNS.value}" if blob_url else None,
        )

    def _pool_shape(self, compute_name: str, target: ComputeTarget) -> tuple[int, bool]:
        """(task slots per node, runs containers) from the pool itself; the target's values if unreadable."""
        try:
            pool = self.client.get_pool(
                target.pool_id, select=["id", "vmSize", "taskSlotsPerNode", "virtualMachineConfiguration"]
            )
        except ResourceNotFoundError as exc:
            raise ComputeError(
                f"Batch pool '{target.pool_id}' (compute '{compute_name}') does not exist in "
                f"{self._settings.batch_endpoint}: deploy the pools (`azd provision`) or fix "
                "FANOUT_COMPUTE_TARGETS",
                compute=compute_name,
            ) from exc
        except HttpResponseError as exc:
            logger.warning(
                "cannot read Batch pool %s (%s); using FANOUT_COMPUTE_TARGETS",
                target.pool_id,
                exc.status_code,
            )
            return target.task_slots, target.containers
        slots = pool.task_slots_per_node or target.task_slots
        if slots != target.task_slots:
            logger.warning(
                "pool %s has %d task slots per node (settings say %d)", pool.id, slots, target.task_slots
            )
        vm = pool.virtual_machine_configuration
        containers = vm.container_configuration is not None if vm is not None else target.containers
        return slots, containers

    def _agent_package(self) -> AgentPackage:
        url = self._settings.agent_package_url
        if not url:
            raise ConfigurationError(
                "the Batch executor needs FANOUT_AGENT_PACKAGE_URL, the blob URL of the Fanout wheel that "
                "nodes install (`azd deploy` uploads it)"
            )
        base_url = url.split("?", 1)[0]
        file_name = PurePosixPath(unquote(urlparse(base_url).path)).name
        if not file_name.endswith(".whl"):
            raise ConfigurationError(f"FANOUT_AGENT_PACKAGE_URL must name a wheel (*.whl), got {url}")
        identity = self._settings.batch_identity_resource_id
        located = self._own_blob(base_url)
        version = ""
        download_url = url
        if located is not None:
            container, blob = located
            blob_client = self._clients.blob.get_blob_client(container, blob)
            try:
                version = str(blob_client.get_blob_properties().etag or "")
            except ResourceNotFoundError as exc:
                raise ComputeError(
                    f"the Fanout wheel {base_url} does not exist: run `azd deploy` (its post-deploy hook "
                    "builds and uploads it) or fix FANOUT_AGENT_PACKAGE_URL"
                ) from exc
            if not identity and "?" not in url:
                now = datetime.now(UTC)
                key = self._clients.blob.get_user_delegation_key(
                    now - timedelta(minutes=5), now + SAS_LIFETIME
                )
                account = self._clients.blob.account_name or ""
                download_url = read_sas_url(
                    base_url, account_name=account, container=container, blob=blob, key=key, now=now
                )
        return AgentPackage(
            url=base_url,
            file_name=file_name,
            version=version,
            download_url=download_url,
            identity_resource_id=identity,
        )

    def _own_blob(self, url: str) -> tuple[str, str] | None:
        """(container, blob) when ``url`` is a blob of Fanout's own storage account."""
        account_url = self._clients.blob.url.rstrip("/") + "/"
        if not url.startswith(account_url):
            return None
        container, _, blob = unquote(url[len(account_url) :]).partition("/")
        return (container, blob) if container and blob else None

    def _create_job(self, submission: JobSubmission) -> bool:
        """Create the job; False when it already exists and has finished (nothing to start)."""
        try:
            self.client.create_job(build_job(submission))
            return True
        except ResourceExistsError as exc:
            code = getattr(getattr(exc, "error", None), "code", "")
            if code not in {"JobExists", ""}:
                raise ComputeError(
                    f"Batch refused job '{submission.batch_job_id}': {code}: {exc.message}",
                    batch_job=submission.batch_job_id,
                ) from exc
        existing = self.client.get_job(submission.batch_job_id)
        if existing.state in _FINISHED_JOB_STATES:
            logger.info("Batch job %s already %s; nothing to start", existing.id, existing.state)
            return False
        return True

    # --- stop -------------------------------------------------------------------------------------

    def stop(self, run_id: str, job: str) -> None:
        """Terminate the step's Batch job; running agents are killed. A missing or finished job is fine."""
        job_id = batch_job_id(run_id, job)
        try:
            self.client.begin_terminate_job(
                job_id, BatchJobTerminateOptions(termination_reason=STOP_REASON), polling_interval=5
            )
        except ResourceNotFoundError:
            logger.info("Batch job %s does not exist; nothing to stop", job_id)
        except ResourceExistsError:
            logger.info("Batch job %s is already ending", job_id)

    # --- status -----------------------------------------------------------------------------------

    def status(self, run_id: str, job: str) -> list[AgentStatus]:
        """The state of each agent task, by node id (empty when the job was never started)."""
        statuses, _failures = self._status(run_id, job, with_output=False)
        return statuses

    def report(self, run_id: str, job: str) -> str:
        """The agents' paragraph for ``job_result.txt``; failed environment builds include their output.

        Also written to ``logs/sys/batch/report.txt``.
        """
        statuses, failures = self._status(run_id, job, with_output=True)
        lines = [agents_report(statuses)]
        for failure in failures:
            if failure.stderr_tail:
                name = f"node_{failure.node_id}-environment-stderr.txt"
                self._write_log(run_id, job, name, failure.stderr_tail)
        lines.append(
            f"Batch job {batch_job_id(run_id, job)}; each agent's stdout/stderr: "
            f"{logs_path(run_id, job, 'sys', 'batch')}/node_<n>/."
        )
        text = "\n".join(lines)
        self._write_log(run_id, job, "report.txt", text + "\n")
        return text

    def _status(
        self, run_id: str, job: str, *, with_output: bool
    ) -> tuple[list[AgentStatus], list[PreparationFailure]]:
        job_id = batch_job_id(run_id, job)
        try:
            batch_job = self.client.get_job(job_id)
        except ResourceNotFoundError:
            return [], []
        pool_id = (batch_job.pool_info.pool_id or "") if batch_job.pool_info else ""
        tasks = list(self.client.list_tasks(job_id))
        stopped = job_stopped(batch_job)
        waiting = any(t.state == batch_models.BatchTaskState.ACTIVE for t in tasks) and not stopped
        failures = self._preparation_failures(job_id, pool_id, with_output=with_output) if waiting else []
        job_error = scheduling_error(batch_job)
        pool_note = self._pool_problem(pool_id) if waiting and not failures else None
        statuses = []
        for batch_task in tasks:
            try:
                node_id = node_id_of(batch_task.id)
            except ComputeError:
                continue
            status = agent_status(
                batch_task, node_id, pool_id=pool_id, stopped=stopped, preparation_failures=failures
            )
            if status.state is AgentState.PENDING and job_error:
                status = AgentStatus(node_id=node_id, state=AgentState.FAILED, detail=job_error)
            elif status.state is AgentState.PENDING and pool_note:
                status = status.model_copy(update={"detail": f"{status.detail}; {pool_note}"})
            statuses.append(status)
        statuses.sort(key=lambda s: s.node_id)
        self._record(run_id, job, statuses)
        return statuses, failures

    def _preparation_failures(
        self, job_id: str, pool_id: str, *, with_output: bool
    ) -> list[PreparationFailure]:
        failures = []
        for item in self.client.list_job_preparation_and_release_task_status(job_id):
            info = item.job_preparation_task_execution_info
            if info is None or info.state != batch_models.BatchJobPreparationTaskState.COMPLETED:
                continue
            if info.result != batch_models.BatchTaskExecutionResult.FAILURE:
                continue
            tail = ""
            if with_output and info.task_root_directory and item.node_id:
                tail = self._node_file_tail(item.pool_id or pool_id, item.node_id, info.task_root_directory)
            failure = info.failure_info
            failures.append(
                PreparationFailure(
                    node_id=item.node_id or "?",
                    exit_code=info.exit_code,
                    code=(failure.code or "") if failure else "",
                    message=(failure.message or "").strip() if failure else "",
                    stderr_tail=tail,
                )
            )
        return failures

    def _node_file_tail(self, pool_id: str, node_id: str, task_root: str) -> str:
        try:
            data = b"".join(self.client.download_node_file(pool_id, node_id, f"{task_root}/stderr.txt"))
        except HttpResponseError as exc:
            logger.info("cannot read the environment build's stderr on %s (%s)", node_id, exc.status_code)
            return ""
        return data[-STDERR_TAIL:].decode("utf-8", errors="replace").strip()

    def _pool_problem(self, pool_id: str) -> str | None:
        """Why the pool is not growing (resize or autoscale errors), if Batch says."""
        try:
            pool = self.client.get_pool(pool_id, select=["id", "resizeErrors", "autoScaleRun"])
        except ResourceNotFoundError:
            return f"pool '{pool_id}' does not exist"
        except HttpResponseError:
            return None
        problems = [f"{e.code}: {e.message}" for e in pool.resize_errors or []]
        if pool.auto_scale_run and pool.auto_scale_run.error:
            error = pool.auto_scale_run.error
            problems.append(f"autoscale formula: {error.code}: {error.message}")
        if not problems:
            return None
        text = "the pool cannot grow: " + "; ".join(problems)
        if "quota" in text.lower():
            text += " — request more cores for this VM family on the Batch account (see docs/deploy.md)"
        return text

    # --- logs -------------------------------------------------------------------------------------

    def _record(self, run_id: str, job: str, statuses: list[AgentStatus]) -> None:
        text = "\n".join(
            f"node {s.node_id}: {s.state.value}"
            + (f" (exit code {s.exit_code})" if s.exit_code is not None else "")
            + (f": {s.detail}" if s.detail else "")
            for s in statuses
        )
        if statuses and self._last_written.get(f"{run_id}/{job}") != text:
            self._write_log(run_id, job, "agents.txt", text + "\n")
            self._last_written[f"{run_id}/{job}"] = text

    def _write_log(self, run_id: str, job: str, name: str, text: str) -> None:
        path = logs_path(run_id, job, "sys", "batch", name)
        try:
            self._clients.container(Container.RUNS).upload_blob(path, text.encode(), overwrite=True)
        except AzureError as exc:  # logs are best effort: never fail the step because of them
            logger.warning("could not write %s to the runs container: %s", path, exc)
