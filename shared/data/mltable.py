"""The ``MLTable`` model: paths and the supported transformations, as validated pydantic models.

An MLTable folder holds a YAML file named ``MLTable`` with ``paths`` (``file``/``folder``/``pattern``)
and an ordered list of ``transformations``. Fanout reads the subset that covers how Azure ML users
describe batch-inference data (reference §6.4):

- read: ``read_delimited``, ``read_parquet``, ``read_json_lines`` (``read_delta_lake`` is refused);
- rows: ``take``, ``skip``, ``take_random_sample``;
- columns: ``drop_columns``, ``keep_columns``, ``convert_column_types``,
  ``extract_columns_from_partition_format``.

An MLTable without a ``read_*`` transformation is a list of files (reference §1.3). This module is
what the planner, the readers and the transformations work from; turning the file's text into these
models (argument spellings, refused transformations, errors with line numbers) is
:mod:`shared.data.mltable_parser`, kept apart so the data path does not depend on the YAML details.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field

from shared.models import FrozenModel

#: The file name of an MLTable inside its folder.
MLTABLE_FILE = "MLTable"


class HeaderMode(StrEnum):
    """How ``read_delimited`` treats first lines (Azure ML's PromoteHeadersBehavior)."""

    NO_HEADER = "no_header"  # no header anywhere: columns are Column1, Column2, ...
    FROM_FIRST_FILE = "from_first_file"  # first line of the first file; other files are all data
    ALL_FILES_DIFFERENT_HEADERS = "all_files_different_headers"  # each file its own; columns united
    ALL_FILES_SAME_HEADERS = "all_files_same_headers"  # first file's; first line of every file skipped


class Encoding(StrEnum):
    """The text encodings ``read_delimited`` and ``read_json_lines`` accept (Azure ML's names)."""

    UTF8 = "utf8"
    ISO88591 = "iso88591"
    LATIN1 = "latin1"
    ASCII = "ascii"
    UTF16 = "utf16"
    UTF32 = "utf32"
    UTF8BOM = "utf8bom"
    WINDOWS1252 = "windows1252"

    @property
    def codec(self) -> str:
        """The Python codec name."""
        return _CODECS[self]

    @property
    def splittable(self) -> bool:
        """True when a newline is the single byte ``\\n`` (byte ranges can be aligned to records)."""
        return self not in {Encoding.UTF16, Encoding.UTF32}


_CODECS = {
    Encoding.UTF8: "utf-8",
    Encoding.ISO88591: "iso-8859-1",
    Encoding.LATIN1: "latin-1",
    Encoding.ASCII: "ascii",
    Encoding.UTF16: "utf-16",
    Encoding.UTF32: "utf-32",
    Encoding.UTF8BOM: "utf-8-sig",
    Encoding.WINDOWS1252: "cp1252",
}


# --- transformations --------------------------------------------------------------------------------


class ReadDelimited(FrozenModel):
    """``read_delimited``: the table is CSV-like text, one record per line unless multi-line is on."""

    kind: Literal["read_delimited"] = "read_delimited"
    delimiter: str = Field(default=",", min_length=1, description="Field separator.")
    encoding: Encoding = Encoding.UTF8
    header: HeaderMode = HeaderMode.ALL_FILES_SAME_HEADERS
    empty_as_string: bool = Field(default=False, description="Empty fields stay '' in string columns.")
    include_path_column: bool = Field(default=False, description="Add a 'Path' column.")
    infer_column_types: bool = Field(default=True, description="Infer types from the first 200 rows.")
    support_multi_line: bool = Field(
        default=False, description="Quoted fields may hold line breaks; such files are never split."
    )


class ReadParquet(FrozenModel):
    """``read_parquet``: the table is parquet files, split by row groups."""

    kind: Literal["read_parquet"] = "read_parquet"
    include_path_column: bool = False


class ReadJsonLines(FrozenModel):
    """``read_json_lines``: one JSON object per line; invalid lines fail the mini-batch or are dropped."""

    kind: Literal["read_json_lines"] = "read_json_lines"
    include_path_column: bool = False
    invalid_lines: Literal["error", "drop"] = "error"
    encoding: Encoding = Encoding.UTF8


class Take(FrozenModel):
    """``take``: keep the first rows of the whole table (its files, for a file-list MLTable)."""

    kind: Literal["take"] = "take"
    count: int = Field(ge=0, description="Keep the first `count` rows.")


class Skip(FrozenModel):
    """``skip``: drop the first rows of the whole table (its files, for a file-list MLTable)."""

    kind: Literal["skip"] = "skip"
    count: int = Field(ge=0, description="Drop the first `count` rows.")


class TakeRandomSample(FrozenModel):
    """``take_random_sample``: keep each row with a probability, reproducibly for a seed (default 0)."""

    kind: Literal["take_random_sample"] = "take_random_sample"
    probability: float = Field(ge=0, le=1, description="Chance that a row is kept.")
    seed: int | None = None


class DropColumns(FrozenModel):
    """``drop_columns``: remove the named columns."""

    kind: Literal["drop_columns"] = "drop_columns"
    columns: list[str]


class KeepColumns(FrozenModel):
    """``keep_columns``: keep only the named columns."""

    kind: Literal["keep_columns"] = "keep_columns"
    columns: list[str]


class BooleanType(FrozenModel):
    """Options of a boolean conversion: which texts mean true/false, and what an unknown text becomes."""

    true_values: list[str] | None = None
    false_values: list[str] | None = None
    mismatch_as: Literal["true", "false", "error"] | None = None


class DatetimeType(FrozenModel):
    """Options of a datetime conversion (``date_constant`` is accepted for Azure ML files, not used)."""

    formats: list[str] = Field(min_length=1, description="strftime formats tried in order.")
    date_constant: str | None = None


class ColumnConversion(FrozenModel):
    """One entry of ``convert_column_types``: the columns and the type they are converted to."""

    columns: list[str] = Field(min_length=1)
    type: Literal["int", "float", "string", "boolean", "datetime"]
    boolean: BooleanType | None = None
    datetime: DatetimeType | None = None


class ConvertColumnTypes(FrozenModel):
    """``convert_column_types``: column conversions applied in order."""

    kind: Literal["convert_column_types"] = "convert_column_types"
    conversions: list[ColumnConversion] = Field(min_length=1)


class ExtractPartitionFormat(FrozenModel):
    """``extract_columns_from_partition_format``: columns read from each file's path."""

    kind: Literal["extract_columns_from_partition_format"] = "extract_columns_from_partition_format"
    partition_format: str = Field(min_length=1, description="e.g. '{Store}/{Brand}/{file_name}.csv'.")


ReadTransformation = ReadDelimited | ReadParquet | ReadJsonLines
Transformation = Annotated[
    ReadDelimited
    | ReadParquet
    | ReadJsonLines
    | Take
    | Skip
    | TakeRandomSample
    | DropColumns
    | KeepColumns
    | ConvertColumnTypes
    | ExtractPartitionFormat,
    Field(discriminator="kind"),
]


class MLTablePath(FrozenModel):
    """One entry of ``paths``: a file, a folder or a glob pattern."""

    kind: Literal["file", "folder", "pattern"]
    value: str = Field(description="Relative path (to the MLTable folder) or an absolute data URI.")


class MLTable(FrozenModel):
    """A parsed MLTable file."""

    paths: list[MLTablePath] = Field(min_length=1)
    transformations: list[Transformation] = Field(default_factory=list)

    @property
    def read(self) -> ReadTransformation | None:
        """The ``read_*`` transformation, or None for a file-list MLTable."""
        for step in self.transformations:
            if isinstance(step, ReadDelimited | ReadParquet | ReadJsonLines):
                return step
        return None

    @property
    def partition_format(self) -> str | None:
        """The format of ``extract_columns_from_partition_format``, or None when there is none."""
        for step in self.transformations:
            if isinstance(step, ExtractPartitionFormat):
                return step.partition_format
        return None
