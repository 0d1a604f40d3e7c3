"""partition_keys (reference checks 7 and 8) and take/skip over files and tables, on Azurite."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from data_fixtures import DataFolder, JobFactory

from shared.data import materialize, plan_mini_batches
from shared.errors import DataError
from shared.plan import DataType

FILE_FORMAT_MLTABLE = """
paths:
  - pattern: ./**/*.wav
transformations:
  - extract_columns_from_partition_format: {partition_format: "{user}/{season}/{genres}.wav"}
"""

OJ_MLTABLE = """
type: mltable
paths:
  - pattern: ./**/*.csv
transformations:
  - read_delimited:
      delimiter: ","
      encoding: ascii
      header: all_files_same_headers
      include_path_column: true
  - extract_columns_from_partition_format:
      partition_format: "{Store}/{Brand}/{file_name}.{extension}"
  - drop_columns: [Path, file_name, extension]
"""


def test_file_partitions_one_mini_batch_per_combination_present(
    folder: DataFolder, parallel_job: JobFactory, tmp_path: Path
) -> None:
    # The Azure ML notebook's layout: (user, genres) across seasons land in the same mini-batch.
    files = [
        "u1/spring/rock.wav",
        "u1/summer/rock.wav",
        "u1/summer/jazz.wav",
        "u2/spring/rock.wav",
        "u2/winter/pop.wav",
        "u3/fall/rock.wav",
    ]
    folder.put("wav/MLTable", FILE_FORMAT_MLTABLE)
    for name in files:
        folder.put(f"wav/{name}", name)
    # mini_batch_size is set too: v2 semantics, the keys win (check 7).
    job, definition = parallel_job(
        folder.location("wav"), DataType.MLTABLE, mini_batch_size=1, partition_keys=["user", "genres"]
    )

    manifest = plan_mini_batches(folder.clients, job, definition)

    assert manifest.count == 5
    keys = [mb.partition_key_value for mb in manifest.mini_batches]
    assert keys == [
        {"user": "u1", "genres": "rock"},
        {"user": "u1", "genres": "jazz"},
        {"user": "u2", "genres": "rock"},
        {"user": "u2", "genres": "pop"},
        {"user": "u3", "genres": "rock"},
    ]
    assert manifest.mini_batches[0].files == ["u1/spring/rock.wav", "u1/summer/rock.wav"]
    result = materialize(folder.clients, manifest, manifest.mini_batches[0], tmp_path)
    assert result.partition_key_value == {"user": "u1", "genres": "rock"}
    assert [Path(p).read_text() for p in result.data] == ["u1/spring/rock.wav", "u1/summer/rock.wav"]  # type: ignore[union-attr]


def test_uri_folder_partitions_from_hive_style_folders(folder: DataFolder, parallel_job: JobFactory) -> None:
    for name in ("year=2023/a.txt", "year=2024/b.txt", "year=2024/c.txt"):
        folder.put(f"hive/{name}", "x")
    job, definition = parallel_job(folder.location("hive"), DataType.URI_FOLDER, partition_keys=["year"])
    manifest = plan_mini_batches(folder.clients, job, definition)
    assert [(mb.partition_key_value, mb.items) for mb in manifest.mini_batches] == [
        ({"year": "2023"}, 1),
        ({"year": "2024"}, 2),
    ]


def test_missing_partition_keys_are_clear_errors(folder: DataFolder, parallel_job: JobFactory) -> None:
    folder.put("plain/a.txt", "x")
    job, definition = parallel_job(folder.location("plain"), DataType.URI_FOLDER, partition_keys=["year"])
    with pytest.raises(DataError, match=r"cannot find partition keys \['year'\] in the path 'a.txt'"):
        plan_mini_batches(folder.clients, job, definition)

    folder.put("wav/MLTable", FILE_FORMAT_MLTABLE)
    folder.put("wav/u/s/g.wav", "x")
    job, definition = parallel_job(folder.location("wav"), DataType.MLTABLE, partition_keys=["artist"])
    with pytest.raises(DataError, match=r"\['artist'\] are not fields of the partition format"):
        plan_mini_batches(folder.clients, job, definition)


def oj_data(folder: DataFolder, name: str) -> None:
    folder.put(f"{name}/MLTable", OJ_MLTABLE)
    for store in (1000, 1001):
        for brand in ("dominicks", "tropicana"):
            rows = "\n".join(f"2024-01-{d:02d},{store * d}" for d in range(1, 6))
            folder.put(f"{name}/{store}/{brand}/partitioned_data.csv", f"WeekStarting,Quantity\n{rows}\n")


def test_tabular_partitions_from_path_fields(
    folder: DataFolder, parallel_job: JobFactory, tmp_path: Path
) -> None:
    oj_data(folder, "oj")
    job, definition = parallel_job(folder.location("oj"), DataType.MLTABLE, partition_keys=["Store", "Brand"])

    manifest = plan_mini_batches(folder.clients, job, definition)

    assert manifest.count == 4
    batch = manifest.mini_batches[3]
    assert batch.partition_key_value == {"Store": "1001", "Brand": "tropicana"}
    result = materialize(folder.clients, manifest, batch, tmp_path)
    frame = result.data
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns) == ["WeekStarting", "Quantity", "Store", "Brand"]
    assert set(frame["Store"]) == {"1001"}
    assert set(frame["Brand"]) == {"tropicana"}
    assert frame["Quantity"].tolist() == [1001 * d for d in range(1, 6)]
    assert result.items == 5


def test_tabular_partitions_by_data_columns(
    folder: DataFolder, parallel_job: JobFactory, tmp_path: Path
) -> None:
    mltable = "paths:\n  - pattern: ./*.csv\ntransformations:\n  - read_delimited: {}\n"
    folder.put("cols/MLTable", mltable)
    folder.put("cols/1.csv", "A,B,v\n1,x,10\n2,x,20\n1,y,30\n")
    folder.put("cols/2.csv", "A,B,v\n1,x,40\n3,z,50\n,x,60\n")
    job, definition = parallel_job(folder.location("cols"), DataType.MLTABLE, partition_keys=["A", "B"])

    manifest = plan_mini_batches(folder.clients, job, definition)

    keys = [mb.partition_key_value for mb in manifest.mini_batches]
    assert keys == [{"A": 1.0, "B": "x"}, {"A": 2.0, "B": "x"}, {"A": 1.0, "B": "y"}, {"A": 3.0, "B": "z"}]
    assert [mb.items for mb in manifest.mini_batches] == [2, 1, 1, 1]
    first = materialize(folder.clients, manifest, manifest.mini_batches[0], tmp_path)
    assert isinstance(first.data, pd.DataFrame)
    assert first.data["v"].tolist() == [10, 40]  # rows of (1, x) from both files, nothing else
    assert first.items == 2


def test_take_and_skip_over_a_split_table(
    folder: DataFolder, parallel_job: JobFactory, tmp_path: Path
) -> None:
    rows = "".join(f"{i},{'x' * 30}\n" for i in range(3_000))
    mltable = "paths: [{file: d.csv}]\ntransformations:\n  - read_delimited: {header: no_header}\n"
    folder.put("ts/MLTable", mltable + "  - skip: 1000\n  - take: 1500\n")
    folder.put("ts/d.csv", rows)
    job, definition = parallel_job(folder.location("ts"), DataType.MLTABLE, mini_batch_size=10_000)

    manifest = plan_mini_batches(folder.clients, job, definition)

    frames = [materialize(folder.clients, manifest, mb, tmp_path).data for mb in manifest.mini_batches]
    values = pd.concat(frames)["Column1"].tolist()  # type: ignore[arg-type]
    assert values == list(range(1_000, 2_500))
    assert manifest.total_items == 1_500
    assert manifest.count < len(rows) // 10_000 + 1  # ranges outside the window are not mini-batches


def test_take_over_a_file_list(folder: DataFolder, parallel_job: JobFactory) -> None:
    folder.put("fl/MLTable", "paths:\n  - pattern: ./*.png\ntransformations:\n  - skip: 2\n  - take: 3\n")
    for i in range(10):
        folder.put(f"fl/{i}.png", "x")
    job, definition = parallel_job(folder.location("fl"), DataType.MLTABLE, mini_batch_size=2)
    manifest = plan_mini_batches(folder.clients, job, definition)
    assert [mb.files for mb in manifest.mini_batches] == [["2.png", "3.png"], ["4.png"]]


def test_take_with_partition_keys_is_refused(folder: DataFolder, parallel_job: JobFactory) -> None:
    folder.put("tk/MLTable", OJ_MLTABLE + "  - take: 3\n")
    folder.put("tk/1/a/x.csv", "a\n1\n")
    job, definition = parallel_job(folder.location("tk"), DataType.MLTABLE, partition_keys=["Store"])
    with pytest.raises(DataError, match="take/skip cannot be combined with partition_keys"):
        plan_mini_batches(folder.clients, job, definition)
