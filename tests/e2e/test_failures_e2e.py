"""A job crossing its failure threshold: `fanout run` exits 1 and prints job_result.txt's reason;
with continue_on_step_failure the independent branch still runs and the dependent job is skipped."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.cli.main import main
from shared.orchestration.contracts import RunStatus, StepRef, StepStatus
from shared.orchestration.run_index import get_run
from shared.runs import load_step_result
from shared.storage import StorageClients
from tests.e2e.conftest import write


def _failing_pipeline(root: Path) -> Path:
    for name in ("a", "b", "bad1", "bad2"):
        write(root / "data" / f"{name}.txt", f"{name}\n")
    write(
        root / "src" / "check.py",
        """
        from pathlib import Path

        def run(mini_batch):
            for path in mini_batch:
                if Path(path).name.startswith("bad"):
                    raise ValueError(f"cannot read {Path(path).name}")
            return [Path(p).name for p in mini_batch]
        """,
    )
    write(root / "src" / "hello.py", "print('hello from the independent job')\n")
    return write(
        root / "pipeline.yml",
        """
        type: pipeline
        display_name: failing
        settings:
          default_compute: azureml:cpu-cluster
          continue_on_step_failure: true
        jobs:
          check:
            type: parallel
            inputs:
              files:
                type: uri_folder
                path: ./data
            outputs:
              checked:
                type: uri_file
            input_data: ${{inputs.files}}
            mini_batch_size: "1"
            mini_batch_error_threshold: 0
            retry_settings:
              max_retries: 0
              timeout: 30
            resources:
              instance_count: 1
            max_concurrency_per_instance: 1
            task:
              type: run_function
              code: ./src
              entry_script: check.py
              environment: azureml:tiny-env:1
              append_row_to: ${{outputs.checked}}
          independent:
            type: command
            code: ./src
            command: python hello.py
            environment: azureml:tiny-env:1
          after_check:
            type: command
            code: ./src
            command: ls ${{inputs.checked}}
            environment: azureml:tiny-env:1
            inputs:
              checked: ${{parent.jobs.check.outputs.checked}}
        """,
    )


def test_a_threshold_failure_fails_the_run_and_says_why(
    tmp_path: Path, fast_polls: StorageClients, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = _failing_pipeline(tmp_path / "failing")
    with pytest.raises(SystemExit) as exit_info:
        main(["run", str(spec)])
    printed = capsys.readouterr().out
    assert exit_info.value.code == 1, printed
    assert "check: Failed" in printed
    assert "Exceeded mini-batch error threshold" in printed  # from logs/job_result.txt
    assert "independent: Completed" in printed
    assert "after_check: Skipped" in printed

    run_id = next(
        line.split(": ", 1)[1].strip() for line in printed.splitlines() if line.startswith("run id:")
    )
    entry = get_run(fast_polls, run_id)
    assert entry.status is RunStatus.FAILED
    assert entry.reason.startswith("Job 'check' failed")
    skipped = load_step_result(fast_polls, StepRef(run_id=run_id, job="after_check"))
    assert skipped.status is StepStatus.SKIPPED
    assert "Upstream job 'check' ended Failed" in skipped.reason
