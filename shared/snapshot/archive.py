"""Zipped code: the safety checks and ingestion of an archive (posted to the HTTP API, or dropped).

An archive becomes a snapshot exactly like a folder does (ignore file at the archive's root, the same
limits, the same content hash), after these safety checks on every entry — all problems are reported at
once, and nothing is stored unless the archive passes:

- the archive is a readable zip, not encrypted, no larger than a snapshot can be;
- names are valid UTF-8 without control characters, relative, without ``..`` (no ``/etc/x``, ``C:\\x``
  or ``../../x``), and unique after normalisation (``a/./b`` and ``a/b`` are duplicates); no name is
  both a file and a folder;
- symbolic-link entries point to a file inside the archive (the link stores that file's bytes); links
  that escape the root, point to a folder or to nothing are rejected; other special files are rejected;
- zip bombs: the declared total after the ignore file is held to the snapshot size limit, an entry (or
  the whole archive) may not expand more than :data:`MAX_COMPRESSION_RATIO` times, and decompression
  stops as soon as an entry yields more bytes than its header declared.

Dropped archives (``snapshots/incoming/``) are handled by ``drops.py`` on top of this module.
"""

from __future__ import annotations

import hashlib
import io
import logging
import posixpath
import re
import stat
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO

from shared.errors import SnapshotError
from shared.settings import Settings, get_settings
from shared.snapshot.models import (
    SnapshotFile,
    SnapshotRecord,
    normalize_mode,
    normalize_relative_path,
)
from shared.snapshot.scan import IGNORE_FILES, IgnoreRules, check_limits, select_ignore_file
from shared.snapshot.store import (
    PendingFile,
    store_snapshot,
)
from shared.storage import StorageClients

logger = logging.getLogger(__name__)

#: Largest expansion (uncompressed / compressed) accepted for an entry of 1 MiB or more, and for the
#: archive as a whole. Source code compresses 3–10×; 100× is what zip bombs are made of.
MAX_COMPRESSION_RATIO = 100
_RATIO_MIN_BYTES = 1024 * 1024
_MAX_LINK_BYTES = 4096
_MAX_LINK_HOPS = 40
_MAX_IGNORE_FILE_BYTES = 1024 * 1024
_MAX_REPORTED_PROBLEMS = 20
_CHUNK = 1024 * 1024
_UTF8_FLAG = 0x800
_ENCRYPTED_FLAG = 0x1
_UNIX = 3
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DRIVE = re.compile(r"^[A-Za-z]:")


def max_archive_bytes(settings: Settings) -> int:
    """The largest archive accepted: the snapshot size limit plus room for zip overhead."""
    return settings.snapshot_max_bytes + max(settings.snapshot_max_bytes // 10, 1024 * 1024)


@dataclass(frozen=True)
class _Entry:
    info: zipfile.ZipInfo
    path: str
    mode: int


def ingest_snapshot_archive(
    clients: StorageClients, data: bytes, name: str, *, settings: Settings | None = None
) -> SnapshotRecord:
    """Check a zip of code and store it as a snapshot (the HTTP API's multipart upload; the blob drop).

    Args:
        clients: storage.
        data: the zip's bytes.
        name: what to call the archive in messages (file or blob name).
        settings: for the limits; default: the process's settings.

    Raises:
        SnapshotError: the archive is unsafe, unreadable or over a limit; ``problems`` lists every issue.
    """
    settings = settings or get_settings()
    bound = max_archive_bytes(settings)
    if len(data) > bound:
        raise SnapshotError(
            f"archive {name} is {len(data)} bytes; no snapshot can be larger than {bound} bytes compressed "
            f"(snapshot limit {settings.snapshot_max_bytes} bytes)",
            source=name,
        )
    zf = _open_zip(data, name)
    with zf:
        entries, links = _inspect(zf, name, len(data))
        rules = _ignore_rules(zf, entries)
        kept = {p: e for p, e in entries.items() if not rules.ignores_path(p)}
        kept_links = {p: t for p, t in links.items() if not rules.ignores_path(p)}
        ignored = len(entries) + len(links) - len(kept) - len(kept_links)
        sizes = [(p, e.info.file_size) for p, e in kept.items()]
        sizes += [(p, entries[t].info.file_size) for p, t in kept_links.items()]
        check_limits(
            name, sizes, max_bytes=settings.snapshot_max_bytes, max_files=settings.snapshot_max_files
        )
        hashed = _hash_entries(zf, name, {**kept, **{t: entries[t] for t in kept_links.values()}})
        pending = [PendingFile(hashed[p], _entry_opener(zf, e.info)) for p, e in kept.items()]
        for path, target in kept_links.items():
            source = hashed[target]
            file = SnapshotFile(path=path, size=source.size, mode=source.mode, sha256=source.sha256)
            pending.append(PendingFile(file, _entry_opener(zf, entries[target].info)))
        snapshot_id, uploaded, sent, stored = store_snapshot(clients, pending)
    logger.info("archive %s ingested as snapshot %s (%d files)", name, snapshot_id, len(pending))
    return SnapshotRecord(
        snapshot_id=snapshot_id,
        source=name,
        file_count=len(pending),
        total_bytes=sum(p.file.size for p in pending),
        ignore_file=rules.file,
        ignored_count=ignored,
        uploaded_files=uploaded,
        uploaded_bytes=sent,
        already_stored=stored,
    )


# --- inspection ---------------------------------------------------------------------------------------


def _open_zip(data: bytes, name: str) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(io.BytesIO(data))
    except UnicodeDecodeError as exc:
        raw = exc.object if isinstance(exc.object, bytes) else b""
        raise SnapshotError(
            f"archive {name} is rejected: entry name {raw!r} is not valid UTF-8",
            source=name,
            problems=[f"entry name {raw!r} is not valid UTF-8"],
        ) from exc
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError) as exc:
        raise SnapshotError(f"{name} is not a readable zip archive: {exc}", source=name) from exc


