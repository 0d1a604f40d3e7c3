"""Exactly-once, ordered ``append_row_to`` output: one staged block per mini-batch, committed in order.

Why this is exactly-once (DESIGN decision 4):

1. A worker that finished a mini-batch stages its rows as ONE uncommitted block of the output blob
   (``stage_block``). The block id starts with the mini-batch index and ends with a nonce of the attempt
   (fixed length, base64): nothing is visible in the output yet, and no other attempt can overwrite it.
2. The agent then records the mini-batch as final *with that block id* — the record is written once
   (create, or replace under its ETag), so if two agents processed the same mini-batch (a redelivered
   message), exactly one block id wins.
3. Finalize reads the final records and commits their block ids in mini-batch order
   (``commit_block_list``). Blocks of losing or failed attempts are simply not in the list; the service
   discards uncommitted blocks at commit. Each mini-batch's rows therefore appear once, contiguously, in
   index order, and there is no second copy of the data. Committing the same list again is harmless,
   so finalize may run twice.

A retry stages a new block (new nonce) rather than overwriting its old one: a slow first attempt that
is still running somewhere cannot clobber the block the record points at. Only attempts that produced
rows stage anything (a failed attempt raises before, a mini-batch with zero rows stages nothing), so a
blob holds about one uncommitted block per mini-batch — well within the service's 100,000.

The 50,000-committed-blocks limit: a step with more mini-batches than fit in one blob (one block is kept
for the header) stages into *part* blobs of ``blocks_per_blob`` mini-batches each (under the job's
folder in ``runs``); finalize commits each part, then builds the final blob from server-side copies of
the parts (``stage_block_from_url``, at most 4,000 MiB per block) and deletes the parts. Azurite
supports Put Block From URL with a SAS source, so the same path is tested locally.
"""

from __future__ import annotations

import base64
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from azure.storage.blob import (
    BlobBlock,
    BlobClient,
    BlobSasPermissions,
    BlobServiceClient,
    generate_blob_sas,
)

from shared.orchestration.contracts import StepRef
from shared.plan import BlobData, DataType, OutputPlan, ParallelSettings
from shared.runtime.records import MiniBatchRecord
from shared.storage import Container, StorageClients, job_path

logger = logging.getLogger(__name__)

#: Committed blocks a block blob may hold (service limit).
MAX_BLOCKS_PER_BLOB = 50_000
#: Largest block Put Block From URL copies in one call (service limit: 4,000 MiB).
MAX_COPY_BLOCK_BYTES = 4000 * 1024 * 1024
_ID_CHARS = 20  # every block id of a blob must have the same length


def row_block_id(index: int, nonce: str | None = None) -> str:
    """Block id of one attempt's rows: ``b<index, 11 digits><8 hex nonce>``, base64."""
    nonce = nonce if nonce is not None else secrets.token_hex(4)
    return _encode(f"b{index:011d}{nonce[:8]:0>8}")


def header_block_id() -> str:
    return _encode("h" + "0" * (_ID_CHARS - 1))


def copy_block_id(part: int, chunk: int) -> str:
    return _encode(f"p{part:011d}{chunk:08d}")


def _encode(raw: str) -> str:
    assert len(raw) == _ID_CHARS, raw
    return base64.b64encode(raw.encode()).decode()


def block_index(block_id: str) -> int:
    """The mini-batch index a row block id belongs to."""
    return int(base64.b64decode(block_id)[1:12])


@dataclass(frozen=True)
class OutputTarget:
    """Where a step's aggregated rows go, and how they are staged."""

    final: BlobData
    total_mini_batches: int
    blocks_per_blob: int = MAX_BLOCKS_PER_BLOB
    staging_prefix: str = ""

    @property
    def two_level(self) -> bool:
        # One block of the final blob is kept for the header line.
        return self.total_mini_batches > self.blocks_per_blob - 1

    def part_of(self, index: int) -> int:
        return index // self.blocks_per_blob

    def part_blob(self, part: int) -> BlobData:
        return BlobData(container=Container.RUNS.value, path=f"{self.staging_prefix}/part-{part:06d}")

    def staging_blob(self, index: int) -> BlobData:
        """The blob a mini-batch's rows are staged into (the final blob, or its part)."""
        return self.part_blob(self.part_of(index)) if self.two_level else self.final


