"""A step's durable history grows with polls, never with mini-batches, and is cut by continue_as_new."""

from __future__ import annotations

from shared.host.engine import local_engine
from shared.orchestration import names
from shared.orchestration.client import RuntimeStatus
from shared.orchestration.contracts import StepStatus
from shared.orchestration.models import PipelineResult, PollSettings
from tests.integration.orchestration.conftest import UNUSED_STORAGE, NoExecutor, pipeline
from tests.unit.orchestration.fakes import FakeActivities, FakeStep, parallel_job

MINI_BATCHES = 100_000
PER_READ = 1_000
POLLS_PER_GENERATION = 10
#: The backend refuses (and the instance hangs) past this many events: a generation must fit.
HISTORY_LIMIT = 150


def test_a_hundred_thousand_mini_batches_keep_the_history_small() -> None:
    fakes = FakeActivities(steps={"big": FakeStep(mini_batches=MINI_BATCHES, settle_per_read=PER_READ)})
    payload = pipeline("p-history", parallel_job("big"))
    poll = PollSettings(initial_seconds=0.01, max_seconds=0.02, polls_per_generation=POLLS_PER_GENERATION)
    payload = payload.model_copy(update={"poll": poll})
    with local_engine(
        UNUSED_STORAGE,
        NoExecutor(),
        activity_overrides=fakes.bodies(),
        pump_events=False,
        max_history_size=HISTORY_LIMIT,
    ) as engine:
        client = engine.client
        assert client.schedule(names.RUN_PIPELINE, "p-history", payload.model_dump(mode="json"))
        status = client.wait("p-history", timeout=120)
        assert status is not None
        assert status.runtime_status is RuntimeStatus.COMPLETED, status.failure
        result = PipelineResult.model_validate(status.output)
        step_history = client.history_length(names.step_instance_id("p-history", "big"))
        pipeline_history = client.history_length("p-history")

    assert result.jobs["big"].status is StepStatus.COMPLETED
    reads = fakes.reads["big"]
    assert reads == MINI_BATCHES // PER_READ  # one read per poll, whatever the mini-batch count
    # The last generation holds at most one generation of polls (~6 events each) plus start and end.
    assert step_history <= POLLS_PER_GENERATION * 8 + 20
    assert pipeline_history <= 30
