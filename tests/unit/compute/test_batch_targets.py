"""Compute names → pools, Batch ids, default workers."""

from __future__ import annotations

import re

import pytest

from shared.compute.batch.targets import (
    MAX_ID_LENGTH,
    agent_task_id,
    batch_job_id,
    default_workers,
    node_id_of,
    resolve_target,
)
from shared.errors import ComputeError, ConfigurationError
from shared.settings import ComputeTarget, PoolKind, Settings

CPU = ComputeTarget(pool_id="fanout-cpu", kind=PoolKind.CPU, cores=8)
GPU = ComputeTarget(pool_id="fanout-gpu", kind=PoolKind.GPU, gpus=4, cores=64)


def test_compute_names_resolve_with_or_without_the_azureml_prefix() -> None:
    settings = Settings(compute_targets={"cpu-cluster": CPU, "gpu-cluster": GPU})
    assert resolve_target(settings, "gpu-cluster") == ("gpu-cluster", GPU)
    assert resolve_target(settings, "azureml:cpu-cluster") == ("cpu-cluster", CPU)


def test_unknown_or_missing_compute_uses_default() -> None:
    settings = Settings(compute_targets={"default": CPU, "gpu-cluster": GPU})
    assert resolve_target(settings, "nope") == ("default", CPU)
    assert resolve_target(settings, None) == ("default", CPU)


def test_unknown_compute_without_default_names_the_configured_ones() -> None:
    settings = Settings(compute_targets={"gpu-cluster": GPU})
    with pytest.raises(ConfigurationError) as info:
        resolve_target(settings, "azureml:cpu-cluster")
    assert "compute 'cpu-cluster'" in str(info.value)
    assert "gpu-cluster" in str(info.value)
    assert "FANOUT_COMPUTE_TARGETS" in str(info.value)


def test_compute_targets_parse_from_the_environment_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "FANOUT_COMPUTE_TARGETS",
        '{"gpu": {"pool_id": "fanout-gpu", "kind": "gpu", "gpus": 1, "task_slots": 4, "containers": false}}',
    )
    target = Settings().compute_targets["gpu"]
    assert (target.kind, target.gpus, target.task_slots, target.containers) == (PoolKind.GPU, 1, 4, False)


def test_default_workers_are_gpus_on_gpu_pools_and_cores_on_cpu_pools() -> None:
    assert default_workers(GPU) == 4
    assert default_workers(CPU) == 8
    assert default_workers(ComputeTarget(pool_id="p", kind=PoolKind.GPU, gpus=0, cores=6)) == 6


@pytest.mark.parametrize(
    ("run_id", "job"),
    [
        ("run-20260101-abc", "score"),
        ("r" * 200, "j" * 200),
        ("run with spaces/and:colons", "step.with.dots"),
    ],
)
def test_batch_job_ids_are_valid_stable_and_bounded(run_id: str, job: str) -> None:
    job_id = batch_job_id(run_id, job)
    assert len(job_id) <= MAX_ID_LENGTH
    assert re.fullmatch(r"[A-Za-z0-9_-]+", job_id)
    assert job_id == batch_job_id(run_id, job)
    assert job_id.startswith("fanout-")


def test_batch_job_ids_differ_when_only_case_or_separators_differ() -> None:
    # Batch ids are case-insensitive; the hash keeps steps apart.
    assert batch_job_id("Run1", "score").lower() != batch_job_id("run1", "score").lower()
    assert batch_job_id("run-1", "a") != batch_job_id("run", "1-a")


def test_agent_task_ids_round_trip_to_node_ids() -> None:
    assert node_id_of(agent_task_id(17)) == 17
    with pytest.raises(ComputeError, match="not a Fanout agent task"):
        node_id_of("jobpreparation")
