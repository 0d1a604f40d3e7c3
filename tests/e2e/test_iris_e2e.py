"""The tabular example end to end through `fanout run`: a command job trains a model, a parallel job
scores an MLTable with it into one append_row file; outputs and logs are downloaded."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from shared.cli.main import main
from shared.storage import StorageClients

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "iris-batch-prediction" / "pipeline.yml"


def test_fanout_run_the_iris_example(
    tmp_path: Path, fast_polls: StorageClients, capsys: pytest.CaptureFixture[str]
) -> None:
    outputs = tmp_path / "fanout-outputs"
    with pytest.raises(SystemExit) as exit_info:
        main(["run", str(EXAMPLE), "--set", "scoring_nodes=1", "--outputs-dir", str(outputs)])
    printed = capsys.readouterr().out
    assert exit_info.value.code == 0, printed
    assert "run id: iris-batch-prediction-" in printed
    assert "train_model: Completed" in printed
    assert "batch_prediction: Completed" in printed

    model = outputs / "train_model" / "outputs" / "model_output"
    assert (model / "model.pkl").is_file()
    train_result = (outputs / "train_model" / "logs" / "job_result.txt").read_text()
    assert train_result.startswith("Result: Completed\nReason: The command exited with code 0.")
    assert (outputs / "train_model" / "logs" / "user_logs" / "std_log.txt").is_file()

    predictions = outputs / "batch_prediction" / "outputs" / "job_output_file" / "predictions.csv"
    rows = list(csv.reader(predictions.read_text().splitlines(), delimiter=" "))
    assert len(rows) == 1 + 150  # --append_row_dataframe_header True, then one row per iris flower
    assert "variety" in rows[0]
    logs = outputs / "batch_prediction" / "logs"
    assert (logs / "job_result.txt").read_text().startswith("Result: Completed")
    assert (logs / "sys" / "job_report" / "processed_mini-batches.csv").is_file()
