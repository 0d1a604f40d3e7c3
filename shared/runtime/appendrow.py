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
supports Put Block From URL with a SAS source, so the same path is tested locally. Rows are staged
into the final blob only when it lies in the run's own folder (``runs/<run>/...``); an output
elsewhere (a path shared by every run, say) is staged into the run's part blobs, so no other run's
commit can discard this run's staged blocks, and committing partial rows (below) never touches it.

Failed and canceled steps keep their rows (:func:`keep_rows`): the blocks of their succeeded
mini-batches are committed once, in order, into the staging blob they were staged in — so they do
not expire with the uncommitted blocks (7 days), and a resume can copy them. A resumed step's
records of carried-over mini-batches point at such a committed range (``rows_blob``, offset,
length); :func:`commit_output` copies each contiguous range server-side (Put Block From URL) into
its place among the step's own blocks. Nothing passes through the client, and each mini-batch is
either carried or run again, never both.

Content-MD5: MD5 chains through every byte in order, so the digest of a blob cannot be assembled
from digests of its blocks, and the service computes one only for single-shot uploads. After the
commit, :func:`set_content_md5` reads the committed blob once (streamed, in the region) and stores
its MD5, conditionally on the blob's ETag; outputs larger than ``FANOUT_OUTPUT_MD5_MAX_BYTES`` are
left without one (downstream reuse then compares their ETags, as before).
"""

from __future__ import annotations

import base64
import logging
import secrets
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
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
#: Server-side copies of carried rows in flight at once.
COPY_THREADS = 8
_ID_CHARS = 20  # every block id of a blob must have the same length


def row_block_id(index: int, nonce: str | None = None) -> str:
    """Block id of one attempt's rows: ``b<index, 11 digits><8 hex nonce>``, base64."""
    nonce = nonce if nonce is not None else secrets.token_hex(4)
    return _encode(f"b{index:011d}{nonce[:8]:0>8}")


def header_block_id() -> str:
    """Block id of the header line, written once at the top of the output."""
    return _encode("h" + "0" * (_ID_CHARS - 1))


def copy_block_id(part: int, chunk: int) -> str:
    """Block id of one chunk of part blob ``part`` copied into the final blob (deterministic, so a
    finalize that runs again stages the same blocks)."""
    return _encode(f"p{part:011d}{chunk:08d}")


def carried_block_id(first_index: int, chunk: int) -> str:
    """Block id of a copied range of carried-over rows, named by its first mini-batch (deterministic,
    so staging it again after an interrupted finalize overwrites the same block)."""
    return _encode(f"c{first_index:011d}{chunk:08d}")


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
    def run_private(self) -> bool:
        """The final blob lies in the run's own folder (``staging_prefix`` is ``<run>/<job>/append_row``)."""
        if not self.staging_prefix:
            return True
        run_folder = self.staging_prefix.split("/", 1)[0] + "/"
        return self.final.container == Container.RUNS.value and self.final.path.startswith(run_folder)

    @property
    def two_level(self) -> bool:
        """Rows go through part blobs: more mini-batches than one blob holds, or an output outside the run."""
        # One block of the final blob is kept for the header line.
        return self.total_mini_batches > self.blocks_per_blob - 1 or not self.run_private

    def part_of(self, index: int) -> int:
        """The part blob that holds the rows of mini-batch ``index``."""
        return index // self.blocks_per_blob

    def part_blob(self, part: int) -> BlobData:
        """Part blob number ``part``, under the job's ``append_row`` folder in ``runs``."""
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
    """The :class:`OutputTarget` of a step's ``append_row_to`` output, staged under its job's folder."""
    return OutputTarget(
        final=final,
        total_mini_batches=total_mini_batches,
        blocks_per_blob=blocks_per_blob,
        staging_prefix=job_path(step.run_id, step.job, "append_row"),
    )


def blob_client(clients: StorageClients, location: BlobData) -> BlobClient:
    """A client of the blob at ``location`` in Fanout's storage account."""
    return clients.blob.get_blob_client(location.container, location.path)


