"""Batch task states and failures → AgentStatus with words a user can act on."""

from __future__ import annotations

from typing import Any

import pytest
from azure.batch import models as batch_models

from shared.compute.base import AgentState, AgentStatus, agents_report
from shared.compute.batch.diagnostics import (
    PreparationFailure,
    agent_status,
    job_stopped,
    scheduling_error,
)


def task(state: str, **execution: Any) -> batch_models.BatchTask:
    body: dict[str, Any] = {"id": "agent-0", "state": state}
    if execution:
        body["executionInfo"] = {"retryCount": 0, "requeueCount": 0, **execution}
    if state in {"running", "completed", "preparing"}:
        body["nodeInfo"] = {"nodeId": "tvmps_123", "poolId": "fanout-gpu"}
    return batch_models.BatchTask(body)


def status(t: batch_models.BatchTask, **kwargs: Any) -> AgentStatus:
    return agent_status(t, 0, pool_id="fanout-gpu", stopped=kwargs.pop("stopped", False), **kwargs)


def test_waiting_tasks_are_pending_and_say_the_pool_scales_up() -> None:
    result = status(task("active"))
    assert result.state is AgentState.PENDING
    assert "pool 'fanout-gpu'" in result.detail
    assert "GPU quota" in result.detail


def test_preparing_and_running_tasks_name_the_node() -> None:
    assert status(task("preparing")).state is AgentState.PENDING
    assert "tvmps_123" in status(task("preparing")).detail
    running = status(task("running", startTime="2026-01-01T00:00:00Z"))
    assert running.state is AgentState.RUNNING
    assert running.detail == "running on Batch node tvmps_123"


def test_retries_and_spot_requeues_are_explained() -> None:
    running = status(task("running", retryCount=1, requeueCount=2))
    assert "retried 1× after the agent crashed" in running.detail
    assert "re-run 2× by Batch (node preempted or recovered; harmless" in running.detail


def test_success_is_exit_zero() -> None:
    result = status(task("completed", exitCode=0, result="success"))
    assert (result.state, result.exit_code) == (AgentState.SUCCEEDED, 0)


def test_a_crashing_agent_fails_with_its_exit_code_and_attempts() -> None:
    failure = {
        "category": "usererror",
        "code": "FailureExitCode",
        "message": "The task exited with an exit code",
    }
    result = status(task("completed", exitCode=137, result="failure", failureInfo=failure, retryCount=2))
    assert result.state is AgentState.FAILED
    assert result.exit_code == 137
    assert (
        result.detail
        == "the agent exited with code 137 on Batch node tvmps_123 (retried 2× after the agent crashed)"
    )


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("BlobAccessDenied", "the pool's identity needs 'Storage Blob Data Reader'"),
        ("BlobNotFound", "run `azd deploy`"),
        ("ContainerPullImageFailed", "check the image name"),
        ("DiskFull", "disk is full"),
        ("TaskEnded", "ended by Batch"),
        ("SomethingNew", "SomethingNew: boom"),
    ],
)
def test_failures_before_the_command_ran_are_explained(code: str, words: str) -> None:
    failure = {"category": "usererror", "code": code, "message": "boom"}
    result = status(task("completed", result="failure", failureInfo=failure))
    assert result.state is AgentState.FAILED
    assert words in result.detail


def test_tasks_of_a_job_fanout_stopped_are_stopped_not_failed() -> None:
    ended = {"category": "usererror", "code": "TaskEnded", "message": "Task Was Ended by User Request"}
    assert (
        status(task("completed", result="failure", failureInfo=ended), stopped=True).state
        is AgentState.STOPPED
    )
    assert status(task("active"), stopped=True).state is AgentState.STOPPED
    assert status(task("completed", exitCode=0, result="success"), stopped=True).state is AgentState.SUCCEEDED


def test_a_failed_environment_build_fails_waiting_agents_with_its_output() -> None:
    failure = PreparationFailure(
        node_id="tvmps_9",
        exit_code=1,
        code="FailureExitCode",
        message="exit",
        stderr_tail="ERROR: No matching dist",
    )
    result = status(task("active"), preparation_failures=[failure])
    assert result.state is AgentState.FAILED
    assert "preparing the environment failed on Batch node tvmps_9 (exit code 1: exit)" in result.detail
    assert result.detail.endswith("ERROR: No matching dist")


def test_job_level_facts() -> None:
    stopped = batch_models.BatchJob(
        {
            "id": "j",
            "executionInfo": {"startTime": "2026-01-01T00:00:00Z", "terminateReason": "FanoutStopped"},
        }
    )
    finished = batch_models.BatchJob(
        {
            "id": "j",
            "executionInfo": {"startTime": "2026-01-01T00:00:00Z", "terminateReason": "AllTasksComplete"},
        }
    )
    assert job_stopped(stopped)
    assert not job_stopped(finished)
    assert scheduling_error(finished) is None
    broken = batch_models.BatchJob(
        {
            "id": "j",
            "executionInfo": {
                "startTime": "2026-01-01T00:00:00Z",
                "schedulingError": {
                    "category": "usererror",
                    "code": "InvalidAutoPoolSettings",
                    "message": "bad pool",
                    "details": [{"name": "Reason", "value": "no such image"}],
                },
            },
        }
    )
    assert (
        scheduling_error(broken)
        == "Batch could not start the job: InvalidAutoPoolSettings: bad pool (Reason=no such image)"
    )


def test_report_summarises_and_lists_agents_that_did_not_succeed() -> None:
    statuses = [
        AgentStatus(node_id=1, state=AgentState.FAILED, exit_code=2, detail="the agent exited with code 2"),
        AgentStatus(node_id=0, state=AgentState.SUCCEEDED, exit_code=0, detail="exited 0"),
        AgentStatus(node_id=2, state=AgentState.SUCCEEDED, exit_code=0, detail="exited 0"),
    ]
    assert agents_report(statuses) == (
        "Agents: 1 failed, 2 succeeded.\n  node 1: failed (exit code 2): the agent exited with code 2"
    )
    assert agents_report([]) == "No agent was started."
