"""Whole-blob downloads of a worker (``shared.data.fetch``): one GET for small blobs, ranges for large."""

from __future__ import annotations

import io

import pytest
from azure.core.exceptions import ResourceNotFoundError
from data_fixtures import DataFolder

from shared.data import fetch
from shared.data.locations import BlobRoot


def _root(folder: DataFolder) -> BlobRoot:
    return BlobRoot(container="data", prefix=folder.prefix)


def test_small_and_large_blobs_arrive_byte_for_byte(
    folder: DataFolder, monkeypatch: pytest.MonkeyPatch
) -> None:
    payload = bytes(range(256)) * 40  # 10 KiB
    folder.put("blob.bin", payload)
    root = _root(folder)
    small = io.BytesIO()
    fetch.download_to(folder.clients, root, root.blob_name("blob.bin"), len(payload), small)
    assert small.getvalue() == payload
    monkeypatch.setattr(fetch, "SINGLE_GET_BYTES", 1024)  # the same blob now counts as large
    large = io.BytesIO()
    fetch.download_to(folder.clients, root, root.blob_name("blob.bin"), len(payload), large)
    assert large.getvalue() == payload


@pytest.mark.parametrize("name", ["a b#c?d%e+f.txt", "ü/€ & ~x.txt", "dir/sub/name;v=1.txt"])
def test_names_that_need_quoting_are_read(folder: DataFolder, name: str) -> None:
    folder.put(name, name)
    root = _root(folder)
    out = io.BytesIO()
    fetch.download_to(folder.clients, root, root.blob_name(name), len(name.encode()), out)
    assert out.getvalue().decode() == name


def test_a_missing_blob_is_not_found(folder: DataFolder) -> None:
    root = _root(folder)
    with pytest.raises(ResourceNotFoundError):
        fetch.download_to(folder.clients, root, root.blob_name("never-written.txt"), 3, io.BytesIO())


def test_one_client_per_container_and_process(folder: DataFolder) -> None:
    root = _root(folder)
    first = fetch.container_for(folder.clients, root)
    assert fetch.container_for(folder.clients, root.child("sub")) is first  # same container
    assert fetch.container_for(folder.clients, BlobRoot(container="runs")) is not first
