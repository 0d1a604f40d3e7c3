"""MLTable column and row transformations applied to a DataFrame (pure pandas, no I/O).

Every tabular mini-batch is read on its own, so these run per mini-batch, in the order the MLTable
lists them. They are row-local (a row's result never depends on another row), which is what makes
per-mini-batch application equal to applying them to the whole table. ``take``/``skip`` are not
row-local; the planner folds them into row windows instead (see ``shared.data.tabular``).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from shared.data.manifest import ColumnKind, KeyValue
from shared.data.mltable import (
    ColumnConversion,
    ConvertColumnTypes,
    DropColumns,
    ExtractPartitionFormat,
    KeepColumns,
    TakeRandomSample,
    Transformation,
)
from shared.data.patterns import compile_partition_format
from shared.errors import DataError, MLTableError

PATH_COLUMN = "Path"


def apply_transformations(
    frame: pd.DataFrame, steps: Sequence[Transformation], *, path: str, sample_key: str
) -> pd.DataFrame:
    """Apply the column/row transformations ``steps`` to ``frame``, read from the file at ``path``.

    Args:
        frame: rows of one part of one file.
        steps: transformations after ``read_*`` (take/skip are ignored here: already applied).
        path: the file's display path (partition formats are matched against it).
        sample_key: stable identity of these rows (file and byte range), so ``take_random_sample``
            picks the same rows on every retry.

    Raises:
        MLTableError: a transformation names a column that does not exist, or a path does not fit
            the partition format.
        DataError: a value cannot be converted and the conversion says ``mismatch_as: error``.
    """
    for step in steps:
        if isinstance(step, DropColumns):
            _require(frame, step.columns, "drop_columns")
            frame = frame.drop(columns=step.columns)
        elif isinstance(step, KeepColumns):
            _require(frame, step.columns, "keep_columns")
            frame = frame[list(step.columns)]
        elif isinstance(step, ConvertColumnTypes):
            frame = frame.copy()
            for conversion in step.conversions:
                _require(frame, conversion.columns, "convert_column_types")
                for column in conversion.columns:
                    frame[column] = convert_column(frame[column], conversion)
        elif isinstance(step, ExtractPartitionFormat):
            frame = add_partition_columns(frame, step.partition_format, path)
        elif isinstance(step, TakeRandomSample):
            frame = sample_rows(frame, step, sample_key)
    return frame


def add_partition_columns(frame: pd.DataFrame, partition_format: str, path: str) -> pd.DataFrame:
    """Add one column per field of ``partition_format``, with the values read from ``path``."""
    compiled = compile_partition_format(partition_format)
    values = compiled.extract(path)
    if values is None:
        raise MLTableError(
            f"the path {path!r} does not fit the partition format {partition_format!r}",
            path=path,
            transformation="extract_columns_from_partition_format",
        )
    frame = frame.copy()
    for column, value in values.items():
        frame[column] = pd.Series([value] * len(frame), index=frame.index, dtype=_partition_dtype(value))
    return frame


def _partition_dtype(value: str | datetime) -> Any:
    return "datetime64[us]" if isinstance(value, datetime) else object


def sample_rows(frame: pd.DataFrame, step: TakeRandomSample, sample_key: str) -> pd.DataFrame:
    """Keep each row with probability ``step.probability``, reproducibly for the same rows."""
    seed = [step.seed or 0, zlib.crc32(sample_key.encode())]
    draws = np.random.default_rng(seed).random(len(frame))
    return frame[draws < step.probability]


def convert_column(series: pd.Series, conversion: ColumnConversion) -> pd.Series:
    """``series`` converted as one ``convert_column_types`` entry says."""
    if conversion.type == "int":
        return to_kind(series, ColumnKind.INT)
    if conversion.type == "float":
        return to_kind(series, ColumnKind.FLOAT)
    if conversion.type == "string":
        return series.map(lambda value: None if _is_null(value) else str(value)).astype(object)
    if conversion.type == "boolean":
        return _to_boolean(series, conversion)
    formats = conversion.datetime.formats if conversion.datetime else []
    return _to_datetime(series, formats)


def to_kind(series: pd.Series, kind: ColumnKind) -> pd.Series:
    """Coerce ``series`` to a plan-time inferred kind; values that do not fit become null."""
    if kind == ColumnKind.STRING:
        return series
    if kind in {ColumnKind.INT, ColumnKind.FLOAT}:
        numbers = pd.to_numeric(series, errors="coerce")
        if kind == ColumnKind.INT and not numbers.isna().any():
            return numbers.astype("int64")
        return numbers.astype("float64")
    if kind == ColumnKind.BOOL:
        return _to_boolean(series, None)
    return pd.to_datetime(series, errors="coerce", format="ISO8601")


_TRUE = frozenset({"true", "1", "yes", "y", "t"})
_FALSE = frozenset({"false", "0", "no", "n", "f"})


def _to_boolean(series: pd.Series, conversion: ColumnConversion | None) -> pd.Series:
    options = conversion.boolean if conversion else None
    true_values = set(options.true_values) if options and options.true_values else None
    false_values = set(options.false_values) if options and options.false_values else None
    mismatch = options.mismatch_as if options else None
    explicit = true_values is not None or false_values is not None

    def convert(value: object) -> bool | None:
        if _is_null(value):
            return None
        if isinstance(value, bool | np.bool_):
            return bool(value)
        text = str(value)
        known = _explicit_bool(text, true_values, false_values) if explicit else _default_bool(text)
        if known is not None:
            return known
        if mismatch == "error":
            raise DataError(
                f"cannot convert {text!r} in column {series.name!r} to boolean (mismatch_as: error)"
            )
        return {"true": True, "false": False}.get(mismatch or "")

    converted = series.map(convert)
    if converted.isna().any():
        return converted.astype("boolean")
    return converted.astype(bool)


def _explicit_bool(text: str, true_values: set[str] | None, false_values: set[str] | None) -> bool | None:
    if true_values and text in true_values:
        return True
    if false_values and text in false_values:
        return False
    return None


def _default_bool(text: str) -> bool | None:
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    return None


def _to_datetime(series: pd.Series, formats: Sequence[str]) -> pd.Series:
    text = series.astype(object).where(series.notna(), None)
    result = pd.Series(pd.NaT, index=series.index, dtype="datetime64[us]")
    for date_format in formats:
        pending = result.isna() & text.notna()
        if not pending.any():
            break
        parsed = pd.to_datetime(text[pending], format=date_format, errors="coerce")
        result[pending] = parsed
    return result


def _require(frame: pd.DataFrame, columns: Sequence[str], transformation: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise MLTableError(
            f"{transformation}: no column {', '.join(repr(c) for c in missing)}; the table has "
            f"{', '.join(repr(str(c)) for c in frame.columns)}",
            transformation=transformation,
        )


def key_value(value: object) -> KeyValue:
    """A partition key value as plain JSON-able Python (numpy scalars unwrapped, dates as ISO text)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bool | int | float | str):
        return value
    return str(value)


def filter_by_keys(frame: pd.DataFrame, keys: dict[str, KeyValue]) -> pd.DataFrame:
    """Rows of ``frame`` whose key columns equal ``keys`` (compared as :func:`key_value` does)."""
    mask = pd.Series(True, index=frame.index)
    for column, wanted in keys.items():
        if column not in frame.columns:
            raise DataError(f"partition key {column!r} is not a column of the table")
        mask &= frame[column].map(lambda v, w=wanted: not _is_null(v) and key_value(v) == w)
    return frame[mask]


def _is_null(value: object) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NaT
