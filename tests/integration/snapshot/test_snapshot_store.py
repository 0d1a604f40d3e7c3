"""The content-addressed snapshot store on Azurite: upload once, resolve, materialise safely."""

from __future__ import annotations

import hashlib
import io
import os
import threading
import uuid
from pathlib import Path

import pytest

from shared.errors import SnapshotError
from shared.settings import Settings
from shared.snapshot import (
    HashCache,
    build_snapshot,
    load_manifest,
    materialize_snapshot,
    resolve_snapshot_ref,
    snapshot_id_of_folder,
    snapshot_uri,
)
from shared.snapshot.models import SnapshotFile, SnapshotManifest
from shared.snapshot.store import manifest_path, object_path, put_if_absent
from shared.storage import Container, StorageClients


def make_code(root: Path, marker: str | None = None) -> Path:
    """A small code folder whose content is unique to the test (the session's Azurite is shared)."""
    marker = marker or uuid.uuid4().hex
    files = {
        "score.py": f"MARKER = {marker!r}\n",
        "lib/util.py": "def f():\n    return 1\n",
        "run.sh": "#!/bin/sh\necho hi\n",
        ".amlignore": "outputs/\n*.log\n",
        "outputs/old.csv": "ignored",
        "debug.log": "ignored",
    }
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (root / "run.sh").chmod(0o755)
    return root


def test_unchanged_code_is_never_uploaded_twice(storage: StorageClients, tmp_path: Path) -> None:
    code = make_code(tmp_path / "code")
    first = build_snapshot(storage, code)
    assert first.file_count == 4  # score.py, lib/util.py, run.sh, .amlignore
    assert first.ignore_file == ".amlignore"
    assert first.ignored_count == 2
    assert first.uploaded_files == 4
    assert not first.already_stored
    assert first.snapshot_id == snapshot_id_of_folder(code)

    again = build_snapshot(storage, code)
    assert again.snapshot_id == first.snapshot_id
    assert again.already_stored
    assert (again.uploaded_files, again.uploaded_bytes) == (0, 0)

    (code / "score.py").write_text((code / "score.py").read_text() + "# one more line\n")
    changed = build_snapshot(storage, code)
    assert changed.snapshot_id != first.snapshot_id
    assert changed.uploaded_files == 1  # only the changed file's new content
    assert changed.uploaded_bytes == (code / "score.py").stat().st_size


def test_hash_cache_avoids_rehashing_on_the_second_build(storage: StorageClients, tmp_path: Path) -> None:
    code = make_code(tmp_path / "code")
    for path in code.rglob("*"):
        if path.is_file():
            st = path.stat()
            os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns - 10_000_000_000))
    with HashCache(tmp_path / "hashes.sqlite") as cache:
        build_snapshot(storage, code, cache=cache)
        assert cache.misses == 4
        build_snapshot(storage, code, cache=cache)
        assert cache.hits == 4


def test_limits_come_from_settings(storage: StorageClients, tmp_path: Path) -> None:
    code = make_code(tmp_path / "code")
    (code / "model.bin").write_bytes(b"\0" * 2048)
    strict = Settings(snapshot_max_bytes=1024, snapshot_max_files=2000)
    with pytest.raises(SnapshotError) as caught:
        build_snapshot(storage, code, settings=strict)
    assert caught.value.message.startswith(
        f"While attempting to take snapshot of {code}\nYour total snapshot size exceeds the limit of 0.0 MB."
    )
    assert "model.bin" in caught.value.message
    with pytest.raises(SnapshotError, match=r"Your project exceeds the file limit of 3\."):
        build_snapshot(storage, code, settings=Settings(snapshot_max_files=3))
    relaxed = Settings(snapshot_max_bytes=10_000, snapshot_max_files=5)
    assert build_snapshot(storage, code, settings=relaxed).file_count == 5


def test_materialize_restores_files_and_modes(storage: StorageClients, tmp_path: Path) -> None:
    code = make_code(tmp_path / "code")
    record = build_snapshot(storage, code)
    folder = materialize_snapshot(storage, record.snapshot_id, tmp_path / "cache")
    assert folder == tmp_path / "cache" / record.snapshot_id
    got = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    assert got == [".amlignore", "lib/util.py", "run.sh", "score.py"]
    assert (folder / "score.py").read_text() == (code / "score.py").read_text()
    assert (folder / "run.sh").stat().st_mode & 0o777 == 0o755
    assert (folder / "score.py").stat().st_mode & 0o777 == 0o644
    assert snapshot_id_of_folder(folder) == record.snapshot_id


def test_concurrent_materialisations_share_one_complete_folder(
    storage: StorageClients, tmp_path: Path
) -> None:
    code = make_code(tmp_path / "code")
    for i in range(30):
        (code / "pkg" / f"m{i}.py").parent.mkdir(exist_ok=True)
        (code / "pkg" / f"m{i}.py").write_text(f"N = {i}\n")
    record = build_snapshot(storage, code)
    cache = tmp_path / "cache"
    results: list[Path] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            results.append(materialize_snapshot(storage, record.snapshot_id, cache))
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert set(results) == {cache / record.snapshot_id}
    assert sorted(p.name for p in cache.iterdir()) == [record.snapshot_id]  # no temp folders left
    assert snapshot_id_of_folder(cache / record.snapshot_id) == record.snapshot_id


