"""Instance ids, and the failure normalisation both engine adapters share."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

from shared.orchestration import names
from shared.orchestration.context import TaskFailed, normalize_failures


def test_a_run_is_its_own_instance_and_steps_are_named_after_it() -> None:
    assert names.instance_id_for("iris-20300101-abc") == "iris-20300101-abc"
    assert names.step_instance_id("iris-20300101-abc", "train_model") == "iris-20300101-abc:train_model"


def test_long_step_ids_stay_within_the_durable_functions_limit_and_unique() -> None:
    run_id = "r" * 80
    first = names.step_instance_id(run_id, "a_rather_long_job_name_number_one")
    second = names.step_instance_id(run_id, "a_rather_long_job_name_number_two")
    assert len(first) == len(second) == names.MAX_INSTANCE_ID_LENGTH
    assert first != second
    assert not any(c in first for c in "/\\#?")


def test_every_activity_and_orchestrator_name_is_unique() -> None:
    everything = [*names.ORCHESTRATORS, *names.ACTIVITIES]
    assert len(everything) == len(set(everything))


class EngineFailure(Exception):
    pass


def _convert(exc: Exception) -> TaskFailed | None:
    return TaskFailed(f"converted: {exc}") if isinstance(exc, EngineFailure) else None


def _orchestrator(seen: list[Any]) -> Generator[str, Any, str]:
    try:
        seen.append((yield "first"))
    except TaskFailed as exc:
        seen.append(exc.message)
    seen.append((yield "second"))
    return "done"


def test_engine_failures_arrive_as_task_failed_and_results_pass_through() -> None:
    seen: list[Any] = []
    wrapped = normalize_failures(_orchestrator(seen), _convert)
    assert next(wrapped) == "first"
    assert wrapped.throw(EngineFailure("activity broke")) == "second"
    with pytest.raises(StopIteration) as stop:
        wrapped.send(42)
    assert stop.value.value == "done"
    assert seen == ["converted: activity broke", 42]


def test_other_exceptions_are_rethrown_unchanged() -> None:
    wrapped = normalize_failures(_orchestrator([]), _convert)
    next(wrapped)
    with pytest.raises(KeyError):
        wrapped.throw(KeyError("not a task failure"))
