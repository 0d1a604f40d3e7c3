"""Parsing MLTable files: the supported subset, and located errors for everything else."""

from __future__ import annotations

import pytest

from shared.data.mltable import (
    ConvertColumnTypes,
    DropColumns,
    Encoding,
    ExtractPartitionFormat,
    HeaderMode,
    KeepColumns,
    ReadDelimited,
    ReadJsonLines,
    ReadParquet,
    Skip,
    Take,
    TakeRandomSample,
)
from shared.data.mltable_parser import parse_mltable
from shared.errors import MLTableError

CONVERT = (
    "paths: [{file: a}]\ntransformations:\n  - convert_column_types:\n"
    "      - columns: a\n        column_type: "
)

IRIS = """
$schema: https://azuremlschemas.azureedge.net/latest/MLTable.schema.json
type: mltable
paths:
  - file: ./iris.csv
transformations:
  - read_delimited:
      delimiter: ","
      encoding: utf8
      header: all_files_same_headers
"""


def test_the_iris_example_parses() -> None:
    table = parse_mltable(IRIS)
    assert [(p.kind, p.value) for p in table.paths] == [("file", "./iris.csv")]
    assert table.read == ReadDelimited(
        delimiter=",", encoding=Encoding.UTF8, header=HeaderMode.ALL_FILES_SAME_HEADERS
    )


def test_defaults_of_read_delimited() -> None:
    read = parse_mltable("paths: [{pattern: '*.csv'}]\ntransformations: [read_delimited]").read
    assert isinstance(read, ReadDelimited)
    assert read.header == HeaderMode.ALL_FILES_SAME_HEADERS
    assert read.infer_column_types
    assert not read.empty_as_string
    assert not read.include_path_column
    assert not read.support_multi_line


def test_the_many_models_example_parses() -> None:
    text = """
paths:
- pattern: ./**/*.csv
transformations:
- read_delimited:
    delimiter: ','
    empty_as_string: false
    encoding: ascii
    header: all_files_same_headers
    include_path_column: true
- extract_columns_from_partition_format:
    partition_format: '{Store}/{Brand}/{file_name}.{extension}'
- drop_columns:
  - Path
  - file_name
  - extension
type: mltable
"""
    table = parse_mltable(text)
    assert table.partition_format == "{Store}/{Brand}/{file_name}.{extension}"
    assert isinstance(table.transformations[2], DropColumns)
    assert table.transformations[2].columns == ["Path", "file_name", "extension"]


def test_every_supported_transformation_and_its_spellings() -> None:
    text = """
paths:
  - folder: ./data
transformations:
  - read_json_lines:
      invalid_lines: drop
      encoding: utf8bom
  - skip: 10
  - take: {count: 5}
  - take_random_sample:
      probability: 0.5
      seed: 3
  - keep_columns: [a, b]
  - drop_columns: b
  - convert_column_types:
      - columns: a
        column_type: int
      - columns: [d]
        column_type:
          datetime:
            formats: "%d/%m/%Y"
      - columns: [e]
        column_type:
          boolean:
            true_values: ['yes']
            false_values: ['no']
            mismatch_as: error
  - extract_columns_from_partition_format: {timestamp:yyyy/MM/dd}
"""
    steps = parse_mltable(text).transformations
    assert isinstance(steps[0], ReadJsonLines)
    assert steps[0].invalid_lines == "drop"
    assert steps[1] == Skip(count=10)
    assert steps[2] == Take(count=5)
    assert steps[3] == TakeRandomSample(probability=0.5, seed=3)
    assert steps[4] == KeepColumns(columns=["a", "b"])
    assert steps[5] == DropColumns(columns=["b"])
    assert isinstance(steps[6], ConvertColumnTypes)
    kinds = [c.type for c in steps[6].conversions]
    assert kinds == ["int", "datetime", "boolean"]
    assert steps[6].conversions[1].datetime is not None
    assert steps[6].conversions[1].datetime.formats == ["%d/%m/%Y"]
    assert steps[7] == ExtractPartitionFormat(partition_format="{timestamp:yyyy/MM/dd}")


def test_read_parquet_without_options() -> None:
    assert isinstance(
        parse_mltable("paths: [{file: a.parquet}]\ntransformations:\n  - read_parquet:\n").read, ReadParquet
    )


def test_a_file_list_mltable_has_no_read() -> None:
    assert parse_mltable("paths:\n  - pattern: ./**/*.png\n").read is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("paths: []", r"MLTable:1: 'paths' must be a non-empty list"),
        ("transformations: []", r"'paths' must be a non-empty list"),
        ("paths:\n  - files: a.csv\n", r"MLTable:2: expected 'file: <path>'"),
        ("paths:\n  - {file: a, folder: b}\n", r"MLTable:2: each path must have exactly one"),
        ("path:\n  - file: a\n", r"MLTable:1: unknown key 'path'"),
        ("type: uri_folder\npaths: [{file: a}]\n", r"type must be 'mltable'"),
        (
            "paths: [{file: a}]\ntransformations:\n  - read_delimited: {}\n  - filter: 'col(\"a\") > 1'\n",
            r"MLTable:4: transformation 'filter' is not supported",
        ),
        (
            "paths: [{folder: a}]\ntransformations:\n  - read_delta_lake: {version_as_of: 1}\n",
            r"MLTable:3: transformation 'read_delta_lake' is not supported",
        ),
        (
            "paths: [{file: a}]\ntransformations:\n  - explode: x\n",
            r"MLTable:3: unknown transformation 'explode'",
        ),
        (
            "paths: [{file: a}]\ntransformations:\n  - read_delimited:\n      header: first_file\n",
            r"MLTable:3: transformation 'read_delimited' is malformed: header: Input should be",
        ),
        (
            "paths: [{file: a}]\ntransformations:\n  - read_delimited:\n      delimter: ';'\n",
            r"read_delimited' is malformed: delimter: Extra inputs",
        ),
        ("paths: [{file: a}]\ntransformations:\n  - take: -1\n", r"'take' is malformed: count"),
        (
            "paths: [{file: a}]\ntransformations:\n  - take_random_sample: {probability: 2}\n",
            r"'take_random_sample' is malformed: probability",
        ),
        (
            "paths: [{file: a}]\ntransformations:\n  - read_parquet\n  - read_delimited\n",
            r"MLTable:4: only one read_\* transformation",
        ),
        (
            "paths: [{file: a}]\ntransformations:\n  - drop_columns: [a]\n  - read_parquet\n",
            r"MLTable:4: 'read_parquet' must be the first transformation",
        ),
        (
            CONVERT + "datetime\n",
            r"datetime conversion needs 'formats'",
        ),
        (
            CONVERT + "decimal\n",
            r"'convert_column_types' is malformed",
        ),
        ("paths: [{file: a}\n", r"not valid YAML"),
        ("- a\n- b\n", r"expected a mapping"),
    ],
)
def test_malformed_mltables_are_located_errors(text: str, message: str) -> None:
    with pytest.raises(MLTableError, match=message):
        parse_mltable(text)


def test_errors_name_the_source() -> None:
    with pytest.raises(MLTableError, match=r"^data/x/MLTable:1:") as caught:
        parse_mltable("paths: []", source="data/x/MLTable")
    assert caught.value.context["path"] == "data/x/MLTable"
