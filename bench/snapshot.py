"""Benchmark: snapshot a 2,000-file code folder (hash + upload), then again with nothing changed.

    python -m bench.snapshot [--files 2000] [--kib 16]

Prints, from one run on a fresh Azurite:

- baseline: plain ``hashlib.sha256`` over every file (read + hash, no storage) — the least any
  content-addressed snapshot must spend when it trusts nothing;
- first snapshot: ignore file, limits, hashing (filling the local hash cache) and uploading every file;
- second snapshot, nothing changed: with the hash cache (a ``stat`` per file, one request for the
  manifest) and without it (hash again, one request).

The second run with the cache should take a fraction of the baseline: nothing is re-read or re-sent.
File modification times are set a minute back, as for code edited earlier (files written in the last
two seconds are never cached; see ``shared/snapshot/hashing.py``).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
import time
from pathlib import Path

from shared.azurite import start_azurite
from shared.settings import Settings
from shared.snapshot import HashCache, build_snapshot
from shared.storage import StorageClients


def make_tree(root: Path, files: int, kib: int) -> int:
    """``files`` files of about ``kib`` KiB each in 40 folders (plus an ignore file); total bytes."""
    total = 0
    back = time.time() - 60
    for i in range(files - 1):
        path = root / f"pkg{i % 40:02d}" / f"module_{i:04d}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        data = os.urandom(kib * 512).hex().encode()  # ~kib KiB of text
        path.write_bytes(data)
        os.utime(path, (back, back))
        total += len(data)
    ignore = root / ".amlignore"
    ignore.write_text("__pycache__/\n*.log\n")
    os.utime(ignore, (back, back))
    return total + ignore.stat().st_size


def plain_hash(root: Path) -> float:
    start = time.perf_counter()
    for path in sorted(root.rglob("*")):
        if path.is_file():
            with path.open("rb") as handle:
                hashlib.file_digest(handle, "sha256")
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--kib", type=int, default=16)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        home = Path(scratch)
        azurite = start_azurite(Settings(home=home / "azurite"))
        try:
            clients = StorageClients.from_connection_string(azurite.connection_string)
            clients.ensure_layout()
            code = home / "code"
            total = make_tree(code, args.files, args.kib)
            settings = Settings(home=home, snapshot_max_files=max(2000, args.files))
            print(f"tree: {args.files} files, {total / 1024 / 1024:.1f} MiB")

            baseline = plain_hash(code)
            print(f"baseline  plain hashlib over every file          {baseline * 1000:8.0f} ms")

            with HashCache(home / "hashes.sqlite") as cache:
                start = time.perf_counter()
                first = build_snapshot(clients, code, settings=settings, cache=cache)
                cold = time.perf_counter() - start
                print(
                    f"first     hash + upload ({first.uploaded_files} files sent)       {cold * 1000:8.0f} ms"
                )
                start = time.perf_counter()
                second = build_snapshot(clients, code, settings=settings, cache=cache)
                warm = time.perf_counter() - start
                assert second.snapshot_id == first.snapshot_id
                assert second.uploaded_files == 0
                print(
                    f"second    unchanged, hash cache ({cache.hits} hits)      {warm * 1000:8.0f} ms"
                    f"   ({warm / baseline:.2f}x baseline)"
                )
            start = time.perf_counter()
            third = build_snapshot(clients, code, settings=settings, cache=HashCache(None))
            nocache = time.perf_counter() - start
            assert third.uploaded_files == 0
            print(
                f"second    unchanged, no hash cache              {nocache * 1000:8.0f} ms"
                f"   ({nocache / baseline:.2f}x baseline)"
            )
        finally:
            azurite.stop()


if __name__ == "__main__":
    main()