def test_a_corrupted_object_is_detected_and_leaves_no_folder(storage: StorageClients, tmp_path: Path) -> None:
    code = make_code(tmp_path / "code")
    record = build_snapshot(storage, code)
    manifest = load_manifest(storage, record.snapshot_id)
    victim = next(f for f in manifest.files if f.path == "score.py")
    storage.container(Container.SNAPSHOTS).upload_blob(
        object_path(victim.sha256), b"tampered", overwrite=True
    )
    cache = tmp_path / "cache"
    with pytest.raises(SnapshotError, match=r"stored content of score\.py does not match its hash"):
        materialize_snapshot(storage, record.snapshot_id, cache)
    assert list(cache.iterdir()) == []


def test_resolve_snapshot_references(storage: StorageClients, tmp_path: Path) -> None:
    record = build_snapshot(storage, make_code(tmp_path / "code"))
    sid = record.snapshot_id
    assert resolve_snapshot_ref(storage, sid) == sid
    assert resolve_snapshot_ref(storage, snapshot_uri(sid)) == sid
    assert snapshot_uri(sid) == f"azureml://datastores/snapshots/paths/{sid}"
    missing = "sha256-" + "0" * 64
    with pytest.raises(SnapshotError, match=f"snapshot {missing} does not exist"):
        resolve_snapshot_ref(storage, missing)
    with pytest.raises(SnapshotError, match="is not a snapshot reference"):
        resolve_snapshot_ref(storage, "azureml://datastores/workspaceblobstore/paths/x")
    with pytest.raises(SnapshotError, match="is not a snapshot reference"):
        resolve_snapshot_ref(storage, "./src")
    with pytest.raises(SnapshotError, match=r"no snapshot was ingested from incoming/never\.zip"):
        resolve_snapshot_ref(storage, "azureml://datastores/snapshots/paths/incoming/never.zip")


def test_a_tampered_manifest_cannot_write_outside_the_cache(storage: StorageClients, tmp_path: Path) -> None:
    content = uuid.uuid4().hex.encode()
    digest = hashlib.sha256(content).hexdigest()
    container = storage.container(Container.SNAPSHOTS)
    container.upload_blob(object_path(digest), content, overwrite=True)
    fake_id = "sha256-" + hashlib.sha256(content + b"fake").hexdigest()
    evil = SnapshotManifest(
        snapshot_id=fake_id,
        files=[SnapshotFile(path="../../escaped.txt", size=len(content), mode=0o644, sha256=digest)],
    )
    container.upload_blob(manifest_path(fake_id), evil.model_dump_json().encode(), overwrite=True)
    cache = tmp_path / "deep" / "cache"
    with pytest.raises(SnapshotError, match="is not a safe relative path"):
        materialize_snapshot(storage, fake_id, cache)
    assert not (tmp_path / "escaped.txt").exists()
    assert not (tmp_path / "deep" / "escaped.txt").exists()
    assert list(cache.iterdir()) == []


def test_acceptance_25_amlignore_limits_and_hash(storage: StorageClients, tmp_path: Path) -> None:
    """Both ignore files: only .amlignore applies to the snapshot and its hash; > 300 MB after it fails."""
    code = make_code(tmp_path / "code")
    (code / ".gitignore").write_text("*.py\n")  # would drop every script if it applied
    with (code / "huge.bin").open("wb") as handle:  # sparse: no disk space, 300 MB + 1 byte
        handle.truncate(300 * 1024 * 1024 + 1)
    with pytest.raises(SnapshotError, match=r"exceeds the limit of 300\.0 MB"):
        build_snapshot(storage, code)  # default settings: Azure ML's limits

    (code / ".amlignore").write_text((code / ".amlignore").read_text() + "huge.bin\n")
    record = build_snapshot(storage, code)
    assert record.ignore_file == ".amlignore"
    assert {f.path for f in load_manifest(storage, record.snapshot_id).files} >= {"score.py", "lib/util.py"}

    (code / "debug.log").write_text("changed, but ignored")
    (code / "huge.bin").unlink()
    assert snapshot_id_of_folder(code) == record.snapshot_id  # ignored files do not change the hash
    (code / ".gitignore").write_text("*.py\n# edited\n")
    assert snapshot_id_of_folder(code) != record.snapshot_id  # .gitignore is an ordinary file here


def test_a_file_changed_between_hashing_and_upload_is_never_stored_under_the_old_hash(
    storage: StorageClients,
) -> None:
    hashed = uuid.uuid4().hex.encode()
    digest = hashlib.sha256(hashed).hexdigest()
    container = storage.container(Container.SNAPSHOTS)
    changed = bytes(reversed(hashed))  # same size, other bytes: what the file holds by upload time
    with pytest.raises(SnapshotError, match="changed while it was being uploaded"):
        put_if_absent(container, object_path(digest), len(hashed), lambda: io.BytesIO(changed), sha256=digest)
    assert not container.get_blob_client(object_path(digest)).exists()
    assert put_if_absent(
        container, object_path(digest), len(hashed), lambda: io.BytesIO(hashed), sha256=digest
    ) == len(hashed)
    assert (
        put_if_absent(container, object_path(digest), len(hashed), lambda: io.BytesIO(hashed), sha256=digest)
        is None
    )
