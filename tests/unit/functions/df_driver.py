"""Drive orchestrators through Durable Functions 1.x's own replay executor, without the Functions host.

The Functions host hands an orchestrator the instance's history as JSON and gets back the actions the
orchestrator wants; :class:`DurableFunctionsDriver` plays the host's part: it builds the history events
(``OrchestratorStarted``, ``TaskCompleted``, ``TimerFired``, ``EventRaised``,
``SubOrchestrationInstanceCompleted``...) with the task ids DF assigns (one per activity, timer and
sub-orchestration, in the order they are yielded; retries consume two more: a timer and the new
attempt), answers activities with ``respond(name, input)``, runs sub-orchestrations with a nested
driver, fires timers by moving a fake clock, and re-invokes ``Orchestrator.create(fn)``'s handle with
the whole history each time — so every episode is a full replay by DF's ``TaskOrchestrationExecutor``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.durable_functions.models.actions.ActionType import ActionType
from azure.durable_functions.models.history.HistoryEventType import HistoryEventType
from azure.durable_functions.orchestrator import Orchestrator

Handle = Callable[[str], str]
Respond = Callable[[str, Any], Any]

ATOMIC = {
    ActionType.CALL_ACTIVITY,
    ActionType.CALL_ACTIVITY_WITH_RETRY,
    ActionType.CALL_SUB_ORCHESTRATOR,
    ActionType.CALL_SUB_ORCHESTRATOR_WITH_RETRY,
    ActionType.CREATE_TIMER,
}


class ActivityFailure(Exception):
    """Raised by ``respond`` to make an activity fail (DF then retries it per its RetryOptions)."""


@dataclass
class Shared:
    respond: Respond
    handles: Mapping[str, Handle]
    events: dict[str, list[str]] = field(default_factory=dict)
    now: datetime = datetime(2030, 1, 1, tzinfo=UTC)
    episodes: int = 0


@dataclass
class _Task:
    id: int
    action: dict[str, Any]
    attempt_id: int = -1
    attempts: int = 1


def handles_for(orchestrators: Mapping[str, Callable[[Any], Any]]) -> dict[str, Handle]:
    """DF's entry points (``Orchestrator.create``) for functions ``fn(context) -> generator``."""
    return {name: Orchestrator.create(fn) for name, fn in orchestrators.items()}


