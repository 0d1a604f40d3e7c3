"""The activity bodies of the orchestrations: plain functions ``body(dependencies, payload) -> output``.

Both engine adapters register :data:`ACTIVITIES` (name → body) bound to the process's
:mod:`.dependencies` (:func:`bound_activities`). Payloads and outputs are JSON (the models of
:mod:`.contracts` and :mod:`.models`, dumped).

Failure rules: an *expected* failure (a :class:`~shared.errors.FanoutError`: bad data, unknown asset,
compute refusing the job) of ``prepare_step``/``plan_step``/``start_agents`` comes back as an
:class:`Outcome` error and fails the step with its message; anything else (storage or network trouble)
raises, and the engine retries the activity with the orchestration's retry policy. Every body is
idempotent, because an activity may run twice.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

from shared.compute.base import AgentState, AgentTask, agents_report
from shared.errors import FanoutError
from shared.orchestration import names, run_index
from shared.orchestration.contracts import (
    RunStatus,
    StepFinalize,
    StepRef,
    StepStart,
    StepStatus,
)
from shared.orchestration.decisions import CANCELED_REASON
from shared.orchestration.dependencies import ActivityDependencies, current
from shared.orchestration.events import NoticeKind, OrchestrationNotice, send_notice
from shared.orchestration.models import (
    CANCELED_KIND,
    ActivityError,
    CancelSteps,
    Outcome,
    RunStatusUpdate,
    SkippedSteps,
    StepPoll,
)
from shared.plan import JobType
from shared.runs import load_plan, save_step_result
from shared.storage import Container, StorageClients, logs_path, run_path
from shared.telemetry import start_span

logger = logging.getLogger(__name__)

ActivityBody = Callable[[ActivityDependencies, Any], Any]


def cancel_marker_path(run_id: str) -> str:
    """``<run>/cancel.json`` in ``runs``: present once a cancel was requested."""
    return run_path(run_id, "cancel.json")


def cancel_requested(clients: StorageClients, run_id: str) -> bool:
    """Whether the run's cancel marker exists: storage says so even when the cancel event was missed."""
    return bool(clients.container(Container.RUNS).get_blob_client(cancel_marker_path(run_id)).exists())


# --- bodies ------------------------------------------------------------------------------------------


def set_run_status(deps: ActivityDependencies, payload: Any) -> None:
    """Update the run index row from a :class:`RunStatusUpdate` (the orchestrator cannot do I/O)."""
    update = RunStatusUpdate.model_validate(payload)
    run_index.set_status(deps.clients, update.run_id, update.status, update.reason)


def prepare_step(deps: ActivityDependencies, payload: Any) -> dict[str, Any]:
    """Phase 1 (phases are numbered in :mod:`.contracts`): resolve a :class:`StepStart`'s inputs and
    check reuse; an :class:`Outcome` of :class:`StepPrepared`, whose error (e.g. an unknown asset) fails
    the step."""
    from shared.orchestration.prepare import prepare_step as prepare

    start = StepStart.model_validate(payload)
    return _outcome(lambda: prepare(deps.clients, start).model_dump(mode="json"))


def plan_step(deps: ActivityDependencies, payload: Any) -> dict[str, Any]:
    """Phase 2: split the step's input into mini-batches; an :class:`Outcome` of :class:`StepPlanned`
    (a :class:`~shared.errors.FanoutError`, such as unreadable input data, fails the step)."""
    from shared.runtime.phases import plan_step as plan

    step = StepRef.model_validate(payload)
    return _outcome(lambda: plan(deps.clients, step).model_dump(mode="json"))


def dispatch_step(deps: ActivityDependencies, payload: Any) -> dict[str, Any]:
    """Phase 3: enqueue the planned mini-batches (resuming where an earlier try stopped); a
    :class:`StepPlanned`. Failures raise: they are storage trouble, worth a retry."""
    from shared.runtime.phases import dispatch_step as dispatch

    result: dict[str, Any] = dispatch(deps.clients, StepRef.model_validate(payload)).model_dump(mode="json")
    return result


