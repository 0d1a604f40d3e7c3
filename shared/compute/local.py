"""The local executor: a step's agents as processes on this machine (Batch nodes stand-ins).

``start`` launches ``instance_count`` processes running ``fanout agent --run R --job J --node-id N``
with the current interpreter, each in its own session (so ``stop`` reaches the agent's whole process
group), with the storage settings in their environment and stdout/stderr in
``<FANOUT_HOME>/agents/<run>/<job>/node-<n>/agent.{stdout,stderr}.txt``. ``stop`` sends SIGTERM (the
agent kills its workers and exits), then SIGKILL after a grace period; workers whose agent is gone exit
on their own. Every method is idempotent.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from shared.compute.base import AgentState, AgentStatus, AgentTask, agent_argv
from shared.settings import Settings
from shared.storage import StorageClients

logger = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
#: Seconds an agent gets between SIGTERM and SIGKILL.
STOP_GRACE_SECONDS = 10.0
_ENTRY = "from shared.cli.main import main; main()"


class LocalExecutor:
    """Runs agents as local processes. Thread-safe; one instance per host process."""

    def __init__(self, settings: Settings, clients: StorageClients | None = None) -> None:
        self._settings = settings
        self._clients = clients
        self._lock = threading.Lock()
        self._agents: dict[tuple[str, str], dict[int, subprocess.Popen[bytes]]] = {}
        self._stopped: set[tuple[str, str]] = set()

    def start(self, task: AgentTask) -> None:
        """Start the task's agents; agents already started for the run/job are left alone."""
        key = (task.run_id, task.job)
        with self._lock:
            agents = self._agents.setdefault(key, {})
            self._stopped.discard(key)
            for node_id in range(task.instance_count):
                if node_id in agents:
                    continue
                agents[node_id] = self._launch(task, node_id)
                logger.info(
                    "started agent %d of %s/%s (pid %d)", node_id, task.run_id, task.job, agents[node_id].pid
                )

    def stop(self, run_id: str, job: str) -> None:
        """Terminate the job's agents (SIGTERM, then SIGKILL after a grace period)."""
        key = (run_id, job)
        with self._lock:
            agents = list(self._agents.get(key, {}).values())
            self._stopped.add(key)
        running = [p for p in agents if p.poll() is None]
        for process in running:
            _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for process in running:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
        for process in running:
            if process.poll() is None:
                _signal_group(process, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=5)

    def status(self, run_id: str, job: str) -> list[AgentStatus]:
        """One status per started agent, by node id."""
        key = (run_id, job)
        with self._lock:
            agents = dict(self._agents.get(key, {}))
            stopped = key in self._stopped
        statuses = []
        for node_id, process in sorted(agents.items()):
            code = process.poll()
            if code is None:
                state, detail = AgentState.RUNNING, f"pid {process.pid}"
            elif stopped:
                state, detail = AgentState.STOPPED, f"stopped (exit code {code})"
            elif code == 0:
                state, detail = AgentState.SUCCEEDED, "the agent finished its work"
            else:
                state, detail = (
                    AgentState.FAILED,
                    f"the agent exited with code {code}; see {self._log(run_id, job, node_id, 'stderr')}",
                )
            statuses.append(AgentStatus(node_id=node_id, state=state, exit_code=code, detail=detail))
        return statuses

    def _log(self, run_id: str, job: str, node_id: int, stream: str) -> Path:
        return (
            self._settings.home.resolve()
            / "agents"
            / run_id
            / job
            / f"node-{node_id}"
            / f"agent.{stream}.txt"
        )

    def _launch(self, task: AgentTask, node_id: int) -> subprocess.Popen[bytes]:
        stdout_path = self._log(task.run_id, task.job, node_id, "stdout")
        stdout_path.parent.mkdir(parents=True, exist_ok=True)
        with (
            stdout_path.open("ab") as out,
            self._log(task.run_id, task.job, node_id, "stderr").open("ab") as err,
        ):
            return subprocess.Popen(
                [sys.executable, "-c", _ENTRY, *agent_argv(task, node_id)],
                env=self._environment(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
                cwd=PROJECT_ROOT,
            )

    def _environment(self) -> dict[str, str]:
        settings = self._settings
        env = dict(os.environ)
        values = {
            "FANOUT_STORAGE_CONNECTION_STRING": settings.storage_connection_string,
            "FANOUT_STORAGE_BLOB_URL": settings.storage_blob_url,
            "FANOUT_STORAGE_QUEUE_URL": settings.storage_queue_url,
            "FANOUT_STORAGE_TABLE_URL": settings.storage_table_url,
            "FANOUT_STORAGE_CLIENT_ID": settings.storage_client_id,
            "FANOUT_HOME": str(settings.home.resolve()),
        }
        env.update({k: v for k, v in values.items() if v})
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH", "")) if p)
        return env


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)
