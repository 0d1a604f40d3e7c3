"""Walking skeleton: a file-list step, end to end on Azurite with real worker processes."""

from __future__ import annotations

from pathlib import Path

from shared.orchestration.contracts import StepFinalize, StepStatus
from shared.plan import DataType
from shared.runtime import phases
from shared.storage import StorageClients
from tests.integration.runtime.stepkit import make_step

SCRIPT = """
import os

def init():
    print("init in", os.getpid())

def run(mini_batch):
    return [os.path.basename(p) + ": " + open(p).read().strip() for p in mini_batch]
"""


def test_file_list_step_runs_end_to_end(storage: StorageClients, tmp_path: Path) -> None:
    step = make_step(storage, tmp_path, SCRIPT, files=6, mini_batch_size=2, append_row=DataType.URI_FILE)
    assert step.run_agent(workers=2) == 0
    progress = phases.read_progress(storage, step.ref)
    assert progress.done
    assert progress.succeeded_mini_batches == 3
    assert progress.items_succeeded == 6
    result = phases.finalize_step(storage, StepFinalize(step=step.ref, status=StepStatus.COMPLETED))
    assert result.status is StepStatus.COMPLETED
    expected = "".join(f"f{i:03d}.txt: item {i}\n" for i in range(6))
    assert step.output_bytes().decode() == expected
