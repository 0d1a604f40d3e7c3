"""``fanout run``'s live progress: per job the phase, settled mini-batches of the total, item counts,
failed mini-batches and the time remaining, from the step orchestrations' custom status."""

from __future__ import annotations

import io
import json
from typing import Any

from rich.console import Console

from shared.cli.progress import RunProgress
from shared.orchestration import names
from shared.orchestration.client import InstanceStatus, RuntimeStatus
from shared.orchestration.contracts import StepProgress, StepRef, StepStatus
from shared.orchestration.models import StepPhase, StepView
from shared.plan import CommandSettings, JobPlan, JobType, ParallelSettings, RunPlan

RUN = "progress-run"
PLAN = RunPlan(
    run_id=RUN,
    jobs=[
        JobPlan(name="train", type=JobType.COMMAND, command=CommandSettings(command="python train.py")),
        JobPlan(
            name="score",
            type=JobType.PARALLEL,
            parallel=ParallelSettings(input_data="data", entry_script="score.py"),
        ),
    ],
)


class Statuses:
    """The durable client as RunProgress uses it: custom statuses of the step instances, set by the test."""

    def __init__(self) -> None:
        self.views: dict[str, Any] = {}

    def get_status(self, instance_id: str) -> InstanceStatus | None:
        if instance_id not in self.views:
            return None
        return InstanceStatus(
            instance_id=instance_id,
            runtime_status=RuntimeStatus.RUNNING,
            custom_status=self.views[instance_id],
        )

    def show(self, job: str, view: StepView, *, as_text: bool = False) -> None:
        data = view.model_dump(mode="json")
        self.views[names.step_instance_id(RUN, job)] = json.dumps(data) if as_text else data


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _progress(total: int, succeeded: int, failed: int, items_ok: int, items_failed: int) -> StepProgress:
    return StepProgress(
        step=StepRef(run_id=RUN, job="score"),
        total_mini_batches=total,
        dispatched=True,
        succeeded_mini_batches=succeeded,
        failed_mini_batches=failed,
        items_succeeded=items_ok,
        items_failed=items_failed,
    )


def _line(output: str, job: str) -> str:
    (line,) = [line for line in output.splitlines() if line.startswith(job)]
    return " ".join(line.split())


def test_bars_show_phase_counts_failures_and_time_remaining() -> None:
    output = io.StringIO()
    clock = Clock()
    console = Console(file=output, width=160, force_terminal=False, get_time=clock)
    statuses = Statuses()
    with RunProgress(PLAN, statuses, console) as progress:  # type: ignore[arg-type]
        progress.refresh()  # nothing has started: both jobs wait
        statuses.show("train", StepView(job="train", phase=StepPhase.DONE, status=StepStatus.COMPLETED))
        statuses.show(
            "score", StepView(job="score", phase=StepPhase.RUNNING, progress=_progress(10, 1, 0, 4, 0))
        )
        clock.now = 1.0
        progress.refresh()
        # 2 more mini-batches settled in 10 s: 0.2 per second, 7 left -> 35 s.
        running = StepView(job="score", phase=StepPhase.RUNNING, progress=_progress(10, 2, 1, 8, 3))
        statuses.show("score", running, as_text=True)  # an engine may hand custom status over as JSON text
        clock.now = 11.0
        progress.refresh()
    printed = output.getvalue()  # without a terminal, the bars are printed once, as they last were
    assert _line(printed, "train") == "train Completed ━━━━━━━━━━━━━━━━━━━━ 1/1 0:00:00"
    assert _line(printed, "score") == (
        # 3 of 10 settled: 6 of the bar's 20 cells (the rest is blank without a terminal's colours).
        "score running ━━━━━━ 3/10 items: 8 ok, 3 failed (1 mini-batches failed) 0:00:35"
    )
    assert "waiting" not in printed


def test_a_finished_parallel_job_shows_its_final_counts() -> None:
    output = io.StringIO()
    console = Console(file=output, width=160, force_terminal=False, get_time=Clock())
    statuses = Statuses()
    done = StepView(
        job="score", phase=StepPhase.DONE, status=StepStatus.FAILED, progress=_progress(4, 1, 3, 1, 3)
    )
    statuses.show("score", done)
    statuses.views["junk"] = {"not": "a view"}
    with RunProgress(PLAN, statuses, console) as progress:  # type: ignore[arg-type]
        progress.refresh()
    printed = output.getvalue()
    assert _line(printed, "score").startswith(
        "score Failed ━━━━━━━━━━━━━━━━━━━━ 4/4 items: 1 ok, 3 failed (3 mini-batches failed)"
    )
    assert _line(printed, "train").startswith("train waiting")  # no status yet: not started
