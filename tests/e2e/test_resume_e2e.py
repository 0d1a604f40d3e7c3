"""Resuming runs end to end (the durabletask engine, real agent processes): a run that failed past a
threshold, fixed and resumed, runs only the mini-batches that did not succeed and writes the bytes of
a clean run; a canceled run resumed from the CLI; a completed run cannot be resumed."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from shared.cli.main import main
from shared.cli.run import submit
from shared.client import FanoutClient
from shared.compute import get_executor
from shared.errors import ConflictError
from shared.host.engine import local_engine
from shared.orchestration import names, run_index
from shared.orchestration.client import cancel_run, pipeline_input, start_run
from shared.orchestration.contracts import RunStatus, StepRef, StepStatus
from shared.orchestration.models import PipelineResult
from shared.orchestration.resume import prepare_resume, resume_run
from shared.plan import BlobData
from shared.runtime.records import read_progress, read_records
from shared.settings import get_settings
from shared.storage import StorageClients
from tests.e2e.conftest import DOUBLE_NUMBERS, run_file, write
from tests.helpers import wait_until

SCORE = """
import os
from pathlib import Path

def run(mini_batch):
    name = Path(mini_batch[0]).name
    counts = Path(os.environ["COUNTS_DIR"])
    counts.mkdir(parents=True, exist_ok=True)
    with open(counts / name, "a") as handle:
        handle.write("x")
    broken = Path(os.environ["BROKEN_FILE"])
    if broken.exists() and name in broken.read_text().split():
        raise RuntimeError(f"{name} is broken")
    return [f"{name} {Path(mini_batch[0]).read_text().strip()}"]
"""


def _pipeline(root: Path, state: Path) -> Path:
    for index in range(1, 9):
        write(root / "data" / f"n{index}.txt", f"{index}\n")
    write(root / "src" / "prepare.py", DOUBLE_NUMBERS)
    write(root / "src" / "score.py", SCORE)
    return write(
        root / "pipeline.yml",
        f"""
        type: pipeline
        display_name: resumable
        settings:
          default_compute: azureml:cpu-cluster
        jobs:
          prepare:
            type: command
            code: ./src
            command: python prepare.py --numbers ${{{{inputs.numbers}}}} --out ${{{{outputs.doubled}}}}
            environment: azureml:tiny-env:1
            inputs:
              numbers:
                type: uri_folder
                path: ./data
            outputs:
              doubled:
                type: uri_folder
          score:
            type: parallel
            inputs:
              files:
                type: uri_folder
                path: ${{{{parent.jobs.prepare.outputs.doubled}}}}
            outputs:
              results:
                type: uri_file
            input_data: ${{{{inputs.files}}}}
            mini_batch_size: "1"
            mini_batch_error_threshold: 1
            resources:
              instance_count: 1
            max_concurrency_per_instance: 1
            retry_settings:
              max_retries: 0
              timeout: 60
            environment_variables:
              COUNTS_DIR: {state / "counts"}
              BROKEN_FILE: {state / "broken.txt"}
            task:
              type: run_function
              code: ./src
              entry_script: score.py
              environment: azureml:tiny-env:1
              append_row_to: ${{{{outputs.results}}}}
        """,
    )


def _counts(state: Path) -> dict[str, int]:
    return {path.name: len(path.read_text()) for path in sorted((state / "counts").glob("*.txt"))}


def _output(clients: StorageClients, location: BlobData) -> tuple[bytes, bytes | None]:
    blob = clients.blob.get_blob_client(location.container, location.path)
    md5 = blob.get_blob_properties().content_settings.content_md5
    return blob.download_blob().readall(), bytes(md5) if md5 else None


def test_a_failed_run_fixed_and_resumed_reruns_only_what_did_not_succeed(
    tmp_path: Path, fast_polls: StorageClients
) -> None:
    clients, settings, state = fast_polls, get_settings(), tmp_path / "state"
    spec = _pipeline(tmp_path / "project", state)
    (state).mkdir()
    (state / "broken.txt").write_text("n3.txt n6.txt")  # two failures cross mini_batch_error_threshold=1

    failed, _ = run_file(spec)
    assert failed.status is RunStatus.FAILED
    assert failed.jobs["prepare"].status is StepStatus.COMPLETED
    assert failed.jobs["score"].status is StepStatus.FAILED
    assert "Exceeded mini-batch error threshold" in failed.jobs["score"].reason
    old_step = StepRef(run_id=failed.run_id, job="score")
    succeeded = {
        r.index for r in read_records(clients, old_step) if r.final and r.status.value == "succeeded"
    }
    assert succeeded
    assert len(succeeded) < 8
    before = _counts(state)

    (state / "broken.txt").unlink()  # the cause is fixed; nothing the fingerprint sees changed
    executor = get_executor(settings, clients)
    with local_engine(clients, executor) as engine:
        plan = resume_run(clients, engine.client, failed.run_id)
        status = engine.client.wait(names.instance_id_for(plan.run_id), timeout=180)
    assert status is not None
    resumed = PipelineResult.model_validate(status.output)
    assert resumed.status is RunStatus.COMPLETED, resumed.reason
    assert resumed.jobs["prepare"].status is StepStatus.REUSED
    assert resumed.jobs["prepare"].reused_from == failed.run_id
    assert resumed.jobs["score"].status is StepStatus.COMPLETED

    # Only the mini-batches that did not succeed ran again (n<i+1>.txt is mini-batch i).
    after = _counts(state)
    reran = {int(name[1:-4]) - 1 for name in after if after[name] > before.get(name, 0)}
    assert reran == set(range(8)) - succeeded
    assert all(after[name] - before.get(name, 0) == 1 for name in after if int(name[1:-4]) - 1 in reran)
    progress = read_progress(clients, StepRef(run_id=resumed.run_id, job="score"))
    assert (progress.succeeded_mini_batches, progress.carried_mini_batches) == (8, len(succeeded))

    # What users see: the index, the API and `fanout status`.
    assert run_index.get_run(clients, resumed.run_id).resumed_from == failed.run_id
    assert run_index.get_run(clients, failed.run_id).resumed_by == resumed.run_id
    with FanoutClient.in_process(clients, settings) as client:
        detail = client.get_run(resumed.run_id)
    assert detail["resumed_from"] == failed.run_id
    assert detail["jobs"][1]["mini_batches_carried"] == len(succeeded)

    # A completed run has nothing to resume.
    with pytest.raises(ConflictError, match="completed; there is nothing to resume"):
        prepare_resume(clients, resumed.run_id)

    # The resumed output is byte for byte (and MD5 for MD5) a clean run's.
    clean, _ = run_file(spec, force_rerun=True)
    assert clean.status is RunStatus.COMPLETED
    resumed_bytes, resumed_md5 = _output(clients, resumed.jobs["score"].outputs["results"])
    clean_bytes, clean_md5 = _output(clients, clean.jobs["score"].outputs["results"])
    assert resumed_bytes == clean_bytes
    assert resumed_bytes.decode().splitlines() == [f"n{i}.txt {2 * i}" for i in range(1, 9)]
    assert resumed_md5 == clean_md5 == hashlib.md5(clean_bytes).digest()


HOLD = """
import os, time
from pathlib import Path

