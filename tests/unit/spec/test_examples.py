"""The examples: each frozen plan is asserted, and each entry script works as an Azure ML user wrote it."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pandas as pd
import pytest

from shared.plan import (
    AppendRowFormat,
    BlobData,
    CommandSettings,
    DataInput,
    DataType,
    InputMode,
    JobOutputRef,
    JobType,
    LiteralInput,
    LiteralType,
    LocalData,
    OutputMode,
    OutputPlan,
    ParallelSettings,
    RetrySettings,
)
from shared.spec import bundle_file, compile_file, compile_text

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
IRIS = EXAMPLES / "iris-batch-prediction"
FILES = EXAMPLES / "file-list-summary"
SALES = EXAMPLES / "sales-per-store"


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_iris_plan() -> None:
    plan = compile_file(IRIS / "pipeline.yml", run_id="r1")
    assert [job.name for job in plan.jobs] == ["train_model", "batch_prediction"]
    assert plan.default_compute == "cpu-cluster"
    assert plan.inputs["n_estimators"] == LiteralInput(type=LiteralType.INTEGER, value=50)
    assert plan.outputs == {"predictions": JobOutputRef(job="batch_prediction", output="job_output_file")}
    assert plan.warnings == []

    train = plan.job("train_model")
    assert train.type is JobType.COMMAND
    assert train.display_name == "Train an iris classifier"
    assert train.command == CommandSettings(
        command="python train.py --training_data ${{inputs.training_data}} --n_estimators 50 "
        "--model_output ${{outputs.model_output}}"
    )
    assert train.code is not None
    assert train.code.local_path == str(IRIS / "train")
    assert train.inputs["training_data"] == DataInput(
        type=DataType.URI_FILE, source=LocalData(path=str(IRIS / "data" / "iris-train.csv"))
    )
    assert train.outputs["model_output"] == OutputPlan(
        type=DataType.URI_FOLDER,
        mode=OutputMode.RW_MOUNT,
        location=BlobData(container="runs", path="r1/train_model/outputs/model_output"),
    )
    assert train.environment is not None
    assert train.environment.pip_requirements == ["pandas", "scikit-learn"]

    score = plan.job("batch_prediction")
    assert score.depends_on == ["train_model"]
    assert score.instance_count == 2
    assert score.compute == "cpu-cluster"
    assert score.environment_variables == {"AZUREML_PARALLEL_EXAMPLE": "iris"}
    assert score.inputs["input_data"] == DataInput(
        type=DataType.MLTABLE,
        mode=InputMode.DIRECT,
        source=LocalData(path=str(IRIS / "data" / "iris-mltable")),
    )
    assert score.inputs["score_model"] == DataInput(
        type=DataType.URI_FOLDER,
        mode=InputMode.DOWNLOAD,
        source=JobOutputRef(job="train_model", output="model_output"),
    )
    assert score.outputs["job_output_file"] == OutputPlan(
        type=DataType.URI_FILE,
        mode=OutputMode.RW_MOUNT,
        location=BlobData(container="data", path="iris-batch-prediction/r1/predictions.csv"),
    )
    assert score.parallel == ParallelSettings(
        input_data="input_data",
        entry_script="iris_prediction.py",
        program_arguments=[
            "--model",
            "${{inputs.score_model}}",
            "--error_threshold",
            "5",
            "--allowed_failed_percent",
            "30",
            "--task_overhead_timeout",
            "1200",
            "--progress_update_timeout",
            "600",
            "--first_task_creation_timeout",
            "600",
            "--copy_logs_to_parent",
            "True",
            "--resource_monitor_interval",
            "20",
            "--append_row_dataframe_header",
            "True",
            # Fanout's runtime flags, after the user's (§9.20); --error_threshold was written above.
            "--logging_level",
            "DEBUG",
            "--mini_batch_size",
            "1024",
            "--run_invocation_timeout",
            "60",
            "--run_max_try",
            "3",
        ],
        mini_batch_size=1024,
        instance_count=2,
        max_concurrency_per_instance=2,
        logging_level="DEBUG",
        error_threshold=5,
        mini_batch_error_threshold=5,
        allowed_failed_percent=30,
        retry=RetrySettings(max_retries=2, timeout=60),
        task_overhead_timeout=1200,
        progress_update_timeout=600,
        first_task_creation_timeout=600,
        resource_monitor_interval=20,
        copy_logs_to_parent=True,
        append_row_to="job_output_file",
        append_row_dataframe_header=True,
    )


def test_iris_parameters_override_defaults() -> None:
    plan = compile_file(
        IRIS / "pipeline.yml", run_id="r1", overrides={"n_estimators": "7", "scoring_nodes": "3"}
    )
    assert plan.job("train_model").command is not None
    assert "--n_estimators 7 " in plan.job("train_model").command.command  # type: ignore[union-attr]
    assert plan.job("batch_prediction").instance_count == 3


def test_file_list_plan() -> None:
    plan = compile_file(FILES / "pipeline.yml", run_id="r1")
    job = plan.job("summarize_files")
    assert job.display_name == "Summarise number files"
    assert job.inputs == {
        "readings": DataInput(
            type=DataType.URI_FOLDER, source=LocalData(path=str(FILES / "data" / "numbers"))
        ),
        "decimals": LiteralInput(type=LiteralType.INTEGER, value=2),
    }
    assert job.outputs["summary"].location == BlobData(
        container="data", path="file-list-summary/r1/summary.txt"
    )
    settings = job.parallel
    assert settings is not None
    assert settings.mini_batch_size == 5
    assert settings.program_arguments == [
        "--decimals", "2", "--error_threshold", "3",
        "--logging_level", "INFO", "--mini_batch_size", "5", "--run_invocation_timeout", "30",
        "--run_max_try", "2",
    ]  # fmt: skip
    assert settings.error_threshold == 3
    # The job's overrides win over the component's settings; the rest comes from the component.
    assert settings.mini_batch_error_threshold == 2
    assert settings.retry == RetrySettings(max_retries=1, timeout=30)
    assert (settings.instance_count, settings.max_concurrency_per_instance) == (2, 2)
    assert settings.append_row_to == "summary"
    assert job.code is not None
    assert job.code.local_path == str(FILES / "summarize")
    assert len(list((FILES / "data" / "numbers").iterdir())) == 23


def test_sales_plan() -> None:
    plan = compile_file(SALES / "pipeline.yml", run_id="r1")
    job = plan.job("train_per_partition")
    settings = job.parallel
    assert settings is not None
    assert settings.partition_keys == ["Store", "Brand"]
    assert settings.mini_batch_size is None
    assert settings.error_threshold == -1
    assert settings.append_row_format is AppendRowFormat.CSV
    assert settings.program_arguments == [
        "--target_col", "Quantity", "--feature_cols", "Price,Advert",
        "--model_folder", "${{outputs.model_folder}}", "--append_row_format", "csv",
        "--logging_level", "INFO", "--error_threshold", "-1", "--run_invocation_timeout", "120",
        "--run_max_try", "3",
    ]  # fmt: skip
    assert job.inputs["data_source"] == DataInput(
        type=DataType.MLTABLE, mode=InputMode.DIRECT, source=LocalData(path=str(SALES / "data" / "sales"))
    )
    assert set(job.outputs) == {"model_folder", "model_summary"}
    mltable = (SALES / "data" / "sales" / "MLTable").read_text()
    assert "read_delimited" in mltable
    assert "extract_columns_from_partition_format" in mltable


@pytest.mark.parametrize("folder", [IRIS, FILES, SALES])
def test_bundled_examples_give_the_same_plans(folder: Path) -> None:
    expected = compile_file(folder / "pipeline.yml", run_id="r1").model_dump(exclude={"source"})
    bundled = compile_text(bundle_file(folder / "pipeline.yml"), source="bundle.yml", run_id="r1")
    assert bundled.model_dump(exclude={"source"}) == expected


def test_iris_scripts_train_and_score(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    train = _load(IRIS / "train" / "train.py", "example_iris_train")
    model_dir = tmp_path / "model"
    monkeypatch.setattr(
        sys,
        "argv",
        ["train.py", "--training_data", str(IRIS / "data" / "iris-train.csv"), "--n_estimators", "10",
         "--model_output", str(model_dir)],
    )  # fmt: skip
    train.main()
    assert (model_dir / "model.pkl").is_file()

    score = _load(IRIS / "score" / "iris_prediction.py", "example_iris_score")
    monkeypatch.setattr(sys, "argv", ["driver", "--model", str(model_dir), "--error_threshold", "5"])
    score.init()
    mini_batch = pd.read_csv(IRIS / "data" / "iris-mltable" / "iris.csv").head(20)
    result = score.run(mini_batch)
    assert len(result) == 20
    assert set(result["variety"]) <= {"setosa", "versicolor", "virginica"}


def test_file_list_script_returns_one_line_per_file(monkeypatch: pytest.MonkeyPatch) -> None:
    script = _load(FILES / "summarize" / "summarize.py", "example_summarize")
    monkeypatch.setattr(sys, "argv", ["driver", "--decimals", "2", "--unknown_flag", "x"])
    script.init()
    files = sorted(str(p) for p in (FILES / "data" / "numbers").iterdir())[:5]
    lines = script.run(files)
    assert len(lines) == 5
    assert lines[0].startswith("readings-01.txt: count=")


def test_sales_script_trains_one_model_per_partition(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script = _load(SALES / "train" / "train_partition.py", "example_sales")
    monkeypatch.setattr(
        sys,
        "argv",
        [
            "driver",
            "--target_col",
            "Quantity",
            "--feature_cols",
            "Price,Advert",
            "--model_folder",
            str(tmp_path),
        ],
    )
    script.init()
    frame = pd.read_csv(SALES / "data" / "sales" / "1002" / "tropicana" / "partitioned_data.csv")
    context = SimpleNamespace(partition_key_value={"Store": 1002, "Brand": "tropicana"})
    result = script.run(frame.assign(Store=1002, Brand="tropicana"), context)
    assert list(result.columns) == ["Store", "Brand", "rows", "mae"]
    assert result.iloc[0]["rows"] == 20
    assert (tmp_path / "1002" / "tropicana" / "model.pkl").is_file()


@pytest.mark.parametrize("folder", [IRIS, FILES, SALES])
def test_plans_survive_their_json_round_trip(folder: Path) -> None:
    from shared.plan import RunPlan

    plan = compile_file(folder / "pipeline.yml", run_id="r1")
    assert RunPlan.model_validate_json(plan.model_dump_json()) == plan