def stage_rows(clients: StorageClients, target: OutputTarget, index: int, data: bytes) -> str:
    """Stage one attempt's rows (non-empty) and return the block id to record."""
    block_id = row_block_id(index)
    blob_client(clients, target.staging_blob(index)).stage_block(block_id, data, length=len(data))
    return block_id


def commit_output(clients: StorageClients, target: OutputTarget, records: Sequence[MiniBatchRecord]) -> int:
    """Commit the rows of ``records`` in index order; returns the number of mini-batches with rows.

    ``records`` are final records; those without rows are skipped. A record's rows are the block its
    try staged, or — carried over by a resume — a committed range of an earlier run's blob, copied
    here server-side (contiguous ranges in one copy). The header, when any record carries one, is
    written once at the top.
    """
    with_rows = sorted((r for r in records if r.has_rows), key=lambda r: r.index)
    header = next((r.header for r in with_rows if r.header), "")
    final = blob_client(clients, target.final)
    head_ids: list[str] = []
    if header:
        final.stage_block(header_block_id(), (header + "\n").encode())
        head_ids = [header_block_id()]
    sources = _SourceUrls(clients)
    if not target.two_level:
        final.commit_block_list(_blocks(head_ids + _row_blocks(final, with_rows, sources)))
        return len(with_rows)
    parts: dict[int, list[MiniBatchRecord]] = {}
    for record in with_rows:
        parts.setdefault(target.part_of(record.index), []).append(record)
    copy_ids: list[str] = []
    for part, part_records in sorted(parts.items()):
        part_client = blob_client(clients, target.part_blob(part))
        part_client.commit_block_list(_blocks(_row_blocks(part_client, part_records, sources)))
        copy_ids += _copy_into(clients, final, part_client, part)
    final.commit_block_list(_blocks(head_ids + copy_ids))
    for part in parts:
        blob_client(clients, target.part_blob(part)).delete_blob()
    logger.info("committed %d row blocks through %d parts into %s", len(with_rows), len(parts), final.url)
    return len(with_rows)


def keep_rows(clients: StorageClients, target: OutputTarget, records: Sequence[MiniBatchRecord]) -> int:
    """Commit the rows a failed or canceled step staged itself, once, so they stay (for a resume).

    Each staging blob that has no committed blocks yet gets the blocks of the step's own final,
    non-failed records, in index order (the header first when the staging blob is the final blob).
    A blob committed before is left alone — committed ranges never move, because resumed runs point
    at them — and the commit is conditional on the blob not existing, so two callers cannot both
    write it. Only run-private staging blobs are committed. Returns the mini-batches kept.
    """
    own = sorted(
        (r for r in records if r.final and r.block_id and not r.counts_as_failed), key=lambda r: r.index
    )
    if not own or not target.run_private:
        return 0
    header = next((r.header for r in own if r.header), "")
    groups: dict[str, tuple[BlobData, list[MiniBatchRecord]]] = {}
    for record in own:
        blob = target.staging_blob(record.index)
        groups.setdefault(blob.path, (blob, []))[1].append(record)
    kept = 0
    for blob, group in groups.values():
        client = blob_client(clients, blob)
        try:
            committed, uncommitted = client.get_block_list("all")
        except ResourceNotFoundError:
            continue  # nothing was staged there (or the staged blocks expired)
        if committed:
            continue
        staged = {block.id for block in uncommitted}
        ids = [r.block_id for r in group if r.block_id in staged]
        if not ids:
            continue
        head: list[str] = []
        if header and blob == target.final:
            client.stage_block(header_block_id(), (header + "\n").encode())
            head = [header_block_id()]
        try:
            client.commit_block_list(_blocks(head + ids), match_condition=MatchConditions.IfMissing)
        except (ResourceExistsError, ResourceModifiedError):
            logger.info("%s was committed concurrently; keeping that commit", client.url)
            continue
        kept += len(ids)
    return kept


def committed_ranges(clients: StorageClients, location: BlobData) -> dict[str, tuple[int, int]]:
    """``block id -> (offset, length)`` of every committed block of a blob ({} when it has none)."""
    try:
        committed, _ = blob_client(clients, location).get_block_list("committed")
    except ResourceNotFoundError:
        return {}
    ranges: dict[str, tuple[int, int]] = {}
    offset = 0
    for block in committed:
        ranges[block.id] = (offset, block.size)
        offset += block.size
    return ranges


