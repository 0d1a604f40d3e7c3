from __future__ import annotations

import re

from shared.storage import EVENTS_QUEUE, Container, StorageClients, Table, work_queue_name


def test_ensure_layout_creates_everything_and_is_idempotent(storage: StorageClients) -> None:
    storage.ensure_layout()
    containers = {c.name for c in storage.blob.list_containers()}
    assert {c.value for c in Container} <= containers
    tables = {t.name for t in storage.table.list_tables()}
    assert {t.value for t in Table} <= tables
    assert EVENTS_QUEUE in {q.name for q in storage.queue.list_queues()}


def test_events_queue_round_trips_base64(storage: StorageClients) -> None:
    queue = storage.events_queue()
    queue.clear_messages()  # earlier tests in this session may have left events behind
    queue.send_message('{"hello": "world"}')
    message = next(iter(queue.receive_messages()))
    assert message.content == '{"hello": "world"}'
    queue.delete_message(message)


def test_work_queue_names_are_valid_and_distinct() -> None:
    long_run = "run-" + "x" * 80
    names = {work_queue_name(long_run, job) for job in ("Score_Job", "score-job", "train")}
    assert len(names) == 3
    for name in names:
        assert len(name) <= 63
        assert re.fullmatch(r"[a-z0-9](?:[a-z0-9]|-(?!-))*[a-z0-9]", name), name
