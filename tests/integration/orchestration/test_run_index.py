"""The run index on Azurite: insert once, status updates, terminal statuses stick, listing order."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared.errors import NotFoundError
from shared.orchestration import run_index
from shared.orchestration.contracts import RunStatus
from shared.plan import RunPlan
from shared.storage import StorageClients, Table
from tests.helpers import newer_than_every_indexed_run


def _plan(run_id: str) -> RunPlan:
    return RunPlan(run_id=run_id, display_name="Demo", experiment_name="exp", jobs=[], source="p.yml")


def test_add_is_idempotent_and_keeps_first_row(storage: StorageClients) -> None:
    first = run_index.entry_for(_plan("idx-once"))
    assert run_index.add_run(storage, first)
    assert not run_index.add_run(storage, first.model_copy(update={"display_name": "other"}))
    entry = run_index.get_run(storage, "idx-once")
    assert entry.display_name == "Demo"
    assert entry.status is RunStatus.QUEUED
    assert entry.source == "p.yml"
    assert entry.created_at.tzinfo is not None


def test_status_updates_and_terminal_status_sticks(storage: StorageClients) -> None:
    run_index.add_run(storage, run_index.entry_for(_plan("idx-status")))
    run_index.set_status(storage, "idx-status", RunStatus.RUNNING)
    assert run_index.get_run(storage, "idx-status").status is RunStatus.RUNNING
    run_index.set_status(storage, "idx-status", RunStatus.FAILED, "job a failed")
    run_index.set_status(storage, "idx-status", RunStatus.RUNNING)  # late replayed update
    entry = run_index.get_run(storage, "idx-status")
    assert entry.status is RunStatus.FAILED
    assert entry.reason == "job a failed"
    assert entry.display_name == "Demo"  # merge keeps the other fields


def test_unknown_run_is_not_found(storage: StorageClients) -> None:
    assert run_index.find_run(storage, "idx-missing") is None
    with pytest.raises(NotFoundError, match="idx-missing"):
        run_index.get_run(storage, "idx-missing")


def test_list_is_newest_first(storage: StorageClients) -> None:
    base = newer_than_every_indexed_run(storage)
    for offset, run_id in enumerate(["idx-list-a", "idx-list-b", "idx-list-c"]):
        run_index.add_run(storage, run_index.entry_for(_plan(run_id), now=base + timedelta(days=offset)))
    listed = [entry.run_id for entry in run_index.list_runs(storage, limit=2)]
    assert listed == ["idx-list-c", "idx-list-b"]


def test_a_status_for_a_run_without_a_row_makes_a_whole_row(storage: StorageClients) -> None:
    run_index.set_status(storage, "idx-rowless", RunStatus.RUNNING)
    entry = run_index.get_run(storage, "idx-rowless")
    assert entry.status is RunStatus.RUNNING
    assert entry.created_at.tzinfo is not None


def test_a_malformed_row_does_not_hide_the_others(storage: StorageClients) -> None:
    table = storage.table.get_table_client(Table.RUNS.value)
    broken_key = "9" * 16 + "_idx-broken"  # sorts last: listed after every real run
    table.upsert_entity({"PartitionKey": run_index.BY_TIME, "RowKey": broken_key, "status": "Weird"})
    run_index.add_run(storage, run_index.entry_for(_plan("idx-fine")))
    listed = {entry.run_id for entry in run_index.list_runs(storage, limit=100_000)}
    assert "idx-fine" in listed
    assert "idx-broken" not in listed
    table.delete_entity(run_index.BY_TIME, broken_key)


def test_pages_read_only_their_rows_filter_by_status_and_continue_where_they_stopped(
    storage: StorageClients,
) -> None:
    base = newer_than_every_indexed_run(storage)
    ids = [f"idx-page-{n}" for n in range(5)]
    for offset, run_id in enumerate(ids):
        run_index.add_run(storage, run_index.entry_for(_plan(run_id), now=base + timedelta(minutes=offset)))
    run_index.set_status(storage, "idx-page-3", RunStatus.FAILED, "broken")
    run_index.set_status(storage, "idx-page-1", RunStatus.FAILED, "broken")

    first, after = run_index.list_page(storage, limit=2)
    assert [e.run_id for e in first] == ["idx-page-4", "idx-page-3"]
    assert first[1].status is RunStatus.FAILED  # the ordered row follows status changes
    second, after = run_index.list_page(storage, limit=2, after=after)
    assert [e.run_id for e in second] == ["idx-page-2", "idx-page-1"]
    assert after is not None

    failed, after = run_index.list_page(storage, limit=2, status=RunStatus.FAILED)
    assert [e.run_id for e in failed] == ["idx-page-3", "idx-page-1"]
    more, _ = run_index.list_page(storage, limit=100, status=RunStatus.FAILED, after=after)
    assert not {e.run_id for e in more} & set(ids)
