"""Which files of a code folder make up its snapshot: the ignore file, the walk, the limits.

Azure ML's rules (pipeline v1 docs, "Where to save and write files"):

- Only the ignore file at the **root** of the code folder is used: ``.amlignore`` if it exists, otherwise
  ``.gitignore``; if both exist, ``.gitignore`` is unused. Syntax is gitignore's (patterns compiled by
  ``pathspec``; the last matching pattern decides, as in git). A folder that is ignored is not entered,
  so a ``!pattern`` cannot re-include a file beneath it — as in git.
- Limits: 300 MB and 2,000 files after the ignore file, with Azure ML's messages; the settings
  ``FANOUT_SNAPSHOT_MAX_BYTES`` / ``FANOUT_SNAPSHOT_MAX_FILES`` raise them, as Azure ML allows. Unlike
  Azure ML (which counts only files changed since its cached snapshot), the file limit counts every file,
  so the same folder is accepted or rejected the same way on every machine.

Symbolic links in a code folder are followed when they point inside the folder (a link to a file stores
that file's bytes under the link's path); a link that points outside the folder, or to nothing, is an
error naming it, unless the ignore file leaves it out. Sockets, FIFOs and devices are skipped. Empty
folders are not part of a snapshot (as in git).
"""

from __future__ import annotations

import logging
import os
import stat
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import pathspec

from shared.errors import SnapshotError
from shared.snapshot.models import normalize_mode, normalize_relative_path

logger = logging.getLogger(__name__)

#: Ignore files, in order of precedence: the first that exists at the root is used, the others are not.
IGNORE_FILES = (".amlignore", ".gitignore")

_MB = 1024 * 1024


@dataclass(frozen=True)
class IgnoreRules:
    """The ignore file that applies to one code folder (or archive), if any."""

    file: str | None = None
    spec: pathspec.GitIgnoreSpec | None = None

    @classmethod
    def from_text(cls, file: str, text: str) -> IgnoreRules:
        """Rules from an ignore file's text (gitignore syntax); ``file`` is reported as the file used."""
        return cls(file=file, spec=pathspec.GitIgnoreSpec.from_lines(text.splitlines()))

    def ignores_dir(self, rel: str) -> bool:
        """True when the folder ``rel`` (relative POSIX path) is left out."""
        return self._decide(rel.rstrip("/"), is_dir=True)

    def ignores_file(self, rel: str) -> bool:
        """True when the file ``rel`` itself matches (its folders are checked by the walk)."""
        return self._decide(rel, is_dir=False)

    def _decide(self, rel: str, *, is_dir: bool) -> bool:
        """Git's rule: the last pattern that matches decides (``!`` re-includes).

        A folder is tested as ``rel/`` so folder-only patterns (``build/``) match it — except against
        ``x/**``, which in git matches what is *inside* ``x``, not ``x`` itself.
        """
        if self.spec is None:
            return False
        ignored = False
        for pattern in self.spec.patterns:
            if pattern.include is None:
                continue
            candidate = rel
            if is_dir and not str(pattern.pattern).rstrip().endswith("/**"):
                candidate = rel + "/"
            if pattern.match_file(candidate) is not None:
                ignored = bool(pattern.include)
        return ignored

    def ignores_path(self, rel: str) -> bool:
        """True when the file ``rel`` or any folder above it is left out (for flat listings: archives)."""
        parents = PurePosixPath(rel).parents
        return any(self.ignores_dir(str(p)) for p in reversed(parents) if str(p) != ".") or (
            self.ignores_file(rel)
        )


def select_ignore_file(names: Iterable[str]) -> str | None:
    """Which ignore file applies, given the names present at the root (``.amlignore`` wins)."""
    present = set(names)
    return next((name for name in IGNORE_FILES if name in present), None)


def load_ignore_rules(root: Path) -> IgnoreRules:
    """The ignore rules of a local code folder."""
    chosen = select_ignore_file(name for name in IGNORE_FILES if (root / name).is_file())
    if chosen is None:
        return IgnoreRules()
    return IgnoreRules.from_text(chosen, (root / chosen).read_text(encoding="utf-8", errors="replace"))


@dataclass(frozen=True)
class LocalFile:
    """One file found in a code or data folder."""

    path: str
    source: Path
    size: int
    mode: int
    stat: os.stat_result = field(repr=False, compare=False)


@dataclass(frozen=True)
class FolderScan:
    """The files of a folder that a snapshot (or a data upload) consists of."""

    root: Path
    files: list[LocalFile]
    ignore_file: str | None = None
    ignored_count: int = 0

    @property
    def total_bytes(self) -> int:
        """The size of the scanned files, summed."""
        return sum(f.size for f in self.files)


def scan_folder(root: Path, *, use_ignore_file: bool = True, confine_links: bool = True) -> FolderScan:
    """Every file under ``root`` that belongs to its snapshot, sorted by relative path.

    Args:
        root: the code (or data) folder.
        use_ignore_file: apply ``.amlignore``/``.gitignore`` (code folders); data folders don't.
        confine_links: reject symbolic links that point outside ``root`` (code folders).

    Raises:
        SnapshotError: ``root`` is not a folder, or a link is dangling or escapes it.
    """
    if not root.is_dir():
        raise SnapshotError(f"the folder {root} does not exist or is not a folder", path=str(root))
    rules = load_ignore_rules(root) if use_ignore_file else IgnoreRules()
    walker = _Walker(root.resolve(), rules, confine_links)
    walker.walk(root, "")
    files = sorted(walker.files, key=lambda f: f.path.encode())
    return FolderScan(root=root, files=files, ignore_file=rules.file, ignored_count=walker.ignored)


