"""``fanout serve`` as a real process, driven by the CLI in other processes: submit through the API and
through the storage drop zone, status, logs, cancel — one real pipeline run with local agents."""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from shared.azurite import AzuriteProcess
from tests.helpers import wait_until

ROOT = Path(__file__).resolve().parents[3]
FANOUT = str(Path(sys.executable).parent / "fanout")
EXAMPLE = ROOT / "examples" / "file-list-summary" / "pipeline.yml"


@dataclass
class Served:
    url: str
    key: str
    env: dict[str, str]


def _environment(azurite: AzuriteProcess, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FANOUT_")}
    env.update(
        FANOUT_STORAGE_CONNECTION_STRING=azurite.connection_string,
        FANOUT_HOME=str(home),
        GRPC_VERBOSITY="ERROR",
    )
    return env


@pytest.fixture(scope="module")
def served(azurite: AzuriteProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    home = tmp_path_factory.mktemp("serve-home")
    env = _environment(azurite, home)
    process = subprocess.Popen(
        [FANOUT, "serve", "--port", "0", "--poll-interval", "0.2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=home,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout or []], daemon=True).start()
    found: dict[str, str] = {}

    def announced() -> bool:
        while not lines.empty():
            line = lines.get()
            if match := re.search(r"export FANOUT_API_(URL|KEY)=(\S+)", line):
                found[match.group(1)] = match.group(2)
        return len(found) == 2 or process.poll() is not None

    wait_until(announced, timeout=120, message="fanout serve announced its URL and key")
    assert process.poll() is None, "fanout serve exited"
    try:
        yield Served(found["URL"], found["KEY"], env)
    finally:
        process.terminate()
        process.wait(timeout=60)


def _fanout(
    served: Served, *args: str, api: bool = True, timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    env = dict(served.env)
    if api:
        env.update(FANOUT_API_URL=served.url, FANOUT_API_KEY=served.key)
        del env["FANOUT_STORAGE_CONNECTION_STRING"]
    return subprocess.run(
        [FANOUT, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def test_the_api_needs_the_printed_key(served: Served) -> None:
    assert served.url.startswith("http://127.0.0.1:")
    assert httpx.get(f"{served.url}/api/runs", timeout=30).status_code == 401
    answer = httpx.get(f"{served.url}/api/openapi.json", headers={"x-functions-key": served.key}, timeout=30)
    assert answer.json()["openapi"] == "3.1.0"


def test_submit_wait_status_and_logs_through_the_api(served: Served) -> None:
    submitted = _fanout(served, "submit", str(EXAMPLE), "--via", "api", "--wait")
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    run_id = re.search(r"run id: (\S+)", submitted.stdout).group(1)  # type: ignore[union-attr]
    assert run_id.startswith("file-list-summary-")
    assert submitted.stdout.rstrip().splitlines()[-1].startswith("Completed | summarize_files: Completed 5/5")

    status = _fanout(served, "status", run_id)
    assert status.returncode == 0, status.stderr
    assert f"run {run_id}: Completed" in status.stdout
    assert "mini-batches 5/5 done, 0 failed" in status.stdout

    logs = _fanout(served, "logs", run_id, "--job", "summarize_files", "--file", "job_result.txt")
    assert logs.returncode == 0, logs.stderr
    assert "==> summarize_files/job_result.txt <==" in logs.stdout
    assert "Result: Completed" in logs.stdout

    listing = _fanout(served, "status", "--status", "Completed")
    assert run_id in listing.stdout
    ended = _fanout(served, "cancel", run_id)
    assert ended.returncode == 1
    assert "already ended (Completed)" in ended.stderr


def _waiting_spec(root: Path, started: Path, release: Path) -> Path:
    """A parallel job whose run() says it started, then waits until the test creates ``release``."""
    (root / "data").mkdir(parents=True)
    for index in range(2):
        (root / "data" / f"f{index}.txt").write_text(f"{index}\n")
    (root / "src").mkdir()
    (root / "src" / "wait.py").write_text(
        "import os, time\n"
        "from pathlib import Path\n\n"
        "def run(mini_batch):\n"
        "    Path(os.environ['STARTED']).write_text('started')\n"
        "    deadline = time.monotonic() + 300\n"
        "    while not Path(os.environ['RELEASE']).exists() and time.monotonic() < deadline:\n"
        "        time.sleep(0.1)\n"
        "    return mini_batch\n"
    )
    spec = root / "pipeline.yml"
    spec.write_text(
        "type: pipeline\n"
        "display_name: waiting\n"
        "settings: {default_compute: azureml:cpu-cluster}\n"
        "jobs:\n"
        "  wait:\n"
        "    type: parallel\n"
        "    inputs: {files: {type: uri_folder, path: ./data}}\n"
        "    input_data: ${{inputs.files}}\n"
        '    mini_batch_size: "1"\n'
        "    max_concurrency_per_instance: 1\n"
        "    retry_settings: {max_retries: 0, timeout: 600}\n"
        f"    environment_variables: {{STARTED: {started}, RELEASE: {release}}}\n"
        "    task: {type: run_function, code: ./src, entry_script: wait.py}\n"
    )
    return spec


def test_a_spec_dropped_into_storage_runs_and_can_be_canceled(served: Served, tmp_path: Path) -> None:
    started, release = tmp_path / "started", tmp_path / "release"
    spec = _waiting_spec(tmp_path / "waiting", started, release)
    try:
        submitted = _fanout(served, "submit", str(spec), "--via", "storage", api=False)
        assert submitted.returncode == 0, submitted.stderr
        run_id = re.search(r"run id: (\S+)", submitted.stdout).group(1)  # type: ignore[union-attr]
        headers = {"x-functions-key": served.key}
        # The blob poller started the run and an agent is inside run(): the cancel lands mid-run.
        wait_until(started.exists, timeout=120, message="run() of the dropped spec's job started")
        canceled = _fanout(served, "cancel", run_id)
        assert canceled.returncode == 0, canceled.stdout + canceled.stderr
        assert "CancelRequested" in canceled.stdout

        def ended() -> str:
            answer = httpx.get(f"{served.url}/api/runs/{run_id}", headers=headers, timeout=30).json()
            return str(answer["status"]) if answer["status"] in {"Completed", "Failed", "Canceled"} else ""

        assert wait_until(ended, timeout=180, message="the canceled run ended") == "Canceled"
    finally:
        release.touch()  # whatever happened, no run() is left waiting
