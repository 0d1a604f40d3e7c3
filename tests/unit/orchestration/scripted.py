"""A tiny deterministic stand-in engine for unit tests of the orchestrators' logic.

:class:`ScriptedContext` implements the :class:`~shared.orchestration.context.DurableContext` protocol
and records every action the orchestrator takes; :func:`drive` runs an orchestrator to the end,
answering activities with a ``respond(name, payload)`` callable (which may raise TaskFailed), running
sub-orchestrations inline, firing timers by advancing a fake clock, and delivering scripted external
events. Driving an orchestrator twice with the same answers must produce the same actions (replay).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from shared.orchestration.context import DurableTask, Orchestrator, RetryPolicy, TaskFailed

Respond = Callable[[str, Any], Any]
START = datetime(2030, 1, 1, tzinfo=UTC)


@dataclass(eq=False)
class Task:
    kind: str
    name: str = ""
    payload: Any = None
    instance_id: str = ""
    fire_at: datetime | None = None
    children: list[Task] = field(default_factory=list)
    done: bool = False
    result: Any = None
    error: TaskFailed | None = None

    def complete(self, result: Any = None, error: TaskFailed | None = None) -> None:
        self.done, self.result, self.error = True, result, error


@dataclass
class World:
    """What all contexts of one drive share: the clock, the answers, the actions, pending events."""

    respond: Respond
    orchestrators: Mapping[str, Orchestrator]
    events: dict[str, list[str]] = field(default_factory=dict)
    now: datetime = START
    actions: list[tuple[str, ...]] = field(default_factory=list)


class ScriptedContext:
    def __init__(self, world: World, instance_id: str) -> None:
        self.world = world
        self._instance_id = instance_id
        self.continued_with: Any = None
        self.custom_status: Any = None

    @property
    def instance_id(self) -> str:
        return self._instance_id

    @property
    def current_utc_datetime(self) -> datetime:
        return self.world.now

    @property
    def is_replaying(self) -> bool:
        return False

    def _act(self, *action: str) -> None:
        self.world.actions.append((self._instance_id, *action))

    def call_activity(self, name: str, input: Any = None, retry: RetryPolicy | None = None) -> DurableTask:
        self._act("activity", name, json.dumps(input, sort_keys=True))
        return Task("activity", name, input)

    def call_sub_orchestrator(self, name: str, input: Any, instance_id: str) -> DurableTask:
        self._act("sub", name, instance_id)
        return Task("sub", name, input, instance_id=instance_id)

    def when_all(self, tasks: Sequence[DurableTask]) -> DurableTask:
        return Task("all", children=[_task(t) for t in tasks])

    def when_any(self, tasks: Sequence[DurableTask]) -> DurableTask:
        return Task("any", children=[_task(t) for t in tasks])

    def create_timer(self, fire_at: datetime) -> DurableTask:
        self._act("timer", fire_at.isoformat())
        return Task("timer", fire_at=fire_at)

    def wait_for_external_event(self, name: str) -> DurableTask:
        return Task("event", name, instance_id=self._instance_id)

    def set_custom_status(self, status: Any) -> None:
        self.custom_status = status
        self._act("status", json.dumps(status, sort_keys=True))

    def continue_as_new(self, input: Any) -> None:
        self._act("continue_as_new")
        self.continued_with = input

    def result_of(self, task: DurableTask) -> Any:
        scripted = _task(task)
        assert scripted.done
        if scripted.error is not None:
            raise scripted.error
        return scripted.result

    def is_complete(self, task: DurableTask) -> bool:
        return _task(task).done


def drive(world: World, name: str, payload: Any, instance_id: str) -> Any:
    """Run orchestrator ``name`` to its end (through continue_as_new); its output."""
    while True:
        ctx = ScriptedContext(world, instance_id)
        generator = world.orchestrators[name](ctx, payload)
        to_send: Any = None
        to_throw: TaskFailed | None = None
        while True:
            try:
                task = generator.send(to_send) if to_throw is None else generator.throw(to_throw)
            except StopIteration as stop:
                output = stop.value
                break
            scripted = _task(task)
            _resolve(world, scripted)
            to_send, to_throw = (scripted.result, None) if scripted.error is None else (None, scripted.error)
        if ctx.continued_with is None:
            return output
        payload = ctx.continued_with


def _resolve(world: World, task: Task) -> None:
    if task.done:
        return
    if task.kind == "activity":
        try:
            task.complete(world.respond(task.name, task.payload))
        except TaskFailed as exc:
            task.complete(error=exc)
    elif task.kind == "sub":
        try:
            task.complete(drive(world, task.name, task.payload, task.instance_id))
        except TaskFailed as exc:
            task.complete(error=exc)
    elif task.kind == "timer":
        assert task.fire_at is not None
        world.now = max(world.now, task.fire_at)
        task.complete()
    elif task.kind == "event":
        pending = world.events.get(task.instance_id, [])
        if task.name in pending:
            pending.remove(task.name)
            task.complete({"scripted": True})
    elif task.kind == "all":
        for child in task.children:
            _resolve(world, child)
        task.complete([child.result for child in task.children])
    elif task.kind == "any":
        task.complete(_winner(world, task.children))


def _winner(world: World, children: list[Task]) -> Task:
    for child in children:
        if child.done:
            return child
    for child in children:  # a pending event is delivered before time moves on
        if child.kind == "event":
            _resolve(world, child)
            if child.done:
                return child
    for kind in ("sub", "activity"):
        for child in children:
            if child.kind == kind:
                _resolve(world, child)
                return child
    timers = sorted((c for c in children if c.kind == "timer"), key=lambda c: c.fire_at or world.now)
    if not timers:
        raise AssertionError("when_any over tasks that can never complete")
    _resolve(world, timers[0])
    return timers[0]


def _task(task: DurableTask) -> Task:
    assert isinstance(task, Task)
    return task
