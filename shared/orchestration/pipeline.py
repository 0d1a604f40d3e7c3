"""``run_pipeline``: the orchestration of one run — its jobs in dependency order, each a sub-orchestration.

Algorithm (deterministic; every decision is a function of the input and of recorded task results):

1. Record the run as ``Running`` (activity ``set_run_status``) and wait, for the whole run, on one
   ``cancel`` external event.
2. Start every job whose upstream jobs all ended ``Completed`` or ``Reused`` as a ``run_step``
   sub-orchestration (instance id :func:`~.names.step_instance_id`), passing the upstream outputs.
   Jobs are considered in the plan's topological order, so independent jobs start together.
   A job with an upstream job that did not succeed is ``Skipped`` (it can never run).
3. Wait for any running job, or the cancel event.
   - A job ended: keep its :class:`StepResult` (a sub-orchestration that failed outright becomes a
     ``Failed`` result). If it failed and ``continue_on_step_failure`` is false, start nothing new;
     jobs already running finish (their work and logs are kept).
   - Cancel: start nothing new; ask the running jobs to stop (activity ``cancel_steps``: a cancel
     marker in storage plus a notice per job through the events queue) and wait for them.
4. When nothing runs any more, every job that never started is recorded (activity ``skip_steps``):
   ``Canceled`` in a canceled run; otherwise ``Skipped`` when an upstream job failed or was skipped,
   ``Canceled`` when another job's failure stopped the run.
5. Record the run's final status — ``Canceled`` if a cancel arrived, else ``Failed`` if any job failed
   or was skipped, else ``Completed`` — and return a :class:`PipelineResult`.

History grows with the number of jobs (a few events each), never with mini-batches.
"""

from __future__ import annotations

import logging
from typing import Any

from shared.orchestration import names
from shared.orchestration.context import DurableContext, DurableTask, OrchestratorGenerator, TaskFailed
from shared.orchestration.contracts import RunStatus, StepRef, StepResult, StepStatus
from shared.orchestration.models import (
    CancelSteps,
    PipelineInput,
    PipelineResult,
    PipelineView,
    RunStatusUpdate,
    SkippedSteps,
    StepInput,
)
from shared.plan import BlobData, JobPlan

logger = logging.getLogger(__name__)

SUCCEEDED = (StepStatus.COMPLETED, StepStatus.REUSED)
CANCELED_REASON = "The run was canceled."


class _Jobs:
    """The pipeline's bookkeeping: which jobs wait, run, ended, and why nothing new may start."""

    def __init__(self, pipeline: PipelineInput) -> None:
        self.pipeline = pipeline
        self.run_id = pipeline.plan.run_id
        self.waiting: list[JobPlan] = list(pipeline.plan.jobs)
        self.running: dict[str, DurableTask] = {}
        self.results: dict[str, StepResult] = {}
        self.unrun: list[StepResult] = []
        self.stop_reason = ""
        self.canceled = False

    def start_ready(self, ctx: DurableContext) -> None:
        """Start (or skip) every waiting job whose upstream jobs have all ended."""
        if self.stop_reason:
            return
        for job in list(self.waiting):
            upstream = [self.results.get(name) for name in job.depends_on]
            if any(result is None for result in upstream):
                continue
            self.waiting.remove(job)
            blocked = [r for r in upstream if r is not None and r.status not in SUCCEEDED]
            if blocked:
                self._never_ran(job, StepStatus.SKIPPED, _blocked_reason(blocked))
                continue
            self.running[job.name] = ctx.call_sub_orchestrator(
                names.RUN_STEP,
                _step_input(self.pipeline, job, self.results).model_dump(mode="json"),
                names.step_instance_id(self.run_id, job.name),
            )
            _log(ctx, "run %s: started job %s", self.run_id, job.name)

    def ended(self, ctx: DurableContext, task: DurableTask) -> None:
        name = next(job for job, running in self.running.items() if running is task)
        del self.running[name]
        result = _step_result(ctx, task, self.run_id, name)
        self.results[name] = result
        _log(ctx, "run %s: job %s ended %s", self.run_id, name, result.status)
        if result.status is StepStatus.FAILED and not self.pipeline.plan.continue_on_step_failure:
            self.stop_reason = (
                self.stop_reason or f"Job {name!r} failed and continue_on_step_failure is false."
            )

    def cancel(self) -> None:
        self.canceled = True
        self.stop_reason = CANCELED_REASON

    def settle_unstarted(self) -> None:
        """Record every job that never started: Canceled in a canceled run; otherwise Skipped after an
        upstream problem, Canceled when a failure stopped the run."""
        for job in self.waiting:
            blocked = [self.results[n] for n in job.depends_on if self.results[n].status not in SUCCEEDED]
            if blocked and not self.canceled:
                self._never_ran(job, StepStatus.SKIPPED, _blocked_reason(blocked))
            else:
                self._never_ran(job, StepStatus.CANCELED, self.stop_reason or "The job was not started.")
        self.waiting = []

    def _never_ran(self, job: JobPlan, status: StepStatus, reason: str) -> None:
        result = StepResult(step=StepRef(run_id=self.run_id, job=job.name), status=status, reason=reason)
        self.results[job.name] = result
        self.unrun.append(result)

    def view(self, status: RunStatus) -> dict[str, Any]:
        return PipelineView(
            run_id=self.run_id,
            status=status,
            running=sorted(self.running),
            jobs={name: result.status for name, result in self.results.items()},
        ).model_dump(mode="json")


