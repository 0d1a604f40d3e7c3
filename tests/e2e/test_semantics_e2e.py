"""Azure ML semantics through a whole run (spec → durable engine → real agents → logs): the percentage
threshold (§9.15), the progress timeout (§9.24) and the runtime flags an entry script reads (§9.20).

The policy that fails a step is applied by the step orchestration (``shared.policy.evaluate`` via
``shared.orchestration.decisions``), so these run a pipeline as ``fanout run`` does.
"""

from __future__ import annotations

import json
from pathlib import Path

from shared.orchestration.contracts import RunStatus, StepStatus
from shared.runtime.logs import read_text
from shared.storage import StorageClients
from tests.e2e.conftest import run_file, write

PIPELINE = """\
type: pipeline
display_name: semantics
settings:
  default_compute: azureml:cpu-cluster
jobs:
  score:
    type: parallel
    inputs:
      files: {type: uri_folder, path: ./data}
    outputs:
      rows: {type: uri_file}
    input_data: ${{inputs.files}}
    mini_batch_size: "1"
    resources: {instance_count: 1}
    max_concurrency_per_instance: 2
    retry_settings: {max_retries: 0, timeout: 60}
    environment_variables: ENVIRONMENT
    logging_level: LEVEL
    task:
      type: run_function
      code: ./src
      entry_script: score.py
      append_row_to: ${{outputs.rows}}
      program_arguments: ARGUMENTS
"""


def _parallel_pipeline(
    root: Path,
    script: str,
    files: dict[str, str],
    *,
    arguments: str,
    environment: dict[str, str] | None = None,
    logging_level: str = "INFO",
) -> Path:
    """One parallel job, one file per mini-batch, no retries, its rows appended to one file."""
    for name, text in files.items():
        write(root / "data" / name, text)
    write(root / "src" / "score.py", script)
    text = (
        PIPELINE.replace("ARGUMENTS", arguments)
        .replace("ENVIRONMENT", json.dumps(environment or {}))
        .replace("LEVEL", logging_level)
    )
    return write(root / "pipeline.yml", text)


FAIL_BAD_FILES = """
from pathlib import Path

def run(mini_batch):
    for path in mini_batch:
        if Path(path).name.startswith("bad"):
            raise ValueError(f"cannot score {Path(path).name}")
    return [Path(p).name for p in mini_batch]
"""


def test_allowed_failed_percent_fails_the_job_with_the_percentage(
    tmp_path: Path, fast_polls: StorageClients
) -> None:
    files = {f"good{i}.txt": f"{i}\n" for i in range(6)} | {f"bad{i}.txt": f"{i}\n" for i in range(4)}
    spec = _parallel_pipeline(
        tmp_path / "percent", FAIL_BAD_FILES, files, arguments="--allowed_failed_percent 30"
    )
    result, printed = run_file(spec)
    assert result.status is RunStatus.FAILED, printed
    job = result.jobs["score"]
    assert job.status is StepStatus.FAILED
    # 4 of 10 mini-batches failed: 40% > 30%. No count threshold is set, so only the percentage fails it.
    expected = (
        "Exceeded allowed failed percent: 40.0% of 10 mini-batches failed, "
        "more than allowed_failed_percent=30."
    )
    assert job.reason == expected
    assert job.progress is not None
    assert job.progress.total_mini_batches == 10
    assert job.progress.failed_mini_batches == 4
    assert expected in read_text(fast_polls, job.step, "job_result.txt")


HANG = """
import os, time
from pathlib import Path

def run(mini_batch):
    if Path(mini_batch[0]).name == "fast.txt":
        return mini_batch
    deadline = time.monotonic() + 120
    while not Path(os.environ["RELEASE"]).exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    return mini_batch
"""


def test_no_progress_for_progress_update_timeout_fails_the_job(
    tmp_path: Path, fast_polls: StorageClients
) -> None:
    release = tmp_path / "release"
    # run() may take 60 s (retry_settings.timeout), but nothing may go 3 s without progress.
    spec = _parallel_pipeline(
        tmp_path / "stuck",
        HANG,
        {"fast.txt": "1\n", "slow.txt": "2\n"},
        arguments="--progress_update_timeout 3",
        environment={"RELEASE": str(release)},
    )
    try:
        result, printed = run_file(spec)
    finally:
        release.touch()
    assert result.status is RunStatus.FAILED, printed
    job = result.jobs["score"]
    assert job.status is StepStatus.FAILED
    assert job.reason.startswith("No progress update in 3 seconds. "), job.reason
    assert job.progress is not None
    assert job.progress.succeeded_mini_batches <= 1  # the hanging mini-batch never finished
    assert "No progress update in 3 seconds." in read_text(fast_polls, job.step, "job_result.txt")


READ_FLAGS = """
import argparse

ARGS = None

def init():
    global ARGS
    parser = argparse.ArgumentParser(allow_abbrev=False)
    parser.add_argument("--model")
    parser.add_argument("--logging_level")
    parser.add_argument("--run_max_try", type=int)
    ARGS, _ = parser.parse_known_args()

def run(mini_batch):
    return [f"{ARGS.model} {ARGS.logging_level} {ARGS.run_max_try}" for _ in mini_batch]
"""


def test_the_entry_script_reads_the_jobs_logging_level_from_its_arguments(
    tmp_path: Path, fast_polls: StorageClients
) -> None:
    spec = _parallel_pipeline(
        tmp_path / "flags",
        READ_FLAGS,
        {"a.txt": "a\n", "b.txt": "b\n"},
        arguments="--model m1 --unknown_to_fanout 7",
        logging_level="DEBUG",
    )
    result, printed = run_file(spec)
    assert result.status is RunStatus.COMPLETED, printed
    output = result.jobs["score"].outputs["rows"]
    blob = fast_polls.blob.get_blob_client(output.container, output.path)
    # --model is the user's; --logging_level and --run_max_try (1 try: max_retries 0) are Fanout's.
    assert blob.download_blob().readall().decode().splitlines() == ["m1 DEBUG 1", "m1 DEBUG 1"]