def run(mini_batch):
    name = Path(mini_batch[0]).name
    counts = Path(os.environ["COUNTS_DIR"])
    counts.mkdir(parents=True, exist_ok=True)
    with open(counts / name, "a") as handle:
        handle.write("x")
    hold = Path(os.environ["HOLD_FILE"])
    deadline = time.monotonic() + 120
    while name == "f3.txt" and hold.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return [name]
"""


def test_a_canceled_run_resumed_from_the_cli_finishes_what_was_left(
    tmp_path: Path, fast_polls: StorageClients, capsys: pytest.CaptureFixture[str]
) -> None:
    clients, settings, state = fast_polls, get_settings(), tmp_path / "state"
    root = tmp_path / "project"
    for index in range(4):
        write(root / "data" / f"f{index}.txt", f"{index}\n")
    write(root / "src" / "hold.py", HOLD)
    spec = write(
        root / "pipeline.yml",
        f"""
        type: pipeline
        settings:
          default_compute: azureml:cpu-cluster
        jobs:
          hold:
            type: parallel
            inputs:
              files:
                type: uri_folder
                path: ./data
            outputs:
              names:
                type: uri_file
            input_data: ${{{{inputs.files}}}}
            mini_batch_size: "1"
            resources:
              instance_count: 1
            max_concurrency_per_instance: 2
            retry_settings:
              timeout: 600
            environment_variables:
              COUNTS_DIR: {state / "counts"}
              HOLD_FILE: {state / "hold"}
            task:
              type: run_function
              code: ./src
              entry_script: hold.py
              environment: azureml:tiny-env:1
              append_row_to: ${{{{outputs.names}}}}
        """,
    )
    state.mkdir()
    (state / "hold").write_text("")  # f3 waits for it to go; a worker holding f3 holds what it loaded next
    plan = submit(clients, spec, {}, force_rerun=False, settings=settings)
    step = StepRef(run_id=plan.run_id, job="hold")
    with local_engine(clients, get_executor(settings, clients)) as engine:
        start_run(clients, engine.client, plan, orchestration_input=pipeline_input(plan, settings))
        wait_until(
            lambda: read_progress(clients, step).succeeded_mini_batches >= 2,
            timeout=120,
            message="two mini-batches besides f3 to be recorded",
        )
        assert cancel_run(engine.client, plan.run_id)
        canceled = engine.client.wait(names.instance_id_for(plan.run_id), timeout=120)
    assert canceled is not None
    assert PipelineResult.model_validate(canceled.output).status is RunStatus.CANCELED
    finished = {f"f{r.index}.txt" for r in read_records(clients, step) if r.final}
    assert len(finished) >= 2
    assert "f3.txt" not in finished
    before = _counts(state)

    (state / "hold").unlink()
    with pytest.raises(SystemExit) as ended:
        main(["resume", plan.run_id])
    assert ended.value.code == 0
    printed = " ".join(capsys.readouterr().out.split())  # rich wraps long lines
    new_run = run_index.get_run(clients, plan.run_id).resumed_by
    assert f"run id: {new_run} (resumes run {plan.run_id})" in printed
    assert run_index.get_run(clients, new_run).status is RunStatus.COMPLETED
    after = _counts(state)
    ran_again = {name: after[name] - before.get(name, 0) for name in after}
    assert ran_again == {f"f{i}.txt": 0 if f"f{i}.txt" in finished else 1 for i in range(4)}
    names_blob = plan.job("hold").outputs["names"].location.path.replace(plan.run_id, new_run)
    text = clients.blob.get_blob_client("runs", names_blob).download_blob().readall().decode()
    assert text.splitlines() == ["f0.txt", "f1.txt", "f2.txt", "f3.txt"]
