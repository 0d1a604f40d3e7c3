"""A command job's ``./logs`` reach storage while the command still runs (seed 001), not only at exit."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

from azure.core.exceptions import ResourceNotFoundError

from shared.orchestration.contracts import StepDefinition, StepRef
from shared.plan import CodeRef, CommandSettings, JobPlan, JobType, RunPlan
from shared.runtime.command import run_command_node
from shared.runtime.logs import read_text
from shared.storage import StorageClients
from tests.helpers import wait_until
from tests.integration.orchestration.events_queue import take_events


def _uploaded(storage: StorageClients, step: StepRef, relative: str) -> str:
    try:
        return read_text(storage, step, relative)
    except (ResourceNotFoundError, FileNotFoundError):
        return ""


def test_files_written_to_logs_are_uploaded_while_the_command_runs(
    storage: StorageClients, tmp_path: Path
) -> None:
    release = tmp_path / "release"
    code = tmp_path / "code"
    code.mkdir()
    # Writes its progress file, then waits (at most 120 s) until the test lets it finish.
    (code / "job.py").write_text(
        "import sys, time\n"
        "from pathlib import Path\n"
        "Path('logs/progress.txt').write_text('step 1 of 2\\n')\n"
        "deadline = time.monotonic() + 120\n"
        "while not Path(sys.argv[1]).exists() and time.monotonic() < deadline:\n"
        "    time.sleep(0.05)\n"
        "with open('logs/progress.txt', 'a') as log:\n"
        "    log.write('step 2 of 2\\n')\n"
    )
    run_id = f"cmdlive-{uuid.uuid4().hex[:8]}"
    job = JobPlan(
        name="j",
        type=JobType.COMMAND,
        code=CodeRef(local_path=str(code)),
        command=CommandSettings(command=f"python job.py {release}"),
    )
    plan = RunPlan(run_id=run_id, jobs=[job])
    step = StepRef(run_id=run_id, job="j")
    codes: list[int] = []
    thread = threading.Thread(
        target=lambda: codes.append(run_command_node(storage, plan, StepDefinition(step=step), 0)),
        daemon=True,
    )
    thread.start()
    try:
        live = wait_until(
            lambda: _uploaded(storage, step, "progress.txt"),
            timeout=60,
            message="logs/progress.txt uploaded while the command waits",
        )
        assert live == "step 1 of 2\n"
        assert thread.is_alive()  # the command is still running: this was a live upload
    finally:
        release.touch()
    thread.join(timeout=60)
    assert not thread.is_alive()
    assert codes == [0]
    # Log files are appended to: what was written after the live upload follows it.
    assert read_text(storage, step, "progress.txt") == "step 1 of 2\nstep 2 of 2\n"
    take_events(storage, run_id)
