"""File hashing with a local cache, so an unchanged big file is hashed once, not on every submit.

The cache is a small SQLite file in Fanout's home folder keyed by (absolute path, size, modification
time in ns). A file whose modification time is within the last two seconds is hashed but not cached:
a write in the same clock tick as the hash would otherwise leave a stale entry (git's "racy" rule).
SQLite makes the cache safe to share between processes; a cache that cannot be opened or written is
simply not used — hashing is then slower, never wrong.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Self

logger = logging.getLogger(__name__)

_RACY_SECONDS = 2.0
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS hashes ("
    " path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, sha256 TEXT NOT NULL)"
)


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes (streamed, constant memory)."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


class HashCache:
    """Content hashes of local files, remembered by (path, size, mtime).

    Args:
        location: the SQLite file; ``None`` keeps nothing (every file is hashed every time).
    """

    def __init__(self, location: Path | None) -> None:
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self.hits = 0
        self.misses = 0
        if location is None:
            return
        try:
            location.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(location, timeout=10, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(_SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            logger.warning("hash cache %s is unusable, hashing without it: %s", location, exc)
            self._db = None

    @classmethod
    def in_home(cls, home: Path) -> HashCache:
        """The cache kept in Fanout's home folder (``<home>/cache/hashes.sqlite``)."""
        return cls(home / "cache" / "hashes.sqlite")

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the SQLite file; later lookups hash every file (closing twice is fine)."""
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db = None

    def sha256(self, path: Path, stat_result: os.stat_result | None = None) -> str:
        """The hex SHA-256 of ``path``: from the cache when size and mtime still match, else computed."""
        st = stat_result if stat_result is not None else path.stat()
        key = str(path.absolute())
        cached = self._lookup(key, st)
        if cached is not None:
            self.hits += 1
            return cached
        self.misses += 1
        digest = sha256_file(path)
        if time.time() - st.st_mtime >= _RACY_SECONDS:
            self._store(key, st, digest)
        return digest

    def _lookup(self, key: str, st: os.stat_result) -> str | None:
        if self._db is None:
            return None
        try:
            with self._lock:
                row = self._db.execute(
                    "SELECT sha256 FROM hashes WHERE path = ? AND size = ? AND mtime_ns = ?",
                    (key, st.st_size, st.st_mtime_ns),
                ).fetchone()
        except sqlite3.Error as exc:
            logger.debug("hash cache lookup failed: %s", exc)
            return None
        return str(row[0]) if row else None

    def _store(self, key: str, st: os.stat_result, digest: str) -> None:
        if self._db is None:
            return
        try:
            with self._lock:
                self._db.execute(
                    "INSERT OR REPLACE INTO hashes (path, size, mtime_ns, sha256) VALUES (?, ?, ?, ?)",
                    (key, st.st_size, st.st_mtime_ns, digest),
                )
        except sqlite3.Error as exc:
            logger.debug("hash cache store failed: %s", exc)
