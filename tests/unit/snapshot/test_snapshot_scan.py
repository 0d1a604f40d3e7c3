"""Ignore files, the folder walk, limits and the content id of a code folder (no storage)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from shared.errors import SnapshotError
from shared.snapshot import check_limits, scan_folder, snapshot_id_of_folder, tree_id
from shared.snapshot.models import SnapshotFile, normalize_mode


def write(root: Path, files: dict[str, str | bytes]) -> Path:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return root


def paths(root: Path) -> list[str]:
    return [f.path for f in scan_folder(root).files]


# --- ignore files ---------------------------------------------------------------------------------------


def test_amlignore_wins_over_gitignore(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            ".amlignore": "*.log\n",
            ".gitignore": "*.py\n",
            "score.py": "print()",
            "debug.log": "x",
        },
    )
    scan = scan_folder(tmp_path)
    assert scan.ignore_file == ".amlignore"
    assert [f.path for f in scan.files] == [".amlignore", ".gitignore", "score.py"]
    assert scan.ignored_count == 1


def test_gitignore_applies_when_there_is_no_amlignore(tmp_path: Path) -> None:
    write(tmp_path, {".gitignore": "*.log\n", "score.py": "", "debug.log": ""})
    scan = scan_folder(tmp_path)
    assert scan.ignore_file == ".gitignore"
    assert [f.path for f in scan.files] == [".gitignore", "score.py"]


def test_no_ignore_file_keeps_everything(tmp_path: Path) -> None:
    write(tmp_path, {"a.py": "", "outputs/x.txt": "", ".git/HEAD": ""})
    scan = scan_folder(tmp_path)
    assert scan.ignore_file is None
    assert [f.path for f in scan.files] == [".git/HEAD", "a.py", "outputs/x.txt"]


def test_gitignore_syntax_folders_anchors_and_negation(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            ".amlignore": "outputs/\n/root_only.txt\n*.tmp\n!keep.tmp\ndata/**\n!data/readme.md\n",
            "outputs/result.csv": "",
            "sub/outputs/result.csv": "",
            "root_only.txt": "",
            "sub/root_only.txt": "",
            "x.tmp": "",
            "keep.tmp": "",
            "data/big.bin": "",
            "data/readme.md": "",
            "main.py": "",
        },
    )
    assert paths(tmp_path) == [
        ".amlignore",
        "data/readme.md",
        "keep.tmp",
        "main.py",
        "sub/root_only.txt",
    ]


def test_a_file_inside_an_ignored_folder_cannot_be_re_included(tmp_path: Path) -> None:
    write(tmp_path, {".amlignore": "cache/\n!cache/keep.py\n", "cache/keep.py": "", "main.py": ""})
    assert paths(tmp_path) == [".amlignore", "main.py"]


def test_ignored_folders_are_not_entered(tmp_path: Path) -> None:
    write(tmp_path, {".amlignore": "venv/\n", "main.py": "", "venv/lib/x.py": ""})
    (tmp_path / "venv" / "escape").symlink_to("/")  # entering venv/ would reject this link
    scan = scan_folder(tmp_path)
    assert [f.path for f in scan.files] == [".amlignore", "main.py"]
    assert scan.ignored_count == 1


def test_missing_code_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(SnapshotError, match="does-not-exist does not exist"):
        scan_folder(tmp_path / "does-not-exist")


# --- links ----------------------------------------------------------------------------------------------


def test_links_inside_the_folder_store_the_target_bytes(tmp_path: Path) -> None:
    write(tmp_path, {"lib/util.py": "X = 1", "main.py": ""})
    (tmp_path / "util_link.py").symlink_to("lib/util.py")
    (tmp_path / "lib_link").symlink_to("lib")
    (tmp_path / "lib" / "loop").symlink_to("..")
    scan = scan_folder(tmp_path)
    assert [f.path for f in scan.files] == ["lib/util.py", "lib_link/util.py", "main.py", "util_link.py"]


def test_a_link_escaping_the_folder_is_rejected_and_named(tmp_path: Path) -> None:
    code = write(tmp_path / "code", {"main.py": ""})
    (tmp_path / "secret.txt").write_text("s")
    (code / "leak.txt").symlink_to(tmp_path / "secret.txt")
    with pytest.raises(SnapshotError, match=r"leak\.txt is a symbolic link to .*outside the code folder"):
        scan_folder(code)


def test_a_dangling_link_is_rejected_unless_ignored(tmp_path: Path) -> None:
    write(tmp_path, {"main.py": ""})
    (tmp_path / "gone.py").symlink_to("nowhere.py")
    with pytest.raises(
        SnapshotError, match=r"gone\.py is a symbolic link to nowhere\.py, which does not exist"
    ):
        scan_folder(tmp_path)
    (tmp_path / ".amlignore").write_text("gone.py\n")
    assert paths(tmp_path) == [".amlignore", "main.py"]


# --- limits ---------------------------------------------------------------------------------------------


def test_size_limit_has_azure_ml_message_and_remedies() -> None:
    with pytest.raises(SnapshotError) as caught:
        check_limits(
            "./src",
            [("big.bin", 300 * 1024 * 1024 + 1), ("a.py", 10)],
            max_bytes=300 * 1024 * 1024,
            max_files=2000,
        )
    message = caught.value.message
    assert message.startswith(
        "While attempting to take snapshot of ./src\nYour total snapshot size exceeds the limit of 300.0 MB."
    )
    assert "Largest files: big.bin (300.0 MB), a.py (0.0 MB)." in message
    assert "FANOUT_SNAPSHOT_MAX_BYTES" in message
    assert "If both files exist, .amlignore is used and .gitignore is not." in message
    assert "use a different subdirectory for each step" in message
    assert "Your project exceeds the file limit" not in message
    assert caught.value.context["limit"] == ["size"]


def test_file_count_limit_has_azure_ml_message() -> None:
    files = [(f"node_modules/m{i}.js", 1) for i in range(2001)]
    with pytest.raises(SnapshotError) as caught:
        check_limits("/w/code", files, max_bytes=300 * 1024 * 1024, max_files=2000)
    message = caught.value.message
    assert message.startswith(
        "While attempting to take snapshot of /w/code\nYour project exceeds the file limit of 2000."
    )
    assert "Most files are in: node_modules/ (2001 files)." in message
    assert "FANOUT_SNAPSHOT_MAX_FILES" in message
    assert caught.value.context["limit"] == ["files"]


def test_limits_are_inclusive_and_settings_raise_them() -> None:
    check_limits("x", [("a", 100)] * 2000, max_bytes=200_000, max_files=2000)
    with pytest.raises(SnapshotError, match=r"exceeds the limit of 0\.1 MB"):
        check_limits("x", [("a", 100_001)], max_bytes=100_000, max_files=2000)
    check_limits("x", [("a", 100_001)], max_bytes=200_000, max_files=2000)


# --- content id -----------------------------------------------------------------------------------------


def test_id_ignores_timestamps_and_creation_order(tmp_path: Path) -> None:
    first = write(tmp_path / "a", {"x.py": "1", "sub/y.py": "2", "z.txt": "3"})
    second = write(tmp_path / "b", {"z.txt": "3", "sub/y.py": "2", "x.py": "1"})
    os.utime(second / "x.py", (1_000_000, 1_000_000))
    assert snapshot_id_of_folder(first) == snapshot_id_of_folder(second)


def test_id_changes_with_bytes_paths_and_modes(tmp_path: Path) -> None:
    root = write(tmp_path, {"x.py": "1", "run.sh": "echo"})
    base = snapshot_id_of_folder(root)
    (root / "x.py").write_text("2")
    changed_bytes = snapshot_id_of_folder(root)
    (root / "x.py").rename(root / "y.py")
    renamed = snapshot_id_of_folder(root)
    (root / "run.sh").chmod(0o755)
    executable = snapshot_id_of_folder(root)
    assert len({base, changed_bytes, renamed, executable}) == 4
    (root / "run.sh").chmod(0o700)  # only "executable or not" counts, like git
    assert snapshot_id_of_folder(root) == executable


def test_tree_id_is_order_independent_and_quotes_paths() -> None:
    a = SnapshotFile(path="a", size=1, mode=0o644, sha256="0" * 64)
    b = SnapshotFile(path="b", size=1, mode=0o644, sha256="1" * 64)
    assert tree_id([a, b]) == tree_id([b, a])
    forged = SnapshotFile(path='a"\n000644 ' + "1" * 64 + ' "b', size=1, mode=0o644, sha256="0" * 64)
    assert tree_id([forged]) != tree_id([a, b])
    assert tree_id([a]).startswith("sha256-")
    assert len(tree_id([a])) == 7 + 64


def test_modes_normalise_to_executable_or_not() -> None:
    assert normalize_mode(0o100600) == 0o644
    assert normalize_mode(0o100664) == 0o644
    assert normalize_mode(0o100744) == 0o755
    assert normalize_mode(0o100701) == 0o755


def test_unreadable_folders_and_files_are_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.snapshot import store

    write(tmp_path, {"main.py": "", "private/key.py": "", "secret.py": "s"})
    real_scandir = os.scandir

    def scandir(path: Path) -> object:
        if Path(path).name == "private":
            raise PermissionError(13, "Permission denied")
        return real_scandir(path)

    with monkeypatch.context() as patch:
        patch.setattr(os, "scandir", scandir)
        with pytest.raises(SnapshotError, match="cannot read the folder private: Permission denied"):
            scan_folder(tmp_path)

    def unreadable(path: Path) -> str:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(store, "sha256_file", unreadable)
    with pytest.raises(SnapshotError, match=r"cannot read key\.py|cannot read main\.py"):
        store.hash_folder(tmp_path)