def _inspect(zf: zipfile.ZipFile, name: str, archive_bytes: int) -> tuple[dict[str, _Entry], dict[str, str]]:
    """Every regular file and every link target, keyed by normalised path; raises with all problems."""
    problems: list[str] = []
    files: dict[str, _Entry] = {}
    link_entries: dict[str, _Entry] = {}
    folders: set[str] = set()
    seen: dict[str, int] = {}
    declared = 0
    for index, info in enumerate(zf.infolist(), start=1):
        label = f"entry #{index}"
        raw_name = _entry_name(info, label, problems)
        if raw_name is None:
            continue
        label = f"entry #{index} {raw_name!r}"
        path = _safe_path(raw_name, label, problems)
        if path is None:
            continue
        mode = (info.external_attr >> 16) if info.create_system == _UNIX else 0
        kind = stat.S_IFMT(mode)
        if raw_name.endswith("/") or info.is_dir() or kind == stat.S_IFDIR:
            folders.add(path)
            continue
        if path in seen:
            problems.append(f"{label}: duplicate entry, same path as entry #{seen[path]} ({path})")
            continue
        seen[path] = index
        if info.flag_bits & _ENCRYPTED_FLAG:
            problems.append(f"{label}: encrypted entries are not supported")
            continue
        if kind not in (0, stat.S_IFREG, stat.S_IFLNK):
            problems.append(f"{label}: special file (mode {mode:o}) is not allowed")
            continue
        if info.file_size >= _RATIO_MIN_BYTES and info.file_size > MAX_COMPRESSION_RATIO * max(
            info.compress_size, 1
        ):
            problems.append(
                f"{label}: expands {info.file_size // max(info.compress_size, 1)}× "
                f"({info.compress_size} → {info.file_size} bytes), more than the {MAX_COMPRESSION_RATIO}× "
                "allowed (zip bomb?)"
            )
            continue
        declared += info.file_size
        entry = _Entry(info, path, normalize_mode(mode))
        (link_entries if kind == stat.S_IFLNK else files)[path] = entry
    if declared >= _RATIO_MIN_BYTES and declared > MAX_COMPRESSION_RATIO * max(archive_bytes, 1):
        problems.append(
            f"the archive expands {declared // max(archive_bytes, 1)}× ({archive_bytes} → {declared} bytes), "
            f"more than the {MAX_COMPRESSION_RATIO}× allowed (zip bomb?)"
        )
    for path in sorted(files.keys() | link_entries.keys()):
        parents = [str(p) for p in _parents(path)]
        clash = next((p for p in parents if p in files or p in link_entries), None)
        if clash is not None:
            problems.append(f"{path!r} is inside {clash!r}, which is a file in the archive")
        folders.update(parents)
    links = _resolve_links(zf, link_entries, files, folders, problems)
    if problems:
        shown = problems[:_MAX_REPORTED_PROBLEMS]
        more = len(problems) - len(shown)
        text = "\n".join(f"  - {p}" for p in shown) + (f"\n  - ... and {more} more" if more else "")
        raise SnapshotError(f"archive {name} is rejected:\n{text}", source=name, problems=problems)
    return files, links


