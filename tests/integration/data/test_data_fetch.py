"""Whole-blob downloads of a worker (``shared.data.fetch``): one GET for small blobs, ranges for large."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote

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


def test_small_blobs_are_read_with_a_read_sas_signed_once_and_renewed(folder: DataFolder) -> None:
    folder.put("a.txt", "a")
    folder.put("b.txt", "b")
    root = _root(folder)
    target = fetch._target(folder.clients, root)
    assert target.sign is not None  # the account key signs a read SAS (Azurite, connection strings)
    signed = []
    original = target.sign

    def counting() -> fetch.Sas:
        signed.append(1)
        return original()

    target.sign, target._sas = counting, None
    for name in ("a.txt", "b.txt"):
        out = io.BytesIO()
        fetch.download_to(folder.clients, root, root.blob_name(name), 1, out)
        assert out.getvalue() == name[0].encode()
    assert len(signed) == 1  # one SAS for both
    assert target._sas is not None
    query = dict(part.split("=", 1) for part in target._sas[0].split("&"))
    assert (query["sp"], query["sr"]) == ("r", "c")  # read-only, this container only
    expiry = datetime.fromisoformat(unquote(query["se"]).replace("Z", "+00:00"))
    assert timedelta(minutes=50) < expiry - datetime.now(UTC) <= fetch.SAS_LIFETIME  # short-lived
    target._sas = (target._sas[0], 0.0)  # as if it were about to expire
    fetch.download_to(folder.clients, root, root.blob_name("a.txt"), 1, io.BytesIO())
    assert len(signed) == 2


def test_a_refused_sas_falls_back_to_the_sdk_for_good(folder: DataFolder) -> None:
    folder.put("c.txt", "c")
    root = _root(folder)
    target = fetch._target(folder.clients, root)
    target.sign, target._sas = (lambda: ("sv=2021-08-06&sr=c&sp=r&sig=not-a-signature", float("inf"))), None
    out = io.BytesIO()
    fetch.download_to(folder.clients, root, root.blob_name("c.txt"), 1, out)
    assert out.getvalue() == b"c"
    assert target.sign is None  # later reads go straight through the SDK


def test_without_a_way_to_sign_blobs_are_read_through_the_sdk(
    folder: DataFolder, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder.put("d.txt", "d")
    monkeypatch.setattr(fetch, "_signer", lambda *_: None)
    root = BlobRoot(container="data", prefix=folder.prefix)
    fetch._targets.pop(folder.clients, None)  # a fresh process's view
    out = io.BytesIO()
    fetch.download_to(folder.clients, root, root.blob_name("d.txt"), 1, out)
    assert out.getvalue() == b"d"
    with pytest.raises(ResourceNotFoundError):
        fetch.download_to(folder.clients, root, root.blob_name("gone.txt"), 1, io.BytesIO())


def test_ranges_are_read_with_the_sas_and_through_the_sdk_alike(folder: DataFolder) -> None:
    payload = bytes(range(256)) * 8
    folder.put("r.bin", payload)
    root = _root(folder)
    name = root.blob_name("r.bin")
    assert fetch.read_range(folder.clients, root, name, 100, 50) == payload[100:150]
    assert fetch.read_range(folder.clients, root, name, 2000, 500) == payload[2000:]  # fewer at the end
    target = fetch._target(folder.clients, root)
    target.sign = None  # as when no SAS can be had
    assert fetch.read_range(folder.clients, root, name, 100, 50) == payload[100:150]
    with pytest.raises(ResourceNotFoundError):
        fetch.read_range(folder.clients, root, root.blob_name("missing.bin"), 0, 10)
