"""The :class:`~.context.DurableContext` over Microsoft's ``durabletask`` SDK (local host and tests).

=====================  =====================================================
protocol                durabletask 1.12
=====================  =====================================================
call_activity + retry   ``ctx.call_activity(name, input=, retry_policy=RetryPolicy(timedelta...))``
call_sub_orchestrator   ``ctx.call_sub_orchestrator(name, input=, instance_id=)``
when_all / when_any     ``task.when_all`` / ``task.when_any`` (winner task)
create_timer            ``ctx.create_timer(datetime)``
wait_for_external_event ``ctx.wait_for_external_event(name)``
result_of               ``task.get_result()`` (``TaskFailedError`` → :class:`TaskFailed`)
=====================  =====================================================

:func:`as_durabletask` turns an engine-agnostic orchestrator into the ``(ctx, input)`` function the
worker registers (under the name given, see :func:`register_orchestrators`).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
from durabletask import task as dt
from durabletask.client import OrchestrationState, TaskHubGrpcClient
from durabletask.worker import TaskHubGrpcWorker

from shared.errors import NotFoundError, OrchestrationError
from shared.orchestration.client import InstanceStatus, RuntimeStatus
from shared.orchestration.context import (
    DurableTask,
    Orchestrator,
    RetryPolicy,
    TaskFailed,
    normalize_failures,
)


class DurableTaskContext:
    """The protocol over a ``durabletask.task.OrchestrationContext``."""

    def __init__(self, ctx: dt.OrchestrationContext) -> None:
        self._ctx = ctx

    @property
    def instance_id(self) -> str:
        """See :meth:`.context.DurableContext.instance_id`."""
        return str(self._ctx.instance_id)

    @property
    def current_utc_datetime(self) -> datetime:
        """The replay-safe time, made timezone-aware (durabletask may give a naive UTC datetime)."""
        return _utc(self._ctx.current_utc_datetime)

    @property
    def is_replaying(self) -> bool:
        """See :meth:`.context.DurableContext.is_replaying`."""
        return bool(self._ctx.is_replaying)

    def call_activity(self, name: str, input: Any = None, retry: RetryPolicy | None = None) -> DurableTask:
        """Schedule an activity, ``retry`` converted to durabletask's ``RetryPolicy``."""
        return self._ctx.call_activity(name, input=input, retry_policy=_retry_policy(retry))

    def call_sub_orchestrator(self, name: str, input: Any, instance_id: str) -> DurableTask:
        """See :meth:`.context.DurableContext.call_sub_orchestrator`."""
        return self._ctx.call_sub_orchestrator(name, input=input, instance_id=instance_id)

    def when_all(self, tasks: Sequence[DurableTask]) -> DurableTask:
        """See :meth:`.context.DurableContext.when_all`."""
        return dt.when_all(list(tasks))  # type: ignore[arg-type]

    def when_any(self, tasks: Sequence[DurableTask]) -> DurableTask:
        """See :meth:`.context.DurableContext.when_any` (durabletask's winner is the task itself)."""
        return dt.when_any(list(tasks))  # type: ignore[arg-type]

    def create_timer(self, fire_at: datetime) -> DurableTask:
        """See :meth:`.context.DurableContext.create_timer`."""
        return self._ctx.create_timer(fire_at)

    def wait_for_external_event(self, name: str) -> DurableTask:
        """See :meth:`.context.DurableContext.wait_for_external_event`."""
        return self._ctx.wait_for_external_event(name)

    def set_custom_status(self, status: Any) -> None:
        """See :meth:`.context.DurableContext.set_custom_status`."""
        self._ctx.set_custom_status(status)

    def continue_as_new(self, input: Any) -> None:
        """See :meth:`.context.DurableContext.continue_as_new`."""
        self._ctx.continue_as_new(input)

    def result_of(self, task: DurableTask) -> Any:
        """The task's result; durabletask's ``TaskFailedError`` is raised as :class:`TaskFailed`."""
        assert isinstance(task, dt.Task)
        try:
            return task.get_result()
        except dt.TaskFailedError as exc:
            raise _task_failed(exc) from exc

    def is_complete(self, task: DurableTask) -> bool:
        """See :meth:`.context.DurableContext.is_complete`."""
        return isinstance(task, dt.Task) and task.is_complete


def as_durabletask(orchestrator: Orchestrator) -> Callable[[Any, Any], Generator[Any, Any, Any]]:
    """The ``(ctx, input)`` generator function a ``TaskHubGrpcWorker`` runs for ``orchestrator``."""

    def run(ctx: dt.OrchestrationContext, input: Any) -> Generator[Any, Any, Any]:
        return normalize_failures(orchestrator(DurableTaskContext(ctx), input), _to_task_failed)

    run.__name__ = getattr(orchestrator, "__name__", "orchestrator")
    return run


