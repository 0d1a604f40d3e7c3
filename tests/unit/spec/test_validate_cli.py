"""``fanout validate``: a summary of the frozen plan (exit 0), or every error (exit 1)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from shared.cli.main import cli

from .conftest import SEED, SpecWriter

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "iris-batch-prediction" / "pipeline.yml"


def test_a_valid_spec_prints_its_plan() -> None:
    result = CliRunner().invoke(cli, ["validate", str(EXAMPLE)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"{EXAMPLE}: valid — 2 jobs"
    assert "  1. train_model (command) on cpu-cluster" in lines
    assert "  2. batch_prediction (parallel) on cpu-cluster, after train_model" in lines
    assert "       input_data: input_data (tabular); mini-batch: 1024 bytes" in lines
    assert (
        "       thresholds: error_threshold=5 mini_batch_error_threshold=5 allowed_failed_percent=30" in lines
    )
    assert "  n_estimators: integer = 50" in lines
    assert "  predictions <- batch_prediction.job_output_file" in lines


def test_set_changes_the_plan_and_warnings_are_printed(tmp_path: Path) -> None:
    import shutil

    seed = Path(shutil.copytree(SEED, tmp_path / "seed")) / "pipeline.yml"
    result = CliRunner().invoke(cli, ["validate", str(seed)])
    assert result.exit_code == 0, result.output
    assert "warnings (1):" in result.stdout
    assert "--resource_monitor_interva is not a runtime flag" in result.stdout
    iris = CliRunner().invoke(cli, ["validate", str(EXAMPLE), "--set", "inputs.n_estimators=9", "--json"])
    assert iris.exit_code == 0, iris.output
    plan = json.loads(iris.stdout)
    assert plan["inputs"]["n_estimators"]["value"] == 9
    assert plan["run_id"] == "<run-id>"


def test_errors_go_to_stderr_with_exit_1(write_spec: SpecWriter) -> None:
    path = write_spec("type: pipeline\njobs:\n  a:\n    type: parallel\n    mini_batch_size: 10 kb\n")
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code == 1
    assert result.stdout == ""
    errors = result.stderr.splitlines()
    assert errors == [
        f"error: {path}:3:3: jobs.a: required key 'input_data' is missing; "
        "expected input_data: ${{inputs.<name>}}",
        f"error: {path}:3:3: jobs.a: required key 'task' is missing; "
        "expected task: {type: run_function, code: ..., entry_script: ...}",
        f"error: {path}:5:22: jobs.a.mini_batch_size: '10 kb' is not a mini_batch_size; "
        'expected no space between the number and the unit: "10kb"',
        f"{path}: 3 errors",
    ]


def test_bad_set_syntax_and_missing_files(tmp_path: Path) -> None:
    bad = CliRunner().invoke(cli, ["validate", str(EXAMPLE), "--set", "n_estimators"])
    assert bad.exit_code == 2
    assert "is not NAME=VALUE" in bad.output
    missing = CliRunner().invoke(cli, ["validate", str(tmp_path / "nope.yml")])
    assert missing.exit_code == 1
    assert f"error: {tmp_path / 'nope.yml'}:1:1: <root>: the file does not exist" in missing.stderr


def test_the_summary_tells_tables_from_file_lists(tmp_path: Path) -> None:
    from shared.cli.validate import split_kind
    from shared.plan import BlobData, DataInput, DataType, LocalData

    (tmp_path / "MLTable").write_text("paths:\n  - pattern: ./*.png\n")
    assert split_kind(DataInput(type=DataType.MLTABLE, source=LocalData(path=str(tmp_path)))) == "files"
    (tmp_path / "MLTable").write_text("paths:\n  - file: ./a.csv\ntransformations:\n  - read_delimited: {}\n")
    assert split_kind(DataInput(type=DataType.MLTABLE, source=LocalData(path=str(tmp_path)))) == "tabular"
    remote = DataInput(type=DataType.MLTABLE, source=BlobData(container="data", path="t"))
    assert split_kind(remote) == "tabular or files"
    assert split_kind(DataInput(type=DataType.URI_FOLDER, source=LocalData(path=str(tmp_path)))) == "files"
