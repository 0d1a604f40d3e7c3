"""Adding agent tasks: Batch's answers (task exists, body too large, server errors, throttling)."""

from __future__ import annotations

import pytest
from azure.batch import BatchClient
from azure.batch import models as batch_models

from shared.compute.batch.tasks import MAX_ROUNDS, add_tasks
from shared.errors import ComputeError
from tests.unit.compute.batch_double import ENDPOINT, BatchDouble, Recorded, Reply, StaticToken, batch_error

JOB = "fanout-job"
ADD = rf"/jobs/{JOB}/addtaskcollection"


def make(n: int) -> list[batch_models.BatchTaskCreateOptions]:
    return [batch_models.BatchTaskCreateOptions(id=f"agent-{i}", command_line="/bin/true") for i in range(n)]


@pytest.fixture
def double() -> BatchDouble:
    d = BatchDouble()
    d.jobs[JOB] = {"id": JOB, "state": "active"}
    d.tasks[JOB] = {}
    return d


@pytest.fixture
def client(double: BatchDouble) -> BatchClient:
    return BatchClient(endpoint=ENDPOINT, credential=StaticToken(), transport=double)


def test_tasks_are_added_and_a_resubmit_counts_existing_tasks_as_added(
    client: BatchClient, double: BatchDouble
) -> None:
    assert sorted(add_tasks(client, JOB, make(3))) == ["agent-0", "agent-1", "agent-2"]
    assert sorted(add_tasks(client, JOB, make(3))) == ["agent-0", "agent-1", "agent-2"]
    assert len(double.tasks[JOB]) == 3
    assert len(double.calls("POST", ADD)) == 2


def test_requests_carry_at_most_100_tasks(client: BatchClient, double: BatchDouble) -> None:
    add_tasks(client, JOB, make(250))
    assert [len(r.body["value"]) for r in double.calls("POST", ADD)] == [100, 100, 50]


def test_a_body_too_large_halves_the_chunk(client: BatchClient, double: BatchDouble) -> None:
    def too_big_over_40(request: Recorded) -> Reply:
        if len(request.body["value"]) > 40:
            return batch_error(413, "RequestBodyTooLarge", "The request body is too large.")
        return Reply(200, {"value": double._add(JOB, request.body["value"])})

    double.reply("POST", ADD, too_big_over_40)
    assert len(add_tasks(client, JOB, make(100))) == 100
    sizes = [len(r.body["value"]) for r in double.calls("POST", ADD)]
    assert sizes[:3] == [100, 50, 25]
    assert all(size <= 25 for size in sizes[2:])
    assert sum(s for s in sizes if s <= 40) == 100


def test_a_single_task_too_large_is_an_error_naming_it(client: BatchClient, double: BatchDouble) -> None:
    double.reply("POST", ADD, batch_error(413, "RequestBodyTooLarge"))
    with pytest.raises(ComputeError, match=r"'agent-0'.*too large"):
        add_tasks(client, JOB, make(1))


def test_per_task_server_errors_are_resubmitted(client: BatchClient, double: BatchDouble) -> None:
    def flaky_first(request: Recorded) -> Reply:
        values = []
        for task in request.body["value"]:
            if task["id"] == "agent-1" and not double.calls("POST", ADD)[:-1]:
                values.append({"status": "servererror", "taskId": "agent-1", "error": {"code": "ServerBusy"}})
            else:
                values.extend(double._add(JOB, [task]))
        return Reply(200, {"value": values})

    double.reply("POST", ADD, flaky_first)
    assert sorted(add_tasks(client, JOB, make(3))) == ["agent-0", "agent-1", "agent-2"]
    assert [len(r.body["value"]) for r in double.calls("POST", ADD)] == [3, 1]


def test_persistent_server_errors_give_up_after_bounded_rounds(
    client: BatchClient, double: BatchDouble
) -> None:
    busy = Reply(
        200, {"value": [{"status": "servererror", "taskId": "agent-0", "error": {"code": "ServerBusy"}}]}
    )
    double.reply("POST", ADD, busy)
    with pytest.raises(ComputeError, match="kept answering server errors"):
        add_tasks(client, JOB, make(1))
    assert len(double.calls("POST", ADD)) == MAX_ROUNDS


def test_a_rejected_task_is_an_error_with_batchs_reason(client: BatchClient, double: BatchDouble) -> None:
    error = {
        "code": "InvalidPropertyValue",
        "message": {"value": "The value provided for one of the properties in the request body is invalid."},
        "values": [{"key": "PropertyName", "value": "requiredSlots"}],
    }
    double.reply(
        "POST", ADD, Reply(200, {"value": [{"status": "clienterror", "taskId": "agent-0", "error": error}]})
    )
    with pytest.raises(ComputeError) as info:
        add_tasks(client, JOB, make(1))
    assert "agent-0" in str(info.value)
    assert "InvalidPropertyValue" in str(info.value)
    assert "PropertyName: requiredSlots" in str(info.value)


def test_throttling_waits_as_long_as_retry_after_says(client: BatchClient, double: BatchDouble) -> None:
    double.reply(
        "POST",
        ADD,
        batch_error(429, "TooManyRequests", **{"Retry-After": "7"}),
        lambda r: Reply(200, {"value": double._add(JOB, r.body["value"])}),
    )
    assert add_tasks(client, JOB, make(2)) == ["agent-0", "agent-1"]
    assert double.sleeps == [7.0]
    assert len(double.calls("POST", ADD)) == 2


def test_whole_request_server_errors_are_retried_by_the_client(
    client: BatchClient, double: BatchDouble
) -> None:
    double.reply(
        "POST",
        ADD,
        batch_error(503, "ServerBusy"),
        batch_error(500, "InternalError"),
        lambda r: Reply(200, {"value": double._add(JOB, r.body["value"])}),
    )
    assert add_tasks(client, JOB, make(1)) == ["agent-0"]
    assert len(double.calls("POST", ADD)) == 3  # azure-core's retry policy resent the same request
    first, *_, last = double.calls("POST", ADD)
    assert first.body == last.body


def test_a_refused_request_is_a_compute_error(client: BatchClient, double: BatchDouble) -> None:
    double.reply(
        "POST", ADD, batch_error(409, "JobCompleted", "The specified job is already in a completed state.")
    )
    with pytest.raises(ComputeError, match="JobCompleted"):
        add_tasks(client, JOB, make(1))