def start_agents(deps: ActivityDependencies, payload: Any) -> dict[str, Any]:
    """Start the step's agents — unless the run was canceled meanwhile (then an outcome of kind
    ``Canceled``: on either engine a cancel that arrived before this point starts no agent)."""
    task = AgentTask.model_validate(payload)
    if cancel_requested(deps.clients, task.run_id):
        canceled = ActivityError(kind=CANCELED_KIND, message=CANCELED_REASON)
        return Outcome(error=canceled).model_dump(mode="json")

    def start() -> None:
        deps.executor.start(task)

    return _outcome(start)


def read_progress(deps: ActivityDependencies, payload: Any) -> dict[str, Any]:
    """Phase 5: the step's tallies and the run's cancel marker, as a :class:`StepPoll`.

    A command job keeps no heartbeat, so its liveness and, when it vanished without recording one, its
    exit code come from the executor.
    """
    from shared.runtime.records import read_progress as read

    step = StepRef.model_validate(payload)
    plan = load_plan(deps.clients, step.run_id)
    if plan.job(step.job).type is JobType.COMMAND:
        # Command agents keep no heartbeat shards: the executor knows whether the agent lives. Its
        # state is read before the exit code, so an agent that recorded its code and then exited is
        # never mistaken for one that vanished.
        statuses = deps.executor.status(step.run_id, step.job)
        alive = sum(1 for s in statuses if s.state in (AgentState.PENDING, AgentState.RUNNING))
        progress = read(deps.clients, step)
        if progress.command_exit_code is None and statuses and alive == 0:
            # Gone without recording an exit code: its own (non-zero) code, else -1.
            exit_code = next((s.exit_code for s in statuses if s.exit_code), -1)
            progress = progress.model_copy(update={"command_exit_code": exit_code})
        progress = progress.model_copy(update={"agents_alive": alive})
    else:
        progress = read(deps.clients, step)
    poll = StepPoll(progress=progress, cancel_requested=cancel_requested(deps.clients, step.run_id))
    return poll.model_dump(mode="json")


def stop_agents(deps: ActivityDependencies, payload: Any) -> None:
    """Phase 6: stop the step's agents; a parallel step's queue is drained too."""
    from shared.runtime.phases import stop_step
    from shared.runtime.records import request_stop

    step = StepRef.model_validate(payload)
    if load_plan(deps.clients, step.run_id).job(step.job).type is JobType.COMMAND:
        request_stop(deps.clients, step, "the step is over")
        deps.executor.stop(step.run_id, step.job)
        return
    stop_step(deps.clients, deps.executor, step)


def finalize_step(deps: ActivityDependencies, payload: Any) -> dict[str, Any]:
    """Finalize the step; a failed one whose agents failed gets the executor's account of them in its
    reason (a Batch environment build that broke, a container that could not be pulled, a preempted
    node...), so ``job_result.txt`` says what the user can act on."""
    from shared.orchestration.finalize import finalize

    order = StepFinalize.model_validate(payload)
    if order.status is StepStatus.FAILED:
        order = _with_agents_report(deps, order)
    return finalize(deps.clients, order).model_dump(mode="json")


def _with_agents_report(deps: ActivityDependencies, order: StepFinalize) -> StepFinalize:
    try:
        statuses = deps.executor.status(order.step.run_id, order.step.job)
    except FanoutError as exc:
        logger.warning("agents of %s/%s could not be read: %s", order.step.run_id, order.step.job, exc)
        return order
    if not any(status.state is AgentState.FAILED for status in statuses):
        return order
    reason = f"{order.reason}\n{agents_report(statuses)}" if order.reason else agents_report(statuses)
    return order.model_copy(update={"reason": reason})


def skip_steps(deps: ActivityDependencies, payload: Any) -> None:
    """Record jobs that never ran: their ``result.json`` and ``logs/job_result.txt``."""
    from shared.orchestration.finalize import write_job_result

    for result in SkippedSteps.model_validate(payload).results:
        recorded = result.model_copy(update={"logs": logs_path(result.step.run_id, result.step.job)})
        save_step_result(deps.clients, recorded)
        write_job_result(deps.clients, recorded)


