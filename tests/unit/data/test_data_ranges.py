"""Record-aligned byte ranges: every record is read by exactly one range (the Hadoop rule)."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.data.ranges import OVERHANG, RangeFile, read_records, split_ranges


def fetcher(data: bytes, calls: list[tuple[int, int]] | None = None):  # type: ignore[no-untyped-def]
    def fetch(offset: int, length: int) -> bytes:
        if calls is not None:
            calls.append((offset, length))
        return data[offset : offset + length]

    return fetch


def records_of(data: bytes, size: int, *, header: bool = False) -> list[bytes]:
    ranges = split_ranges(len(data), size)
    out: list[bytes] = []
    for start, end in ranges:
        out.extend(read_records(fetcher(data), len(data), start, end, skip_first_line=header).splitlines())
    return out


def test_split_ranges_covers_the_file_and_absorbs_a_sliver() -> None:
    assert split_ranges(0, 10) == []
    assert split_ranges(5, 10) == [(0, 5)]
    assert split_ranges(30, 10) == [(0, 10), (10, 20), (20, 30)]
    assert split_ranges(31, 10) == [(0, 10), (10, 20), (20, 31)]  # 1 byte is not a mini-batch
    assert split_ranges(35, 10) == [(0, 10), (10, 20), (20, 30), (30, 35)]


def test_three_megabytes_at_one_mebibyte_is_three_ranges() -> None:
    assert len(split_ranges(3_000_000, 1024 * 1024)) == 3


@settings(max_examples=300, deadline=None)
@given(
    lines=st.lists(st.text(alphabet="ab,\r", max_size=30), max_size=40),
    size=st.integers(min_value=1, max_value=60),
    trailing_newline=st.booleans(),
)
def test_ranges_partition_records_exactly(lines: list[str], size: int, trailing_newline: bool) -> None:
    data = "\n".join(lines).encode() + (b"\n" if trailing_newline and lines else b"")
    assert records_of(data, size) == data.splitlines()


@settings(max_examples=150, deadline=None)
@given(
    lines=st.lists(st.text(alphabet="xyz", min_size=1, max_size=12), min_size=1, max_size=30),
    size=st.integers(1, 40),
)
def test_header_is_dropped_once(lines: list[str], size: int) -> None:
    data = ("\n".join(["h1,h2", *lines]) + "\n").encode()
    assert records_of(data, size, header=True) == [line.encode() for line in lines]


def test_a_range_reads_only_its_bytes_plus_one_record_tail() -> None:
    data = b"".join(b"%06d,xxxxxxxxxx\n" % i for i in range(10_000))  # 18 bytes a line
    calls: list[tuple[int, int]] = []
    chunk = read_records(fetcher(data, calls), len(data), 50_000, 60_000)
    assert calls == [(49_999, 10_001 + OVERHANG)]
    first, last = chunk.splitlines()[0], chunk.splitlines()[-1]
    assert int(first.split(b",")[0]) == -(-50_000 // 18)  # the first record starting at or after 50,000
    assert int(last.split(b",")[0]) == 59_999 // 18  # the last record starting before 60,000


def test_a_record_longer_than_the_overhang_is_finished() -> None:
    long_line = b"y" * (3 * OVERHANG)
    data = b"a\n" + long_line + b"\nb\n"
    assert read_records(fetcher(data), len(data), 0, 3) == b"a\n" + long_line + b"\n"
    assert read_records(fetcher(data), len(data), 3, 10) == b""  # no record starts in [3, 10)


def test_range_file_serves_pyarrow_with_few_requests() -> None:
    buffer = io.BytesIO()
    pq.write_table(pa.table({"x": list(range(5_000))}), buffer, row_group_size=1_000)
    data = buffer.getvalue()
    calls: list[tuple[int, int]] = []
    parquet = pq.ParquetFile(RangeFile(fetcher(data, calls), len(data), block=64 * 1024))
    assert parquet.metadata.num_row_groups == 5
    assert parquet.read_row_groups([3]).column("x").to_pylist() == list(range(3_000, 4_000))
    assert len(calls) <= 3
