"""Messages on the events queue, turned into external events of step orchestrations.

Two kinds of message travel on ``fanout-events`` (``StorageClients.events_queue``):

- :class:`~shared.runtime.messages.CompletionEvent` from parallel-job agents: handed to the runtime's
  ``apply_completion_event``, which answers with a ``SettleNotice`` when the step is finished or crossed
  a threshold — then "step settled" is raised on the step's orchestration;
- :class:`OrchestrationNotice`, written by Fanout's own control code: a command job's node reporting
  its exit (→ "step settled"), or the pipeline asking a running step to stop (→ "cancel").

:func:`handle_completion_message` is the body of the handler: the Function App's queue trigger and the
local host's pump (``shared/host/events.py``) both call it with a ``raise_event`` that reaches their
durable engine. Events only wake orchestrations early; the state they point at is already in storage,
so a lost or repeated message costs at most one poll interval.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from enum import StrEnum
from typing import Any, Literal

from pydantic import Field, ValidationError

from shared.errors import NotFoundError
from shared.models import FrozenModel
from shared.orchestration import names
from shared.storage import StorageClients

logger = logging.getLogger(__name__)

#: ``raise_event(instance_id, event_name, data)`` of some durable client.
RaiseEvent = Callable[[str, str, Any], None]


class NoticeKind(StrEnum):
    """What a notice asks of a step's orchestration; each maps to one external event."""

    STEP_SETTLED = "step_settled"
    CANCEL = "cancel"


class OrchestrationNotice(FrozenModel):
    """A control message for one step's orchestration."""

    fanout_notice: Literal["v1"] = Field(default="v1", description="Marks the message as a notice.")
    kind: NoticeKind = Field(description="Which external event to raise.")
    run_id: str = Field(description="The run of the step.")
    job: str = Field(description="The step's job.")
    reason: str = Field(default="", description="Why, for the logs.")


_EVENT_OF = {NoticeKind.STEP_SETTLED: names.STEP_SETTLED_EVENT, NoticeKind.CANCEL: names.CANCEL_EVENT}


def send_notice(clients: StorageClients, notice: OrchestrationNotice) -> None:
    """Put a notice on the events queue (base64, as the Functions queue trigger expects)."""
    clients.events_queue().send_message(notice.model_dump_json())


def handle_completion_message(clients: StorageClients, raise_event: RaiseEvent, message_text: str) -> None:
    """Handle one events-queue message: raise "step settled" or "cancel" on a step's orchestration.

    Malformed messages are logged and dropped (retrying cannot fix them); storage errors propagate so
    the message is delivered again. An event for an orchestration that no longer exists is dropped.
    """
    try:
        document = json.loads(message_text)
    except json.JSONDecodeError:
        logger.warning("dropping an events-queue message that is not JSON: %.200s", message_text)
        return
    if isinstance(document, dict) and "fanout_notice" in document:
        _handle_notice(raise_event, document)
        return
    _handle_completion_event(clients, raise_event, document)


def _handle_notice(raise_event: RaiseEvent, document: dict[str, Any]) -> None:
    try:
        notice = OrchestrationNotice.model_validate(document)
    except ValidationError as exc:
        logger.warning("dropping a malformed orchestration notice: %s", exc)
        return
    instance = names.step_instance_id(notice.run_id, notice.job)
    _raise(raise_event, instance, _EVENT_OF[notice.kind], {"reason": notice.reason})


def _handle_completion_event(clients: StorageClients, raise_event: RaiseEvent, document: Any) -> None:
    from shared.runtime.messages import CompletionEvent
    from shared.runtime.records import apply_completion_event

    try:
        event = CompletionEvent.model_validate(document)
    except ValidationError as exc:
        logger.warning("dropping a malformed completion event: %s", exc)
        return
    notice = apply_completion_event(clients, event)
    if notice is None:
        return
    instance = names.step_instance_id(notice.step.run_id, notice.step.job)
    logger.info("step %s/%s settled: %s", notice.step.run_id, notice.step.job, notice.reason)
    _raise(raise_event, instance, names.STEP_SETTLED_EVENT, {"reason": notice.reason})


def _raise(raise_event: RaiseEvent, instance: str, event: str, data: Any) -> None:
    try:
        raise_event(instance, event, data)
    except NotFoundError:
        logger.info("orchestration %s is gone; dropped event %s", instance, event)