def append_row_location(output: OutputPlan, settings: ParallelSettings) -> BlobData:
    """The aggregated file: the output blob itself (uri_file) or ``<folder>/<append_row_file_name>``."""
    if output.type is DataType.URI_FILE:
        return output.location
    prefix = output.location.path.rstrip("/")
    return BlobData(container=output.location.container, path=f"{prefix}/{settings.append_row_file_name}")


def output_target(
    step: StepRef, final: BlobData, total_mini_batches: int, blocks_per_blob: int = MAX_BLOCKS_PER_BLOB
) -> OutputTarget:
    return OutputTarget(
        final=final,
        total_mini_batches=total_mini_batches,
        blocks_per_blob=blocks_per_blob,
        staging_prefix=job_path(step.run_id, step.job, "append_row"),
    )


def blob_client(clients: StorageClients, location: BlobData) -> BlobClient:
    return clients.blob.get_blob_client(location.container, location.path)


def stage_rows(clients: StorageClients, target: OutputTarget, index: int, data: bytes) -> str:
    """Stage one attempt's rows (non-empty) and return the block id to record."""
    block_id = row_block_id(index)
    blob_client(clients, target.staging_blob(index)).stage_block(block_id, data, length=len(data))
    return block_id


def commit_output(clients: StorageClients, target: OutputTarget, records: Sequence[MiniBatchRecord]) -> int:
    """Commit the winning blocks of ``records`` in index order; returns the number of row blocks.

    ``records`` are final records; those without a block (no rows) are skipped. The header, when any
    record carries one, is written once at the top.
    """
    with_rows = sorted((r for r in records if r.final and r.block_id), key=lambda r: r.index)
    header = next((r.header for r in with_rows if r.header), "")
    final = blob_client(clients, target.final)
    head_ids: list[str] = []
    if header:
        final.stage_block(header_block_id(), (header + "\n").encode())
        head_ids = [header_block_id()]
    if not target.two_level:
        final.commit_block_list(_blocks(head_ids + [r.block_id for r in with_rows]))
        return len(with_rows)
    parts: dict[int, list[str]] = {}
    for record in with_rows:
        parts.setdefault(target.part_of(record.index), []).append(record.block_id)
    copy_ids: list[str] = []
    for part, block_ids in sorted(parts.items()):
        part_client = blob_client(clients, target.part_blob(part))
        part_client.commit_block_list(_blocks(block_ids))
        copy_ids += _copy_into(clients, final, part_client, part)
    final.commit_block_list(_blocks(head_ids + copy_ids))
    for part in parts:
        blob_client(clients, target.part_blob(part)).delete_blob()
    logger.info("committed %d row blocks through %d parts into %s", len(with_rows), len(parts), final.url)
    return len(with_rows)


def _blocks(block_ids: list[str]) -> list[BlobBlock]:
    return [BlobBlock(block_id=block_id) for block_id in block_ids]


def _copy_into(clients: StorageClients, final: BlobClient, source: BlobClient, part: int) -> list[str]:
    size = source.get_blob_properties().size
    url = _readable_url(clients.blob, source)
    ids: list[str] = []
    for chunk, offset in enumerate(range(0, max(size, 1), MAX_COPY_BLOCK_BYTES)):
        if size == 0:
            break
        length = min(MAX_COPY_BLOCK_BYTES, size - offset)
        block_id = copy_block_id(part, chunk)
        final.stage_block_from_url(block_id, url, source_offset=offset, source_length=length)
        ids.append(block_id)
    return ids


def _readable_url(service: BlobServiceClient, source: BlobClient) -> str:
    """A short-lived read-only SAS URL of ``source`` (account key, else a user delegation key)."""
    start = datetime.now(UTC) - timedelta(minutes=5)
    expiry = datetime.now(UTC) + timedelta(hours=1)
    permission = BlobSasPermissions(read=True)
    account_key = getattr(service.credential, "account_key", None)
    if account_key:
        sas = generate_blob_sas(
            source.account_name or "",
            source.container_name,
            source.blob_name,
            account_key=account_key,
            permission=permission,
            expiry=expiry,
            start=start,
        )
    else:
        delegation = service.get_user_delegation_key(start, expiry)
        sas = generate_blob_sas(
            source.account_name or "",
            source.container_name,
            source.blob_name,
            user_delegation_key=delegation,
            permission=permission,
            expiry=expiry,
            start=start,
        )
    return f"{source.url}?{sas}"
