"""Batch states and failures, in words a user can act on.

Batch reports tasks as active / preparing / running / completed, with a ``failureInfo`` (category, code,
message) when something went wrong before or while the command ran, and a job-level scheduling error
when the job could not start. This module maps those onto :class:`shared.compute.base.AgentStatus`:

=======================================  ==========  ================================================
Batch                                    AgentState  detail (examples)
=======================================  ==========  ================================================
task active, no node yet                 pending     waiting for a node of pool P (scales from zero)
task active, environment build failed    failed      preparation failed on node N: exit 1, stderr at …
task preparing                           pending     node N is downloading the image / files
task running                             running     running on node N (attempt k after a crash;
                                                     re-run after a spot preemption)
completed, success                       succeeded   exited 0
completed, job stopped by Fanout         stopped     stopped by Fanout
completed, failure                       failed      resource file / image / exit-code explanation
job scheduling error                     failed      the error's code and message
=======================================  ==========  ================================================

A failed environment build fails the agents at once (it fails the same way on every node) instead of
leaving them pending until the step's first-task timeout. :func:`shared.compute.base.agents_report` turns
a list of statuses into the paragraph for ``job_result.txt``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from azure.batch import models as batch_models

from shared.compute.base import AgentState, AgentStatus, agents_report
from shared.compute.batch.specs import STOP_REASON

__all__ = [
    "PreparationFailure",
    "agent_status",
    "agents_report",
    "failure_sentence",
    "job_stopped",
    "scheduling_error",
]

_RESOURCE_FILE_CODES = {
    "BlobAccessDenied": "access was denied — the pool's identity needs 'Storage Blob Data Reader' on the "
    "storage account (or the SAS expired)",
    "BlobNotFound": "the file does not exist — run `azd deploy` (its post-deploy hook uploads the wheel) or "
    "fix FANOUT_AGENT_PACKAGE_URL",
    "BlobDownloadMiscError": "the download failed",
    "BlobDownloadTimedOut": "the download timed out",
    "ResourceContainerAccessDenied": "access to the container was denied — check the pool identity's roles",
    "ResourceContainerListMiscError": "the container could not be listed",
    "DiskFull": "the node's disk is full",
    "ResourceDirectoryCreateFailed": "the node could not create the download folder",
    "ResourceFileCreateFailed": "the node could not create the file",
    "ResourceFileWriteFailed": "the node could not write the file",
}
_CONTAINER_HINT = (
    "the container could not be started — check the image name, that the pool can pull it (registry "
    "access with the pool identity: AcrPull), and that the pool has a container configuration"
)


@dataclass(frozen=True)
class PreparationFailure:
    """The environment build failed on one node (after its retries)."""

    node_id: str
    exit_code: int | None
    code: str
    message: str
    stderr_tail: str = ""

    def sentence(self) -> str:
        """The failure in words for ``job_result.txt``, ending with the tail of the build's stderr."""
        what = f"exit code {self.exit_code}" if self.exit_code is not None else self.code or "failed"
        text = f"preparing the environment failed on Batch node {self.node_id} ({what}"
        text += f": {self.message})" if self.message else ")"
        if self.stderr_tail:
            text += f"; its last output:\n{self.stderr_tail}"
        return text


def failure_sentence(info: batch_models.BatchTaskFailureInfo | None, exit_code: int | None) -> str:
    """One sentence for a task's failure info (resource files, container, exit code, task ended)."""
    if info is None:
        return f"the agent exited with code {exit_code}" if exit_code is not None else "the task failed"
    code = info.code or ""
    message = (info.message or "").strip()
    if code in _RESOURCE_FILE_CODES:
        sentence = f"could not download the Fanout wheel: {_RESOURCE_FILE_CODES[code]} ({code}: {message})"
    elif code.startswith("Container"):
        sentence = f"{_CONTAINER_HINT} ({code}: {message})"
    elif code == "FailureExitCode":
        sentence = f"the agent exited with code {exit_code}"
    elif code == "TaskEnded":
        sentence = f"the task was ended by Batch ({message or 'the job was terminated'})"
    elif code in {"CommandProgramNotFound", "CommandLaunchFailed"}:
        sentence = f"the node could not start /bin/bash ({code}: {message}) — use a Linux image with bash"
    else:
        sentence = f"{code or 'failure'}: {message}" if message else code or "the task failed"
    return sentence