def _to_task_failed(exc: Exception) -> TaskFailed | None:
    return _task_failed(exc) if isinstance(exc, dt.TaskFailedError) else None


def _task_failed(exc: dt.TaskFailedError) -> TaskFailed:
    details = exc.details
    return TaskFailed(f"{details.error_type}: {details.message}" if details.error_type else str(exc))


def _retry_policy(retry: RetryPolicy | None) -> dt.RetryPolicy | None:
    if retry is None:
        return None
    return dt.RetryPolicy(
        first_retry_interval=timedelta(seconds=retry.first_retry_seconds),
        max_number_of_attempts=retry.max_attempts,
        backoff_coefficient=retry.backoff,
        max_retry_interval=timedelta(seconds=retry.max_retry_seconds),
    )


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


_STATUS_NAMES = {
    "RUNNING": RuntimeStatus.RUNNING,
    "COMPLETED": RuntimeStatus.COMPLETED,
    "FAILED": RuntimeStatus.FAILED,
    "TERMINATED": RuntimeStatus.TERMINATED,
    "CONTINUED_AS_NEW": RuntimeStatus.CONTINUED_AS_NEW,
    "PENDING": RuntimeStatus.PENDING,
    "SUSPENDED": RuntimeStatus.SUSPENDED,
}


class DurableTaskClient:
    """:class:`~.client.DurableClient` over a ``durabletask`` ``TaskHubGrpcClient``."""

    def __init__(self, client: TaskHubGrpcClient) -> None:
        self._client = client

    def schedule(self, orchestrator: str, instance_id: str, input: Any) -> bool:
        """Start an instance; False when gRPC answers ALREADY_EXISTS (a concurrent submission won)."""
        try:
            self._client.schedule_new_orchestration(orchestrator, input=input, instance_id=instance_id)
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.ALREADY_EXISTS:
                return False
            raise
        return True

    def get_status(self, instance_id: str) -> InstanceStatus | None:
        """See :meth:`.client.DurableClient.get_status`."""
        return _instance_status(self._client.get_orchestration_state(instance_id))

    def raise_event(self, instance_id: str, event: str, data: Any = None) -> None:
        """Raise an event. Raises NotFoundError for an unknown instance, OrchestrationError otherwise."""
        try:
            self._client.raise_orchestration_event(instance_id, event, data=data)
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                raise NotFoundError(
                    f"orchestration {instance_id!r} does not exist", instance=instance_id
                ) from exc
            raise OrchestrationError(
                f"could not raise {event!r} on {instance_id!r}: {exc.code()}", instance=instance_id
            ) from exc

    def terminate(self, instance_id: str, reason: str) -> None:
        """Terminate the instance; ``reason`` becomes its output."""
        self._client.terminate_orchestration(instance_id, output=reason)

    def wait(self, instance_id: str, timeout: float) -> InstanceStatus | None:
        """See :meth:`.client.DurableClient.wait`."""
        return _instance_status(self._client.wait_for_orchestration_completion(instance_id, timeout=timeout))

    def history_length(self, instance_id: str) -> int:
        """Events in the instance's current history (its latest generation)."""
        return len(self._client.get_orchestration_history(instance_id))

    def close(self) -> None:
        """Close the gRPC channel to the task hub."""
        self._client.close()


def _instance_status(state: OrchestrationState | None) -> InstanceStatus | None:
    if state is None:
        return None
    failure = state.failure_details
    return InstanceStatus(
        instance_id=state.instance_id,
        name=state.name,
        runtime_status=_STATUS_NAMES[state.runtime_status.name],
        custom_status=state.get_custom_status(),
        output=state.get_output(),
        failure=f"{failure.error_type}: {failure.message}" if failure is not None else None,
        created_at=_utc(state.created_at),
        last_updated_at=_utc(state.last_updated_at),
    )


def register(
    worker: TaskHubGrpcWorker,
    orchestrators: Mapping[str, Orchestrator],
    activities: Mapping[str, Callable[[Any], Any]],
) -> None:
    """Register orchestrators and activity bodies (``body(input) -> output``) under their names."""
    for name, orchestrator in orchestrators.items():
        wrapped = as_durabletask(orchestrator)
        wrapped.__name__ = name
        worker.add_orchestrator(wrapped)
    for name, body in activities.items():
        worker.add_activity(_activity(name, body))


def _activity(name: str, body: Callable[[Any], Any]) -> Callable[[dt.ActivityContext, Any], Any]:
    def run(ctx: dt.ActivityContext, input: Any) -> Any:  # noqa: ARG001 - durabletask's signature
        return body(input)

    run.__name__ = name
    return run
