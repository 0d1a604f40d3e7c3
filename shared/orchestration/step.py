"""``run_step``: the orchestration of one job of a run (parallel or command), a child of ``run_pipeline``.

Algorithm (deterministic; mini-batch bookkeeping lives in storage, never in this history):

1. ``prepare_step``: resolve inputs (upstream outputs, data assets), fingerprint, reuse check, write
   ``step.json``. Reused → the step ends ``Reused`` with the earlier run's outputs (no agent starts).
2. Parallel jobs only: ``plan_step`` (mini-batches into a manifest; in a resumed run the finished
   mini-batches of the resumed run are carried over) and ``dispatch_step`` (work queue).
3. ``start_agents`` on the executor (``instance_count`` agents; one for a command job) — none when
   the run was canceled meanwhile (the activity checks the run's cancel marker): the step ends
   ``Canceled``; none either when a resume carried every mini-batch over (the loop then sees the
   step done at its first read).
4. Loop: wait for a durable timer, the "step settled" event or the "cancel" event; ``read_progress``;
   decide with :func:`.decisions.decide` (thresholds and timeouts via ``shared.policy.evaluate``,
   at ``ctx.current_utc_datetime``); publish a :class:`StepView` as custom status. The wait grows
   from ``poll.initial_seconds`` by ``poll.factor`` up to ``poll.max_seconds``, and after
   ``poll.polls_per_generation`` reads the orchestration continues as new with its loop state, so
   its history is bounded by polls per generation — whatever the number of mini-batches.
5. ``stop_agents`` (executor stop + the step's queue drained), then ``finalize_step`` (outputs
   committed, ``job_result.txt``, assets registered and the step recorded for reuse on success).

Expected failures (bad input data, an unknown asset, an executor that refuses) come back from the
activities as :class:`Outcome` errors and end the step ``Failed`` with their message; transient
failures are retried by the engine (``input.retry``).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from shared.compute.base import AgentTask
from shared.orchestration import names
from shared.orchestration.context import DurableContext, DurableTask, OrchestratorGenerator
from shared.orchestration.contracts import (
    StepFinalize,
    StepPlanned,
    StepPrepared,
    StepProgress,
    StepResult,
    StepStart,
    StepStatus,
)
from shared.orchestration.decisions import CANCELED_REASON, StepDecision, decide
from shared.orchestration.models import (
    CANCELED_KIND,
    Outcome,
    StepInput,
    StepLoop,
    StepPhase,
    StepPoll,
    StepView,
    reused_result,
)
from shared.plan import JobType

logger = logging.getLogger(__name__)


def run_step(ctx: DurableContext, raw_input: Any) -> OrchestratorGenerator:
    """The step orchestration (see the module docstring for the algorithm)."""
    step_input = StepInput.model_validate(raw_input)
    cancel = ctx.wait_for_external_event(names.CANCEL_EVENT)
    loop = step_input.loop
    if loop is None:
        started = yield from _start(ctx, step_input)
        if isinstance(started, StepResult):
            return started.model_dump(mode="json")
        loop = started
    ended = yield from _wait(ctx, step_input, loop, cancel)
    if ended is None:
        return None  # continued as new
    decision, progress = ended
    result = yield from _finish(ctx, step_input, decision, progress, agents_started=loop.agents_started)
    return result.model_dump(mode="json")


def _start(ctx: DurableContext, step_input: StepInput) -> Any:
    """Phases 1–3. Returns the loop state, or the StepResult when the step ended before agents."""
    step, job, retry = step_input.step, step_input.job, step_input.retry
    _publish(ctx, step_input, StepPhase.PREPARING)
    start = StepStart(
        step=step, upstream_outputs=step_input.upstream_outputs, force_rerun=step_input.force_rerun
    )
    outcome = Outcome.model_validate((yield ctx.call_activity(names.PREPARE_STEP, _json(start), retry)))
    if outcome.error is not None:
        return (yield from _finish(ctx, step_input, _failed(outcome), None, agents_started=False))
    prepared = StepPrepared.model_validate(outcome.value)
    if prepared.reused_from is not None:
        result = reused_result(prepared)
        _log(ctx, "%s/%s: reused outputs of run %s", step.run_id, step.job, prepared.reused_from)
        _publish(ctx, step_input, StepPhase.DONE, status=result.status, reason=result.reason)
        return result

    planned: StepPlanned | None = None
    if job.type is JobType.PARALLEL:
        _publish(ctx, step_input, StepPhase.PLANNING)
        outcome = Outcome.model_validate((yield ctx.call_activity(names.PLAN_STEP, _json(step), retry)))
        if outcome.error is not None:
            return (yield from _finish(ctx, step_input, _failed(outcome), None, agents_started=False))
        planned = StepPlanned.model_validate(
            (yield ctx.call_activity(names.DISPATCH_STEP, _json(step), retry))
        )

    return (yield from _start_agents(ctx, step_input, prepared, planned))


def _start_agents(
    ctx: DurableContext, step_input: StepInput, prepared: StepPrepared, planned: StepPlanned | None
) -> Any:
    """Phase 3. Returns the loop state, or the StepResult when no agent could start."""
    step, job, retry = step_input.step, step_input.job, step_input.retry

    def loop(*, agents_started: bool = True) -> StepLoop:
        return StepLoop(
            prepared=prepared,
            planned=planned,
            started_at=ctx.current_utc_datetime,
            wait_seconds=step_input.poll.initial_seconds,
            agents_started=agents_started,
        )

    if planned is not None and planned.carried and planned.carried >= planned.mini_batches:
        _log(ctx, "%s/%s: every mini-batch was carried over; no agent starts", step.run_id, step.job)
        return loop(agents_started=False)
    _publish(ctx, step_input, StepPhase.STARTING)
    task = AgentTask(
        run_id=step.run_id,
        job=step.job,
        instance_count=job.instance_count if job.type is JobType.PARALLEL else 1,
        compute=job.compute,
        workers_per_agent=job.parallel.max_concurrency_per_instance if job.parallel else None,
    )
    outcome = Outcome.model_validate((yield ctx.call_activity(names.START_AGENTS, _json(task), retry)))
    if outcome.error is not None and outcome.error.kind == CANCELED_KIND:
        return (yield from _finish(ctx, step_input, _canceled(), None, agents_started=False))
    if outcome.error is not None:
        return (yield from _finish(ctx, step_input, _failed(outcome), None, agents_started=True))
    _log(ctx, "%s/%s: %d agent(s) started", step.run_id, step.job, task.instance_count)
    return loop()


def _wait(ctx: DurableContext, step_input: StepInput, loop: StepLoop, cancel: DurableTask) -> Any:
    """Phase 4. Returns ``(decision, progress)`` when the step is over, None after continue_as_new."""
    step, poll = step_input.step, step_input.poll
    settled = ctx.wait_for_external_event(names.STEP_SETTLED_EVENT)
    # A new generation reads at once (an event may have been lost), and so does a step without agents.
    read_now = loop.generation > 0 or not loop.agents_started
    reads = 0
    while True:
        if not read_now:
            timer = ctx.create_timer(ctx.current_utc_datetime + timedelta(seconds=loop.wait_seconds))
            winner = yield ctx.when_any([timer, settled, cancel])
            if winner is settled:
                settled = ctx.wait_for_external_event(names.STEP_SETTLED_EVENT)
        read_now = False
        raw = yield ctx.call_activity(names.READ_PROGRESS, _json(step), step_input.retry)
        polled = StepPoll.model_validate(raw)
        progress = polled.progress
        cancel_requested = loop.cancel_requested or polled.cancel_requested or ctx.is_complete(cancel)
        now = ctx.current_utc_datetime
        decision = decide(
            step_input.job, progress, started_at=loop.started_at, now=now, cancel_requested=cancel_requested
        )
        loop = loop.model_copy(
            update={
                "polls": loop.polls + 1,
                "wait_seconds": min(loop.wait_seconds * poll.factor, poll.max_seconds),
                "cancel_requested": cancel_requested,
            }
        )
        _publish(ctx, step_input, StepPhase.RUNNING, progress=progress, loop=loop, reason=decision.warning)
        if decision.done:
            return decision, progress
        reads += 1
        if reads >= poll.polls_per_generation:
            following = loop.model_copy(update={"generation": loop.generation + 1})
            ctx.continue_as_new(_json(step_input.model_copy(update={"loop": following})))
            return None


def _finish(
    ctx: DurableContext,
    step_input: StepInput,
    decision: StepDecision,
    progress: StepProgress | None,
    *,
    agents_started: bool,
) -> Any:
    """Phase 5: stop agents (when any were started) and finalize. Returns the StepResult."""
    step, retry = step_input.step, step_input.retry
    assert decision.status is not None
    if agents_started:
        _publish(ctx, step_input, StepPhase.STOPPING, progress=progress)
        yield ctx.call_activity(names.STOP_AGENTS, _json(step), retry)
    _publish(ctx, step_input, StepPhase.FINALIZING, progress=progress)
    finalize = StepFinalize(step=step, status=decision.status, reason=decision.reason)
    result = StepResult.model_validate((yield ctx.call_activity(names.FINALIZE_STEP, _json(finalize), retry)))
    _log(ctx, "%s/%s: %s %s", step.run_id, step.job, result.status.value, result.reason)
    _publish(
        ctx,
        step_input,
        StepPhase.DONE,
        progress=result.progress or progress,
        status=result.status,
        reason=result.reason,
    )
    return result


def _publish(
    ctx: DurableContext,
    step_input: StepInput,
    phase: StepPhase,
    *,
    progress: StepProgress | None = None,
    loop: StepLoop | None = None,
    status: StepStatus | None = None,
    reason: str = "",
) -> None:
    current = loop or step_input.loop
    view = StepView(
        job=step_input.job.name,
        phase=phase,
        status=status,
        reason=reason,
        progress=progress,
        started_at=current.started_at if current else None,
        updated_at=ctx.current_utc_datetime,
    )
    ctx.set_custom_status(view.model_dump(mode="json"))


def _failed(outcome: Outcome) -> StepDecision:
    assert outcome.error is not None
    return StepDecision(StepStatus.FAILED, outcome.error.message)


def _canceled() -> StepDecision:
    return StepDecision(StepStatus.CANCELED, CANCELED_REASON)


def _json(model: Any) -> dict[str, Any]:
    dumped: dict[str, Any] = model.model_dump(mode="json")
    return dumped


def _log(ctx: DurableContext, message: str, *args: object) -> None:
    if not ctx.is_replaying:
        logger.info(message, *args)