def _attempts(info: batch_models.BatchTaskExecutionInfo | None) -> str:
    if info is None:
        return ""
    notes = []
    if info.retry_count:
        notes.append(f"retried {info.retry_count}× after the agent crashed")
    if info.requeue_count:
        notes.append(
            f"re-run {info.requeue_count}× by Batch (node preempted or recovered; harmless: work already "
            "recorded is not redone)"
        )
    return f" ({'; '.join(notes)})" if notes else ""


def _completed(task: batch_models.BatchTask, node_id: int, *, stopped: bool, attempts: str) -> AgentStatus:
    info = task.execution_info
    exit_code = info.exit_code if info else None
    if info is not None and info.result == batch_models.BatchTaskExecutionResult.SUCCESS:
        return AgentStatus(
            node_id=node_id, state=AgentState.SUCCEEDED, exit_code=exit_code, detail="exited 0"
        )
    if stopped:
        return AgentStatus(
            node_id=node_id, state=AgentState.STOPPED, exit_code=exit_code, detail="stopped by Fanout"
        )
    node = task.node_info.node_id if task.node_info else None
    where = f" on Batch node {node}" if node else ""
    sentence = failure_sentence(info.failure_info if info else None, exit_code)
    return AgentStatus(
        node_id=node_id, state=AgentState.FAILED, exit_code=exit_code, detail=f"{sentence}{where}{attempts}"
    )


def _waiting(
    node_id: int,
    *,
    pool_id: str,
    stopped: bool,
    attempts: str,
    preparation_failures: Sequence[PreparationFailure],
) -> AgentStatus:
    if stopped:
        return AgentStatus(
            node_id=node_id, state=AgentState.STOPPED, detail="stopped by Fanout before it ran"
        )
    if preparation_failures:
        detail = "; ".join(f.sentence() for f in preparation_failures)
        return AgentStatus(node_id=node_id, state=AgentState.FAILED, detail=detail)
    return AgentStatus(
        node_id=node_id,
        state=AgentState.PENDING,
        detail=f"waiting for a node of pool '{pool_id}' (pools scale up from zero within minutes; GPU "
        f"pools need GPU quota){attempts}",
    )


def agent_status(
    task: batch_models.BatchTask,
    node_id: int,
    *,
    pool_id: str,
    stopped: bool,
    preparation_failures: Sequence[PreparationFailure] = (),
) -> AgentStatus:
    """The status of one agent task.

    Args:
        task: the Batch task (state, execution info, node info).
        node_id: Fanout's node id of the task.
        pool_id: the pool it runs on (for the words).
        stopped: the job was terminated by Fanout's ``stop``.
        preparation_failures: environment builds that failed on nodes of this job.
    """
    attempts = _attempts(task.execution_info)
    node = task.node_info.node_id if task.node_info and task.node_info.node_id else None
    if task.state == batch_models.BatchTaskState.COMPLETED:
        return _completed(task, node_id, stopped=stopped, attempts=attempts)
    if task.state == batch_models.BatchTaskState.RUNNING:
        where = f" on Batch node {node}" if node else ""
        return AgentStatus(node_id=node_id, state=AgentState.RUNNING, detail=f"running{where}{attempts}")
    if task.state == batch_models.BatchTaskState.PREPARING:
        return AgentStatus(
            node_id=node_id,
            state=AgentState.PENDING,
            detail=f"Batch node {node or '?'} is preparing the task (pulling the image, building the "
            f"environment){attempts}",
        )
    return _waiting(
        node_id,
        pool_id=pool_id,
        stopped=stopped,
        attempts=attempts,
        preparation_failures=preparation_failures,
    )


def job_stopped(job: batch_models.BatchJob) -> bool:
    """True when Fanout's ``stop`` terminated the job."""
    info = job.execution_info
    return bool(info and info.termination_reason == STOP_REASON)


def scheduling_error(job: batch_models.BatchJob) -> str | None:
    """The job's scheduling error as a sentence, if Batch could not start it."""
    info = job.execution_info
    error = info.scheduling_error if info else None
    if error is None:
        return None
    details = "; ".join(f"{d.name}={d.value}" for d in (error.details or []) if d.name)
    text = f"Batch could not start the job: {error.code}: {error.message or ''}".rstrip(": ")
    return f"{text} ({details})" if details else text
