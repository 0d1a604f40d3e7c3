"""The job graph's order, and compute names (mapped to Batch pools through settings)."""

# ruff: noqa: E501

from __future__ import annotations

import pytest

from shared.settings import get_settings
from shared.spec.graph import find_cycle, topological_order

from .conftest import SpecWriter, compile_ok, one_error


def test_order_is_topological_with_ties_broken_by_the_written_order() -> None:
    jobs = ["report", "train", "prep", "extra"]
    depends = {"report": {"train"}, "train": {"prep"}}
    # Each step takes the first job, in written order, whose producers are all placed.
    assert topological_order(jobs, depends) == (["prep", "train", "report", "extra"], [])


def test_diamond() -> None:
    jobs = ["d", "b", "c", "a"]
    depends = {"d": {"b", "c"}, "b": {"a"}, "c": {"a"}}
    order, cycle = topological_order(jobs, depends)
    assert cycle == []
    assert order == ["a", "b", "c", "d"]


def test_cycles_are_closed_paths() -> None:
    assert find_cycle(["a", "b", "c"], {"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle(["a"], {"a": {"a"}}) == ["a", "a"]
    assert find_cycle(["a", "b"], {"a": {"b"}}) == []
    order, cycle = topological_order(["x", "a", "b"], {"a": {"b"}, "b": {"a"}})
    assert (order, cycle) == ([], ["a", "b", "a"])


JOB = """
type: pipeline
settings:
  default_compute: azureml:cpu-cluster
jobs:
  a:
    type: command
    command: echo a
  b:
    type: command
    compute: azureml:/subscriptions/s/resourceGroups/g/providers/Microsoft.MachineLearningServices/workspaces/w/computes/gpu-cluster
    command: echo b
  c:
    type: command
    compute: local
    command: echo c
"""


def test_compute_names_lose_their_prefix_and_default_applies(write_spec: SpecWriter) -> None:
    plan = compile_ok(write_spec(JOB))
    assert plan.default_compute == "cpu-cluster"
    assert [job.compute for job in plan.jobs] == ["cpu-cluster", "gpu-cluster", "local"]


def test_local_mode_accepts_any_compute_name(write_spec: SpecWriter) -> None:
    plan = compile_ok(write_spec(JOB.replace("cpu-cluster", "whatever-cluster")))
    assert plan.jobs[0].compute == "whatever-cluster"


def test_batch_mode_requires_a_pool_for_each_compute(
    write_spec: SpecWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FANOUT_EXECUTOR", "batch")
    monkeypatch.setenv(
        "FANOUT_COMPUTE_TARGETS",
        '{"cpu-cluster": {"pool_id": "p1"}, "gpu-cluster": {"pool_id": "p2", "kind": "gpu"}}',
    )
    issue = one_error(write_spec(JOB))
    assert (issue.line, issue.column, issue.path) == (14, 14, "jobs.c.compute")
    assert issue.message == "compute 'local' has no Azure Batch pool"
    assert issue.expected == "add it to FANOUT_COMPUTE_TARGETS (one of cpu-cluster, gpu-cluster)"
    monkeypatch.setenv("FANOUT_COMPUTE_TARGETS", '{"default": {"pool_id": "p0"}}')
    get_settings.cache_clear()
    assert [job.compute for job in compile_ok(write_spec(JOB)).jobs] == [
        "cpu-cluster",
        "gpu-cluster",
        "local",
    ]


def test_a_long_cycle_does_not_exhaust_recursion() -> None:
    jobs = [f"j{i}" for i in range(5000)]
    depends = {f"j{i}": {f"j{(i + 1) % 5000}"} for i in range(5000)}
    cycle = find_cycle(jobs, depends)
    assert cycle[0] == cycle[-1] == "j0"
    assert len(cycle) == 5001
    order, _ = topological_order(jobs[:-1], {k: v for k, v in depends.items() if k != "j4998"})
    assert order[0] == "j4998"
