"""Work messages: validation, ranges, trace context, and what makes a received message malformed."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import ValidationError

from shared.runtime.messages import CompletionEvent, WorkMessage
from shared.runtime.phases import mini_batches_per_message
from shared.runtime.workqueue import MalformedMessage, parse


def test_a_work_message_is_a_non_empty_range() -> None:
    message = WorkMessage(
        run_id="r", job="j", start=3, end=6, traceparent="00-" + "a" * 32 + "-" + "b" * 16 + "-01"
    )
    assert list(message.indexes) == [3, 4, 5]
    assert message.trace_carrier() == {"traceparent": message.traceparent}
    with pytest.raises(ValidationError, match=r"empty mini-batch range 4\.\.4"):
        WorkMessage(run_id="r", job="j", start=4, end=4)
    with pytest.raises(ValidationError):
        WorkMessage(run_id="r", job="j", start=0, end=1, extra="no")  # type: ignore[call-arg]


def _parse(content: str) -> WorkMessage:
    """``content`` received as message m-1 of the step r/j, which has 2 mini-batches."""
    received: Any = SimpleNamespace(id="m-1", content=content)
    return parse(received, run_id="r", job="j", total=2)


def test_parse_names_what_is_wrong_with_a_message() -> None:
    assert _parse(WorkMessage(run_id="r", job="j", start=0, end=2).model_dump_json()).end == 2
    with pytest.raises(MalformedMessage, match="work message m-1 is not a valid work message"):
        _parse("{not json")
    with pytest.raises(MalformedMessage, match="is for r/other, not r/j"):
        _parse(WorkMessage(run_id="r", job="other", start=0, end=1).model_dump_json())
    with pytest.raises(MalformedMessage, match=r"names mini-batches 1\.\.2, but the step has 2"):
        _parse(WorkMessage(run_id="r", job="j", start=1, end=3).model_dump_json())


def test_messages_carry_several_mini_batches_when_there_are_many() -> None:
    assert mini_batches_per_message(0, 4) == 1
    assert mini_batches_per_message(10, 4) == 1
    assert mini_batches_per_message(2_000, 2) == 128
    assert mini_batches_per_message(100_000, 8) == 128
    assert mini_batches_per_message(2_000, 16) == 31
    assert mini_batches_per_message(400, 10) == 10


def test_completion_event_names_its_step() -> None:
    event = CompletionEvent(run_id="r", job="j", node_id=0, agent_id="0-abc", settled=3)
    assert event.step.run_id == "r"
    assert CompletionEvent.model_validate_json(event.model_dump_json()) == event
