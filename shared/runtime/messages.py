"""Messages that cross a process boundary in the runtime: work messages, completion events, notices.

- :class:`WorkMessage` goes on a step's work queue (``shared.storage.work_queue_name``). It names a
  contiguous range of mini-batch indexes, so one message carries several mini-batches (dispatch is not
  capped by one queue's ~2,000 messages/s, and a redelivered message is checked with one range query),
  and the W3C trace context of the run so each mini-batch span joins the run's trace.
- :class:`CompletionEvent` goes on ``shared.storage.EVENTS_QUEUE`` after an agent has durably recorded
  settled mini-batches; it only wakes the orchestrator early — the tallies it refers to are already stored.
- :class:`SettleNotice` is what :func:`shared.runtime.records.apply_completion_event` returns when the
  step is finished or crossed a threshold; the orchestration raises its "step settled" event from it.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import Field, model_validator

from shared.models import FrozenModel
from shared.orchestration.contracts import StepProgress, StepRef

#: Most mini-batches one work message carries. Sends are what dispatch costs (one queue takes ~2,000
#: messages/s on Azure, ~450/s on Azurite): 100,000 mini-batches are 782 messages, not 100,000.
MAX_MINI_BATCHES_PER_MESSAGE = 128


class WorkMessage(FrozenModel):
    """Mini-batches ``start .. end-1`` of one step, to be processed by whichever agent receives it."""

    run_id: str = Field(description="Run id (a sanity check: the queue is per step).")
    job: str = Field(description="Job name.")
    start: int = Field(ge=0, description="First mini-batch index.")
    end: int = Field(gt=0, description="One past the last mini-batch index.")
    traceparent: str | None = Field(default=None, description="W3C traceparent of the run's trace.")
    tracestate: str | None = Field(default=None, description="W3C tracestate, when there is one.")

    @model_validator(mode="after")
    def _range_is_not_empty(self) -> WorkMessage:
        if self.end <= self.start:
            raise ValueError(f"empty mini-batch range {self.start}..{self.end}")
        return self

    @property
    def indexes(self) -> range:
        """The mini-batch indexes the message covers."""
        return range(self.start, self.end)

    def trace_carrier(self) -> dict[str, str]:
        """The trace context as an OpenTelemetry carrier (empty when the run has none)."""
        carrier = {"traceparent": self.traceparent, "tracestate": self.tracestate}
        return {key: value for key, value in carrier.items() if value}


class CompletionEvent(FrozenModel):
    """An agent recorded settled mini-batches of a step (sent after the records are durable)."""

    run_id: str = Field(description="The run of the step.")
    job: str = Field(description="The step's job.")
    node_id: int = Field(ge=0, description="The agent's node id.")
    agent_id: str = Field(description="The agent incarnation that recorded them.")
    settled: int = Field(default=0, ge=0, description="Mini-batches settled since the previous event.")
    failed: int = Field(default=0, ge=0, description="Of those, how many failed (thresholds may be crossed).")
    exiting: bool = Field(default=False, description="The agent is about to exit (its queue was drained).")
    sent_at: datetime | None = Field(default=None, description="When the agent sent it (UTC).")

    @property
    def step(self) -> StepRef:
        """The step the event is about."""
        return StepRef(run_id=self.run_id, job=self.job)


class SettleNotice(FrozenModel):
    """The step needs the orchestrator's attention now: it is finished or crossed a threshold."""

    step: StepRef = Field(description="The step that needs attention.")
    done: bool = Field(description="Every mini-batch has settled.")
    threshold_crossed: bool = Field(default=False, description="A failure threshold is exceeded.")
    reason: str = Field(description="Why, e.g. 'all 12 mini-batches settled' or the threshold message.")
    progress: StepProgress = Field(description="The step's tallies when the notice was made.")