class DurableFunctionsDriver:
    """Runs one orchestration instance to its end (see the module docstring)."""

    def __init__(self, shared: Shared, name: str, instance_id: str, payload: Any) -> None:
        self.shared = shared
        self.name = name
        self.instance_id = instance_id
        self.history: list[dict[str, Any]] = []
        self.last_state: dict[str, Any] = {}
        self._restart(payload)

    def _restart(self, payload: Any) -> None:
        self.input = json.dumps(payload)
        self.history = [
            self._event(HistoryEventType.ORCHESTRATOR_STARTED),
            self._event(HistoryEventType.EXECUTION_STARTED, Input=self.input, Name=self.name, Version=None),
        ]
        self.tasks: dict[int, _Task] = {}
        self.completed: set[int] = set()
        self.next_id = 0
        self.delivered: set[str] = set()

    def _event(self, kind: HistoryEventType, event_id: int = -1, **fields: Any) -> dict[str, Any]:
        stamp = self.shared.now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return {"EventType": int(kind), "EventId": event_id, "IsPlayed": False, "Timestamp": stamp, **fields}

    def replay(self) -> dict[str, Any]:
        """Invoke the orchestrator with the whole history, as the host does on every wake-up."""
        context = {
            "history": self.history,
            "instanceId": self.instance_id,
            "isReplaying": False,
            "parentInstanceId": None,
            "input": self.input,
            "upperSchemaVersion": 2,
        }
        self.shared.episodes += 1
        state: dict[str, Any] = json.loads(self.shared.handles[self.name](json.dumps(context)))
        self.last_state = state
        return state

    def run(self) -> Any:
        """Drive to completion; the orchestration's output. Raises RuntimeError when it failed."""
        while True:
            try:
                state = self.replay()
            except Exception as exc:  # DF raises the orchestrator's own failure
                raise RuntimeError(str(exc).split("\n\n$OutOfProcData$")[0]) from exc
            actions = list(_flatten(state.get("actions", [])))
            if state.get("isDone"):
                restart = [a for a in actions if a["actionType"] == ActionType.CONTINUE_AS_NEW]
                if restart:
                    self._restart(json.loads(restart[-1]["input"]))
                    continue
                return state.get("output")
            self._track(actions)
            new_events = self._advance(actions)
            self.history.append(self._event(HistoryEventType.ORCHESTRATOR_COMPLETED))
            self.history.append(self._event(HistoryEventType.ORCHESTRATOR_STARTED))
            self.history.extend(new_events)

    def _track(self, actions: list[dict[str, Any]]) -> None:
        """Give new atomic actions their DF task ids (cumulative actions: only the tail is new)."""
        atomic = [a for a in actions if a["actionType"] in ATOMIC]
        known = [t for t in self.tasks.values() if t.action is not None]
        for action in atomic[len(known) :]:
            task = _Task(id=self.next_id, action=action, attempt_id=self.next_id)
            self.tasks[task.id] = task
            self.next_id += 1

    def _open(self, *kinds: ActionType) -> list[_Task]:
        return [
            t for t in self.tasks.values() if t.id not in self.completed and t.action["actionType"] in kinds
        ]

    def _advance(self, actions: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The next completions, chosen like an engine would: events, activities, children, timers."""
        waits = {
            a["externalEventName"] for a in actions if a["actionType"] == ActionType.WAIT_FOR_EXTERNAL_EVENT
        }
        pending = self.shared.events.get(self.instance_id, [])
        for name in list(pending):
            if name in waits:
                pending.remove(name)
                return [
                    self._event(
                        HistoryEventType.EVENT_RAISED, Name=name, Input=json.dumps({"scripted": True})
                    )
                ]
        activities = self._open(ActionType.CALL_ACTIVITY, ActionType.CALL_ACTIVITY_WITH_RETRY)
        if activities:
            return [event for task in activities for event in self._execute(task)]
        children = self._open(ActionType.CALL_SUB_ORCHESTRATOR)
        if children:
            return [self._child(children[0])]
        timers = sorted(self._open(ActionType.CREATE_TIMER), key=lambda t: t.action["fireAt"])
        if not timers:
            raise AssertionError(f"{self.instance_id} waits for something that never comes")
        timer = timers[0]
        fire_at = datetime.fromisoformat(timer.action["fireAt"].replace("Z", "+00:00"))
        self.shared.now = max(self.shared.now, fire_at)
        self.completed.add(timer.id)
        return [self._event(HistoryEventType.TIMER_FIRED, TimerId=timer.id, FireAt=timer.action["fireAt"])]

    def _execute(self, task: _Task) -> list[dict[str, Any]]:
        action = task.action
        payload = json.loads(action["input"]) if action.get("input") is not None else None
        try:
            result = self.shared.respond(action["functionName"], payload)
        except ActivityFailure as exc:
            return self._failed(task, str(exc))
        self.completed.add(task.id)
        return [
            self._event(
                HistoryEventType.TASK_COMPLETED, TaskScheduledId=task.attempt_id, Result=json.dumps(result)
            )
        ]

    def _failed(self, task: _Task, reason: str) -> list[dict[str, Any]]:
        """DF's retry protocol: the failure, then a retry timer (one more id), then a new attempt's id."""
        events = [
            self._event(
                HistoryEventType.TASK_FAILED, TaskScheduledId=task.attempt_id, Reason=reason, Details=""
            )
        ]
        timer_id = self.next_id
        self.next_id += 1
        events.append(self._event(HistoryEventType.TIMER_FIRED, TimerId=timer_id))
        retry = task.action.get("retryOptions") or {"maxNumberOfAttempts": 1}
        if task.attempts >= retry["maxNumberOfAttempts"]:
            self.completed.add(task.id)
        else:
            task.attempts += 1
            task.attempt_id = self.next_id
            self.next_id += 1
        return events

    def _child(self, task: _Task) -> dict[str, Any]:
        action = task.action
        child = DurableFunctionsDriver(
            self.shared, action["functionName"], action["instanceId"], json.loads(action["input"])
        )
        self.completed.add(task.id)
        try:
            output = child.run()
        except RuntimeError as exc:
            return self._event(
                HistoryEventType.SUB_ORCHESTRATION_INSTANCE_FAILED,
                TaskScheduledId=task.id,
                Reason=str(exc),
                Details="",
            )
        return self._event(
            HistoryEventType.SUB_ORCHESTRATION_INSTANCE_COMPLETED,
            TaskScheduledId=task.id,
            Result=json.dumps(output),
        )


def _flatten(actions: Any) -> Iterator[dict[str, Any]]:
    for item in actions:
        if isinstance(item, list):
            yield from _flatten(item)
        elif item.get("actionType") in (ActionType.WHEN_ALL, ActionType.WHEN_ANY):
            yield from _flatten(item.get("compoundActions", []))
        else:
            yield item


def later(moment: datetime, seconds: float) -> datetime:
    return moment + timedelta(seconds=seconds)