def run_pipeline(ctx: DurableContext, raw_input: Any) -> OrchestratorGenerator:
    """The pipeline orchestration (see the module docstring for the algorithm)."""
    pipeline = PipelineInput.model_validate(raw_input)
    run_id = pipeline.plan.run_id
    retry = pipeline.retry

    yield ctx.call_activity(names.SET_RUN_STATUS, _status_update(run_id, RunStatus.RUNNING), retry)
    cancel = ctx.wait_for_external_event(names.CANCEL_EVENT)
    jobs = _Jobs(pipeline)
    while True:
        jobs.start_ready(ctx)
        ctx.set_custom_status(jobs.view(RunStatus.RUNNING))
        if not jobs.running:
            break
        watched = [*jobs.running.values()] if jobs.canceled else [*jobs.running.values(), cancel]
        winner = yield ctx.when_any(watched)
        if winner is not cancel:
            jobs.ended(ctx, winner)
            continue
        jobs.cancel()
        _log(ctx, "run %s: cancel requested; stopping %s", run_id, sorted(jobs.running))
        stop = CancelSteps(run_id=run_id, jobs=sorted(jobs.running))
        yield ctx.call_activity(names.CANCEL_STEPS, stop.model_dump(mode="json"), retry)

    jobs.settle_unstarted()
    if jobs.unrun:
        skipped = SkippedSteps(results=jobs.unrun)
        yield ctx.call_activity(names.SKIP_STEPS, skipped.model_dump(mode="json"), retry)
    status, reason = _run_status(pipeline.plan.jobs, jobs.results, jobs.canceled)
    ctx.set_custom_status(jobs.view(status))
    yield ctx.call_activity(names.SET_RUN_STATUS, _status_update(run_id, status, reason), retry)
    ordered = {job.name: jobs.results[job.name] for job in pipeline.plan.jobs}
    return PipelineResult(run_id=run_id, status=status, reason=reason, jobs=ordered).model_dump(mode="json")


def _status_update(run_id: str, status: RunStatus, reason: str = "") -> dict[str, Any]:
    return RunStatusUpdate(run_id=run_id, status=status, reason=reason).model_dump(mode="json")


def _step_input(pipeline: PipelineInput, job: JobPlan, results: dict[str, StepResult]) -> StepInput:
    upstream: dict[str, dict[str, BlobData]] = {name: dict(results[name].outputs) for name in job.depends_on}
    return StepInput(
        run_id=pipeline.plan.run_id,
        job=job,
        upstream_outputs=upstream,
        force_rerun=pipeline.plan.force_rerun,
        poll=pipeline.poll,
        retry=pipeline.retry,
    )


def _step_result(ctx: DurableContext, task: DurableTask, run_id: str, job: str) -> StepResult:
    try:
        return StepResult.model_validate(ctx.result_of(task))
    except TaskFailed as exc:
        return StepResult(
            step=StepRef(run_id=run_id, job=job),
            status=StepStatus.FAILED,
            reason=f"The job's orchestration failed: {exc.message}",
        )


def _blocked_reason(blocked: list[StepResult]) -> str:
    first = blocked[0]
    return f"Upstream job {first.step.job!r} ended {first.status.value}; this job cannot run."


def _run_status(jobs: list[JobPlan], results: dict[str, StepResult], canceled: bool) -> tuple[RunStatus, str]:
    if canceled:
        return RunStatus.CANCELED, CANCELED_REASON
    for job in jobs:
        result = results.get(job.name)
        if result is not None and result.status is StepStatus.FAILED:
            return RunStatus.FAILED, f"Job {job.name!r} failed: {result.reason}"
    for job in jobs:
        result = results.get(job.name)
        if result is not None and result.status not in SUCCEEDED:
            return RunStatus.FAILED, f"Job {job.name!r} ended {result.status.value}: {result.reason}"
    return RunStatus.COMPLETED, ""


def _log(ctx: DurableContext, message: str, *args: object) -> None:
    if not ctx.is_replaying:
        logger.info(message, *args)
