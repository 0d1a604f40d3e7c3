"""The local hash cache: hits for unchanged files, misses after any change, never a stale hash."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from shared.snapshot import HashCache


def age(path: Path, seconds: int = 60) -> None:
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns - seconds * 1_000_000_000))


def test_unchanged_file_is_hashed_once(tmp_path: Path) -> None:
    data = tmp_path / "big.bin"
    data.write_bytes(b"a" * 10_000)
    age(data)
    with HashCache(tmp_path / "cache.sqlite") as cache:
        first = cache.sha256(data)
        assert cache.sha256(data) == first == hashlib.sha256(b"a" * 10_000).hexdigest()
        assert (cache.misses, cache.hits) == (1, 1)
    with HashCache(tmp_path / "cache.sqlite") as reopened:  # persisted across processes/sessions
        assert reopened.sha256(data) == first
        assert reopened.hits == 1


def test_a_change_of_size_or_mtime_is_rehashed(tmp_path: Path) -> None:
    data = tmp_path / "f.txt"
    data.write_bytes(b"one")
    age(data, 120)
    with HashCache(tmp_path / "cache.sqlite") as cache:
        cache.sha256(data)
        data.write_bytes(b"two")  # same size, new mtime
        age(data, 60)
        assert cache.sha256(data) == hashlib.sha256(b"two").hexdigest()
        data.write_bytes(b"three!")
        age(data, 30)
        assert cache.sha256(data) == hashlib.sha256(b"three!").hexdigest()
        assert cache.hits == 0


def test_just_written_files_are_not_cached(tmp_path: Path) -> None:
    data = tmp_path / "fresh.txt"
    data.write_bytes(b"x")
    with HashCache(tmp_path / "cache.sqlite") as cache:
        cache.sha256(data)
        cache.sha256(data)
        assert cache.hits == 0  # a write in the same clock tick could otherwise go unseen


def test_an_unusable_cache_location_still_hashes(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    data = tmp_path / "d"
    data.write_bytes(b"x")
    with HashCache(blocker / "sub" / "cache.sqlite") as cache:
        assert cache.sha256(data) == hashlib.sha256(b"x").hexdigest()
