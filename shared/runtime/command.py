"""The node side of a command job: run one shell command with its data bound to local paths.

``fanout agent`` calls :func:`run_command_node` for ``JobType.COMMAND`` (one agent, node 0). Steps:

1. Work folder ``<home>/work/<run>/<job>/node<N>``: the job's code (snapshot or local folder) copied
   into ``wd/`` — the command's working directory, where it finds ``./outputs`` and ``./logs``.
2. Inputs materialised (``${{inputs.x}}`` → a local path; literals → their value); each output gets a
   local path (a folder, or a file in a folder for ``uri_file``) for ``${{outputs.y}}``.
3. The command runs under ``bash -c`` in its own process group with the job's environment variables
   and the agent's interpreter first on ``PATH`` (``python`` is the job environment's Python);
   stdout and stderr go to ``logs/user_logs/std_log.txt``. Everything under ``./logs`` and the
   command's own log is uploaded every few seconds while it runs.
4. It ends by itself, or is killed at ``limits.timeout`` (exit code 124) or when the step is asked to
   stop (exit code 143), whichever comes first.
5. Files in ``./outputs`` are uploaded to the job's ``outputs/`` folder (always, like Azure ML's
   artifacts); named outputs to their locations only when the command succeeded.
6. The exit code is recorded in the step document (``read_progress`` reports it) with a
   ``command.json`` beside ``step.json`` saying why, and a "step settled" notice wakes the orchestrator.
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from pydantic import Field

from shared.errors import ExecutionError
from shared.models import FrozenModel
from shared.orchestration.contracts import StepDefinition, StepRef
from shared.plan import DataInput, DataType, InputMode, JobPlan, LiteralInput, OutputPlan, RunPlan
from shared.settings import get_settings
from shared.storage import Container, StorageClients, job_path
from shared.upload import upload_folder

logger = logging.getLogger(__name__)

TIMEOUT_EXIT_CODE = 124
STOPPED_EXIT_CODE = 143
STD_LOG = "user_logs/std_log.txt"
#: Seconds between checks of the command, the timeout and the step's stop flag.
CHECK_INTERVAL = 0.5
#: Seconds between reads of the step's stop flag (a table read).
STOP_CHECK_INTERVAL = 3.0
LOG_UPLOAD_INTERVAL = 3.0

_PLACEHOLDER = re.compile(r"\$\{\{\s*(inputs|outputs)\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


class CommandOutcome(FrozenModel):
    """``command.json``: how the command ended, in words for job_result.txt."""

    exit_code: int
    reason: str = Field(description="Why it ended, e.g. 'exited with code 2' or the timeout.")
    started_at: datetime
    finished_at: datetime


def command_outcome_path(step: StepRef) -> str:
    """Where a command step's ``command.json`` (:class:`CommandOutcome`) is kept in ``runs``."""
    return job_path(step.run_id, step.job, "command.json")


def run_command_node(clients: StorageClients, plan: RunPlan, definition: StepDefinition, node_id: int) -> int:
    """Run the command job of ``definition`` on this node; returns the command's exit code."""
    from shared.orchestration.events import NoticeKind, OrchestrationNotice, send_notice
    from shared.runtime.records import record_command_exit

    step = definition.step
    job = plan.job(step.job)
    if job.command is None:
        raise ExecutionError(f"job {job.name!r} is not a command job", run_id=step.run_id, job=job.name)
    work = get_settings().home / "work" / step.run_id / step.job / f"node{node_id}"
    if work.exists():
        shutil.rmtree(work)
    cwd = _prepare_code(clients, job, work)
    (cwd / "outputs").mkdir(exist_ok=True)
    (cwd / "logs").mkdir(exist_ok=True)
    values = _bind_inputs(clients, job, definition, work / "inputs")
    output_paths = _bind_outputs(definition.outputs, work / "named-outputs")
    values.update({("outputs", name): str(path) for name, path in output_paths.items()})
    command = substitute(job.command.command, values)

    started = datetime.now(UTC)
    exit_code, reason = _run(clients, step, job, command=command, cwd=cwd, own_logs=work / "own-logs")
    upload_folder(clients, cwd / "outputs", Container.RUNS, job_path(step.run_id, step.job, "outputs"))
    if exit_code == 0:
        for name, output in definition.outputs.items():
            _upload_output(clients, output, output_paths[name])
    outcome = CommandOutcome(
        exit_code=exit_code, reason=reason, started_at=started, finished_at=datetime.now(UTC)
    )
    clients.container(Container.RUNS).upload_blob(
        command_outcome_path(step), outcome.model_dump_json().encode(), overwrite=True
    )
    record_command_exit(clients, step, exit_code)
    send_notice(
        clients,
        OrchestrationNotice(kind=NoticeKind.STEP_SETTLED, run_id=step.run_id, job=step.job, reason=reason),
    )
    logger.info("command of %s/%s %s", step.run_id, step.job, reason)
    return exit_code