class _Walker:
    def __init__(self, real_root: Path, rules: IgnoreRules, confine_links: bool) -> None:
        self.real_root = real_root
        self.rules = rules
        self.confine_links = confine_links
        self.files: list[LocalFile] = []
        self.ignored = 0

    def walk(self, folder: Path, prefix: str, ancestors: frozenset[Path] = frozenset()) -> None:
        ancestors = ancestors | {folder.resolve()}
        try:
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=lambda e: e.name)
        except OSError as exc:
            where = prefix.rstrip("/") or str(folder)
            raise SnapshotError(
                f"cannot read the folder {where}: {exc.strerror or exc}", path=str(folder)
            ) from exc
        for entry in entries:
            rel = normalize_relative_path(prefix + entry.name)
            link = entry.is_symlink()
            target = Path(entry.path).resolve() if link else None
            is_dir = target.is_dir() if target is not None else entry.is_dir(follow_symlinks=False)
            if self.rules.ignores_dir(rel) if is_dir else self.rules.ignores_file(rel):
                self.ignored += 1
                continue
            if target is not None:
                self._check_link(Path(entry.path), rel, target)
            if is_dir:
                if target is not None and target in ancestors:  # a link to a folder above: a loop
                    logger.debug("not following %s: it links back to a folder above it", rel)
                    continue
                self.walk(Path(entry.path), rel + "/", ancestors)
                continue
            try:
                st = os.stat(entry.path)
            except FileNotFoundError:  # removed while we walked
                continue
            if not stat.S_ISREG(st.st_mode):
                logger.warning("skipping %s: not a regular file", rel)
                continue
            self.files.append(LocalFile(rel, Path(entry.path), st.st_size, normalize_mode(st.st_mode), st))

    def _check_link(self, link: Path, rel: str, target: Path) -> None:
        if not target.exists():
            raise SnapshotError(
                f"{rel} is a symbolic link to {os.readlink(link)}, which does not exist; remove it or "
                "list it in the ignore file",
                path=str(link),
            )
        if self.confine_links and not target.is_relative_to(self.real_root):
            raise SnapshotError(
                f"{rel} is a symbolic link to {target}, outside the code folder {self.real_root}; "
                "copy what it points to into the folder, or list the link in the ignore file",
                path=str(link),
            )


# --- limits -------------------------------------------------------------------------------------------


def check_limits(
    source: str,
    files: Sequence[tuple[str, int]],
    *,
    max_bytes: int,
    max_files: int,
) -> None:
    """Reject a snapshot over the size or file-count limit, with Azure ML's messages and remedies.

    Args:
        source: the folder or archive, as the message names it ("While attempting to take snapshot of ...").
        files: (relative path, size) of every file after the ignore file.
        max_bytes: ``settings.snapshot_max_bytes`` (300 MB by default).
        max_files: ``settings.snapshot_max_files`` (2,000 by default).

    Raises:
        SnapshotError: with ``limit`` ("size" and/or "files"), the totals and the largest offenders.
    """
    total = sum(size for _, size in files)
    too_big = total > max_bytes
    too_many = len(files) > max_files
    if not (too_big or too_many):
        return
    lines = [f"While attempting to take snapshot of {source}"]
    if too_big:
        lines.append(f"Your total snapshot size exceeds the limit of {max_bytes / _MB:.1f} MB.")
    if too_many:
        lines.append(f"Your project exceeds the file limit of {max_files}.")
    lines.append(
        f"The snapshot (after the ignore file) has {len(files)} files, {total / _MB:.1f} MB in total."
    )
    if too_big:
        largest = sorted(files, key=lambda f: f[1], reverse=True)[:5]
        lines.append("Largest files: " + ", ".join(f"{p} ({s / _MB:.1f} MB)" for p, s in largest) + ".")
    if too_many:
        folders = Counter(p.split("/", 1)[0] + "/" if "/" in p else "." for p, _ in files).most_common(5)
        lines.append("Most files are in: " + ", ".join(f"{d} ({n} files)" for d, n in folders) + ".")
    lines.extend(_remedies(too_big=too_big, too_many=too_many, max_files=max_files))
    raise SnapshotError(
        "\n".join(lines),
        source=source,
        limit=[name for name, hit in (("size", too_big), ("files", too_many)) if hit],
        total_bytes=total,
        file_count=len(files),
        max_bytes=max_bytes,
        max_files=max_files,
    )


def _remedies(*, too_big: bool, too_many: bool, max_files: int) -> list[str]:
    lines = [
        "To resolve this, store the experiment's data files in a datastore and pass them to the job as "
        "inputs (type uri_file, uri_folder or mltable) instead of keeping them in the code folder. "
        "If you can't use a datastore:"
    ]
    if too_big:
        lines.append(
            f"  - Less than {max_files} files and no datastore: raise the size limit with "
            "FANOUT_SNAPSHOT_MAX_BYTES=<bytes>. This might take several minutes depending on the number "
            "and size of files."
        )
    if too_many:
        lines.append(
            "  - Many small files and no datastore: raise the limit with FANOUT_SNAPSHOT_MAX_FILES=<n>."
        )
    lines += [
        "  - Must use this script directory: make an ignore file (.amlignore or .gitignore) at the root of "
        "the code folder and add the files and folders to exclude (gitignore syntax). If both files "
        "exist, .amlignore is used and .gitignore is not.",
        "  - Pipeline: use a different subdirectory for each step.",
        "  - Jupyter notebooks: create a .amlignore file, or move the notebook into a new, empty "
        "subdirectory, and run again.",
    ]
    return lines