def _entry_name(info: zipfile.ZipInfo, label: str, problems: list[str]) -> str | None:
    """The entry's name as UTF-8 text (zip names without the UTF-8 flag are raw bytes; they must be UTF-8)."""
    if info.flag_bits & _UTF8_FLAG:
        text = info.orig_filename
    else:
        raw = info.orig_filename.encode("cp437")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            problems.append(f"{label}: name {raw!r} is not valid UTF-8")
            return None
    if _CONTROL.search(text):
        problems.append(f"{label}: name {text!r} contains control characters")
        return None
    return text


def _safe_path(raw_name: str, label: str, problems: list[str]) -> str | None:
    name = normalize_relative_path(raw_name)
    if name.startswith("/") or _DRIVE.match(name):
        problems.append(f"{label}: absolute path is not allowed")
        return None
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        problems.append(f"{label}: path goes outside the archive root ('..')")
        return None
    if not parts:
        return None
    return "/".join(parts)


def _parents(path: str) -> list[str]:
    parts = path.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]


def _resolve_links(
    zf: zipfile.ZipFile,
    link_entries: dict[str, _Entry],
    files: dict[str, _Entry],
    folders: set[str],
    problems: list[str],
) -> dict[str, str]:
    """Link path -> path of the regular file it (finally) points to; problems for every bad link."""
    targets: dict[str, str] = {}
    for path, entry in link_entries.items():
        if entry.info.file_size > _MAX_LINK_BYTES:
            problems.append(f"symlink {path!r}: target is longer than {_MAX_LINK_BYTES} bytes")
            continue
        try:
            text = zf.read(entry.info).decode("utf-8")
        except (UnicodeDecodeError, zipfile.BadZipFile, NotImplementedError, OSError) as exc:
            problems.append(f"symlink {path!r}: unreadable target ({exc})")
            continue
        target = text.replace("\\", "/")
        joined = posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
        if target.startswith("/") or _DRIVE.match(target) or joined == ".." or joined.startswith("../"):
            problems.append(f"symlink {path!r} -> {text!r} points outside the archive root")
            continue
        targets[path] = joined
    resolved: dict[str, str] = {}
    for path, first in targets.items():
        current, hops = first, 0
        while current in targets and hops < _MAX_LINK_HOPS:
            current, hops = targets[current], hops + 1
        if current in files:
            resolved[path] = current
        elif current in folders:
            problems.append(
                f"symlink {path!r} -> {first!r} points to a folder; only links to files are supported"
            )
        elif current in targets or current in link_entries:
            problems.append(f"symlink {path!r} is part of a loop of links")
        else:
            problems.append(f"symlink {path!r} -> {first!r} points to nothing in the archive")
    return resolved


def _ignore_rules(zf: zipfile.ZipFile, entries: dict[str, _Entry]) -> IgnoreRules:
    chosen = select_ignore_file(name for name in IGNORE_FILES if name in entries)
    if chosen is None:
        return IgnoreRules()
    info = entries[chosen].info
    if info.file_size > _MAX_IGNORE_FILE_BYTES:
        raise SnapshotError(f"{chosen} in the archive is larger than {_MAX_IGNORE_FILE_BYTES} bytes")
    try:
        text = zf.read(info).decode("utf-8", errors="replace")
    except (zipfile.BadZipFile, NotImplementedError, OSError, EOFError) as exc:
        raise SnapshotError(f"{chosen} in the archive is corrupt or unsupported: {exc}") from exc
    return IgnoreRules.from_text(chosen, text)


def _hash_entries(zf: zipfile.ZipFile, name: str, entries: dict[str, _Entry]) -> dict[str, SnapshotFile]:
    """Decompress each entry once to hash it, never trusting the declared size."""
    hashed: dict[str, SnapshotFile] = {}
    for path, entry in entries.items():
        digest = hashlib.sha256()
        size = 0
        try:
            with zf.open(entry.info) as handle:
                while chunk := handle.read(_CHUNK):
                    size += len(chunk)
                    if size > entry.info.file_size:
                        raise SnapshotError(
                            f"archive {name} is rejected: entry {path!r} decompresses to more than its "
                            f"declared {entry.info.file_size} bytes (zip bomb?)",
                            source=name,
                            problems=[f"{path!r} is larger than declared"],
                        )
                    digest.update(chunk)
        except (zipfile.BadZipFile, NotImplementedError, OSError, EOFError) as exc:
            raise SnapshotError(
                f"archive {name} is rejected: entry {path!r} is corrupt or unsupported: {exc}",
                source=name,
                problems=[f"{path!r}: {exc}"],
            ) from exc
        hashed[path] = SnapshotFile(path=path, size=size, mode=entry.mode, sha256=digest.hexdigest())
    return hashed


def _entry_opener(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> Callable[[], IO[bytes]]:
    return lambda: zf.open(info)