def substitute(command: str, values: dict[tuple[str, str], str]) -> str:
    """Replace ``${{inputs.x}}`` / ``${{outputs.y}}`` with shell-quoted values.

    Raises:
        ExecutionError: the command names an input or output the job does not have.
    """

    def replace(match: re.Match[str]) -> str:
        key = (match.group(1), match.group(2))
        if key not in values:
            raise ExecutionError(
                f"the command refers to ${{{{{key[0]}.{key[1]}}}}}, which the job does not define"
            )
        return shlex.quote(values[key])

    return _PLACEHOLDER.sub(replace, command)


def _prepare_code(clients: StorageClients, job: JobPlan, work: Path) -> Path:
    cwd = work / "wd"
    code = job.code
    if code is not None and code.snapshot:
        from shared.snapshot import materialize_snapshot

        source = materialize_snapshot(clients, code.snapshot, get_settings().home / "snapshots")
        shutil.copytree(source, cwd)
    elif code is not None and code.local_path:
        shutil.copytree(code.local_path, cwd)
    else:
        cwd.mkdir(parents=True)
    return cwd


def _bind_inputs(
    clients: StorageClients, job: JobPlan, definition: StepDefinition, root: Path
) -> dict[tuple[str, str], str]:
    from shared.runtime.inputs import input_argument

    values: dict[tuple[str, str], str] = {}
    for name, value in definition.inputs.items():
        if isinstance(value, LiteralInput):
            values[("inputs", name)] = _literal(value)
            continue
        planned = job.inputs.get(name)
        data_type = planned.type if isinstance(planned, DataInput) else DataType.URI_FOLDER
        mode = planned.mode if isinstance(planned, DataInput) else InputMode.DOWNLOAD
        dest = root / name
        dest.mkdir(parents=True, exist_ok=True)
        values[("inputs", name)] = input_argument(clients, value.location, data_type, mode, dest)
    return values


def _literal(value: LiteralInput) -> str:
    if isinstance(value.value, bool):
        return "True" if value.value else "False"
    return str(value.value)


def _bind_outputs(outputs: dict[str, OutputPlan], root: Path) -> dict[str, Path]:
    paths: dict[str, Path] = {}
    for name, output in outputs.items():
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        if output.type is DataType.URI_FILE:
            paths[name] = folder / (output.location.path.rsplit("/", 1)[-1] or name)
        else:
            paths[name] = folder
    return paths


def _run(
    clients: StorageClients, step: StepRef, job: JobPlan, *, command: str, cwd: Path, own_logs: Path
) -> tuple[int, str]:
    from shared.runtime.logs import LogUploader
    from shared.runtime.records import read_step_document

    assert job.command is not None
    std_log = own_logs / STD_LOG
    std_log.parent.mkdir(parents=True, exist_ok=True)
    env = command_environment(job)
    uploaders = [
        LogUploader(clients, step, cwd / "logs", interval=LOG_UPLOAD_INTERVAL),
        LogUploader(clients, step, own_logs, interval=LOG_UPLOAD_INTERVAL),
    ]
    for uploader in uploaders:
        uploader.start()
    timeout = job.command.timeout
    deadline = time.monotonic() + timeout if timeout else None
    next_stop_check = time.monotonic() + STOP_CHECK_INTERVAL
    try:
        with std_log.open("wb") as log:
            process = subprocess.Popen(
                ["bash", "-c", command],
                cwd=cwd,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
            while True:
                try:
                    code = process.wait(timeout=CHECK_INTERVAL)
                    return code, f"The command exited with code {code}."
                except subprocess.TimeoutExpired:
                    pass
                if deadline is not None and time.monotonic() > deadline:
                    _kill(process)
                    return (
                        TIMEOUT_EXIT_CODE,
                        f"The command exceeded limits.timeout ({timeout} seconds) and was killed.",
                    )
                if time.monotonic() > next_stop_check:
                    next_stop_check = time.monotonic() + STOP_CHECK_INTERVAL
                    document = read_step_document(clients, step)
                    if document is not None and document.stop_requested:
                        _kill(process)
                        return (
                            STOPPED_EXIT_CODE,
                            f"The command was stopped: {document.stop_reason or 'stop requested'}.",
                        )
    finally:
        for uploader in uploaders:
            uploader.close()


def command_environment(job: JobPlan) -> dict[str, str]:
    """The command's environment: the agent's, the job's variables, and the agent's interpreter first
    on ``PATH`` — so ``python`` in a command is the interpreter of the environment the agent runs in
    (the job's environment on a Batch node; the current one locally)."""
    env = {**os.environ, **job.environment_variables}
    interpreter_dir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join(p for p in (interpreter_dir, env.get("PATH", "")) if p)
    return env


def _kill(process: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """SIGTERM the command's process group, then SIGKILL what is left after ``grace`` seconds."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


def _upload_output(clients: StorageClients, output: OutputPlan, local: Path) -> None:
    location = output.location
    container = clients.blob.get_container_client(location.container)
    if output.type is DataType.URI_FILE:
        if local.is_file():
            with local.open("rb") as data:
                container.upload_blob(location.path, data, overwrite=True)
        return
    for path in sorted(p for p in local.rglob("*") if p.is_file()):
        with path.open("rb") as data:
            container.upload_blob(
                f"{location.path}/{path.relative_to(local).as_posix()}", data, overwrite=True
            )
