"""Row formats of the append_row_to output (reference §3, §9.16-17)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from shared.errors import EntryScriptError
from shared.plan import AppendRowFormat
from shared.runtime.rows import format_rows, result_length


def test_result_length_accepts_lists_tuples_and_dataframes() -> None:
    assert result_length(["a", "b"]) == 2
    assert result_length(("a",)) == 1
    assert result_length(pd.DataFrame({"x": [1, 2, 3]})) == 3


@pytest.mark.parametrize(
    ("value", "name"), [(None, "NoneType"), ({"a": 1}, "dict"), ("text", "str"), (3, "int")]
)
def test_other_return_values_are_rejected_with_what_was_returned(value: object, name: str) -> None:
    with pytest.raises(EntryScriptError) as caught:
        result_length(value)
    assert f"The actual type of output is {name}." in caught.value.message
    assert "should return a list, a tuple or a pandas DataFrame" in caught.value.message


def test_azureml_lists_write_str_of_each_item() -> None:
    data, header = format_rows(["a: 1", "b: 2", 3, ("t", 1)], AppendRowFormat.AZUREML)
    assert data == b"a: 1\nb: 2\n3\n('t', 1)\n"
    assert header == ""


def test_azureml_dataframes_are_space_separated_without_header_or_index() -> None:
    frame = pd.DataFrame({"name": ["a b", "c"], "score": [0.5, 2.0]}, index=[7, 8])
    data, header = format_rows(frame, AppendRowFormat.AZUREML)
    assert data == b'"a b" 0.5\nc 2.0\n'
    assert header == ""
    _, opt_in = format_rows(frame, AppendRowFormat.AZUREML, dataframe_header=True)
    assert opt_in == "name score"


def test_csv_format_has_a_header() -> None:
    frame = pd.DataFrame({"name": ["a,b", "c"], "score": [1, 2]})
    assert format_rows(frame, AppendRowFormat.CSV) == (b'"a,b",1\nc,2\n', "name,score")
    dicts = [{"file": "x", "n": 1}, {"file": "y", "n": 2}]
    assert format_rows(dicts, AppendRowFormat.CSV) == (b"x,1\ny,2\n", "file,n")
    assert format_rows([("a", 1), "plain"], AppendRowFormat.CSV) == (b"a,1\nplain\n", "")


def test_jsonl_format_writes_one_document_per_row() -> None:
    data, header = format_rows([{"a": 1}, ("t", 2), "s"], AppendRowFormat.JSONL)
    assert [json.loads(line) for line in data.decode().splitlines()] == [{"a": 1}, ["t", 2], "s"]
    assert header == ""
    frame = pd.DataFrame({"a": [1, 2]})
    rows, _ = format_rows(frame, AppendRowFormat.JSONL)
    assert [json.loads(line) for line in rows.decode().splitlines()] == [{"a": 1}, {"a": 2}]
    assert format_rows(pd.DataFrame({"a": []}), AppendRowFormat.JSONL) == (b"", "")


def test_empty_results_write_nothing() -> None:
    assert format_rows([], AppendRowFormat.AZUREML) == (b"", "")
    assert format_rows(pd.DataFrame({"a": []}), AppendRowFormat.AZUREML)[0] == b""
