"""Column/row transformations on DataFrames, delimited parsing, and the manifest's columnar form."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import pytest

from shared.data.locations import BlobRoot
from shared.data.manifest import (
    ColumnKind,
    Manifest,
    ManifestBuilder,
    ReadOptions,
    TabularFormat,
    TabularPart,
)
from shared.data.mltable_parser import parse_mltable
from shared.data.readers import header_names, infer_types, parse_delimited
from shared.data.tabular import row_window
from shared.data.transforms import apply_transformations, filter_by_keys, key_value
from shared.errors import DataError, MLTableError


def steps(yaml_steps: str) -> list:  # type: ignore[type-arg]
    table = parse_mltable(f"paths: [{{file: a}}]\ntransformations:\n{yaml_steps}")
    return list(table.transformations)


FRAME = pd.DataFrame({"a": ["1", "2", "x"], "b": ["yes", "no", "maybe"], "d": ["01/02/2024", "bad", None]})


def test_keep_drop_and_convert() -> None:
    out = apply_transformations(
        FRAME,
        steps(
            "  - convert_column_types:\n"
            "      - {columns: a, column_type: int}\n"
            "      - columns: d\n"
            "        column_type: {datetime: {formats: ['%d/%m/%Y']}}\n"
            "      - columns: b\n"
            "        column_type: {boolean: {true_values: ['yes'], false_values: ['no']}}\n"
            "  - drop_columns: [b]\n"
        ),
        path="p",
        sample_key="k",
    )
    assert list(out.columns) == ["a", "d"]
    assert out["a"].tolist()[:2] == [1.0, 2.0]
    assert pd.isna(out["a"].iloc[2])  # 'x' does not fit an int: null, as Azure ML's error value
    assert out["d"].iloc[0] == pd.Timestamp(2024, 2, 1)
    assert pd.isna(out["d"].iloc[1])


def test_boolean_mismatch_as_error_names_the_value() -> None:
    with pytest.raises(DataError, match=r"cannot convert 'maybe' in column 'b' to boolean"):
        apply_transformations(
            FRAME,
            steps(
                "  - convert_column_types:\n      - columns: b\n        column_type:\n          boolean:\n"
                "            true_values: ['yes']\n            false_values: ['no']\n"
                "            mismatch_as: error\n"
            ),
            path="p",
            sample_key="k",
        )


def test_missing_columns_are_named() -> None:
    with pytest.raises(MLTableError, match=r"keep_columns: no column 'zz'; the table has 'a', 'b', 'd'"):
        apply_transformations(FRAME, steps("  - keep_columns: [a, zz]\n"), path="p", sample_key="k")


def test_partition_columns_come_from_the_path() -> None:
    out = apply_transformations(
        FRAME.head(2),
        steps(
            "  - extract_columns_from_partition_format:\n"
            "      partition_format: '{Store}/{day:yyyy-MM-dd}/f.csv'\n"
        ),
        path="x/12/2024-05-06/f.csv",
        sample_key="k",
    )
    assert out["Store"].tolist() == ["12", "12"]
    assert out["day"].tolist() == [datetime(2024, 5, 6)] * 2
    with pytest.raises(MLTableError, match="does not fit the partition format"):
        apply_transformations(
            FRAME,
            steps("  - extract_columns_from_partition_format: '{S}/f.csv'\n"),
            path="g.csv",
            sample_key="k",
        )


def test_random_sample_is_reproducible_and_about_right() -> None:
    big = pd.DataFrame({"x": range(20_000)})
    sample = steps("  - take_random_sample: {probability: 0.25, seed: 7}\n")
    first = apply_transformations(big, sample, path="p", sample_key="file@0")
    again = apply_transformations(big, sample, path="p", sample_key="file@0")
    other = apply_transformations(big, sample, path="p", sample_key="file@1048576")
    assert first["x"].tolist() == again["x"].tolist()
    assert first["x"].tolist() != other["x"].tolist()
    assert 4_500 < len(first) < 5_500


def test_row_window_composes_take_and_skip_in_order() -> None:
    def window(text: str) -> tuple[int, int | None] | None:
        return row_window(parse_mltable(f"paths: [{{file: a}}]\ntransformations:\n  - read_parquet\n{text}"))

    assert window("") is None
    assert window("  - skip: 10\n  - take: 5\n") == (10, 15)
    assert window("  - take: 5\n  - skip: 2\n") == (2, 5)
    assert window("  - take: 5\n  - skip: 9\n") == (5, 5)
    assert window("  - skip: 3\n") == (3, None)
    with pytest.raises(MLTableError, match="take after take_random_sample is not supported"):
        window("  - take_random_sample: {probability: 0.5}\n  - take: 3\n")


def test_key_filter_compares_plain_values() -> None:
    frame = pd.DataFrame({"Store": [1, 2, 1, None], "Brand": ["a", "a", "b", "a"]})
    assert filter_by_keys(frame, {"Store": 1.0, "Brand": "a"}).index.tolist() == [0]
    assert key_value(pd.Timestamp(2024, 1, 2)) == "2024-01-02T00:00:00"


DELIMITED = ReadOptions(format=TabularFormat.DELIMITED)


def test_types_are_inferred_once_and_applied_with_coercion() -> None:
    sample = b"1,2.5,true,2024-01-02,x\n2,3.5,false,2024-01-03,y\n"
    columns = ["i", "f", "b", "d", "s"]
    types = infer_types(sample, DELIMITED, columns)
    assert types == {
        "i": ColumnKind.INT,
        "f": ColumnKind.FLOAT,
        "b": ColumnKind.BOOL,
        "d": ColumnKind.DATETIME,
        "s": ColumnKind.STRING,
    }
    read = DELIMITED.model_copy(update={"columns": columns, "column_types": types})
    later = parse_delimited(b"3,oops,true,2024-02-01,z\n,4,false,,\n", read, columns, False, "f.csv")
    assert later["i"].isna().tolist() == [False, True]
    assert later["f"].isna().tolist() == [True, False]
    assert later["d"].iloc[0] == pd.Timestamp(2024, 2, 1)
    assert later["s"].isna().tolist() == [False, True]  # empty is null unless empty_as_string


def test_empty_as_string_keeps_empty_strings() -> None:
    read = DELIMITED.model_copy(update={"empty_as_string": True, "column_types": {"s": ColumnKind.STRING}})
    frame = parse_delimited(b"a,\n,b\n", read, ["s", "t"], False, "f.csv")
    assert frame["s"].tolist() == ["a", ""]


def test_header_names_are_cleaned_and_unique() -> None:
    assert header_names(b'id,"na,me",,id\r\n', DELIMITED) == ["id", "na,me", "Column3", "id_1"]


def test_manifest_is_columnar_and_builds_descriptors_on_demand() -> None:
    builder = ManifestBuilder("tabular", "data", [BlobRoot(container="data")])
    builder.add_parts([TabularPart(source=0, start=0, end=100)])
    builder.add_parts([TabularPart(source=0, start=100, rows=(2, 5))], items=3)
    builder.add_parts([TabularPart(source=1, row_groups=[0, 1])], items=10)
    manifest = builder.build()
    assert manifest.count == 3
    assert manifest.total_items is None  # the first mini-batch's rows are unknown
    batches = list(manifest.mini_batches)
    assert batches[0].parts == [TabularPart(source=0, start=0, end=100)]
    assert batches[1].parts == [TabularPart(source=0, start=100, rows=(2, 5))]
    assert batches[1].items == 3
    assert batches[2].parts[0].row_groups == [0, 1]
    assert manifest.mini_batches[-1] == batches[2]
    assert Manifest.model_validate_json(manifest.model_dump_json()) == manifest
    with pytest.raises(IndexError, match="mini-batch 3 does not exist"):
        manifest.mini_batch(3)


def test_a_malformed_record_names_the_file() -> None:
    read = DELIMITED.model_copy(update={"column_types": {"a": ColumnKind.INT, "b": ColumnKind.INT}})
    with pytest.raises(DataError, match=r"cannot parse data/x.csv as delimited text: .*Expected 2 fields"):
        parse_delimited(b"1,2\n3,4,5\n", read, ["a", "b"], False, "data/x.csv")
