"""What a Batch node runs, run here: the exact command lines and environment the executor submits.

There is no Batch emulator, so the node is simulated: a temporary folder laid out like a node
(``AZ_BATCH_NODE_ROOT_DIR``, the shared dir, task working dirs), the ``AZ_BATCH_*`` variables Batch sets,
the job's common environment settings and the task's own, and the command line split the way Batch
splits it. The one difference from a real node: storage is Azurite, reached with its connection string
instead of the pool identity (Azurite accepts Entra ID tokens only over HTTPS).

- The job preparation script builds an environment (a real venv, a real pip install of a wheel), is a
  no-op the second time, serialises concurrent builds and replaces a half-built folder.
- The agent tasks run a parallel step to completion against Azurite; running a node's command again
  (what Batch does after a node recovers or a spot node is preempted) changes nothing.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shlex
import subprocess
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from azure.batch import BatchClient
from azure.core.exceptions import ResourceExistsError

from shared.compute.base import AgentTask
from shared.compute.batch import BatchExecutor
from shared.compute.environment import (
    READY_MARKER,
    bash_command_line,
    node_environment,
    preparation_script,
    preparation_settings,
)
from shared.orchestration.contracts import StepFinalize, StepStatus
from shared.plan import DataType, EnvironmentPlan
from shared.runtime import phases
from shared.settings import ComputeTarget, PoolKind, Settings
from shared.storage import StorageClients
from tests.integration.runtime.stepkit import make_step
from tests.unit.compute.batch_double import ENDPOINT, BatchDouble, StaticToken

PROJECT_VENV = Path(sys.executable).parent.parent
IDENTITY = (
    "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/fanout"
)
SCRIPT = """
import os

def init():
    pass

def run(mini_batch):
    return [os.path.basename(p) + ": " + open(p).read().strip() for p in mini_batch]
