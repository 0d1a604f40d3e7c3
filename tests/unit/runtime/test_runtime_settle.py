"""The settler stores an outcome only after the output files present when its write began are stored."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shared.orchestration.contracts import StepRef
from shared.runtime.recorder import Outcome, Written
from shared.runtime.records import MiniBatchRecord, RecordStatus
from shared.runtime.settle import Settler


class FakeRecorder:
    """Keeps what each flush stored (indexes), in order."""

    def __init__(self) -> None:
        self.pending: list[Outcome] = []
        self.flushes: list[list[int]] = []

    def add(self, outcome: Outcome) -> None:
        self.pending.append(outcome)

    def __len__(self) -> int:
        return len(self.pending)

    def flush(self) -> list[Written]:
        self.flushes.append([o.record.index for o in self.pending])
        self.pending = []
        return []


class UploadDuring:
    """Output files being uploaded; ``during`` runs in the middle of the first upload."""

    def __init__(self) -> None:
        self.during: Callable[[], None] | None = None
        self.uploads = 0

    def sync(self) -> int:
        self.uploads += 1
        if self.during is not None:
            during, self.during = self.during, None
            during()
        return 0


def _outcome(index: int) -> Outcome:
    record = MiniBatchRecord(index=index, status=RecordStatus.SUCCEEDED, final=True, items=1)
    return Outcome(record=record, etag=None)


def test_an_outcome_that_arrives_while_files_upload_waits_for_the_next_write() -> None:
    recorder, sync = FakeRecorder(), UploadDuring()
    none: Any = None
    settler = Settler(
        none,
        StepRef(run_id="r", job="j"),
        node_id=0,
        agent_id="a",
        recorder=recorder,  # type: ignore[arg-type]
        queue=none,
        held={},
        nodelog=none,
        output_sync=sync,  # type: ignore[arg-type]
    )
    # Mini-batch 2 finishes (its file written after the upload listed the folder) during the upload
    # that was started for mini-batch 1: it must not be stored with mini-batch 1.
    sync.during = lambda: settler.add(_outcome(2))
    settler.add(_outcome(1))
    settler.flush_now()
    settler.close()
    assert recorder.flushes == [[1], [2]]
    assert sync.uploads == 2  # mini-batch 2's files were uploaded by the write that stored it
