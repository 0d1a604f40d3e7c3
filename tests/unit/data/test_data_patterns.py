"""MLTable globs and partition formats, URI parsing, and the file-list ordering rules."""

from __future__ import annotations

from datetime import datetime

import pytest

from shared.data.locations import BlobFile, BlobRoot, parse_blob_url, parse_uri, root_of
from shared.data.patterns import compile_glob, compile_partition_format, glob_prefix
from shared.data.sources import walk_order
from shared.errors import DataError, MLTableError
from shared.plan import BlobData, UrlData


@pytest.mark.parametrize(
    ("pattern", "matches", "misses"),
    [
        ("*.csv", ["a.csv"], ["x/a.csv", "a.csvx"]),
        ("**/*.csv", ["a.csv", "x/a.csv", "x/y/z.csv"], ["a.txt"]),
        ("data/**", ["data/a", "data/x/y"], ["other/a"]),
        ("part-?.parquet", ["part-1.parquet"], ["part-10.parquet"]),
        ("[ab]*.txt", ["a1.txt", "b.txt"], ["c.txt"]),
        ("[a-c]/*.txt", ["b/1.txt"], ["d/1.txt"]),
        ("[!a]*.txt", ["b.txt"], ["a.txt"]),
        ("x+y(1).csv", ["x+y(1).csv"], ["xxy(1).csv"]),
    ],
)
def test_globs(pattern: str, matches: list[str], misses: list[str]) -> None:
    regex = compile_glob(pattern)
    assert all(regex.fullmatch(m) for m in matches)
    assert not any(regex.fullmatch(m) for m in misses)


def test_glob_prefix_is_where_listing_starts() -> None:
    assert glob_prefix("data/2024/*.csv") == "data/2024"
    assert glob_prefix("data/**/x.csv") == "data"
    assert glob_prefix("*.csv") == ""


def test_partition_format_reads_fields_from_the_end_of_the_path() -> None:
    compiled = compile_partition_format("{Store}/{Brand}/{file_name}.{extension}")
    assert compiled.columns == ("Store", "Brand", "file_name", "extension")
    assert compiled.extract("1000/dominicks/partitioned_data.csv") == {
        "Store": "1000",
        "Brand": "dominicks",
        "file_name": "partitioned_data",
        "extension": "csv",
    }
    assert compiled.extract("deep/er/1000/dominicks/d.csv") is not None
    assert compiled.extract("dominicks/d.csv") is None


def test_partition_format_dates_and_wildcards() -> None:
    compiled = compile_partition_format("/{timestamp:yyyy/MM/dd}/*.parquet")
    assert compiled.extract("2024/03/09/part-0.parquet") == {"timestamp": datetime(2024, 3, 9)}
    assert compiled.extract("2024/3/09/part-0.parquet") is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("no/fields.csv", "has no {field}"),
        ("{a}/{a}.csv", "names 'a' twice"),
        ("{d:yyyy-QQ}", "unknown date token"),
    ],
)
def test_bad_partition_formats(text: str, message: str) -> None:
    with pytest.raises(MLTableError, match=message):
        compile_partition_format(text)


def test_walk_order_is_os_walk_top_down_sorted() -> None:
    paths = ["b/1", "a/b/1", "z", "a/1", "a.txt", "a/2", "a-c/1"]
    ordered = [f.path for f in walk_order([BlobFile(p, 1, 0) for p in paths])]
    assert ordered == ["a.txt", "z", "a/1", "a/2", "a/b/1", "a-c/1", "b/1"]


def test_datastore_uris_map_to_containers() -> None:
    assert parse_uri("azureml://datastores/workspaceblobstore/paths/x/y.csv") == (
        BlobRoot(container="data"),
        "x/y.csv",
    )
    long = "azureml://subscriptions/s/resourcegroups/r/workspaces/w/datastores/images/paths/a/b/"
    assert parse_uri(long) == (BlobRoot(container="images"), "a/b")
    assert parse_uri("./relative/path.csv") is None
    with pytest.raises(DataError, match="cannot read 'adl://"):
        parse_uri("adl://store.azuredatalakestore.net/x")


def test_blob_urls_host_and_path_style_with_sas() -> None:
    root, path = parse_blob_url("https://acct.blob.core.windows.net/cont/dir/file.csv?sv=1&sig=abc")
    assert root == BlobRoot(
        account_url="https://acct.blob.core.windows.net", container="cont", sas="sv=1&sig=abc"
    )
    assert path == "dir/file.csv"
    root, path = parse_blob_url("http://127.0.0.1:10000/devstoreaccount1/data/x")
    assert root.account_url == "http://127.0.0.1:10000/devstoreaccount1"
    assert (root.container, path) == ("data", "x")
    root, path = parse_uri("abfss://fs@acct.dfs.core.windows.net/p/q") or (None, None)
    assert root is not None
    assert (root.account_url, root.container, path) == ("https://acct.blob.core.windows.net", "fs", "p/q")
    with pytest.raises(DataError, match="names no container"):
        parse_blob_url("https://acct.blob.core.windows.net/")


def test_root_of_resolved_locations() -> None:
    assert root_of(BlobData(container="data", path="a/b/")) == BlobRoot(container="data", prefix="a/b")
    url = root_of(UrlData(url="https://acct.blob.core.windows.net/c/folder?sig=x"))
    assert (url.container, url.prefix, url.sas) == ("c", "folder", "sig=x")
    assert url.blob_name("f.csv") == "folder/f.csv"
    assert url.describe() == "https://acct.blob.core.windows.net/c/folder"
