"""Tabular (MLTable ``read_*``) inputs on Azurite: byte ranges, headers, types, parquet row groups."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from data_fixtures import DataFolder, JobFactory

from shared.data import Manifest, fetch, load_manifest, materialize, plan_mini_batches, save_manifest
from shared.data.ranges import OVERHANG
from shared.errors import DataError, MLTableError
from shared.plan import DataType

MIB = 1024 * 1024

CSV_MLTABLE = """
paths:
  - pattern: ./*.csv
transformations:
  - read_delimited:
      delimiter: ","
      header: all_files_same_headers
"""


def csv_bytes(rows: int, start: int = 0, width: int = 40) -> bytes:
    lines = ["id,name,score"]
    lines += [f"{i},{'n' * (width - 20)}{i},{i * 0.5}" for i in range(start, start + rows)]
    return ("\n".join(lines) + "\n").encode()


def all_rows(folder: DataFolder, manifest: Manifest, tmp_path: Path) -> list[pd.DataFrame]:
    frames = []
    for batch in manifest.mini_batches:
        result = materialize(folder.clients, manifest, batch, tmp_path)
        assert isinstance(result.data, pd.DataFrame)
        assert result.items == len(result.data)
        frames.append(result.data)
    return frames


def test_small_file_is_one_mini_batch_and_large_file_splits_about_3(
    folder: DataFolder, parallel_job: JobFactory, tmp_path: Path
) -> None:
    small = csv_bytes(2_800)  # ~100 KB
    large = csv_bytes(72_000, start=100_000)  # ~3 MB
    assert 90_000 < len(small) < 110_000
    assert 2_900_000 < len(large) < 3_300_000
    folder.put("t/MLTable", CSV_MLTABLE)
    folder.put("t/a_small.csv", small)
    folder.put("t/b_large.csv", large)
    job, definition = parallel_job(folder.location("t"), DataType.MLTABLE, mini_batch_size=MIB)

    manifest = plan_mini_batches(folder.clients, job, definition)

    assert manifest.kind == "tabular"
    assert manifest.count == 4  # 1 for the small file, 3 for the large one
    frames = all_rows(folder, manifest, tmp_path)
    assert len(frames[0]) == 2_800
    ids_per_batch = [set(frame["id"]) for frame in frames]
    small_ids, large_ids = set(range(2_800)), set(range(100_000, 172_000))
    for ids in ids_per_batch:  # never rows of two files in one mini-batch
        assert ids <= small_ids or ids <= large_ids
    every = pd.concat(frames)
    assert sorted(every["id"]) == sorted(small_ids | large_ids)  # nothing lost, nothing twice
    assert list(every.columns) == ["id", "name", "score"]
    assert every["id"].dtype == "int64"
    assert every["score"].dtype == "float64"


def test_default_tabular_size_is_one_mib(folder: DataFolder, parallel_job: JobFactory) -> None:
    folder.put("t/MLTable", CSV_MLTABLE)
    folder.put("t/big.csv", csv_bytes(60_000))  # ~2.4 MB
    job, definition = parallel_job(folder.location("t"), DataType.MLTABLE)

    manifest = plan_mini_batches(folder.clients, job, definition)

    assert manifest.count == 3
    part = manifest.mini_batches[1].parts[0]
    assert (part.start, part.end) == (MIB, 2 * MIB)


def test_worker_reads_only_its_byte_range(
    folder: DataFolder, parallel_job: JobFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder.put("t/MLTable", CSV_MLTABLE)
    folder.put("t/data.csv", csv_bytes(3_000))
    job, definition = parallel_job(folder.location("t"), DataType.MLTABLE, mini_batch_size=10_000)
    manifest = plan_mini_batches(folder.clients, job, definition)
    requested: list[tuple[int, int]] = []
    original = fetch.read_range

    def spy(clients, root, blob, offset, length):  # type: ignore[no-untyped-def]
        requested.append((offset, length))
        return original(clients, root, blob, offset, length)

    monkeypatch.setattr(fetch, "read_range", spy)
    batch = materialize(folder.clients, manifest, manifest.mini_batches[5], tmp_path)
    assert requested, "nothing was downloaded"
    for offset, length in requested:
        assert offset >= 5 * 10_000 - 1
        assert offset + length <= 6 * 10_000 + OVERHANG + 1
    assert len(batch.data) > 0


def test_header_modes(folder: DataFolder, parallel_job: JobFactory, tmp_path: Path) -> None:
    folder.put("h/MLTable", CSV_MLTABLE.replace("all_files_same_headers", "from_first_file"))
    folder.put("h/1.csv", "a,b\n1,2\n")
    folder.put("h/2.csv", "3,4\n5,6\n")  # data only: from_first_file
    job, definition = parallel_job(folder.location("h"), DataType.MLTABLE)
    manifest = plan_mini_batches(folder.clients, job, definition)
    frames = all_rows(folder, manifest, tmp_path)
    assert pd.concat(frames)["a"].tolist() == [1, 3, 5]

    folder.put("n/MLTable", CSV_MLTABLE.replace("all_files_same_headers", "no_header"))
    folder.put("n/1.csv", "1,x\n2,y\n")
    job, definition = parallel_job(folder.location("n"), DataType.MLTABLE)
    manifest = plan_mini_batches(folder.clients, job, definition)
    frame = all_rows(folder, manifest, tmp_path)[0]
    assert list(frame.columns) == ["Column1", "Column2"]
    assert frame["Column1"].tolist() == [1, 2]

    folder.put("d/MLTable", CSV_MLTABLE.replace("all_files_same_headers", "all_files_different_headers"))
    folder.put("d/1.csv", "a,b\n1,2\n")
    folder.put("d/2.csv", "b,c\n3,4\n")
    job, definition = parallel_job(folder.location("d"), DataType.MLTABLE)
    manifest = plan_mini_batches(folder.clients, job, definition)
    frames = all_rows(folder, manifest, tmp_path)
    assert [list(f.columns) for f in frames] == [["a", "b", "c"], ["a", "b", "c"]]
    assert frames[1]["c"].tolist() == [4]
    assert frames[1]["a"].isna().all()


def test_same_headers_header_is_skipped_in_every_file_and_range(
    folder: DataFolder, parallel_job: JobFactory, tmp_path: Path
) -> None:
    folder.put("t/MLTable", CSV_MLTABLE)
    folder.put("t/1.csv", csv_bytes(500))
    folder.put("t/2.csv", csv_bytes(500, start=500))
    job, definition = parallel_job(folder.location("t"), DataType.MLTABLE, mini_batch_size=4_000)
    manifest = plan_mini_batches(folder.clients, job, definition)
    every = pd.concat(all_rows(folder, manifest, tmp_path))
    assert every["id"].tolist() == list(range(1_000))


def test_quoted_newlines_with_support_multi_line_keep_the_file_whole(
    folder: DataFolder, parallel_job: JobFactory, tmp_path: Path
) -> None:
    rows = "".join(f'{i},"line one\nline two {i}"\n' for i in range(2_000))
    folder.put("q/MLTable", CSV_MLTABLE.replace("header: all_files_same_headers", "support_multi_line: true"))
    folder.put("q/q.csv", "id,text\n" + rows)
    job, definition = parallel_job(folder.location("q"), DataType.MLTABLE, mini_batch_size=1_000)

    manifest = plan_mini_batches(folder.clients, job, definition)

    assert manifest.count == 1
    frame = all_rows(folder, manifest, tmp_path)[0]
    assert len(frame) == 2_000
    assert frame["text"].iloc[7] == "line one\nline two 7"


def test_parquet_splits_by_row_groups(folder: DataFolder, parallel_job: JobFactory, tmp_path: Path) -> None:
    table = pa.table({"x": list(range(10_000)), "y": [float(i) for i in range(10_000)]})
    many, one = io.BytesIO(), io.BytesIO()
    pq.write_table(table, many, row_group_size=1_000)
    pq.write_table(table, one)
    folder.put("p/MLTable", "paths:\n  - pattern: ./*.parquet\ntransformations:\n  - read_parquet\n")
    folder.put("p/a_many.parquet", many.getvalue())
    folder.put("p/b_one.parquet", one.getvalue())
    group_bytes = pq.ParquetFile(io.BytesIO(many.getvalue())).metadata.row_group(0).total_byte_size
    job, definition = parallel_job(folder.location("p"), DataType.MLTABLE, mini_batch_size=group_bytes * 2)

    manifest = plan_mini_batches(folder.clients, job, definition)

    sizes = [mb.items for mb in manifest.mini_batches]
    assert sum(sizes) == 20_000  # parquet row counts are known at plan time
    assert sizes[-1] == 10_000  # one row group: one mini-batch
    assert len(sizes) > 2
    frames = all_rows(folder, manifest, tmp_path)
    assert pd.concat(frames[:-1])["x"].tolist() == list(range(10_000))


@pytest.mark.parametrize(
    ("files", "error", "match"),
    [
        pytest.param({"data.csv": "a\n1\n"}, DataError, r"has no MLTable file", id="no_mltable_file"),
        pytest.param(
            {"MLTable": "paths:\n  - file: ./missing.csv\n"},
            DataError,
            r"MLTable: file 'missing.csv' does not exist",
            id="file_that_does_not_exist",
        ),
        pytest.param(
            {"MLTable": CSV_MLTABLE + "  - filter: 'col(\"a\") > 1'\n", "x.csv": "a\n1\n"},
            MLTableError,
            r"MLTable:8: transformation 'filter' is not supported",
            id="unsupported_transformation_and_its_line",
        ),
        pytest.param(
            {
                "MLTable": "paths:\n  - pattern: ./*\ntransformations:\n  - read_parquet\n",
                "notes.txt": "hello",
            },
            DataError,
            r"cannot read .*as parquet",
            id="pattern_that_matches_a_non_parquet_file",
        ),
    ],
)
def test_a_broken_table_is_a_clear_error_at_planning(
    folder: DataFolder, parallel_job: JobFactory, files: dict[str, str], error: type[DataError], match: str
) -> None:
    for name, content in files.items():
        folder.put(f"t/{name}", content)
    job, definition = parallel_job(folder.location("t"), DataType.MLTABLE)
    with pytest.raises(error, match=match):
        plan_mini_batches(folder.clients, job, definition)


def test_a_stored_tabular_manifest_reads_the_same(
    folder: DataFolder, parallel_job: JobFactory, tmp_path: Path
) -> None:
    folder.put(
        "s/MLTable",
        CSV_MLTABLE
        + "  - convert_column_types:\n      - {columns: score, column_type: string}\n"
        + "  - keep_columns: [id, score]\n",
    )
    folder.put("s/d.csv", csv_bytes(1_000))
    job, definition = parallel_job(folder.location("s"), DataType.MLTABLE, mini_batch_size=10_000)
    planned = plan_mini_batches(folder.clients, job, definition)

    save_manifest(folder.clients, definition.step, planned)
    loaded = load_manifest(folder.clients, definition.step)

    assert loaded == planned
    frame = materialize(folder.clients, loaded, loaded.mini_batches[1], tmp_path).data
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns) == ["id", "score"]
    assert frame["score"].map(type).eq(str).all()


def test_encodings_utf16_is_never_split_and_windows1252_decodes(
    folder: DataFolder, parallel_job: JobFactory, tmp_path: Path
) -> None:
    text = "name,city\n" + "".join(f"n{i},Zürich\n" for i in range(2_000))
    folder.put("u16/MLTable", CSV_MLTABLE.replace("header: all_files_same_headers", "encoding: utf16"))
    folder.put("u16/d.csv", text.encode("utf-16"))
    job, definition = parallel_job(folder.location("u16"), DataType.MLTABLE, mini_batch_size=1_000)
    manifest = plan_mini_batches(folder.clients, job, definition)
    assert manifest.count == 1
    frame = all_rows(folder, manifest, tmp_path)[0]
    assert list(frame.columns) == ["name", "city"]
    assert len(frame) == 2_000
    assert set(frame["city"]) == {"Zürich"}

    folder.put("cp/MLTable", CSV_MLTABLE.replace("header: all_files_same_headers", "encoding: windows1252"))
    folder.put("cp/d.csv", ("prix,devise\n" + "".join(f"{i},€\n" for i in range(3_000))).encode("cp1252"))
    job, definition = parallel_job(folder.location("cp"), DataType.MLTABLE, mini_batch_size=4_000)
    manifest = plan_mini_batches(folder.clients, job, definition)
    assert manifest.count > 1
    every = pd.concat(all_rows(folder, manifest, tmp_path))
    assert every["prix"].tolist() == list(range(3_000))
    assert set(every["devise"]) == {"€"}


def test_empty_files_make_no_mini_batch_and_path_column_on_parquet(
    folder: DataFolder, parallel_job: JobFactory, tmp_path: Path
) -> None:
    buffer = io.BytesIO()
    pq.write_table(pa.table({"x": [1, 2]}), buffer)
    folder.put(
        "e/MLTable",
        "paths:\n  - pattern: ./**\ntransformations:\n  - read_parquet: {include_path_column: true}\n",
    )
    folder.put("e/sub/a.parquet", buffer.getvalue())
    folder.put("e/sub/empty.parquet", b"")
    job, definition = parallel_job(folder.location("e"), DataType.MLTABLE)
    manifest = plan_mini_batches(folder.clients, job, definition)  # ./** does not select the MLTable file
    assert [s.path for s in manifest.sources] == ["sub/a.parquet"]
    assert manifest.count == 1
    frame = all_rows(folder, manifest, tmp_path)[0]
    assert frame.to_dict("list") == {"x": [1, 2], "Path": ["sub/a.parquet", "sub/a.parquet"]}


def test_take_on_parquet_uses_footer_row_counts(
    folder: DataFolder, parallel_job: JobFactory, tmp_path: Path
) -> None:
    buffer = io.BytesIO()
    pq.write_table(pa.table({"x": list(range(5_000))}), buffer, row_group_size=500)
    folder.put(
        "pt/MLTable",
        "paths: [{file: d.parquet}]\ntransformations:\n  - read_parquet\n  - skip: 600\n  - take: 700\n",
    )
    folder.put("pt/d.parquet", buffer.getvalue())
    job, definition = parallel_job(folder.location("pt"), DataType.MLTABLE, mini_batch_size=1)  # a group each

    manifest = plan_mini_batches(folder.clients, job, definition)

    assert [mb.items for mb in manifest.mini_batches] == [400, 300]  # groups 1 and 2, sliced
    frames = all_rows(folder, manifest, tmp_path)
    assert pd.concat(frames)["x"].tolist() == list(range(600, 1_300))
    result = materialize(folder.clients, manifest, manifest.mini_batches[0], tmp_path)
    assert result.dataset.to_pandas_dataframe() is result.data
    with pytest.raises(DataError, match="use to_pandas_dataframe"):
        result.dataset.to_path()


def test_crlf_line_endings_split_cleanly(
    folder: DataFolder, parallel_job: JobFactory, tmp_path: Path
) -> None:
    folder.put("cr/MLTable", CSV_MLTABLE)
    folder.put("cr/d.csv", "a,b\r\n" + "".join(f"{i},{i * 2}\r\n" for i in range(2_000)))
    job, definition = parallel_job(folder.location("cr"), DataType.MLTABLE, mini_batch_size=3_000)
    manifest = plan_mini_batches(folder.clients, job, definition)
    assert manifest.count > 3
    every = pd.concat(all_rows(folder, manifest, tmp_path))
    assert every["b"].tolist() == [i * 2 for i in range(2_000)]
    assert every["b"].dtype == "int64"
