"""docs/acceptance.md stays true: every acceptance check has a row, and every test it cites exists.

The table cites pytest node ids; a renamed or moved test would leave a row pointing at nothing. This
reads the test files' syntax trees (no collection, no imports), so it costs milliseconds.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TABLE = ROOT / "docs" / "acceptance.md"
NODE_ID = re.compile(r"`(tests/[\w/]+\.py)::(\w+)(?:\[[^\]`]*\])?`")
ROW = re.compile(r"^\| (\d+) \|", re.MULTILINE)


def _test_functions(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test")
    }


def test_every_acceptance_check_has_a_row() -> None:
    rows = [int(number) for number in ROW.findall(TABLE.read_text(encoding="utf-8"))]
    assert rows == list(range(1, 26))


def test_every_cited_test_exists() -> None:
    cited = NODE_ID.findall(TABLE.read_text(encoding="utf-8"))
    assert len(cited) >= 25
    missing = []
    functions: dict[str, set[str]] = {}
    for file, name in cited:
        path = ROOT / file
        if not path.is_file():
            missing.append(f"{file} (no such file)")
            continue
        if name not in functions.setdefault(file, _test_functions(path)):
            missing.append(f"{file}::{name}")
    assert not missing, "docs/acceptance.md cites tests that do not exist: " + ", ".join(missing)