def cancel_steps(deps: ActivityDependencies, payload: Any) -> None:
    """Mark the run cancel-requested (marker blob + run index) and notify each running job."""
    cancel = CancelSteps.model_validate(payload)
    deps.clients.container(Container.RUNS).upload_blob(
        cancel_marker_path(cancel.run_id), cancel.model_dump_json().encode(), overwrite=True
    )
    run_index.set_status(deps.clients, cancel.run_id, RunStatus.CANCEL_REQUESTED)
    for job in cancel.jobs:
        notice = OrchestrationNotice(kind=NoticeKind.CANCEL, run_id=cancel.run_id, job=job, reason="canceled")
        send_notice(deps.clients, notice)


# --- registry -----------------------------------------------------------------------------------------

_BODIES: Mapping[str, ActivityBody] = {
    names.SET_RUN_STATUS: set_run_status,
    names.PREPARE_STEP: prepare_step,
    names.PLAN_STEP: plan_step,
    names.DISPATCH_STEP: dispatch_step,
    names.START_AGENTS: start_agents,
    names.READ_PROGRESS: read_progress,
    names.STOP_AGENTS: stop_agents,
    names.FINALIZE_STEP: finalize_step,
    names.SKIP_STEPS: skip_steps,
    names.CANCEL_STEPS: cancel_steps,
}


def bound_activities(
    dependencies: Callable[[], ActivityDependencies] = current,
    overrides: Mapping[str, ActivityBody] | None = None,
) -> dict[str, Callable[[Any], Any]]:
    """Every activity as ``body(payload)``, its dependencies fetched per call (``overrides`` for tests)."""
    bodies = {**ACTIVITIES, **(overrides or {})}
    return {name: _bind(body, dependencies) for name, body in bodies.items()}


def _bind(body: ActivityBody, dependencies: Callable[[], ActivityDependencies]) -> Callable[[Any], Any]:
    def run(payload: Any) -> Any:
        return body(dependencies(), payload)

    return run


def traced(name: str, body: ActivityBody) -> ActivityBody:
    """``body`` running in a span of its run's trace: one trace per run, whatever the engine; what the
    body sends on (work messages carry the current context) continues it too."""

    def run(deps: ActivityDependencies, payload: Any) -> Any:
        run_id = _run_id_of(payload)
        if run_id is None:
            return body(deps, payload)
        attributes = {"fanout.run_id": run_id, "fanout.activity": name}
        with start_span(
            f"fanout.activity.{name}", carrier=_run_trace(deps.clients, run_id), attributes=attributes
        ):
            return body(deps, payload)

    return run


_trace_lock = threading.Lock()
_traces: dict[str, dict[str, str]] = {}
_TRACE_CACHE_SIZE = 256


def _run_trace(clients: StorageClients, run_id: str) -> dict[str, str]:
    """The run's trace context (``RunPlan.trace``), cached: a plan never changes."""
    with _trace_lock:
        cached = _traces.get(run_id)
    if cached is not None:
        return cached
    try:
        trace = dict(load_plan(clients, run_id).trace)
    except FanoutError:
        return {}
    with _trace_lock:
        if len(_traces) >= _TRACE_CACHE_SIZE:
            _traces.pop(next(iter(_traces)))
        _traces[run_id] = trace
    return trace


def _run_id_of(payload: Any) -> str | None:
    """The run an activity input belongs to (every input names it somewhere)."""
    if not isinstance(payload, dict):
        return None
    for candidate in (payload, payload.get("step"), *(payload.get("results") or [{}])[:1]):
        if isinstance(candidate, dict):
            if isinstance(candidate.get("run_id"), str):
                return str(candidate["run_id"])
            step = candidate.get("step")
            if isinstance(step, dict) and isinstance(step.get("run_id"), str):
                return str(step["run_id"])
    return None


def _outcome(work: Callable[[], Any]) -> dict[str, Any]:
    try:
        value = work()
    except FanoutError as exc:
        return _error(exc)
    return Outcome(value=value).model_dump(mode="json")


def _error(exc: FanoutError) -> dict[str, Any]:
    logger.warning("activity failed: %s", exc.message)
    return Outcome(error=ActivityError(kind=type(exc).__name__, message=exc.message)).model_dump(mode="json")


#: Every activity body by name, each in a span of its run's trace.
ACTIVITIES: Mapping[str, ActivityBody] = {name: traced(name, body) for name, body in _BODIES.items()}
