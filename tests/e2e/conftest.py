"""End-to-end runs: Azurite, the in-process durable engine, real agent processes, tiny pipelines."""

from __future__ import annotations

import io
import textwrap
from pathlib import Path

import pytest
from rich.console import Console

from shared.cli.run import run_pipeline_file
from shared.orchestration.models import PipelineResult
from shared.settings import get_settings
from shared.storage import StorageClients


@pytest.fixture
def fast_polls(monkeypatch: pytest.MonkeyPatch, storage: StorageClients) -> StorageClients:
    """Storage on the session's Azurite, and steps that read their tallies every 0.2–1 s."""
    monkeypatch.setenv("FANOUT_STEP_POLL_SECONDS", "0.2")
    monkeypatch.setenv("FANOUT_STEP_POLL_MAX_SECONDS", "1")
    get_settings.cache_clear()
    return storage


def run_file(spec: Path, **options: object) -> tuple[PipelineResult, str]:
    """Run a pipeline like ``fanout run`` does; its result and what it printed."""
    output = io.StringIO()
    console = Console(file=output, width=200)
    result = run_pipeline_file(spec, console=console, settings=get_settings(), **options)  # type: ignore[arg-type]
    return result, output.getvalue()


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())
    return path


#: A command job's script: each number file of --numbers, doubled, into the folder --out.
DOUBLE_NUMBERS = """
import argparse, pathlib
parser = argparse.ArgumentParser()
parser.add_argument("--numbers")
parser.add_argument("--out")
args = parser.parse_args()
out = pathlib.Path(args.out)
out.mkdir(parents=True, exist_ok=True)
for path in sorted(pathlib.Path(args.numbers).glob("*.txt")):
    (out / path.name).write_text(str(2 * int(path.read_text())))
print("prepared", len(list(out.iterdir())), "files")
"""


def tiny_pipeline(root: Path, asset: str = "tiny-doubled") -> Path:
    """A command job doubling numbers (5 files) and a parallel job echoing them, 2 files per mini-batch."""
    for index in range(1, 6):
        write(root / "data" / f"n{index}.txt", f"{index}\n")
    write(root / "src" / "prepare.py", DOUBLE_NUMBERS)
    write(
        root / "src" / "score.py",
        """
        from pathlib import Path

        def init():
            pass

        def run(mini_batch):
            return [f"{Path(p).name} {Path(p).read_text().strip()}" for p in mini_batch]
        """.replace("ASSET_NAME", asset),
    )
    return write(
        root / "pipeline.yml",
        """
        type: pipeline
        display_name: tiny
        settings:
          default_compute: azureml:cpu-cluster
        inputs:
          numbers:
            type: uri_folder
            path: ./data
        jobs:
          prepare:
            type: command
            code: ./src
            command: python prepare.py --numbers ${{inputs.numbers}} --out ${{outputs.doubled}}
            environment: azureml:tiny-env:1
            inputs:
              numbers: ${{parent.inputs.numbers}}
            outputs:
              doubled:
                type: uri_folder
                name: ASSET_NAME
          score:
            type: parallel
            inputs:
              files:
                type: uri_folder
                path: ${{parent.jobs.prepare.outputs.doubled}}
            outputs:
              results:
                type: uri_file
            input_data: ${{inputs.files}}
            mini_batch_size: "2"
            resources:
              instance_count: 1
            max_concurrency_per_instance: 1
            task:
              type: run_function
              code: ./src
              entry_script: score.py
              environment: azureml:tiny-env:1
              append_row_to: ${{outputs.results}}
        """.replace("ASSET_NAME", asset),
    )