"""


@dataclass
class Node:
    """A folder laid out like a Batch node."""

    root: Path
    name: str = "tvmps_sim_0"

    @property
    def shared(self) -> Path:
        return self.root / "shared"

    def task_env(self, job_id: str, task_id: str) -> tuple[Path, dict[str, str]]:
        task_dir = self.root / "workitems" / job_id / "job-1" / task_id
        working = task_dir / "wd"
        working.mkdir(parents=True, exist_ok=True)
        return working, {
            "PATH": os.environ["PATH"],
            "HOME": str(self.root / "home"),
            "AZ_BATCH_NODE_ROOT_DIR": str(self.root),
            "AZ_BATCH_NODE_SHARED_DIR": str(self.shared),
            "AZ_BATCH_NODE_ID": self.name,
            "AZ_BATCH_NODE_IS_DEDICATED": "true",
            "AZ_BATCH_POOL_ID": "fanout-cpu",
            "AZ_BATCH_JOB_ID": job_id,
            "AZ_BATCH_TASK_ID": task_id,
            "AZ_BATCH_TASK_DIR": str(task_dir),
            "AZ_BATCH_TASK_WORKING_DIR": str(working),
            "AZ_BATCH_ACCOUNT_URL": ENDPOINT,
        }

    def run(
        self, command_line: str, env: dict[str, str], cwd: Path, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run a command line as Batch does: split into argv (no shell of its own), in the task's dir."""
        return subprocess.run(
            shlex.split(command_line),
            env=env,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def settings_items(items: list[dict[str, str]] | None) -> dict[str, str]:
    return {item["name"]: item["value"] for item in items or []}


def tiny_wheel(directory: Path) -> Path:
    """A real (minimal) wheel pip can install offline: package ``fanoutprobe``."""
    path = directory / "fanoutprobe-0.1-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr("fanoutprobe/__init__.py", "VALUE = 42\n")
        wheel.writestr(
            "fanoutprobe-0.1.dist-info/METADATA", "Metadata-Version: 2.1\nName: fanoutprobe\nVersion: 0.1\n"
        )
        wheel.writestr(
            "fanoutprobe-0.1.dist-info/WHEEL",
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        wheel.writestr("fanoutprobe-0.1.dist-info/RECORD", "")
    return path


def run_preparation(
    node: Node, wheel: Path, env_settings: dict[str, str], key: str
) -> subprocess.CompletedProcess[str]:
    script = preparation_script(node_environment(None, default_image=None, agent_package=wheel.name))
    working, env = node.task_env("fanout-job", "fanout-environment")
    (working / "fanout-agent").mkdir(exist_ok=True)
    (working / "fanout-agent" / wheel.name).write_bytes(wheel.read_bytes())  # the resource file
    env.update(env_settings)
    env["PIP_NO_INDEX"] = "1"  # offline: only the local wheel
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"  # a Python 3.11 as the image's python3
    assert key == node_environment(None, default_image=None, agent_package=wheel.name).key
    return node.run(bash_command_line(script), env, working)


def test_preparation_builds_once_serialises_concurrent_builds_and_repairs_half_builds(tmp_path: Path) -> None:
    node = Node(tmp_path / "node")
    wheel = tiny_wheel(tmp_path)
    env = node_environment(None, default_image=None, agent_package=wheel.name)
    env_dir = node.shared / "fanout" / "envs" / env.key

    # a half-built folder from an interrupted build (no ready marker) is replaced
    (env_dir / "bin").mkdir(parents=True)
    (env_dir / "leftover").write_text("junk")

    with ThreadPoolExecutor(2) as pool:  # two preparation tasks on one node at once
        first, second = pool.map(lambda _: run_preparation(node, wheel, {}, env.key), range(2))
    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    outputs = first.stdout + second.stdout
    assert outputs.count("is ready") == 1
    assert outputs.count("already prepared") == 1
    assert (env_dir / READY_MARKER).is_file()
    assert not (env_dir / "leftover").exists()
    probe = subprocess.run(
        [env_dir / "bin" / "python", "-c", "import fanoutprobe; print(fanoutprobe.VALUE)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.strip() == "42"

    marker_time = (env_dir / READY_MARKER).stat().st_mtime_ns
    again = run_preparation(node, wheel, {}, env.key)  # Batch re-runs it after a reboot
    assert again.returncode == 0
    assert "already prepared" in again.stdout
    assert (env_dir / READY_MARKER).stat().st_mtime_ns == marker_time


def test_preparation_refuses_a_python_older_than_311(tmp_path: Path) -> None:
    node = Node(tmp_path / "node")
    wheel = tiny_wheel(tmp_path)
    fake_bin = tmp_path / "oldpython"
    fake_bin.mkdir()
    python3 = fake_bin / "python3"
    python3.write_text("#!/bin/sh\nif [ \"$1\" = -V ]; then echo 'Python 3.8.10'; exit 0; fi\nexit 1\n")
    python3.chmod(0o755)
    script = preparation_script(node_environment(None, default_image=None, agent_package=wheel.name))
    working, env = node.task_env("fanout-job", "fanout-environment")
    env["PATH"] = f"{fake_bin}:/usr/bin:/bin"
    done = node.run(bash_command_line(script), env, working)
    assert done.returncode == 3
    assert "Python 3.8.10; the agent needs 3.11+" in done.stderr


@pytest.fixture
def submitted(storage: StorageClients, tmp_path: Path) -> dict[str, Any]:
    """A parallel step, planned and dispatched, submitted through the executor to the Batch double."""
    step = make_step(storage, tmp_path, SCRIPT, files=6, mini_batch_size=1, append_row=DataType.URI_FILE)
    container = storage.blob.get_container_client("agent-sim")
    with contextlib.suppress(ResourceExistsError):
        container.create_container()
    container.upload_blob("fanout-0.1.0-py3-none-any.whl", b"PK", overwrite=True)
    settings = Settings(
        executor="batch",
        batch_endpoint=ENDPOINT,
        batch_identity_resource_id=IDENTITY,
        agent_package_url=f"{storage.blob.url.rstrip('/')}/agent-sim/fanout-0.1.0-py3-none-any.whl",
        storage_blob_url="https://acct.blob.core.windows.net",
        storage_queue_url="https://acct.queue.core.windows.net",
        storage_table_url="https://acct.table.core.windows.net",
        storage_client_id="client-id",
        # one core per node: one worker per agent (--workers 1), to keep two simulated nodes light
        compute_targets={"default": ComputeTarget(pool_id="fanout-cpu", kind=PoolKind.CPU, cores=1)},
    )
    double = BatchDouble()
    client = BatchClient(endpoint=ENDPOINT, credential=StaticToken(), transport=double)
    BatchExecutor(settings, storage, client).start(
        AgentTask(run_id=step.ref.run_id, job=step.ref.job, instance_count=2)
    )
    (job,) = double.jobs.values()
    tasks = double.tasks[job["id"]]
    return {"step": step, "job": job, "tasks": tasks, "connection_string": storage.connection_string}


def agent_environment(node: Node, submitted: dict[str, Any], task_id: str) -> tuple[Path, dict[str, str]]:
    job, task = submitted["job"], submitted["tasks"][task_id]
    working, env = node.task_env(job["id"], task_id)
    env.update(settings_items(job["commonEnvironmentSettings"]))
    env.update(settings_items(task["environmentSettings"]))
    # The only change from a real node: Azurite takes its connection string, not the pool identity.
    for name in (
        "FANOUT_STORAGE_BLOB_URL",
        "FANOUT_STORAGE_QUEUE_URL",
        "FANOUT_STORAGE_TABLE_URL",
        "FANOUT_STORAGE_CLIENT_ID",
    ):
        env.pop(name)
    env["FANOUT_STORAGE_CONNECTION_STRING"] = submitted["connection_string"]
    return working, env


def prepared_environment(node: Node, submitted: dict[str, Any]) -> None:
    """What the preparation task leaves on the node: the environment folder, ready (here: this venv)."""
    prep = submitted["job"]["jobPreparationTask"]
    key = settings_items(prep["environmentSettings"])["FANOUT_ENV_KEY"]
    env_dir = node.shared / "fanout" / "envs" / key
    (env_dir / "bin").mkdir(parents=True)
    (env_dir / "bin" / "fanout").symlink_to(PROJECT_VENV / "bin" / "fanout")
    (env_dir / READY_MARKER).touch()


def test_agent_tasks_run_the_step_to_completion_and_a_rerun_changes_nothing(
    submitted: dict[str, Any], tmp_path: Path, storage: StorageClients
) -> None:
    step = submitted["step"]
    nodes = {
        task_id: Node(tmp_path / f"node-{task_id}", name=f"tvmps_{task_id}") for task_id in submitted["tasks"]
    }
    for node in nodes.values():
        prepared_environment(node, submitted)

    def run_task(task_id: str) -> subprocess.CompletedProcess[str]:
        working, env = agent_environment(nodes[task_id], submitted, task_id)
        return nodes[task_id].run(submitted["tasks"][task_id]["commandLine"], env, working)

    with ThreadPoolExecutor(2) as pool:
        results = dict(zip(submitted["tasks"], pool.map(run_task, submitted["tasks"]), strict=True))
    for task_id, done in results.items():
        assert done.returncode == 0, f"{task_id}: {done.stderr[-3000:]}"
    progress = phases.read_progress(storage, step.ref)
    assert progress.done
    assert (progress.succeeded_mini_batches, progress.items_succeeded) == (6, 6)
    assert (nodes["agent-0"].shared / "fanout" / "home").is_dir()  # FANOUT_HOME on the node's shared disk

    rerun = run_task("agent-0")  # Batch re-runs a task after node recovery or spot preemption
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    again = phases.read_progress(storage, step.ref)
    assert (again.succeeded_mini_batches, again.items_succeeded, again.attempts) == (
        progress.succeeded_mini_batches,
        progress.items_succeeded,
        progress.attempts,
    )
    result = phases.finalize_step(storage, StepFinalize(step=step.ref, status=StepStatus.COMPLETED))
    assert result.status is StepStatus.COMPLETED
    expected = "".join(f"f{i:03d}.txt: item {i}\n" for i in range(6))
    assert step.output_bytes().decode() == expected


def test_an_agent_task_on_a_node_without_the_environment_fails_with_a_reason(
    submitted: dict[str, Any], tmp_path: Path
) -> None:
    node = Node(tmp_path / "bare-node")
    working, env = agent_environment(node, submitted, "agent-0")
    done = node.run(submitted["tasks"]["agent-0"]["commandLine"], env, working)
    assert done.returncode == 3  # Batch retries the task (maxTaskRetryCount)
    assert "is not prepared on this node" in done.stderr


def test_the_conda_file_reaches_the_node_intact(storage: StorageClients) -> None:
    conda = {"dependencies": ["python=3.11", "pip", {"pip": ["scikit-learn==1.5.0"]}]}
    env = node_environment(EnvironmentPlan(conda_file=conda), default_image="img", agent_package="w.whl")
    encoded = preparation_settings(env)["FANOUT_CONDA_FILE_B64"]
    decoded = subprocess.run(
        ["bash", "-c", 'printf "%s" "$X" | base64 -d'],
        env={"X": encoded, "PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "scikit-learn==1.5.0" in decoded
    assert base64.b64decode(encoded).decode() == decoded


@pytest.mark.parametrize(
    ("tool", "expected"),
    [
        ("micromamba", ["create", "--yes", "--prefix", "{env}", "--file", "conda.yml"]),
        ("conda", ["env", "create", "--prefix", "{env}", "--file", "conda.yml"]),
    ],
)
def test_with_conda_in_the_image_the_conda_file_builds_the_environment(
    tmp_path: Path, tool: str, expected: list[str]
) -> None:
    """A stand-in conda tool records how it is called and lays out a prefix whose python records pip."""
    node = Node(tmp_path / "node")
    tools = tmp_path / "tools"
    tools.mkdir()
    calls = tmp_path / "calls.txt"
    fake = tools / tool
    fake.write_text(
        "#!/bin/bash\n"
        f'echo "{tool} $*" >> {calls}\n'
        'while [ $# -gt 0 ]; do if [ "$1" = --prefix ]; then prefix="$2"; fi; shift; done\n'
        'mkdir -p "$prefix/bin"\n'
        f'printf \'#!/bin/bash\\necho "python $*" >> {calls}\\n\' > "$prefix/bin/python"\n'
        'chmod +x "$prefix/bin/python"\n'
        'cp conda.yml "$prefix/conda.yml"\n'
    )
    fake.chmod(0o755)
    conda = {"name": "score", "dependencies": ["numpy=1.26", {"pip": ["scikit-learn==1.5.0"]}]}
    env = node_environment(
        EnvironmentPlan(conda_file=conda), default_image="img", agent_package="fanout-0.1.0-py3-none-any.whl"
    )
    working, variables = node.task_env("fanout-job", "fanout-environment")
    variables.update(preparation_settings(env))
    variables["PATH"] = f"{tools}:/usr/bin:/bin"
    done = node.run(bash_command_line(preparation_script(env)), variables, working)
    assert done.returncode == 0, done.stderr
    env_dir = node.shared / "fanout" / "envs" / env.key
    tool_call, pip_call = calls.read_text().splitlines()
    assert tool_call.split()[1:] == [part.replace("{env}", str(env_dir)) for part in expected]
    assert pip_call == (
        "python -m pip install --no-input --disable-pip-version-check "
        f"{working}/fanout-agent/fanout-0.1.0-py3-none-any.whl"
    )
    built = json.loads((env_dir / "conda.yml").read_text())
    assert built["dependencies"] == ["python>=3.11", "numpy=1.26", {"pip": ["scikit-learn==1.5.0"]}, "pip"]
    assert (env_dir / READY_MARKER).is_file()
