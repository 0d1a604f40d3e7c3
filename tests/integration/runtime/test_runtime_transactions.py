"""Lean entity-group transactions on Azurite behave as ``TableClient.submit_transaction`` does."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from azure.core import MatchConditions
from azure.data.tables import TableTransactionError, UpdateMode

from shared.runtime.records import minibatch_table
from shared.runtime.transactions import submit_transaction
from shared.storage import StorageClients


def test_creates_merges_and_conditional_replaces_are_stored_with_their_etags(storage: StorageClients) -> None:
    table = minibatch_table(storage)
    key = f"tx-{uuid.uuid4().hex[:8]}"
    when = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    created = submit_transaction(
        table,
        [
            ("create", {"PartitionKey": key, "RowKey": "a", "n": 1, "when": when, "s": 'é"\n'}),
            (
                "upsert",
                {"PartitionKey": key, "RowKey": "b", "x": 2.5, "ok": True},
                {"mode": UpdateMode.MERGE},
            ),
        ],
    )
    stored = table.get_entity(key, "a")
    assert created[0]["etag"] == stored.metadata["etag"]
    assert (stored["n"], stored["when"], stored["s"]) == (1, when, 'é"\n')
    assert (table.get_entity(key, "b")["x"], table.get_entity(key, "b")["ok"]) == (2.5, True)
    replaced = submit_transaction(
        table,
        [
            (
                "update",
                {"PartitionKey": key, "RowKey": "a", "n": 2},
                {
                    "mode": UpdateMode.REPLACE,
                    "etag": created[0]["etag"],
                    "match_condition": MatchConditions.IfNotModified,
                },
            )
        ],
    )
    assert dict(table.get_entity(key, "a")) == {"PartitionKey": key, "RowKey": "a", "n": 2}
    assert replaced[0]["etag"] != created[0]["etag"]
    assert submit_transaction(table, []) == []


def test_a_refused_operation_names_its_index_and_writes_nothing(storage: StorageClients) -> None:
    table = minibatch_table(storage)
    key = f"tx-{uuid.uuid4().hex[:8]}"
    [first] = submit_transaction(table, [("create", {"PartitionKey": key, "RowKey": "a"})])
    with pytest.raises(TableTransactionError) as conflict:
        submit_transaction(
            table,
            [
                ("create", {"PartitionKey": key, "RowKey": "new"}),
                ("create", {"PartitionKey": key, "RowKey": "a"}),
            ],
        )
    assert conflict.value.index == 1
    assert conflict.value.status_code == 409
    stale = {
        "mode": UpdateMode.REPLACE,
        "etag": first["etag"],
        "match_condition": MatchConditions.IfNotModified,
    }
    submit_transaction(table, [("update", {"PartitionKey": key, "RowKey": "a", "v": 1}, stale)])
    with pytest.raises(TableTransactionError) as modified:
        submit_transaction(table, [("update", {"PartitionKey": key, "RowKey": "a", "v": 2}, stale)])
    assert modified.value.index == 0
    assert modified.value.status_code == 412
    assert sorted(e["RowKey"] for e in table.query_entities(f"PartitionKey eq '{key}'")) == ["a"]
    assert table.get_entity(key, "a")["v"] == 1


def test_one_partition_per_transaction_as_the_sdk_requires(storage: StorageClients) -> None:
    table = minibatch_table(storage)
    with pytest.raises(ValueError, match="Partition Keys in the batch must all be the same"):
        submit_transaction(
            table,
            [
                ("create", {"PartitionKey": "a", "RowKey": "1"}),
                ("create", {"PartitionKey": "b", "RowKey": "1"}),
            ],
        )
    with pytest.raises(ValueError, match="PartitionKey and/or RowKey were not provided"):
        submit_transaction(table, [("create", {"PartitionKey": "a"})])
