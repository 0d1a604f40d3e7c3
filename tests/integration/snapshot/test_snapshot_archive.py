"""Zips dropped into snapshots/incoming/ (and posted as bytes): safety checks, error files, aliases."""

from __future__ import annotations

import io
import json
import os
import stat
import struct
import uuid
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from shared.errors import SnapshotError
from shared.plan import CodeRef, JobPlan, JobType, RunPlan
from shared.settings import Settings
from shared.snapshot import (
    build_snapshot,
    ingest_snapshot_archive,
    ingest_snapshot_blob,
    is_snapshot_drop,
    load_manifest,
    materialize_snapshot,
    pin_code_snapshots,
    resolve_snapshot_ref,
)
from shared.storage import Container, StorageClients

Entries = dict[str, bytes]


def make_zip(entries: Entries, *, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def with_symlink(entries: Entries, link: str, target: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
        info = zipfile.ZipInfo(link)
        info.create_system = 3
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, target)
    return buffer.getvalue()


def raw_name_zip(raw: bytes, *, utf8_flag: bool) -> bytes:
    """A zip whose single entry has the name bytes ``raw`` (patched in, as a broken tool would write)."""
    placeholder = "p" * len(raw)
    data = bytearray(make_zip({placeholder: b"x", "ok.py": b""}))
    data = bytearray(data.replace(placeholder.encode(), raw))
    if utf8_flag:
        for signature, flag_offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
            start = data.find(signature)
            (flags,) = struct.unpack_from("<H", data, start + flag_offset)
            struct.pack_into("<H", data, start + flag_offset, flags | 0x800)
    return bytes(data)


def duplicate_zip() -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with zipfile.ZipFile(buffer, "w") as zf:
            zf.writestr("score.py", "one")
            zf.writestr("lib/./x.py", "a")
            zf.writestr("lib/x.py", "b")
    return buffer.getvalue()


def unique() -> str:
    return uuid.uuid4().hex


def drop(storage: StorageClients, name: str, data: bytes) -> str:
    blob = f"incoming/{name}"
    storage.container(Container.SNAPSHOTS).upload_blob(blob, data, overwrite=True)
    return blob


def read_error(storage: StorageClients, blob: str) -> dict[str, object]:
    raw = storage.container(Container.SNAPSHOTS).download_blob(blob + ".error.json").readall()
    document = json.loads(raw)
    assert isinstance(document, dict)
    return document


def test_a_dropped_zip_becomes_the_same_snapshot_as_its_folder(
    storage: StorageClients, tmp_path: Path
) -> None:
    marker = unique()
    files = {
        "score.py": f"M = {marker!r}\n",
        "lib/util.py": "X = 1\n",
        ".amlignore": "*.log\n",
        ".gitignore": "*.py\n",  # unused: .amlignore wins
    }
    code = tmp_path / "code"
    for rel, text in files.items():
        (code / rel).parent.mkdir(parents=True, exist_ok=True)
        (code / rel).write_text(text)
    blob = drop(
        storage, f"{marker}.zip", make_zip({**{k: v.encode() for k, v in files.items()}, "x.log": b"no"})
    )

    record = ingest_snapshot_blob(storage, blob)
    assert record.snapshot_id == build_snapshot(storage, code).snapshot_id
    assert record.ignore_file == ".amlignore"
    assert record.ignored_count == 1
    assert record.file_count == 4
    assert resolve_snapshot_ref(storage, f"azureml://datastores/snapshots/paths/{blob}") == record.snapshot_id
    assert resolve_snapshot_ref(storage, blob) == record.snapshot_id
    folder = materialize_snapshot(storage, f"azureml://datastores/snapshots/paths/{blob}", tmp_path / "cache")
    assert (folder / "score.py").read_text() == files["score.py"]


def test_hash_does_not_depend_on_archive_order_or_timestamps(storage: StorageClients) -> None:
    marker = unique().encode()
    entries = {"a.py": marker, "b/c.py": b"2", "d.txt": b"3"}
    forward = make_zip(entries)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as zf:
        for name in reversed(list(entries)):
            zf.writestr(zipfile.ZipInfo(name, date_time=(1999, 1, 1, 0, 0, 0)), entries[name])
    first = ingest_snapshot_archive(storage, forward, "forward.zip")
    second = ingest_snapshot_archive(storage, buffer.getvalue(), "backward.zip")
    assert first.snapshot_id == second.snapshot_id
    assert second.already_stored


def test_symlink_to_a_file_inside_stores_its_bytes(storage: StorageClients) -> None:
    marker = unique().encode()
    data = with_symlink({"lib/real.py": marker}, "alias.py", "lib/real.py")
    record = ingest_snapshot_archive(storage, data, "links.zip")
    files = {f.path: f for f in load_manifest(storage, record.snapshot_id).files}
    assert files["alias.py"].sha256 == files["lib/real.py"].sha256


def corrupt(entries: Entries, needle: bytes) -> bytes:
    """A stored (uncompressed) zip with one byte of ``needle`` flipped: its CRC no longer matches."""
    data = make_zip(entries, compression=zipfile.ZIP_STORED)
    at = data.index(needle)
    return data[:at] + bytes([data[at] ^ 1]) + data[at + 1 :]


def bomb(size: int) -> bytes:
    return make_zip({"score.py": b"ok", "zeros.bin": b"\0" * size})


ATTACKS: dict[str, tuple[Callable[[], bytes], str]] = {
    "traversal": (lambda: make_zip({"score.py": b"", "../../evil.py": b"x"}), "outside the archive root"),
    "absolute path": (lambda: make_zip({"/etc/cron.d/evil": b"x"}), "absolute path is not allowed"),
    "windows drive": (lambda: make_zip({"C:/evil.py": b"x"}), "absolute path is not allowed"),
    "symlink escape": (
        lambda: with_symlink({"score.py": b""}, "passwd", "../../etc/passwd"),
        "points outside the archive root",
    ),
    "absolute symlink": (
        lambda: with_symlink({}, "passwd", "/etc/passwd"),
        "points outside the archive root",
    ),
    "symlink to nothing": (
        lambda: with_symlink({}, "x.py", "missing.py"),
        "points to nothing in the archive",
    ),
    "bomb by ratio": (lambda: bomb(8 * 1024 * 1024), "more than the 100× allowed"),
    "invalid utf-8 name": (lambda: raw_name_zip(b"bad\xff\xfe.py", utf8_flag=False), "is not valid UTF-8"),
    "invalid utf-8 flagged name": (
        lambda: raw_name_zip(b"bad\xff\xfe.py", utf8_flag=True),
        "is not valid UTF-8",
    ),
    "control character": (lambda: make_zip({"a\x07b.py": b""}), "contains control characters"),
    "duplicate entries": (duplicate_zip, "duplicate entry, same path as entry #2 (lib/x.py)"),
    "file and folder": (lambda: make_zip({"lib": b"", "lib/x.py": b""}), "which is a file in the archive"),
    "not a zip": (lambda: b"this is not a zip", "is not a readable zip archive"),
    "corrupt entry": (
        lambda: corrupt({"score.py": b"payload-123"}, b"payload-123"),
        "is corrupt or unsupported",
    ),
    "corrupt ignore file": (
        lambda: corrupt({".amlignore": b"*.log\n", "a.py": b""}, b"*.log"),
        ".amlignore in the archive is corrupt",
    ),
}


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_every_attack_is_rejected_with_an_error_file_and_nothing_is_lost(
    storage: StorageClients, tmp_path: Path, attack: str
) -> None:
    build, expected = ATTACKS[attack]
    name = f"{unique()}.zip"
    good = ingest_snapshot_blob(storage, drop(storage, name, make_zip({"score.py": unique().encode()})))

    blob = drop(storage, name, build())
    with pytest.raises(SnapshotError) as caught:
        ingest_snapshot_blob(storage, blob)
    assert expected in caught.value.message
    error = read_error(storage, blob)
    assert error["error"] == "SnapshotError"
    assert expected in str(error["message"])
    assert error["blob"] == blob
    # nothing already stored is lost: the drop, the earlier snapshot and the name's alias are intact
    container = storage.container(Container.SNAPSHOTS)
    assert container.get_blob_client(blob).exists()
    assert resolve_snapshot_ref(storage, blob) == good.snapshot_id
    assert (materialize_snapshot(storage, good.snapshot_id, tmp_path / "cache") / "score.py").is_file()


def test_bomb_by_size_is_held_to_the_snapshot_limit(storage: StorageClients) -> None:
    data = make_zip({"big.bin": os.urandom(64 * 1024)})
    blob = drop(storage, f"{unique()}.zip", data)
    with pytest.raises(SnapshotError, match=r"Your total snapshot size exceeds the limit of 0\.0 MB"):
        ingest_snapshot_blob(storage, blob, settings=Settings(snapshot_max_bytes=32 * 1024))
    assert "exceeds the limit" in str(read_error(storage, blob)["message"])
    huge = make_zip({"big.bin": os.urandom(2 * 1024 * 1024)})  # rejected before it is even opened
    with pytest.raises(SnapshotError, match="no snapshot can be larger than"):
        ingest_snapshot_archive(storage, huge, "huge.zip", settings=Settings(snapshot_max_bytes=1024))


def test_an_entry_larger_than_declared_is_rejected(storage: StorageClients) -> None:
    data = bytearray(make_zip({"a.txt": b"x" * 100_000}))
    struct.pack_into("<I", data, 22, 10)  # local header: uncompressed size
    central = data.rfind(b"PK\x01\x02")
    struct.pack_into("<I", data, central + 24, 10)  # central directory: uncompressed size
    with pytest.raises(SnapshotError, match=r"is corrupt or unsupported|larger than its declared"):
        ingest_snapshot_archive(storage, bytes(data), "liar.zip")


def test_error_lists_every_problem(storage: StorageClients) -> None:
    data = make_zip({"../a": b"", "/b": b"", "ok.py": b""})
    with pytest.raises(SnapshotError) as caught:
        ingest_snapshot_archive(storage, data, "many.zip")
    problems = caught.value.context["problems"]
    assert len(problems) == 2
    assert "entry #1 '../a'" in problems[0]
    assert "entry #2 '/b'" in problems[1]


def test_only_zip_drops_are_accepted_and_error_files_are_not_drops(storage: StorageClients) -> None:
    blob = drop(storage, f"{unique()}.tar.gz", b"\x1f\x8b")
    with pytest.raises(SnapshotError, match=r"is not a \.zip archive"):
        ingest_snapshot_blob(storage, blob)
    assert is_snapshot_drop(blob)
    assert not is_snapshot_drop(blob + ".error.json")
    assert not is_snapshot_drop("objects/ab/abcdef")
    with pytest.raises(SnapshotError, match="is not a snapshot drop"):
        ingest_snapshot_blob(storage, blob + ".error.json")
    container = storage.container(Container.SNAPSHOTS)
    assert not container.get_blob_client(blob + ".error.json.error.json").exists()
    with pytest.raises(SnapshotError, match="no longer exists"):
        ingest_snapshot_blob(storage, f"incoming/{unique()}.zip")


def test_a_good_upload_after_a_rejection_clears_the_error(storage: StorageClients) -> None:
    name = f"{unique()}.zip"
    blob = drop(storage, name, make_zip({"../x": b""}))
    with pytest.raises(SnapshotError):
        ingest_snapshot_blob(storage, blob)
    with pytest.raises(SnapshotError, match=r"it was rejected: archive .* is rejected"):
        resolve_snapshot_ref(storage, blob)
    drop(storage, name, make_zip({"score.py": unique().encode()}))
    record = ingest_snapshot_blob(storage, blob)
    container = storage.container(Container.SNAPSHOTS)
    assert not container.get_blob_client(blob + ".error.json").exists()
    assert resolve_snapshot_ref(storage, blob) == record.snapshot_id
    again = ingest_snapshot_blob(storage, blob)  # a duplicate trigger delivery is harmless
    assert again.snapshot_id == record.snapshot_id
    assert again.already_stored


def test_pinning_a_plan_resolves_zip_aliases_to_ids(storage: StorageClients) -> None:
    blob = drop(storage, f"{unique()}.zip", make_zip({"score.py": unique().encode()}))
    record = ingest_snapshot_blob(storage, blob)
    other = ingest_snapshot_archive(storage, make_zip({"train.py": unique().encode()}), "posted.zip")
    plan = RunPlan(
        run_id="r",
        jobs=[
            JobPlan(
                name="a",
                type=JobType.COMMAND,
                code=CodeRef(snapshot=f"azureml://datastores/snapshots/paths/{blob}"),
            ),
            JobPlan(name="b", type=JobType.COMMAND, code=CodeRef(snapshot=other.snapshot_id)),
            JobPlan(name="c", type=JobType.COMMAND, code=CodeRef(local_path="/src")),
            JobPlan(name="d", type=JobType.COMMAND),
        ],
    )
    pinned = pin_code_snapshots(storage, plan)
    assert [job.code.snapshot if job.code else None for job in pinned.jobs] == [
        record.snapshot_id,
        other.snapshot_id,
        None,
        None,
    ]
    drop(storage, blob.removeprefix("incoming/"), make_zip({"score.py": unique().encode()}))
    ingest_snapshot_blob(storage, blob)  # the name now means other code; the pinned plan does not change
    assert pin_code_snapshots(storage, pinned) == pinned
    broken = plan.model_copy(
        update={"jobs": [JobPlan(name="x", type=JobType.COMMAND, code=CodeRef(snapshot="incoming/none.zip"))]}
    )
    with pytest.raises(SnapshotError, match=r"no snapshot was ingested from incoming/none\.zip"):
        pin_code_snapshots(storage, broken)
