"""The node side of command jobs on Azurite: bindings, outputs, logs, exit codes, timeout and stop."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import pytest
from azure.core.exceptions import ResourceNotFoundError

from shared.errors import ExecutionError
from shared.orchestration.contracts import ResolvedInput, StepDefinition, StepRef
from shared.plan import (
    BlobData,
    CodeRef,
    CommandSettings,
    DataInput,
    DataType,
    InputMode,
    JobPlan,
    JobType,
    LiteralInput,
    LiteralType,
    OutputPlan,
    RunPlan,
)
from shared.runtime.command import (
    STOPPED_EXIT_CODE,
    TIMEOUT_EXIT_CODE,
    CommandOutcome,
    command_outcome_path,
    run_command_node,
    substitute,
)
from shared.runtime.logs import read_text
from shared.runtime.records import read_progress, request_stop
from shared.storage import Container, StorageClients, job_path, output_path
from tests.helpers import wait_until
from tests.integration.orchestration.events_queue import take_events


def _setup(
    storage: StorageClients, tmp_path: Path, command: str, timeout: int | None = None
) -> tuple[RunPlan, StepDefinition]:
    run_id = f"cmd-{uuid.uuid4().hex[:8]}"
    code = tmp_path / "code"
    code.mkdir()
    (code / "tool.py").write_text("import sys; print('tool', *sys.argv[1:])\n")
    storage.container(Container.DATA).upload_blob(f"{run_id}/greeting.txt", b"hello there", overwrite=True)
    outputs = {
        "folder": OutputPlan(
            type=DataType.URI_FOLDER,
            location=BlobData(container="runs", path=output_path(run_id, "j", "folder")),
        ),
        "single": OutputPlan(
            type=DataType.URI_FILE, location=BlobData(container="data", path=f"{run_id}/result.txt")
        ),
    }
    job = JobPlan(
        name="j",
        type=JobType.COMMAND,
        code=CodeRef(local_path=str(code)),
        command=CommandSettings(command=command, timeout=timeout),
        inputs={
            "greeting": DataInput(
                type=DataType.URI_FILE,
                mode=InputMode.DOWNLOAD,
                source=BlobData(container="data", path=f"{run_id}/greeting.txt"),
            ),
            "count": LiteralInput(type=LiteralType.INTEGER, value=3),
        },
        outputs=outputs,
        environment_variables={"GREETING_STYLE": "loud"},
    )
    plan = RunPlan(run_id=run_id, jobs=[job])
    definition = StepDefinition(
        step=StepRef(run_id=run_id, job="j"),
        inputs={
            "greeting": ResolvedInput(location=BlobData(container="data", path=f"{run_id}/greeting.txt")),
            "count": LiteralInput(type=LiteralType.INTEGER, value=3),
        },
        outputs=outputs,
    )
    return plan, definition


def _blob(storage: StorageClients, container: str, path: str) -> str:
    return storage.blob.get_container_client(container).download_blob(path).readall().decode()


def test_a_successful_command_uploads_outputs_and_logs_and_reports_its_exit_code(
    storage: StorageClients, tmp_path: Path
) -> None:
    command = (
        "python tool.py ${{inputs.count}} $GREETING_STYLE && "
        "cat ${{inputs.greeting}} > ${{outputs.folder}}/copy.txt && "
        "echo done > ${{outputs.single}} && "
        "echo artifact > outputs/artifact.txt && echo mine > logs/mine.txt"
    )
    plan, definition = _setup(storage, tmp_path, command)
    step = definition.step
    assert run_command_node(storage, plan, definition, 0) == 0

    assert _blob(storage, "runs", output_path(step.run_id, "j", "folder") + "/copy.txt") == "hello there"
    assert _blob(storage, "data", f"{step.run_id}/result.txt") == "done\n"
    assert _blob(storage, "runs", job_path(step.run_id, "j", "outputs", "artifact.txt")) == "artifact\n"
    assert read_text(storage, step, "mine.txt") == "mine\n"
    assert "tool 3 loud" in read_text(storage, step, "user_logs/std_log.txt")
    outcome = CommandOutcome.model_validate_json(_blob(storage, "runs", command_outcome_path(step)))
    assert (outcome.exit_code, outcome.reason) == (0, "The command exited with code 0.")
    assert read_progress(storage, step).command_exit_code == 0
    notices = take_events(storage, step.run_id)
    assert len(notices) == 1
    assert '"kind":"step_settled"' in notices[0]


def test_a_failing_command_keeps_outputs_folder_but_not_named_outputs(
    storage: StorageClients, tmp_path: Path
) -> None:
    plan, definition = _setup(storage, tmp_path, "echo partial > outputs/p.txt; echo oops >&2; exit 3")
    step = definition.step
    assert run_command_node(storage, plan, definition, 0) == 3
    assert _blob(storage, "runs", job_path(step.run_id, "j", "outputs", "p.txt")) == "partial\n"
    assert not storage.blob.get_container_client("data").get_blob_client(f"{step.run_id}/result.txt").exists()
    assert "oops" in read_text(storage, step, "user_logs/std_log.txt")
    assert read_progress(storage, step).command_exit_code == 3
    take_events(storage, step.run_id)


def test_limits_timeout_kills_the_command(storage: StorageClients, tmp_path: Path) -> None:
    plan, definition = _setup(storage, tmp_path, "echo started; sleep 60; echo finished", timeout=1)
    assert run_command_node(storage, plan, definition, 0) == TIMEOUT_EXIT_CODE
    outcome = CommandOutcome.model_validate_json(
        _blob(storage, "runs", command_outcome_path(definition.step))
    )
    assert "exceeded limits.timeout (1 seconds)" in outcome.reason
    log = read_text(storage, definition.step, "user_logs/std_log.txt")
    assert "started" in log
    assert "finished" not in log  # killed inside the sleep, not after it
    take_events(storage, definition.step.run_id)


def test_a_stop_request_stops_the_command(storage: StorageClients, tmp_path: Path) -> None:
    plan, definition = _setup(storage, tmp_path, "echo waiting; sleep 60")
    codes: list[int] = []
    thread = threading.Thread(target=lambda: codes.append(run_command_node(storage, plan, definition, 0)))
    thread.start()
    wait_until(lambda: _started(storage, definition.step), timeout=30)
    request_stop(storage, definition.step, "the run was canceled")
    thread.join(timeout=60)
    assert codes == [STOPPED_EXIT_CODE]
    outcome = CommandOutcome.model_validate_json(
        _blob(storage, "runs", command_outcome_path(definition.step))
    )
    assert outcome.reason == "The command was stopped: the run was canceled."
    take_events(storage, definition.step.run_id)


def _started(storage: StorageClients, step: StepRef) -> bool:
    try:
        return "waiting" in read_text(storage, step, "user_logs/std_log.txt")
    except ResourceNotFoundError:  # not uploaded yet
        return False


def test_placeholders_are_quoted_and_unknown_ones_rejected() -> None:
    values = {("inputs", "x"): "/tmp/a dir/file.csv", ("outputs", "y"): "/out"}
    assert (
        substitute("cat ${{inputs.x}} > ${{ outputs.y }}/z", values) == "cat '/tmp/a dir/file.csv' > /out/z"
    )
    with pytest.raises(ExecutionError, match=r"\$\{\{inputs.missing\}\}"):
        substitute("echo ${{inputs.missing}}", values)
