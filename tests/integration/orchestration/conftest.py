"""Fixtures of the orchestration tests: the in-process durable engine with scripted activities."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

import pytest

from shared.compute.base import AgentStatus, AgentTask
from shared.host.engine import LocalEngine, local_engine
from shared.orchestration.context import RetryPolicy
from shared.orchestration.models import PipelineInput, PollSettings
from shared.plan import JobPlan, RunPlan
from shared.storage import StorageClients
from tests.unit.orchestration.fakes import FakeActivities

#: Never contacted: the scripted activities and a disabled events pump use no storage.
UNUSED_STORAGE = StorageClients.from_connection_string(
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
    "BlobEndpoint=http://127.0.0.1:9/devstoreaccount1;QueueEndpoint=http://127.0.0.1:9/devstoreaccount1;"
    "TableEndpoint=http://127.0.0.1:9/devstoreaccount1;"
)
FAST_POLL = PollSettings(initial_seconds=0.05, max_seconds=0.2, factor=1.5, polls_per_generation=100)
FAST_RETRY = RetryPolicy(first_retry_seconds=0.1, max_attempts=3, backoff=1.0, max_retry_seconds=0.1)


class NoExecutor:
    """The activities are scripted; nothing ever starts agents."""

    def start(self, task: AgentTask) -> None:
        raise AssertionError("no agents in these tests")

    def stop(self, run_id: str, job: str) -> None:
        raise AssertionError("no agents in these tests")

    def status(self, run_id: str, job: str) -> list[AgentStatus]:
        return []


def pipeline(run_id: str, *jobs: JobPlan, **fields: object) -> PipelineInput:
    plan = RunPlan(run_id=run_id, jobs=list(jobs), **fields)  # type: ignore[arg-type]
    return PipelineInput(plan=plan, poll=FAST_POLL, retry=FAST_RETRY)


EngineFactory = Callable[..., AbstractContextManager[LocalEngine]]


@pytest.fixture
def fake_activities() -> FakeActivities:
    return FakeActivities()


@pytest.fixture
def engine(fake_activities: FakeActivities) -> Iterator[LocalEngine]:
    with local_engine(
        UNUSED_STORAGE, NoExecutor(), activity_overrides=fake_activities.bodies(), pump_events=False
    ) as running:
        yield running
