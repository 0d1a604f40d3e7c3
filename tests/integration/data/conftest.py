"""Fixtures for the data tests: a private folder in the ``data`` container and plan/definition builders."""

from __future__ import annotations

import uuid

import pytest
from data_fixtures import DataFolder, JobFactory

from shared.orchestration.contracts import ResolvedInput, StepDefinition, StepRef
from shared.plan import BlobData, DataInput, DataType, InputMode, JobPlan, JobType, ParallelSettings
from shared.storage import StorageClients


@pytest.fixture
def folder(storage: StorageClients) -> DataFolder:
    return DataFolder(storage, f"tests/{uuid.uuid4().hex[:12]}")


@pytest.fixture
def parallel_job() -> JobFactory:
    """``parallel_job(location, type, mini_batch_size=None, partition_keys=None)`` -> (job, definition)."""

    def build(
        location: BlobData,
        data_type: DataType,
        mini_batch_size: int | None = None,
        partition_keys: list[str] | None = None,
    ) -> tuple[JobPlan, StepDefinition]:
        job = JobPlan(
            name="score",
            type=JobType.PARALLEL,
            inputs={"data": DataInput(type=data_type, mode=InputMode.DIRECT, source=location)},
            parallel=ParallelSettings(
                input_data="data",
                entry_script="score.py",
                mini_batch_size=mini_batch_size,
                partition_keys=partition_keys,
            ),
        )
        definition = StepDefinition(
            step=StepRef(run_id=f"run-{uuid.uuid4().hex[:8]}", job="score"),
            inputs={"data": ResolvedInput(location=location)},
        )
        return job, definition

    return build
