"""Step reuse end to end: an unchanged second run starts no agent; a one-byte data change or
--force-rerun runs the jobs again."""

from __future__ import annotations

from pathlib import Path

from shared.orchestration.contracts import RunStatus, StepStatus
from shared.orchestration.models import PipelineResult
from shared.settings import get_settings
from shared.storage import StorageClients
from tests.e2e.conftest import run_file, tiny_pipeline


def _statuses(result: PipelineResult) -> dict[str, StepStatus]:
    return {name: job.status for name, job in result.jobs.items()}


def _agents_started(run_id: str) -> bool:
    return (get_settings().home / "agents" / run_id).exists()


def test_reuse_then_a_one_byte_change_then_force_rerun(tmp_path: Path, fast_polls: StorageClients) -> None:
    asset = f"doubled-{tmp_path.name[-8:]}".lower().replace("_", "-")
    spec = tiny_pipeline(tmp_path / "tiny", asset=asset)
    first, _ = run_file(spec)
    assert first.status is RunStatus.COMPLETED, first.reason
    assert _statuses(first) == {"prepare": StepStatus.COMPLETED, "score": StepStatus.COMPLETED}
    assert _agents_started(first.run_id)
    assert first.jobs["prepare"].registered_assets == [f"{asset}:1"]

    second, printed = run_file(spec)
    assert _statuses(second) == {"prepare": StepStatus.REUSED, "score": StepStatus.REUSED}
    assert {job.reused_from for job in second.jobs.values()} == {first.run_id}
    assert not _agents_started(second.run_id)
    assert second.jobs["score"].outputs == first.jobs["score"].outputs
    assert f"(outputs of run {first.run_id})" in printed
    assert second.jobs["prepare"].registered_assets == [f"{asset}:1"]  # the same data: no new version

    (tmp_path / "tiny" / "data" / "n3.txt").write_text("7\n")  # one byte changed behind the same path
    third, _ = run_file(spec)
    assert _statuses(third) == {"prepare": StepStatus.COMPLETED, "score": StepStatus.COMPLETED}
    results = fast_polls.blob.get_container_client(third.jobs["score"].outputs["results"].container)
    text = results.download_blob(third.jobs["score"].outputs["results"].path).readall().decode()
    assert "n3.txt 14" in text.splitlines()
    assert third.jobs["prepare"].registered_assets == [f"{asset}:2"]

    fourth, _ = run_file(spec, force_rerun=True)
    assert _statuses(fourth) == {"prepare": StepStatus.COMPLETED, "score": StepStatus.COMPLETED}
    assert all(job.reused_from is None for job in fourth.jobs.values())
    assert _agents_started(fourth.run_id)