def blob_ref(location: BlobData) -> str:
    """``container/path``: how a record names the blob holding carried rows."""
    return f"{location.container}/{location.path}"


def parse_blob_ref(ref: str) -> BlobData:
    """The blob a ``container/path`` reference (:func:`blob_ref`) names."""
    container, _, path = ref.partition("/")
    return BlobData(container=container, path=path)


class _SourceUrls:
    """Short-lived read URLs of the blobs carried rows are copied from (one SAS per blob)."""

    def __init__(self, clients: StorageClients) -> None:
        self._clients = clients
        self._urls: dict[str, str] = {}
        self._lock = threading.Lock()

    def url(self, ref: str) -> str:
        with self._lock:
            if ref not in self._urls:
                self._urls[ref] = readable_url(
                    self._clients.blob, blob_client(self._clients, parse_blob_ref(ref))
                )
            return self._urls[ref]


def _row_blocks(target: BlobClient, records: Sequence[MiniBatchRecord], sources: _SourceUrls) -> list[str]:
    """Block ids of ``records`` (in index order) for ``target``; carried ranges are staged first.

    Consecutive carried records whose rows are adjacent in the same source blob become one copy
    (split at the 4,000 MiB a block may hold); records without rows are in neither. The copies run
    several at a time (each is one server-side Put Block From URL).
    """
    ids: list[str] = []
    copies: list[tuple[str, str, int, int]] = []
    run: list[MiniBatchRecord] = []

    def flush() -> None:
        if not run:
            return
        first, last = run[0], run[-1]
        start, end = first.rows_offset, last.rows_offset + last.rows_length
        for chunk, offset in enumerate(range(start, end, MAX_COPY_BLOCK_BYTES)):
            block_id = carried_block_id(first.index, chunk)
            copies.append((block_id, first.rows_blob, offset, min(MAX_COPY_BLOCK_BYTES, end - offset)))
            ids.append(block_id)
        run.clear()

    for record in records:
        if not record.rows_blob:
            flush()
            ids.append(record.block_id)
            continue
        if run and (
            run[-1].rows_blob != record.rows_blob
            or run[-1].rows_offset + run[-1].rows_length != record.rows_offset
        ):
            flush()
        run.append(record)
    flush()

    def copy(item: tuple[str, str, int, int]) -> None:
        block_id, source, offset, length = item
        target.stage_block_from_url(block_id, sources.url(source), source_offset=offset, source_length=length)

    with ThreadPoolExecutor(max_workers=COPY_THREADS) as pool:
        list(pool.map(copy, copies))
    return ids


def _blocks(block_ids: list[str]) -> list[BlobBlock]:
    return [BlobBlock(block_id=block_id) for block_id in block_ids]


def _copy_into(clients: StorageClients, final: BlobClient, source: BlobClient, part: int) -> list[str]:
    size = source.get_blob_properties().size
    url = readable_url(clients.blob, source)
    ids: list[str] = []
    for chunk, offset in enumerate(range(0, max(size, 1), MAX_COPY_BLOCK_BYTES)):
        if size == 0:
            break
        length = min(MAX_COPY_BLOCK_BYTES, size - offset)
        block_id = copy_block_id(part, chunk)
        final.stage_block_from_url(block_id, url, source_offset=offset, source_length=length)
        ids.append(block_id)
    return ids


def readable_url(service: BlobServiceClient, source: BlobClient) -> str:
    """A short-lived read-only SAS URL of ``source`` (account key, else a user delegation key)."""
    start = datetime.now(UTC) - timedelta(minutes=5)
    expiry = datetime.now(UTC) + timedelta(hours=1)
    account_key = getattr(service.credential, "account_key", None)
    delegation = None if account_key else service.get_user_delegation_key(start, expiry)
    sas = generate_blob_sas(
        source.account_name or "",
        source.container_name,
        source.blob_name,
        account_key=account_key,
        user_delegation_key=delegation,
        permission=BlobSasPermissions(read=True),
        expiry=expiry,
        start=start,
    )
    return f"{source.url}?{sas}"
