"""Byte ranges of line-oriented files, aligned to records (the Hadoop rule), and ranged blob reads.

A delimited or JSON-lines file is split into byte ranges ``[start, end)`` at plan time without reading
it. A range *owns the records that start inside it*: the reader skips the partial record at its
start (unless the byte before ``start`` is a newline) and reads past ``end`` to finish its last
record. Adjacent ranges therefore partition the records exactly — none lost, none read twice — and
each worker downloads only its range plus the tail of one record.

This assumes a newline always ends a record, which is MLTable's default (``support_multi_line:
false``: "all line breaks, including line breaks in quoted field values, are interpreted as a record
break"). Files read with ``support_multi_line: true`` are never split.
"""

from __future__ import annotations

import io
from collections.abc import Callable

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.storage.blob import ContainerClient

from shared.errors import DataError

#: Read this far past a range's end at first to finish its last record; doubled while not enough.
OVERHANG = 8 * 1024

Fetch = Callable[[int, int], bytes]


def split_ranges(size: int, target: int) -> list[tuple[int, int]]:
    """``[start, end)`` ranges of about ``target`` bytes covering a file of ``size`` bytes.

    The last range absorbs a remainder smaller than a tenth of ``target`` so a file of 3.05 MiB at
    1 MiB gives 3 ranges, not 3 plus a sliver.
    """
    if size <= 0:
        return []
    count = max(1, size // target)
    if size - count * target > target // 10:
        count += 1
    bounds = [min(size, i * target) for i in range(count)] + [size]
    return [(bounds[i], bounds[i + 1]) for i in range(count) if bounds[i] < bounds[i + 1]]


def read_records(
    fetch: Fetch, size: int, start: int, end: int | None, *, skip_first_line: bool = False
) -> bytes:
    """The bytes of the records that start in ``[start, end)`` of a file of ``size`` bytes.

    Args:
        fetch: ``fetch(offset, length)`` returns that many bytes of the file (fewer only at its end).
        size: the file's size.
        start: first byte of the range.
        end: end of the range (exclusive); None for the end of the file.
        skip_first_line: the file's first line is a header; the range starting at 0 drops it.
    """
    end = size if end is None or end > size else end
    if start >= end:
        return b""
    base = max(start - 1, 0)
    buffer = bytearray(fetch(base, min(end + OVERHANG, size) - base))
    if start == 0 and not skip_first_line:
        first = 0
    else:
        newline = buffer.find(b"\n", 0, end - base)
        if newline == -1:
            return b""  # the record running into this range also runs past its end
        first = base + newline + 1
        if first >= end:
            return b""
    # The last owned record ends at the first newline at or after end - 1.
    search_from = end - 1 - base
    stretch = OVERHANG
    while True:
        newline = buffer.find(b"\n", search_from)
        if newline != -1:
            last = base + newline + 1
            break
        if base + len(buffer) >= size:
            last = size
            break
        search_from = len(buffer)
        stretch *= 2
        buffer += fetch(base + len(buffer), min(stretch, size - base - len(buffer)))
    return bytes(buffer[first - base : last - base])


def blob_fetcher(container: ContainerClient, blob: str, describe: str) -> Fetch:
    """A :data:`Fetch` reading byte ranges of one blob (``download_blob(offset, length)``)."""

    def read(offset: int, length: int) -> bytes:
        return container.download_blob(blob, offset=offset, length=length, max_concurrency=2).readall()

    return checked_fetch(read, describe)


def checked_fetch(read: Fetch, describe: str) -> Fetch:
    """``read`` as the :data:`Fetch` of the file ``describe`` names: an empty range reads nothing, and
    a missing or unreadable blob is a :class:`~shared.errors.DataError` that names the file."""

    def fetch(offset: int, length: int) -> bytes:
        if length <= 0:
            return b""
        try:
            return read(offset, length)
        except ResourceNotFoundError as exc:
            raise DataError(
                f"{describe} does not exist (was it deleted after the step was planned?)"
            ) from exc
        except HttpResponseError as exc:
            raise DataError(f"cannot read {describe}: {exc.message or exc}") from exc

    return fetch


class RangeFile(io.RawIOBase):
    """A read-only, seekable file over a blob, fetched in blocks on demand (for pyarrow's parquet reader).

    Blocks are cached (a few, most recent first), so the footer and neighbouring column chunks cost one
    request each, not one per ``read()``.
    """

    def __init__(self, fetch: Fetch, size: int, *, block: int = 4 * 1024 * 1024, keep: int = 4) -> None:
        super().__init__()
        self._fetch = fetch
        self._size = size
        self._block = block
        self._keep = keep
        self._blocks: dict[int, bytes] = {}
        self._position = 0

    def readable(self) -> bool:
        """Always True: the file is read-only."""
        return True

    def seekable(self) -> bool:
        """Always True: the parquet reader seeks to the footer and to column chunks."""
        return True

    def tell(self) -> int:
        """The position the next read starts at."""
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        """Move the position (``whence`` as in :meth:`io.IOBase.seek`); returns the new position."""
        if whence == io.SEEK_SET:
            self._position = offset
        elif whence == io.SEEK_CUR:
            self._position += offset
        else:
            self._position = self._size + offset
        return self._position

    def size(self) -> int:
        """The blob's size in bytes (known beforehand; no request)."""
        return self._size

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        """Fill ``buffer`` from the position through the block cache; returns the bytes read (0: the end)."""
        wanted = min(len(buffer), self._size - self._position)
        if wanted <= 0:
            return 0
        data = self._read(self._position, wanted)
        buffer[: len(data)] = data
        self._position += len(data)
        return len(data)

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes from the position (all that is left when ``size`` is negative)."""
        if size is None or size < 0:
            size = self._size - self._position
        size = min(size, self._size - self._position)
        if size <= 0:
            return b""
        data = self._read(self._position, size)
        self._position += len(data)
        return data

    def _read(self, offset: int, length: int) -> bytes:
        if length > self._block:  # a large read (a whole column chunk): one request, not cached
            return self._fetch(offset, length)
        pieces: list[bytes] = []
        position = offset
        while position < offset + length:
            index = position // self._block
            block = self._blocks.pop(index, None)
            if block is None:
                start = index * self._block
                block = self._fetch(start, min(self._block, self._size - start))
            self._blocks[index] = block  # most recent last
            while len(self._blocks) > self._keep:
                del self._blocks[next(iter(self._blocks))]
            inner = position - index * self._block
            take = min(len(block) - inner, offset + length - position)
            pieces.append(block[inner : inner + take])
            position += take
        return b"".join(pieces)
