"""The local host's blob triggers: one handling per blob version, receipts, retries, shared tables."""

from __future__ import annotations

import uuid
from collections import Counter

import pytest
from azure.data.tables import TableClient

from shared.host.blobs import MAX_ATTEMPTS, BlobPoller, ReceiptState, Watch, receipt_key
from shared.ingest import is_spec_blob
from shared.storage import Container, StorageClients, Table


class Recorder:
    def __init__(self, failures: int = 0) -> None:
        self.calls: Counter[str] = Counter()
        self.failures = failures

    def __call__(self, blob: str) -> None:
        self.calls[blob] += 1
        if self.calls[blob] <= self.failures:
            raise RuntimeError(f"handler failed on {blob}")


@pytest.fixture
def prefix() -> str:
    return f"poller-{uuid.uuid4().hex[:8]}/"


def _watch(prefix: str, handler: Recorder, name: str | None = None) -> Watch:
    return Watch(
        name=name or prefix.strip("/"),
        container=Container.SPECS,
        prefix=prefix,
        accepts=is_spec_blob,
        handler=handler,
    )


def _upload(storage: StorageClients, name: str, text: str = "type: pipeline\n") -> str:
    client = storage.container(Container.SPECS).get_blob_client(name)
    return str(client.upload_blob(text.encode(), overwrite=True)["etag"])


def _receipts(storage: StorageClients) -> TableClient:
    return storage.table.get_table_client(Table.RECEIPTS.value)


def test_each_blob_version_is_handled_once(storage: StorageClients, prefix: str) -> None:
    recorder = Recorder()
    poller = BlobPoller(storage, [_watch(prefix, recorder)])
    first = _upload(storage, f"{prefix}a.yml")
    _upload(storage, f"{prefix}b.yaml")
    _upload(storage, f"{prefix}a.yml.error.json", "{}")  # our own output: never an input
    _upload(storage, f"{prefix}notes.txt", "hello")
    assert poller.poll_once() == 2
    assert poller.poll_once() == 0
    assert recorder.calls == Counter({f"{prefix}a.yml": 1, f"{prefix}b.yaml": 1})

    second = _upload(storage, f"{prefix}a.yml", "type: pipeline\n# edited\n")  # a new version
    assert second != first
    assert poller.poll_once() == 1
    assert recorder.calls[f"{prefix}a.yml"] == 2

    # A new poller (a restarted host) finds the receipts and handles nothing again.
    restarted = BlobPoller(storage, [_watch(prefix, recorder)])
    assert restarted.poll_once() == 0
    key = receipt_key(prefix.strip("/"), Container.SPECS, f"{prefix}a.yml", second)
    row = _receipts(storage).get_entity(prefix.strip("/"), key)
    assert (row["state"], row["attempts"], row["blob"]) == (ReceiptState.DONE.value, 1, f"{prefix}a.yml")


def test_two_hosts_sharing_storage_handle_a_version_once(storage: StorageClients, prefix: str) -> None:
    recorder = Recorder()
    hosts = [BlobPoller(storage, [_watch(prefix, recorder)]) for _ in range(2)]
    for index in range(5):
        _upload(storage, f"{prefix}{index}.yml")
    handled = sum(host.poll_once() for host in hosts) + sum(host.poll_once() for host in hosts)
    assert handled == 5
    assert set(recorder.calls.values()) == {1}


def test_a_failing_handler_is_retried_then_given_up(storage: StorageClients, prefix: str) -> None:
    flaky = Recorder(failures=2)
    poller = BlobPoller(storage, [_watch(prefix, flaky)])
    _upload(storage, f"{prefix}flaky.yml")
    for _ in range(4):
        poller.poll_once()
    assert flaky.calls[f"{prefix}flaky.yml"] == 3  # two failures, then success, then never again

    broken = Recorder(failures=100)
    watch_name = prefix.strip("/") + "-broken"
    poller = BlobPoller(storage, [_watch(prefix + "broken/", broken, name=watch_name)])
    etag = _upload(storage, f"{prefix}broken/broken.yml")
    for _ in range(MAX_ATTEMPTS + 3):
        poller.poll_once()
    assert broken.calls == Counter({f"{prefix}broken/broken.yml": MAX_ATTEMPTS})
    key = receipt_key(watch_name, Container.SPECS, f"{prefix}broken/broken.yml", etag)
    row = _receipts(storage).get_entity(watch_name, key)
    assert row["state"] == ReceiptState.FAILED.value
    assert "handler failed" in row["error"]


def test_the_poll_thread_runs_and_stops(storage: StorageClients, prefix: str) -> None:
    from tests.helpers import wait_until

    recorder = Recorder()
    poller = BlobPoller(storage, [_watch(prefix, recorder)], interval=0.05).start()
    try:
        _upload(storage, f"{prefix}live.yml")
        wait_until(lambda: recorder.calls[f"{prefix}live.yml"] == 1, message="the poller picked the blob up")
    finally:
        poller.stop()
