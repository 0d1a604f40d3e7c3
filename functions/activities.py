"""The durable activities of the Function App: one thin function per activity.

Each hands its JSON input to the body of the same name in :mod:`shared.orchestration.activities`,
with the process's storage clients and executor (built from settings on first use, never at import
time). No user code runs here: the bodies plan, enqueue, start and stop agents on Azure Batch, read
tallies and finalize.
"""

from __future__ import annotations

import json
from typing import Any

import azure.durable_functions as df

from shared.orchestration import names

bp = df.Blueprint()


def _call(name: str, payload: Any) -> Any:
    from shared.orchestration.activities import ACTIVITIES
    from shared.orchestration.dependencies import current

    if isinstance(payload, str):  # the host may hand JSON over as text
        payload = json.loads(payload) if payload else None
    return ACTIVITIES[name](current(), payload)


@bp.activity_trigger(input_name="payload", activity=names.SET_RUN_STATUS)
def set_run_status(payload: Any) -> Any:
    """Activity: update the run's index row (the orchestrator cannot write storage itself)."""
    return _call(names.SET_RUN_STATUS, payload)


@bp.activity_trigger(input_name="payload", activity=names.PREPARE_STEP)
def prepare_step(payload: Any) -> Any:
    """Activity: resolve a step's inputs and check whether an earlier result can be reused."""
    return _call(names.PREPARE_STEP, payload)


@bp.activity_trigger(input_name="payload", activity=names.PLAN_STEP)
def plan_step(payload: Any) -> Any:
    """Activity: split a step's input into mini-batches."""
    return _call(names.PLAN_STEP, payload)


@bp.activity_trigger(input_name="payload", activity=names.DISPATCH_STEP)
def dispatch_step(payload: Any) -> Any:
    """Activity: enqueue a step's planned mini-batches."""
    return _call(names.DISPATCH_STEP, payload)


@bp.activity_trigger(input_name="payload", activity=names.START_AGENTS)
def start_agents(payload: Any) -> Any:
    """Activity: start a step's agents (unless the run was canceled meanwhile)."""
    return _call(names.START_AGENTS, payload)


@bp.activity_trigger(input_name="payload", activity=names.READ_PROGRESS)
def read_progress(payload: Any) -> Any:
    """Activity: read a step's tallies and the run's cancel marker."""
    return _call(names.READ_PROGRESS, payload)


@bp.activity_trigger(input_name="payload", activity=names.STOP_AGENTS)
def stop_agents(payload: Any) -> Any:
    """Activity: stop a step's agents (a parallel step's queue is drained too)."""
    return _call(names.STOP_AGENTS, payload)


@bp.activity_trigger(input_name="payload", activity=names.FINALIZE_STEP)
def finalize_step(payload: Any) -> Any:
    """Activity: finalize a step (its outputs, result.json and job reports)."""
    return _call(names.FINALIZE_STEP, payload)


@bp.activity_trigger(input_name="payload", activity=names.SKIP_STEPS)
def skip_steps(payload: Any) -> Any:
    """Activity: record jobs that never ran, with the reason."""
    return _call(names.SKIP_STEPS, payload)


@bp.activity_trigger(input_name="payload", activity=names.CANCEL_STEPS)
def cancel_steps(payload: Any) -> Any:
    """Activity: mark a run cancel-requested and ask each running job to stop."""
    return _call(names.CANCEL_STEPS, payload)
