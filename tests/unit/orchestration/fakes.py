"""Scripted activity bodies for driving the real orchestrations on the durabletask engine.

Each fake step is described by a :class:`FakeStep`: how many mini-batches it has and how its tallies
move per read; :class:`FakeActivities` keeps what the orchestration asked for (for assertions) and
answers like the real activities would, without storage or agents. :func:`parallel_job` builds the
jobs of the pipelines these fakes run.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from shared.orchestration import names
from shared.orchestration.activities import ActivityBody
from shared.orchestration.contracts import (
    StepFinalize,
    StepPlanned,
    StepPrepared,
    StepProgress,
    StepRef,
    StepResult,
    StepStart,
)
from shared.orchestration.dependencies import ActivityDependencies
from shared.orchestration.models import ActivityError, Outcome, RunStatusUpdate, SkippedSteps, StepPoll
from shared.plan import BlobData, JobPlan, JobType, ParallelSettings


def parallel_job(name: str, *depends_on: str, **settings: Any) -> JobPlan:
    """A parallel job named ``name`` after ``depends_on``, with ``settings`` for its ParallelSettings."""
    parallel = ParallelSettings(input_data="data", entry_script="score.py", **settings)
    return JobPlan(name=name, type=JobType.PARALLEL, parallel=parallel, depends_on=list(depends_on))


@dataclass
class FakeStep:
    """A job's scripted behaviour. ``settle_per_read`` mini-batches settle per read of the tallies."""

    mini_batches: int = 4
    settle_per_read: int = 2
    fail_per_read: int = 0
    prepare_error: str | None = None
    reuse_from: str | None = None
    command_exit_code: int | None = None
    never_settles: bool = False
    hold_until: Callable[[], bool] | None = None


