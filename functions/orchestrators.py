"""The durable orchestrators of the Function App, and the context adapter over Durable Functions 1.x.

The orchestration logic is :mod:`shared.orchestration.pipeline` / :mod:`~shared.orchestration.step`,
written against :class:`~shared.orchestration.context.DurableContext`. :class:`FunctionsContext` maps it
onto ``azure-functions-durable``'s ``DurableOrchestrationContext``:

=======================  ================================================================
protocol                  Durable Functions 1.x
=======================  ================================================================
call_activity + retry     ``call_activity_with_retry(name, RetryOptions(ms, attempts), input_)``
                          (1.x retries have no backoff: the first interval is used each time)
call_sub_orchestrator     ``call_sub_orchestrator(name, input_, instance_id)``
when_all / when_any       ``task_all`` / ``task_any`` (the winner task)
create_timer              ``create_timer(datetime)``
wait_for_external_event   ``wait_for_external_event(name)``
result_of                 ``task.result``; a FAILED task → :class:`TaskFailed`
input                     ``context.get_input()``
=======================  ================================================================

A failed task is thrown into the generator as a plain ``Exception("<reason> \\n <details>")``;
:func:`~shared.orchestration.context.normalize_failures` turns it into ``TaskFailed``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import azure.durable_functions as df
from azure.durable_functions.models.Task import TaskBase, TaskState

from shared.orchestration import names
from shared.orchestration.context import (
    DurableTask,
    Orchestrator,
    OrchestratorGenerator,
    RetryPolicy,
    TaskFailed,
    normalize_failures,
)
from shared.orchestration.pipeline import run_pipeline as pipeline_orchestrator
from shared.orchestration.step import run_step as step_orchestrator

bp = df.Blueprint()


class FunctionsContext:
    """The protocol over a Durable Functions 1.x ``DurableOrchestrationContext``."""

    def __init__(self, context: df.DurableOrchestrationContext) -> None:
        self._context = context

    @property
    def instance_id(self) -> str:
        """The id of the running orchestration instance."""
        return str(self._context.instance_id)

    @property
    def current_utc_datetime(self) -> datetime:
        """The replay-safe current time, always timezone-aware UTC (DF 1.x may hand a naive one)."""
        moment: datetime = self._context.current_utc_datetime
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)

    @property
    def is_replaying(self) -> bool:
        """True while the generator replays its history (orchestrators log only when False)."""
        return bool(self._context.is_replaying)

    def call_activity(self, name: str, input: Any = None, retry: RetryPolicy | None = None) -> DurableTask:
        """Schedule activity ``name``; a ``retry`` policy becomes DF 1.x ``RetryOptions`` (no backoff)."""
        if retry is None:
            return self._context.call_activity(name, input)
        options = df.RetryOptions(
            first_retry_interval_in_milliseconds=max(1, round(retry.first_retry_seconds * 1000)),
            max_number_of_attempts=retry.max_attempts,
        )
        return self._context.call_activity_with_retry(name, options, input)

    def call_sub_orchestrator(self, name: str, input: Any, instance_id: str) -> DurableTask:
        """Schedule sub-orchestration ``name`` as ``instance_id``."""
        return self._context.call_sub_orchestrator(name, input, instance_id)

    def when_all(self, tasks: Sequence[DurableTask]) -> DurableTask:
        """A task that completes when all of ``tasks`` have (``task_all``)."""
        return self._context.task_all(list(tasks))

    def when_any(self, tasks: Sequence[DurableTask]) -> DurableTask:
        """A task that completes with the first of ``tasks`` to finish (``task_any``: the winner task)."""
        return self._context.task_any(list(tasks))

    def create_timer(self, fire_at: datetime) -> DurableTask:
        """A durable timer that fires at ``fire_at``."""
        return self._context.create_timer(fire_at)

    def wait_for_external_event(self, name: str) -> DurableTask:
        """A task that completes when event ``name`` is raised on this instance."""
        return self._context.wait_for_external_event(name)

    def set_custom_status(self, status: Any) -> None:
        """Publish ``status`` as the instance's custom status (what status queries show)."""
        self._context.set_custom_status(status)

    def continue_as_new(self, input: Any) -> None:
        """Restart this orchestration with ``input``, dropping its history."""
        self._context.continue_as_new(input)

    def result_of(self, task: DurableTask) -> Any:
        """The result of a completed task.

        Raises:
            TaskFailed: the task failed (its message on one line).
        """
        assert isinstance(task, TaskBase)
        if task.state is TaskState.FAILED:
            raise TaskFailed(_failure_message(task.result))
        return task.result

    def is_complete(self, task: DurableTask) -> bool:
        """Whether ``task`` has finished, succeeded or failed."""
        return isinstance(task, TaskBase) and task.is_completed


def run(orchestrator: Orchestrator, context: df.DurableOrchestrationContext) -> OrchestratorGenerator:
    """Run an engine-agnostic orchestrator under Durable Functions."""
    return normalize_failures(orchestrator(FunctionsContext(context), context.get_input()), _to_task_failed)


def _to_task_failed(exc: Exception) -> TaskFailed:
    # Durable Functions 1.x throws every task failure in as a plain Exception.
    return TaskFailed(_failure_message(exc))


def _failure_message(value: object) -> str:
    return " ".join(str(value).split())


@bp.orchestration_trigger(context_name="context", orchestration=names.RUN_PIPELINE)
def run_pipeline(context: df.DurableOrchestrationContext) -> OrchestratorGenerator:
    """The pipeline orchestration of one run (instance id = run id)."""
    return run(pipeline_orchestrator, context)


@bp.orchestration_trigger(context_name="context", orchestration=names.RUN_STEP)
def run_step(context: df.DurableOrchestrationContext) -> OrchestratorGenerator:
    """One job of a run, a sub-orchestration of run_pipeline."""
    return run(step_orchestrator, context)
