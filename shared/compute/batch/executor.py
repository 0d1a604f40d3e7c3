"""The Azure Batch executor: one Batch job per step, one agent task per instance.

``start`` (idempotent):

1. read the run plan; check the settings nodes need (identity-based storage URLs, never keys:
   :func:`.submission.node_settings`); find the job's compute target (:func:`resolve_target`) and check
   its environment;
2. find the Fanout wheel (its ETag is part of the environment hash, so a redeployed wheel is rebuilt on
   the nodes) and how nodes read it: the pool identity, else a short-lived read-only user-delegation SAS
   (:func:`.submission.agent_package`);
3. read the pool (task slots per node, whether it runs containers; the target's values when the pool
   cannot be read) — a missing pool fails here, with the compute name (:func:`.submission.pool_shape`);
4. create the Batch job (``JobExists`` → continue; an already finished job → nothing to do);
5. add the agent tasks (stable ids; ``TaskExists`` counts as added);
6. only then set ``onAllTasksComplete = terminatejob`` (``update_job``);
7. write what was submitted to ``logs/sys/batch/submission.txt``.

``stop`` terminates the Batch job (Batch kills running agents; fire-and-forget, the orchestrator polls).
``status`` maps the tasks to :class:`AgentStatus` with actionable details (:mod:`.status` reads them,
:mod:`.diagnostics` words them) and keeps ``logs/sys/batch/agents.txt`` current; ``report`` adds the
environment build's output of failed nodes and returns the paragraph for ``job_result.txt``.
"""

from __future__ import annotations

import logging
from typing import Any

from azure.batch import BatchClient
from azure.batch import models as batch_models
from azure.batch.models._models import BatchJobTerminateOptions
from azure.core.credentials import TokenCredential
from azure.core.exceptions import AzureError, ResourceExistsError, ResourceNotFoundError

from shared.compute.base import AgentStatus, AgentTask
from shared.compute.batch.diagnostics import PreparationFailure, agents_report
from shared.compute.batch.specs import STOP_REASON, JobSubmission, build_job, build_tasks
from shared.compute.batch.status import read_statuses
from shared.compute.batch.submission import agent_package, node_settings, pool_shape
from shared.compute.batch.targets import batch_job_id, default_workers, resolve_target
from shared.compute.batch.tasks import add_tasks
from shared.compute.environment import environment_problems, node_environment
from shared.errors import ComputeError, ConfigurationError
from shared.runs import load_plan
from shared.settings import Settings
from shared.storage import Container, StorageClients, azure_credential, logs_path

logger = logging.getLogger(__name__)

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
        """The Batch client: the one given, else one made from the settings on first use."""
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
        package = agent_package(self._settings, self._clients)
        task_slots, containers = pool_shape(self.client, self._settings, compute_name, target)
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
        statuses, failures = read_statuses(self.client, run_id, job, with_output=with_output)
        self._record(run_id, job, statuses)
        return statuses, failures

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
