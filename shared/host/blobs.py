"""The local host's blob triggers: poll the drop zones and hand each new blob version over once.

Azurite sends no Event Grid events, so ``fanout serve`` lists ``specs`` and ``snapshots/incoming/``
every ``interval`` seconds and calls the same handler bodies as the Function App
(:func:`shared.ingest.ingest_spec_blob`, :func:`shared.ingest.ingest_snapshot`). Like the Functions
host, it keeps a *receipt* per blob version (name + ETag) in table ``fanoutreceipts``, so a version is
handled once even across restarts and by several hosts sharing one storage account:

1. a version without a receipt is *claimed* by inserting its row (insert fails if another host did);
2. the handler runs; the row becomes ``done``, or ``failed`` with the error after
   :data:`MAX_ATTEMPTS` tries (the Functions host's ``maxDequeueCount``);
3. a claim older than :data:`CLAIM_TIMEOUT` seconds (its host died) may be taken over.

Blobs Fanout writes into the drop zones itself are not handlers' input (the filters in
:mod:`shared.ingest`), and a version already seen by this poller is skipped without a table read.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from shared.storage import Container, StorageClients, Table

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
CLAIM_TIMEOUT = 600.0


class ReceiptState(StrEnum):
    """Where a blob version's receipt is: claimed by a host, handled, or given up after its tries."""

    CLAIMED = "claimed"
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True)
class Watch:
    """One blob trigger: a container, a name prefix, a filter and the handler of a blob name."""

    name: str
    container: Container
    prefix: str
    accepts: Callable[[str], bool]
    handler: Callable[[str], Any]


def receipt_key(watch: str, container: Container, blob: str, etag: str) -> str:
    """Row key of one blob version's receipt (a hash: blob names may hold characters keys cannot)."""
    version = etag.strip('"')  # listings and uploads quote ETags differently
    return hashlib.sha256(f"{watch}\n{container.value}/{blob}\n{version}".encode()).hexdigest()


class BlobPoller:
    """Polls the watches' containers and runs each new blob version's handler once.

    Args:
        clients: storage clients.
        watches: what to watch.
        interval: seconds between two scans.
    """

    def __init__(self, clients: StorageClients, watches: list[Watch], interval: float = 1.0) -> None:
        self._clients = clients
        self._watches = watches
        self._interval = interval
        self._seen: set[str] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._receipts: TableClient = clients.table.get_table_client(Table.RECEIPTS.value)

    def start(self) -> BlobPoller:
        """Start scanning in a daemon thread; returns the poller for chaining."""
        self._thread = threading.Thread(target=self._loop, name="fanout-blob-poller", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop scanning; waits for a handler that is running to finish (up to 30 s)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception:  # the poller must survive a storage hiccup; the next scan retries
                logger.exception("blob poll failed; retrying in %.1f s", self._interval)
            self._stop.wait(self._interval)

    def poll_once(self) -> int:
        """Scan every watch once; returns how many blob versions were handled (successfully or not)."""
        handled = 0
        for watch in self._watches:
            container = self._clients.container(watch.container)
            for blob in container.list_blobs(name_starts_with=watch.prefix or None):
                if not watch.accepts(blob.name):
                    continue
                key = receipt_key(watch.name, watch.container, blob.name, str(blob.etag))
                if key in self._seen:
                    continue
                if self._handle(watch, blob.name, str(blob.etag), key):
                    handled += 1
        return handled

    def _handle(self, watch: Watch, blob: str, etag: str, key: str) -> bool:
        receipt = self._claim(watch, blob, etag, key)
        if receipt is None:
            return False
        attempts = int(receipt.get("attempts", 0)) + 1
        try:
            watch.handler(blob)
        except Exception as exc:  # noqa: BLE001 - recorded in the receipt and retried, as the Functions host does
            state = ReceiptState.FAILED if attempts >= MAX_ATTEMPTS else ReceiptState.CLAIMED
            logger.warning(
                "%s: %s/%s (attempt %d) failed: %s", watch.name, watch.container, blob, attempts, exc
            )
            self._update(watch, key, state, attempts, error=str(exc), release=state is ReceiptState.CLAIMED)
            if state is ReceiptState.FAILED:
                self._seen.add(key)
            return True
        self._update(watch, key, ReceiptState.DONE, attempts)
        self._seen.add(key)
        return True

    def _claim(self, watch: Watch, blob: str, etag: str, key: str) -> dict[str, Any] | None:
        """The receipt row when this poller may run the handler now, else None."""
        now = datetime.now(UTC)
        row = {
            "PartitionKey": watch.name,
            "RowKey": key,
            "container": watch.container.value,
            "blob": blob,
            "etag": etag,
            "state": ReceiptState.CLAIMED.value,
            "attempts": 0,
            "claimed_at": now,
        }
        try:
            self._receipts.create_entity(row)
            return row
        except ResourceExistsError:
            pass
        try:
            existing = self._receipts.get_entity(watch.name, key)
        except ResourceNotFoundError:
            return None  # deleted in between; the next scan claims it
        state = existing.get("state")
        if state in (ReceiptState.DONE.value, ReceiptState.FAILED.value):
            self._seen.add(key)
            return None
        claimed_at = existing.get("claimed_at")
        released = existing.get("released", False)
        if not released and isinstance(claimed_at, datetime):
            claimed = claimed_at if claimed_at.tzinfo else claimed_at.replace(tzinfo=UTC)
            if now - claimed < timedelta(seconds=CLAIM_TIMEOUT):
                return None  # another host is handling it
        try:  # take over a released (failed, to retry) or stale claim, unless someone else just did
            self._receipts.update_entity(
                {"PartitionKey": watch.name, "RowKey": key, "claimed_at": now, "released": False},
                mode=UpdateMode.MERGE,
                etag=existing.metadata["etag"],
                match_condition=MatchConditions.IfNotModified,
            )
        except HttpResponseError:
            return None
        return dict(existing)

    def _update(
        self,
        watch: Watch,
        key: str,
        state: ReceiptState,
        attempts: int,
        *,
        error: str = "",
        release: bool = False,
    ) -> None:
        self._receipts.update_entity(
            {
                "PartitionKey": watch.name,
                "RowKey": key,
                "state": state.value,
                "attempts": attempts,
                "error": error[:8000],
                "released": release,
                "finished_at": datetime.now(UTC),
            },
            mode=UpdateMode.MERGE,
        )


def default_watches(clients: StorageClients, durable: Any) -> list[Watch]:
    """The Function App's two blob triggers, as watches for the local host."""
    from shared.ingest import (
        SNAPSHOT_PREFIX,
        ingest_snapshot,
        ingest_spec_blob,
        is_snapshot_blob,
        is_spec_blob,
    )

    return [
        Watch(
            name="specs",
            container=Container.SPECS,
            prefix="",
            accepts=is_spec_blob,
            handler=lambda blob: ingest_spec_blob(clients, durable, blob),
        ),
        Watch(
            name="snapshots",
            container=Container.SNAPSHOTS,
            prefix=SNAPSHOT_PREFIX,
            accepts=is_snapshot_blob,
            handler=lambda blob: ingest_snapshot(clients, blob),
        ),
    ]
