"""Turning what run() returned into the bytes of the ``append_row_to`` output (pure functions).

Formats (``ParallelSettings.append_row_format``):

- ``azureml`` (default, Azure ML's own): a list/tuple writes ``str(item) + "\\n"`` per item; a DataFrame
  is written space-separated, without index and without header (pandas ``to_csv(sep=" ")``, quoting as
  pandas does), unless ``--append_row_dataframe_header True`` asks for the header — written once, at
  the top of the file.
- ``csv``: comma-separated with one header line at the top. DataFrames give their columns; list items
  that are dicts give their keys (from the first dict), lists/tuples become rows without a header, any
  other item is a one-column row.
- ``jsonl``: one JSON document per item or DataFrame row.

The header is returned separately from the rows, because a mini-batch's rows become one block of the
output and the header must appear once, before every block (see :mod:`shared.runtime.appendrow`).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

import pandas as pd

from shared.errors import EntryScriptError
from shared.plan import AppendRowFormat

EXPECTED_RESULT = (
    "The run() method in the entry script should return a list, a tuple or a pandas DataFrame. The length "
    "of the returned result is considered as the number of succeeded items."
)


def result_length(result: object) -> int:
    """How many results run() returned.

    Raises:
        EntryScriptError: the value is not a list, tuple or DataFrame (``None`` included), with a message
            saying what was returned and what is expected.
    """
    if isinstance(result, list | tuple):
        return len(result)
    if isinstance(result, pd.DataFrame):
        return len(result.index)
    raise EntryScriptError(f"{EXPECTED_RESULT} The actual type of output is {type(result).__name__}.")


def format_rows(
    result: Sequence[Any] | pd.DataFrame, fmt: AppendRowFormat, *, dataframe_header: bool = False
) -> tuple[bytes, str]:
    """The output bytes of one run() result and the header line that belongs above them ('' for none)."""
    if isinstance(result, pd.DataFrame):
        return _format_dataframe(result, fmt, dataframe_header=dataframe_header)
    items = list(result)
    if fmt is AppendRowFormat.JSONL:
        return "".join(json.dumps(_jsonable(i), default=str) + "\n" for i in items).encode(), ""
    if fmt is AppendRowFormat.CSV:
        return _format_csv_items(items)
    return "".join(f"{item}\n" for item in items).encode(), ""


def _format_dataframe(
    frame: pd.DataFrame, fmt: AppendRowFormat, *, dataframe_header: bool
) -> tuple[bytes, str]:
    if fmt is AppendRowFormat.JSONL:
        if frame.empty:
            return b"", ""
        text = frame.to_json(orient="records", lines=True, date_format="iso")
        return (text if text.endswith("\n") else text + "\n").encode(), ""
    sep = "," if fmt is AppendRowFormat.CSV else " "
    body = frame.to_csv(header=False, index=False, sep=sep, lineterminator="\n")
    want_header = fmt is AppendRowFormat.CSV or dataframe_header
    header = (
        frame.iloc[:0].to_csv(index=False, sep=sep, lineterminator="\n").rstrip("\n") if want_header else ""
    )
    return body.encode(), header


def _format_csv_items(items: list[Any]) -> tuple[bytes, str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    header = ""
    keys: list[str] | None = None
    for item in items:
        if isinstance(item, dict):
            if keys is None:
                keys = [str(k) for k in item]
                head = io.StringIO()
                csv.writer(head, lineterminator="").writerow(keys)
                header = head.getvalue()
            writer.writerow([item.get(k, "") for k in keys])
        elif isinstance(item, list | tuple):
            writer.writerow(item)
        else:
            writer.writerow([item])
    return buffer.getvalue().encode(), header


def _jsonable(item: Any) -> Any:
    if isinstance(item, tuple):
        return list(item)
    return item
