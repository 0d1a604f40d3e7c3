"""The events queue on Azurite: notices and completion events become external events of the step
orchestrations; malformed messages are dropped; a failing hand-off is retried, then dropped."""

from __future__ import annotations

import threading
import uuid
from typing import Any

from shared.errors import NotFoundError, OrchestrationError
from shared.host.events import MAX_DEQUEUE_COUNT, EventsPump
from shared.orchestration import names
from shared.orchestration.contracts import StepRef
from shared.orchestration.events import (
    NoticeKind,
    OrchestrationNotice,
    handle_completion_message,
    send_notice,
)
from shared.runtime.messages import CompletionEvent
from shared.runtime.records import update_step_document
from shared.storage import StorageClients
from tests.helpers import wait_until


class Recorder:
    def __init__(self, fail_with: Exception | None = None) -> None:
        self.events: list[tuple[str, str, Any]] = []
        self.fail_with = fail_with
        self.lock = threading.Lock()

    def __call__(self, instance: str, event: str, data: Any) -> None:
        with self.lock:
            self.events.append((instance, event, data))
        if self.fail_with is not None:
            raise self.fail_with

    def for_instance(self, instance: str) -> list[tuple[str, str, Any]]:
        with self.lock:
            return [e for e in self.events if e[0] == instance]


def _run_id() -> str:
    return f"events-{uuid.uuid4().hex[:8]}"


def test_notices_raise_settled_and_cancel_on_the_step(storage: StorageClients) -> None:
    run_id, recorder = _run_id(), Recorder()
    for kind in (NoticeKind.STEP_SETTLED, NoticeKind.CANCEL):
        notice = OrchestrationNotice(kind=kind, run_id=run_id, job="train", reason="why")
        handle_completion_message(storage, recorder, notice.model_dump_json())
    instance = names.step_instance_id(run_id, "train")
    assert recorder.events == [
        (instance, names.STEP_SETTLED_EVENT, {"reason": "why"}),
        (instance, names.CANCEL_EVENT, {"reason": "why"}),
    ]


def test_a_completion_event_of_a_finished_step_raises_settled(storage: StorageClients) -> None:
    run_id, recorder = _run_id(), Recorder()
    step = StepRef(run_id=run_id, job="score")
    event = CompletionEvent(run_id=run_id, job="score", node_id=0, agent_id="a1", settled=1)
    handle_completion_message(storage, recorder, event.model_dump_json())
    assert recorder.events == []  # nothing planned yet: not done, no failures
    update_step_document(storage, step, total_mini_batches=0, dispatched=True)
    handle_completion_message(storage, recorder, event.model_dump_json())
    assert [e[:2] for e in recorder.events] == [
        (names.step_instance_id(run_id, "score"), names.STEP_SETTLED_EVENT)
    ]


def test_malformed_messages_are_dropped_and_a_gone_orchestration_is_fine(storage: StorageClients) -> None:
    recorder = Recorder()
    handle_completion_message(storage, recorder, "not json")
    handle_completion_message(storage, recorder, '{"fanout_notice": "v1", "kind": "explode"}')
    handle_completion_message(storage, recorder, '{"run_id": 3}')
    assert recorder.events == []
    gone = Recorder(fail_with=NotFoundError("no such orchestration"))
    notice = OrchestrationNotice(kind=NoticeKind.CANCEL, run_id=_run_id(), job="j")
    handle_completion_message(storage, gone, notice.model_dump_json())  # does not raise
    assert len(gone.events) == 1


def test_the_pump_delivers_and_deletes(storage: StorageClients) -> None:
    run_id, recorder = _run_id(), Recorder()
    instance = names.step_instance_id(run_id, "j")
    with EventsPump(storage, recorder, idle_interval=0.05):
        send_notice(storage, OrchestrationNotice(kind=NoticeKind.STEP_SETTLED, run_id=run_id, job="j"))
        wait_until(lambda: recorder.for_instance(instance), message="the notice to be delivered")
    assert recorder.for_instance(instance) == [(instance, names.STEP_SETTLED_EVENT, {"reason": ""})]


def test_a_failing_hand_off_is_retried_then_dropped(storage: StorageClients) -> None:
    run_id = _run_id()
    recorder = Recorder(fail_with=OrchestrationError("engine not answering"))
    instance = names.step_instance_id(run_id, "j")
    send_notice(storage, OrchestrationNotice(kind=NoticeKind.STEP_SETTLED, run_id=run_id, job="j"))
    pump = EventsPump(storage, recorder, idle_interval=0.05, visibility_timeout=1)
    with pump:
        wait_until(lambda: len(recorder.for_instance(instance)) >= MAX_DEQUEUE_COUNT, timeout=60)
        wait_until(lambda: pump.drain_once() == 0 and not _visible(storage, run_id), timeout=30)
    assert len(recorder.for_instance(instance)) == MAX_DEQUEUE_COUNT


def _visible(storage: StorageClients, run_id: str) -> bool:
    return any(run_id in m.content for m in storage.events_queue().peek_messages(max_messages=32))
