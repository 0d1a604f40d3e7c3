"""The executor interface: how a step's agents are started and stopped on some compute.

Two implementations: :mod:`shared.compute.local` (agent processes on this machine) and
:mod:`shared.compute.batch` (one Azure Batch job per step, ``instance_count`` agent tasks). Both start
the *same program* with the same arguments — ``fanout agent --run R --job J --node-id N`` — which reads
the run plan and the step's resolved inputs from storage and runs a parallel step's workers or a command
job's command. Executors never look inside a step; they only place agents.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Protocol

from pydantic import Field

from shared.models import FrozenModel


class AgentTask(FrozenModel):
    """What an executor is asked to run: ``instance_count`` agents for one job of one run."""

    run_id: str = Field(description="The run of the job.")
    job: str = Field(description="The job whose agents to start.")
    instance_count: int = Field(default=1, ge=1, description="Agents (nodes) to start: node ids 0..n-1.")
    compute: str | None = Field(default=None, description="The job's compute name (selects the pool).")
    workers_per_agent: int | None = Field(
        default=None, ge=1, description="max_concurrency_per_instance; None lets the agent decide."
    )


class AgentState(StrEnum):
    """An agent's life as an executor sees it (a Batch task's state, a local process's)."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    STOPPED = "stopped"


class AgentStatus(FrozenModel):
    """One agent of a step as its executor reports it: for liveness checks and ``job_result.txt``."""

    node_id: int = Field(description="The agent's node id.")
    state: AgentState = Field(description="Where the agent is in its life.")
    exit_code: int | None = Field(default=None, description="The agent's exit code, once it has exited.")
    detail: str = Field(default="", description="What the executor knows, in words a user can act on.")


def agents_report(statuses: Sequence[AgentStatus]) -> str:
    """A short paragraph on a step's agents for ``job_result.txt`` (any executor's ``status()``).

    A one-line summary by state, then one line per agent that did not succeed, with its detail.
    """
    if not statuses:
        return "No agent was started."
    counts: dict[str, int] = {}
    for status in statuses:
        counts[status.state.value] = counts.get(status.state.value, 0) + 1
    summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    lines = [f"Agents: {summary}."]
    for status in sorted(statuses, key=lambda s: s.node_id):
        if status.state is not AgentState.SUCCEEDED:
            exit_text = f" (exit code {status.exit_code})" if status.exit_code is not None else ""
            lines.append(f"  node {status.node_id}: {status.state.value}{exit_text}: {status.detail}")
    return "\n".join(lines)


def agent_argv(task: AgentTask, node_id: int) -> list[str]:
    """The agent's command-line arguments (after the ``fanout`` program itself)."""
    argv = ["agent", "--run", task.run_id, "--job", task.job, "--node-id", str(node_id)]
    if task.workers_per_agent is not None:
        argv += ["--workers", str(task.workers_per_agent)]
    return argv


class Executor(Protocol):
    """Places agents on compute. Every method is idempotent: calling it twice does no harm."""

    def start(self, task: AgentTask) -> None:
        """Start the task's agents (a second call for the same run/job starts nothing new)."""

    def stop(self, run_id: str, job: str) -> None:
        """Stop every agent of the job (terminate processes / the Batch job)."""

    def status(self, run_id: str, job: str) -> list[AgentStatus]:
        """The state of each agent of the job, by node id."""
