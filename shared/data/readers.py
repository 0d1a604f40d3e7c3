"""Reading tabular mini-batches: the bytes of a part, parsed by pandas/pyarrow into a DataFrame.

One part is a byte range of a delimited or JSON-lines file (see :mod:`shared.data.ranges`) or some row
groups of a parquet file. A mini-batch's DataFrame is its parts read one by one, each given the
``Path`` column, sliced to its take/skip window, passed through the MLTable transformations, filtered
to the partition key (when keys are data columns), then concatenated.

Delimited columns get the names decided at plan time (the header of the first file, each file's own
header, or ``Column1..N``) and the types inferred at plan time from the first rows, so every
mini-batch of a table has the same dtypes; a value that does not fit its column's type becomes null.
"""

from __future__ import annotations

import csv
import io
import json
import re
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from shared.data.manifest import (
    ColumnKind,
    Manifest,
    MiniBatch,
    ReadOptions,
    SourceFile,
    TabularFormat,
    TabularPart,
)
from shared.data.ranges import Fetch, RangeFile, read_records
from shared.data.transforms import PATH_COLUMN, apply_transformations, filter_by_keys, to_kind
from shared.errors import DataError
from shared.storage import StorageClients

#: Rows used to infer column types (as Azure ML does).
INFER_ROWS = 200
#: Bytes read from the start of a file for its header and the type-inference sample.
HEAD_BYTES = 256 * 1024


def source_fetcher(clients: StorageClients, manifest: Manifest, source: SourceFile) -> Fetch:
    """Byte ranges of a source file, read the worker's lean way (:func:`shared.data.fetch.read_range`)."""
    from shared.data.fetch import range_fetcher

    root = manifest.roots[source.root]
    return range_fetcher(clients, root, root.blob_name(source.path), source.display)


def read_mini_batch(clients: StorageClients, manifest: Manifest, mini_batch: MiniBatch) -> pd.DataFrame:
    """The DataFrame of one tabular mini-batch (only its ranges / row groups are downloaded)."""
    frames = [read_part(clients, manifest, part, mini_batch) for part in mini_batch.parts]
    if not frames:
        return pd.DataFrame()
    if len(frames) == 1:
        return frames[0].reset_index(drop=True)
    return pd.concat(frames, ignore_index=True)


def read_part(
    clients: StorageClients, manifest: Manifest, part: TabularPart, mini_batch: MiniBatch | None = None
) -> pd.DataFrame:
    """One part, read and transformed (see the module docstring for the order)."""
    source = manifest.sources[part.source]
    frame = read_raw(clients, manifest, part)
    if part.rows is not None:
        frame = frame.iloc[part.rows[0] : part.rows[1]]
    sample_key = f"{source.root}/{source.path}@{part.start}"
    frame = apply_transformations(frame, manifest.transformations, path=source.display, sample_key=sample_key)
    if mini_batch is not None and mini_batch.key_filter and mini_batch.partition_key_value:
        frame = filter_by_keys(frame, mini_batch.partition_key_value)
    return frame


def read_raw(clients: StorageClients, manifest: Manifest, part: TabularPart) -> pd.DataFrame:
    """One part parsed, with the ``Path`` column if asked for, before any transformation."""
    read = manifest.read
    if read is None:
        raise DataError("the manifest is not tabular")
    source = manifest.sources[part.source]
    fetch = source_fetcher(clients, manifest, source)
    if read.format == TabularFormat.PARQUET:
        frame = parse_parquet(fetch, source.size, part.row_groups, source.display)
    else:
        whole = part.start == 0 and part.end is None
        data = (
            fetch(0, source.size)
            if whole
            else read_records(fetch, source.size, part.start, part.end, skip_first_line=source.has_header)
        )
        if read.format == TabularFormat.DELIMITED:
            header_in_data = whole and source.has_header
            frame = parse_delimited(
                data, read, source.columns or read.columns or [], header_in_data, source.display
            )
            if source.columns is not None and read.columns is not None and source.columns != read.columns:
                frame = frame.reindex(columns=read.columns)
        else:
            frame = parse_json_lines(data, read, source.display)
    if read.include_path_column:
        frame = frame.assign(**{PATH_COLUMN: source.display})
    return frame


# --- delimited ---------------------------------------------------------------------------------------


