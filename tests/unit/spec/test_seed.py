"""The YAML of the Azure ML parallel-job article (seed 003) compiles exactly as written."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from shared.plan import BlobData, DataInput, DataType, InputMode, JobType, LocalData, OutputMode
from shared.spec import compile_file, compile_text

from .conftest import SEED

PIPELINE_HEADER = "type: pipeline\njobs:\n"


def _job_as_pipeline(tmp_path: Path, job_file: str) -> Path:
    """The seed's job snippet, unchanged, as the only job of a minimal pipeline next to its files."""
    shutil.copytree(SEED, tmp_path / "seed")
    snippet = (SEED / job_file).read_text()
    path = tmp_path / "seed" / "job_pipeline.yml"
    path.write_text(PIPELINE_HEADER + textwrap.indent(snippet, "  "))
    return path


def test_single_job_of_the_seed_compiles(tmp_path: Path) -> None:
    plan = compile_file(_job_as_pipeline(tmp_path, "batch_prediction_job.yml"), run_id="r1")
    job = plan.job("batch_prediction")
    assert job.type is JobType.PARALLEL
    assert job.compute == "cpu-cluster"
    assert job.instance_count == 2
    settings = job.parallel
    assert settings is not None
    assert settings.input_data == "input_data"
    assert settings.mini_batch_size == 10240
    assert settings.max_concurrency_per_instance == 2
    assert settings.logging_level == "DEBUG"
    assert settings.mini_batch_error_threshold == 5
    assert settings.error_threshold == -1
    assert (settings.retry.max_retries, settings.retry.timeout) == (2, 60)
    # No arguments were written: the script sees Fanout's runtime flags only (§9.20).
    assert settings.program_arguments == [
        "--logging_level", "DEBUG", "--mini_batch_size", "10240", "--error_threshold", "-1",
        "--run_invocation_timeout", "60", "--run_max_try", "3",
    ]  # fmt: skip
    assert settings.append_row_to is None
    seed = tmp_path / "seed"
    assert job.inputs["input_data"] == DataInput(
        type=DataType.MLTABLE, mode=InputMode.DIRECT, source=LocalData(path=str(seed / "neural-iris-mltable"))
    )
    assert job.inputs["score_model"] == DataInput(
        type=DataType.URI_FOLDER, mode=InputMode.DOWNLOAD, source=LocalData(path=str(seed / "iris-model"))
    )
    output = job.outputs["job_output_file"]
    assert (output.type, output.mode) == (DataType.URI_FILE, OutputMode.RW_MOUNT)
    assert output.location == BlobData(container="runs", path="r1/batch_prediction/outputs/job_output_file")
    assert job.code is not None
    assert job.code.local_path == str(seed / "script")
    assert job.environment is not None
    assert job.environment.image == "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04"
    assert "scikit-learn~=0.20.0" in job.environment.pip_requirements
    assert plan.warnings == []


@pytest.mark.parametrize("name", ["batch_prediction_job_with_arguments.yml", "pipeline.yml"])
def test_job_with_runtime_flags_and_the_full_pipeline_compile(tmp_path: Path, name: str) -> None:
    path = (
        _job_as_pipeline(tmp_path, name)
        if name != "pipeline.yml"
        else Path(shutil.copytree(SEED, tmp_path / "seed")) / name
    )
    plan = compile_file(path, run_id="r1")
    settings = plan.job("batch_prediction").parallel
    assert settings is not None
    # The runtime flags are parsed into settings...
    assert settings.error_threshold == 5
    assert settings.allowed_failed_percent == 30
    assert settings.task_overhead_timeout == 1200
    assert settings.progress_update_timeout == 600
    assert settings.first_task_creation_timeout == 600
    assert settings.copy_logs_to_parent is True
    # ...the misspelt one is not: the setting keeps its default and the script still gets the flag.
    assert settings.resource_monitor_interval == 600
    assert settings.program_arguments == [
        "--model", "${{inputs.score_model}}",
        "--error_threshold", "5",
        "--allowed_failed_percent", "30",
        "--task_overhead_timeout", "1200",
        "--progress_update_timeout", "600",
        "--first_task_creation_timeout", "600",
        "--copy_logs_to_parent", "True",
        "--resource_monitor_interva", "20",
        # Fanout's runtime flags the arguments do not name (--error_threshold is the user's).
        "--logging_level", "DEBUG", "--mini_batch_size", "10240", "--run_invocation_timeout", "60",
        "--run_max_try", "3",
    ]  # fmt: skip
    assert settings.append_row_to == "job_output_file"
    assert len(plan.warnings) == 1
    line = 54 if name == "pipeline.yml" else 46
    assert plan.warnings[0] == (
        f"{path}:{line}:9: jobs.batch_prediction.task.program_arguments: --resource_monitor_interva is not "
        "a runtime flag (did you mean --resource_monitor_interval?); it is passed to the entry script "
        "unchanged and resource_monitor_interval keeps its default (600)"
    )


def test_full_pipeline_settings(tmp_path: Path) -> None:
    path = Path(shutil.copytree(SEED, tmp_path / "seed")) / "pipeline.yml"
    plan = compile_file(path, run_id="r1")
    assert plan.display_name == "iris-batch-prediction-using-parallel"
    assert plan.description == "The hello world pipeline job with inline parallel job"
    assert plan.tags == {"tag": "tagvalue", "owner": "sdkteam"}
    assert plan.default_compute == "cpu-cluster"
    assert [job.name for job in plan.jobs] == ["batch_prediction"]


def test_bundled_seed_pipeline_gives_the_same_plan(tmp_path: Path) -> None:
    from shared.spec import bundle_file

    path = Path(shutil.copytree(SEED, tmp_path / "seed")) / "pipeline.yml"
    from_file = compile_file(path, run_id="r1")
    from_text = compile_text(bundle_file(path), source="specs/seed.yml", run_id="r1")
    assert from_text.model_dump(exclude={"source", "warnings"}) == from_file.model_dump(
        exclude={"source", "warnings"}
    )
    assert from_text.source == "specs/seed.yml"
    assert len(from_text.warnings) == 1
