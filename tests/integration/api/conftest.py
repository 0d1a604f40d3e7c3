"""Fixtures of the API tests: the local API server over the session's Azurite and a real engine."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from shared.api.context import ApiContext
from shared.host.server import ApiServer
from shared.orchestration import run_index
from shared.orchestration.contracts import RunStatus
from shared.orchestration.durabletask_adapter import DurableTaskClient
from shared.plan import BlobData, JobPlan, JobType, OutputPlan, ParallelSettings, RunPlan
from shared.runs import save_plan
from shared.settings import get_settings
from shared.storage import StorageClients, output_path
from tests.integration.api.durable_stand_in import stand_in_engine


@pytest.fixture(scope="session")
def engine() -> Iterator[DurableTaskClient]:
    with stand_in_engine() as client:
        yield client


@pytest.fixture
def server(storage: StorageClients, engine: DurableTaskClient) -> Iterator[ApiServer]:
    settings = get_settings()
    with ApiServer(lambda: ApiContext(clients=storage, settings=settings, durable=engine), port=0) as running:
        yield running


@pytest.fixture
def api(server: ApiServer) -> Iterator[httpx.Client]:
    """An HTTP client of the server that sends the function key."""
    with httpx.Client(
        base_url=server.url + "/api", headers={"x-functions-key": server.key}, timeout=30
    ) as client:
        yield client


def make_plan(run_id: str, *jobs: str, **fields: object) -> RunPlan:
    """A small plan: parallel jobs with one output each."""
    plans = [
        JobPlan(
            name=job,
            type=JobType.PARALLEL,
            parallel=ParallelSettings(input_data="data", entry_script="score.py"),
            outputs={
                "scores": OutputPlan(
                    location=BlobData(container="runs", path=output_path(run_id, job, "scores"))
                )
            },
        )
        for job in jobs
    ]
    return RunPlan(run_id=run_id, jobs=plans, **fields)  # type: ignore[arg-type]


def seed_run(
    storage: StorageClients,
    run_id: str,
    *jobs: str,
    status: RunStatus = RunStatus.RUNNING,
    created: datetime | None = None,
    **fields: object,
) -> RunPlan:
    """A run as start_run leaves it (run.json + index row), with the status given."""
    plan = make_plan(run_id, *jobs, **fields)
    save_plan(storage, plan)
    entry = run_index.entry_for(plan, now=created or datetime.now(UTC) - timedelta(minutes=1))
    run_index.add_run(storage, entry.model_copy(update={"status": status}))
    return plan