@dataclass
class FakeActivities:
    steps: dict[str, FakeStep] = field(default_factory=dict)
    transient_failures: dict[str, int] = field(default_factory=dict)
    calls: list[tuple[str, Any]] = field(default_factory=list)
    reads: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    statuses: list[RunStatusUpdate] = field(default_factory=list)
    skipped: list[StepResult] = field(default_factory=list)
    canceled: list[str] = field(default_factory=list)
    on_cancel: Callable[[str, list[str]], None] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def step(self, job: str) -> FakeStep:
        return self.steps.setdefault(job, FakeStep())

    def called(self, name: str, job: str | None = None) -> int:
        with self.lock:
            return sum(1 for n, p in self.calls if n == name and (job is None or _job_of(p) == job))

    def bodies(self) -> dict[str, ActivityBody]:
        return {
            names.SET_RUN_STATUS: self._set_run_status,
            names.PREPARE_STEP: self._prepare,
            names.PLAN_STEP: self._plan,
            names.DISPATCH_STEP: self._dispatch,
            names.START_AGENTS: self._start,
            names.READ_PROGRESS: self._read,
            names.STOP_AGENTS: self._stop,
            names.FINALIZE_STEP: self._finalize,
            names.SKIP_STEPS: self._skip,
            names.CANCEL_STEPS: self._cancel,
        }

    # --- bodies -------------------------------------------------------------------------------------

    def _record(self, name: str, payload: Any) -> None:
        with self.lock:
            self.calls.append((name, payload))
            remaining = self.transient_failures.get(name, 0)
            if remaining:
                self.transient_failures[name] = remaining - 1
                raise ConnectionError(f"transient failure of {name}")

    def _set_run_status(self, deps: ActivityDependencies, payload: Any) -> None:
        self._record(names.SET_RUN_STATUS, payload)
        self.statuses.append(RunStatusUpdate.model_validate(payload))

    def _prepare(self, deps: ActivityDependencies, payload: Any) -> Any:
        self._record(names.PREPARE_STEP, payload)
        start = StepStart.model_validate(payload)
        fake = self.step(start.step.job)
        if fake.prepare_error:
            return Outcome(error=ActivityError(kind="DataError", message=fake.prepare_error)).model_dump(
                mode="json"
            )
        outputs = {
            "out": _output(start.step.run_id if not fake.reuse_from else fake.reuse_from, start.step.job)
        }
        prepared = StepPrepared(
            step=start.step,
            fingerprint=f"fp-{start.step.job}",
            reused_from=fake.reuse_from,
            outputs=outputs if fake.reuse_from else {},
        )
        return Outcome(value=prepared.model_dump(mode="json")).model_dump(mode="json")

    def _plan(self, deps: ActivityDependencies, payload: Any) -> Any:
        self._record(names.PLAN_STEP, payload)
        step = StepRef.model_validate(payload)
        planned = StepPlanned(step=step, mini_batches=self.step(step.job).mini_batches)
        return Outcome(value=planned.model_dump(mode="json")).model_dump(mode="json")

    def _dispatch(self, deps: ActivityDependencies, payload: Any) -> Any:
        self._record(names.DISPATCH_STEP, payload)
        step = StepRef.model_validate(payload)
        return StepPlanned(step=step, mini_batches=self.step(step.job).mini_batches).model_dump(mode="json")

    def _start(self, deps: ActivityDependencies, payload: Any) -> Any:
        self._record(names.START_AGENTS, payload)
        return Outcome().model_dump(mode="json")

    def _read(self, deps: ActivityDependencies, payload: Any) -> Any:
        self._record(names.READ_PROGRESS, payload)
        step = StepRef.model_validate(payload)
        fake = self.step(step.job)
        held = fake.hold_until is not None and not fake.hold_until()
        with self.lock:
            if not held:
                self.reads[step.job] += 1
            reads = self.reads[step.job]
        if fake.command_exit_code is not None:
            progress = StepProgress(step=step, command_exit_code=fake.command_exit_code, agents_alive=1)
        else:
            per_read = 0 if fake.never_settles else fake.settle_per_read
            settled = min(fake.mini_batches, per_read * reads)
            failed = min(settled, fake.fail_per_read * reads)
            progress = StepProgress(
                step=step,
                total_mini_batches=fake.mini_batches,
                dispatched=True,
                succeeded_mini_batches=settled - failed,
                failed_mini_batches=failed,
                items_succeeded=settled - failed,
                items_failed=failed,
                agents_alive=1,
            )
        return StepPoll(progress=progress, cancel_requested=False).model_dump(mode="json")

    def _stop(self, deps: ActivityDependencies, payload: Any) -> None:
        self._record(names.STOP_AGENTS, payload)

    def _finalize(self, deps: ActivityDependencies, payload: Any) -> Any:
        self._record(names.FINALIZE_STEP, payload)
        order = StepFinalize.model_validate(payload)
        outputs = (
            {"out": _output(order.step.run_id, order.step.job)} if order.status.value == "Completed" else {}
        )
        return StepResult(
            step=order.step, status=order.status, reason=order.reason, outputs=outputs, logs="logs"
        ).model_dump(mode="json")

    def _skip(self, deps: ActivityDependencies, payload: Any) -> None:
        self._record(names.SKIP_STEPS, payload)
        self.skipped.extend(SkippedSteps.model_validate(payload).results)

    def _cancel(self, deps: ActivityDependencies, payload: Any) -> None:
        self._record(names.CANCEL_STEPS, payload)
        self.canceled.extend(payload["jobs"])
        if self.on_cancel is not None:
            self.on_cancel(payload["run_id"], payload["jobs"])


def _output(run_id: str, job: str) -> BlobData:
    return BlobData(container="runs", path=f"{run_id}/{job}/outputs/out")


def _job_of(payload: Any) -> str | None:
    if isinstance(payload, dict):
        if "job" in payload and isinstance(payload["job"], str):
            return payload["job"]
        step = payload.get("step")
        if isinstance(step, dict):
            return step.get("job")
    return None