def parse_delimited(
    data: bytes, read: ReadOptions, columns: list[str], header_in_data: bool, describe: str
) -> pd.DataFrame:
    """Parse delimited bytes into a DataFrame with ``columns`` and the plan-time column types.

    Args:
        data: whole records (a range's bytes, or the whole file).
        read: the read options.
        columns: column names (the file's header or ``Column1..N``).
        header_in_data: the first record of ``data`` is the header (whole files only).
        describe: the file, for error messages.
    """
    if not data.strip():
        return _empty(columns, read)
    types = read.column_types or {}
    dtype: dict[str, Any] = {}
    for column in columns:
        kind = types.get(column, ColumnKind.STRING)
        dtype[column] = {ColumnKind.FLOAT: "float64", ColumnKind.INT: "int64", ColumnKind.BOOL: "bool"}.get(
            kind, object
        )
    options = _csv_options(read, columns, header_in_data)
    try:
        frame: pd.DataFrame = pd.read_csv(io.BytesIO(data), dtype=dtype, **options)
    except (ValueError, TypeError):  # a value that does not fit its inferred type: parse as text, coerce
        frame = _parse_text(data, options, describe)
        for column in columns:
            kind = types.get(column, ColumnKind.STRING)
            if kind != ColumnKind.STRING:
                frame[column] = to_kind(frame[column], kind)
    except (csv.Error, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot parse {describe} as delimited text: {exc}", path=describe) from exc
    for column, kind in types.items():
        if kind == ColumnKind.DATETIME and column in frame.columns:
            frame[column] = to_kind(frame[column], kind)
    return frame


def _parse_text(data: bytes, options: dict[str, Any], describe: str) -> pd.DataFrame:
    try:
        frame: pd.DataFrame = pd.read_csv(io.BytesIO(data), dtype=object, **options)
        return frame
    except (ValueError, csv.Error, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot parse {describe} as delimited text: {exc}", path=describe) from exc


def _csv_options(read: ReadOptions, columns: list[str], header_in_data: bool) -> dict[str, Any]:
    single = len(read.delimiter) == 1
    return {
        "sep": read.delimiter if single else re.escape(read.delimiter),
        "engine": "c" if single else "python",
        "header": 0 if header_in_data else None,
        "names": columns,
        "encoding": read.encoding.codec,
        "keep_default_na": False,
        "na_values": [] if read.empty_as_string else [""],
        "na_filter": not read.empty_as_string,
        "index_col": False,
    }


def _empty(columns: list[str], read: ReadOptions) -> pd.DataFrame:
    types = read.column_types or {}
    return pd.DataFrame(
        {c: pd.Series(dtype=_EMPTY_DTYPES.get(types.get(c, ColumnKind.STRING), object)) for c in columns}
    )


_EMPTY_DTYPES: dict[ColumnKind, Any] = {
    ColumnKind.INT: "int64",
    ColumnKind.FLOAT: "float64",
    ColumnKind.BOOL: "bool",
    ColumnKind.DATETIME: "datetime64[ns]",
}


def header_names(line: bytes, read: ReadOptions) -> list[str]:
    """Column names from a header line (de-duplicated: a repeated name gets ``_1``, ``_2``...)."""
    text = line.decode(read.encoding.codec).rstrip("\r\n")
    if len(read.delimiter) == 1:
        fields = next(csv.reader([text], delimiter=read.delimiter), [])
    else:
        fields = text.split(read.delimiter)
    names: list[str] = []
    seen: dict[str, int] = {}
    for position, raw in enumerate(fields, start=1):
        name = raw.strip() or f"Column{position}"
        if name in seen:
            seen[name] += 1
            name = f"{name}_{seen[name]}"
        else:
            seen[name] = 0
        names.append(name)
    return names


def infer_types(sample: bytes, read: ReadOptions, columns: list[str]) -> dict[str, ColumnKind]:
    """Column kinds from up to :data:`INFER_ROWS` sample records (all STRING when inference is off)."""
    if not sample.strip():
        return dict.fromkeys(columns, ColumnKind.STRING)
    options = _csv_options(read, columns, False)
    try:
        frame = pd.read_csv(io.BytesIO(sample), nrows=INFER_ROWS, **options)
    except (ValueError, csv.Error, pd.errors.ParserError, UnicodeDecodeError):
        return dict.fromkeys(columns, ColumnKind.STRING)
    return {column: _kind_of(frame[column]) for column in columns}


_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$")


def _kind_of(series: pd.Series) -> ColumnKind:
    values = series.dropna()
    if values.empty:
        return ColumnKind.STRING
    if pd.api.types.is_bool_dtype(series):
        return ColumnKind.BOOL
    if pd.api.types.is_integer_dtype(series):
        return ColumnKind.INT
    if pd.api.types.is_float_dtype(series):
        return ColumnKind.FLOAT
    texts = values.astype(str)
    if texts.map(lambda t: bool(_ISO_DATE.match(t))).all():
        return ColumnKind.DATETIME
    return ColumnKind.STRING


# --- JSON lines --------------------------------------------------------------------------------------


def parse_json_lines(data: bytes, read: ReadOptions, describe: str) -> pd.DataFrame:
    """Parse JSON lines; invalid lines are an error naming the line, or dropped (``invalid_lines``)."""
    text = data.decode(read.encoding.codec)
    records: list[Any] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            if read.invalid_lines == "drop":
                continue
            raise DataError(
                f"{describe}: line {number} of this mini-batch's range is not valid JSON ({exc.msg}); "
                "set invalid_lines: drop to skip such lines",
                path=describe,
            ) from exc
        if not isinstance(record, dict):
            if read.invalid_lines == "drop":
                continue
            raise DataError(f"{describe}: line {number} of this mini-batch's range is not a JSON object")
        records.append(record)
    return pd.DataFrame.from_records(records) if records else pd.DataFrame()


# --- parquet -----------------------------------------------------------------------------------------


def parse_parquet(fetch: Fetch, size: int, row_groups: list[int] | None, describe: str) -> pd.DataFrame:
    """The given row groups (all when None) of a parquet blob, reading only their column chunks."""
    try:
        parquet = pq.ParquetFile(RangeFile(fetch, size))
        groups = row_groups if row_groups is not None else list(range(parquet.num_row_groups))
        table = parquet.read_row_groups(groups)
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read {describe} as parquet: {exc}", path=describe) from exc
    frame: pd.DataFrame = table.to_pandas()
    return frame
