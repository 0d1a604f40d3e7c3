"""The small context protocol the orchestrators are written against, and what both engines share.

Fanout's orchestrators (:mod:`.pipeline`, :mod:`.step`) are plain generator functions
``orchestrator(ctx, input) -> Generator`` that yield *tasks* created by a :class:`DurableContext` and
receive their results. Two adapters implement the protocol: :mod:`.durabletask_adapter` over
Microsoft's ``durabletask`` SDK (local host and tests) and ``functions/orchestrators.py`` over
``azure-functions-durable`` 1.x (the Function App). Each is a thin mapping (see the table in the
adapters' docstrings); the orchestrator code never sees an engine type.

Rules the orchestrators follow so that both engines replay them the same way:

1. A task takes effect when it is yielded (alone, or inside ``when_all``/``when_any``): Durable
   Functions 1.x schedules it only then (durabletask at creation), and an event wait only completes,
   on Durable Functions, once yielded. Nothing is cancelled: a timer that lost a race simply fires
   later and is ignored, and an event wait is kept and re-used until its event arrives (a second
   waiter for the same name would compete for it).
2. Failures of activities and sub-orchestrations arrive as :class:`TaskFailed` whichever engine runs
   the code: the adapters wrap the generator with :func:`normalize_failures`.
3. No I/O, clock, randomness or settings reads: time is ``ctx.current_utc_datetime``; everything else
   comes from the input or from activity results.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from datetime import datetime
from typing import Any, Protocol, TypeAlias

from pydantic import Field

from shared.errors import OrchestrationError
from shared.models import FrozenModel

#: An engine's task object; opaque to orchestrators (compare with ``is``, pass back to the context).
DurableTask: TypeAlias = object

#: What an orchestrator function returns when called: a generator of tasks.
OrchestratorGenerator: TypeAlias = Generator[DurableTask, Any, Any]
Orchestrator: TypeAlias = Callable[["DurableContext", Any], OrchestratorGenerator]


class TaskFailed(OrchestrationError):
    """An activity or sub-orchestration failed (after its retries); ``message`` is the engine's text."""


class RetryPolicy(FrozenModel):
    """Retries of an activity, in seconds; converted to each engine's own retry type by the adapter."""

    first_retry_seconds: float = Field(default=1.0, gt=0, description="Delay before the first retry.")
    max_attempts: int = Field(default=5, ge=1, description="Attempts in total, the first one included.")
    backoff: float = Field(default=2.0, ge=1, description="Multiplier of the delay after each retry.")
    max_retry_seconds: float = Field(default=30.0, gt=0, description="Cap on one delay.")


class DurableContext(Protocol):
    """What an orchestrator may do. Implemented by one small adapter per durable engine."""

    @property
    def instance_id(self) -> str:
        """The orchestration's instance id."""

    @property
    def current_utc_datetime(self) -> datetime:
        """Replay-safe current time (timezone-aware, UTC)."""

    @property
    def is_replaying(self) -> bool:
        """True while the engine replays recorded history (log only when False)."""

    def call_activity(self, name: str, input: Any = None, retry: RetryPolicy | None = None) -> DurableTask:
        """Schedule activity ``name`` with a JSON-ready input, retried per ``retry`` when given."""

    def call_sub_orchestrator(self, name: str, input: Any, instance_id: str) -> DurableTask:
        """Schedule orchestrator ``name`` as a child with a fixed instance id."""

    def when_all(self, tasks: Sequence[DurableTask]) -> DurableTask:
        """A task that completes with the list of results when every task has completed."""

    def when_any(self, tasks: Sequence[DurableTask]) -> DurableTask:
        """A task that completes with the first of ``tasks`` to complete (the task itself)."""

    def create_timer(self, fire_at: datetime) -> DurableTask:
        """A durable timer that completes at ``fire_at``."""

    def wait_for_external_event(self, name: str) -> DurableTask:
        """A task that completes (with the event's data) when event ``name`` is raised."""

    def set_custom_status(self, status: Any) -> None:
        """Publish a JSON-ready status readable by clients while the orchestration runs."""

    def continue_as_new(self, input: Any) -> None:
        """Restart this orchestration with a fresh history and ``input``; return right after."""

    def result_of(self, task: DurableTask) -> Any:
        """The result of a completed task. Raises TaskFailed when the task failed."""

    def is_complete(self, task: DurableTask) -> bool:
        """True once the task has completed (successfully or not)."""


def normalize_failures(
    generator: OrchestratorGenerator, to_task_failed: Callable[[Exception], TaskFailed | None]
) -> OrchestratorGenerator:
    """Run ``generator`` under an engine, turning the engine's task failures into :class:`TaskFailed`.

    The engine throws its own exception type into the generator when a yielded task fails;
    ``to_task_failed`` maps it (or returns None for an exception that is not a task failure, which
    is re-thrown unchanged).
    """
    to_send: Any = None
    to_throw: BaseException | None = None
    while True:
        try:
            task = generator.send(to_send) if to_throw is None else generator.throw(to_throw)
        except StopIteration as stop:
            return stop.value
        to_send, to_throw = None, None
        try:
            to_send = yield task
        except Exception as exc:  # noqa: BLE001 - the engine throws a failed task in here; re-thrown below
            converted = to_task_failed(exc)
            to_throw = converted if converted is not None else exc
