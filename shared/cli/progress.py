"""Live progress of a run in the terminal: one bar per job, from the orchestrations' custom status.

Each step orchestration publishes a :class:`~shared.orchestration.models.StepView` (phase and tallies);
:class:`RunProgress` reads them through the durable client and shows, per job, the phase, a bar of
settled mini-batches, succeeded/failed items and mini-batches, and an ETA. Command jobs show their
phase only. Nothing here reads storage.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

from shared.orchestration import names
from shared.orchestration.client import DurableClient
from shared.orchestration.models import StepPhase, StepView
from shared.plan import JobType, RunPlan


class RunProgress:
    """Rich progress bars for the jobs of ``plan``; call :meth:`refresh` to update from the engine."""

    def __init__(self, plan: RunPlan, client: DurableClient, console: Console) -> None:
        self._plan = plan
        self._client = client
        width = max((len(job.name) for job in plan.jobs), default=8)
        self._progress = Progress(
            TextColumn(f"[bold]{{task.fields[job]:<{width}}}"),
            TextColumn("{task.fields[phase]:<10}"),
            BarColumn(bar_width=20),
            MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self._tasks: dict[str, TaskID] = {}
        for job in plan.jobs:
            self._tasks[job.name] = self._progress.add_task(
                job.name, job=job.name, phase="waiting", detail="", total=None, start=False
            )

    def __enter__(self) -> RunProgress:
        self._progress.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._progress.stop()

    def refresh(self) -> None:
        """Read each job's custom status once and update its bar (jobs not started yet stay waiting)."""
        for job in self._plan.jobs:
            view = self._view(job.name)
            if view is not None:
                self._show(job.name, job.type, view)

    def _view(self, job: str) -> StepView | None:
        status = self._client.get_status(names.step_instance_id(self._plan.run_id, job))
        if status is None or status.custom_status is None:
            return None
        try:
            return StepView.model_validate(_as_dict(status.custom_status))
        except ValidationError:
            return None

    def _show(self, job: str, job_type: JobType, view: StepView) -> None:
        task = self._tasks[job]
        phase = view.status.value if view.phase is StepPhase.DONE and view.status else view.phase.value
        fields: dict[str, Any] = {"phase": phase, "detail": ""}
        progress = view.progress
        if job_type is JobType.PARALLEL and progress is not None and progress.total_mini_batches:
            self._progress.start_task(task)
            fields["detail"] = f"items: {progress.items_succeeded} ok, {progress.items_failed} failed"
            if progress.failed_mini_batches:
                fields["detail"] += f" ({progress.failed_mini_batches} mini-batches failed)"
            self._progress.update(
                task, total=progress.total_mini_batches, completed=progress.settled_mini_batches, **fields
            )
            return
        if view.phase is StepPhase.DONE:
            self._progress.start_task(task)  # a started task that is complete shows no time left
            self._progress.update(task, total=1, completed=1, **fields)
            return
        if view.phase is not StepPhase.PREPARING:
            self._progress.start_task(task)
        self._progress.update(task, **fields)


def _as_dict(value: Any) -> Any:
    if isinstance(value, str):
        import json

        return json.loads(value)
    return value
