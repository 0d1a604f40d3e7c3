"""Node set-up: placeholders in program arguments, worker counts, GPU detection."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.errors import ExecutionError
from shared.plan import ParallelSettings
from shared.runtime.node import detect_gpus, substitute, worker_count
from shared.settings import Settings

VALUES = {("inputs", "model"): "/node/inputs/model", ("outputs", "scored"): "/node/outputs/scored"}


def test_placeholders_become_local_paths_inside_tokens() -> None:
    tokens = ["--model", "${{inputs.model}}", "--out=${{ outputs.scored }}", "--keep", "${{name}}"]
    assert substitute(tokens, VALUES, where="program_arguments") == [
        "--model",
        "/node/inputs/model",
        "--out=/node/outputs/scored",
        "--keep",
        "${{name}}",
    ]


def test_an_unknown_placeholder_is_named_in_the_error() -> None:
    with pytest.raises(ExecutionError) as caught:
        substitute(["--x", "${{inputs.modle}}"], VALUES, where="program_arguments of job score")
    message = caught.value.message
    assert message.startswith("program_arguments of job score: ${{inputs.modle}} names no input of the job")
    assert "inputs.model" in message


def test_worker_count_prefers_the_flag_then_the_setting_then_gpus_then_cores() -> None:
    plain = ParallelSettings(input_data="d", entry_script="s.py")
    fixed = ParallelSettings(input_data="d", entry_script="s.py", max_concurrency_per_instance=3)
    assert worker_count(fixed, 5, gpus=2) == 5
    assert worker_count(fixed, None, gpus=2) == 3
    assert worker_count(plain, None, gpus=2) == 2
    assert worker_count(plain, None, gpus=0) >= 1


def test_gpu_count_comes_from_the_setting_or_nvidia_smi(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert detect_gpus(Settings(gpu_count=4)) == 4
    fake = tmp_path / "nvidia-smi"
    fake.write_text("#!/bin/sh\necho 'GPU 0: Tesla T4 (UUID: a)'\necho 'GPU 1: Tesla T4 (UUID: b)'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert detect_gpus(Settings()) == 2
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    assert detect_gpus(Settings()) == 0
