"""Loading YAML (or JSON) text into plain data while keeping the line and column of every node.

ruamel.yaml's round-trip loader records positions (``.lc``) on every mapping and sequence; this module
converts its tree into plain ``dict`` / ``list`` / scalars (what the pydantic models validate) and a
:class:`~shared.spec.issues.Source` holding the 1-based position of every key and value by JSON path.

Anything the text can contain is turned into a located :class:`SpecIssue`, never another exception:
syntax errors, duplicate keys, non-string keys, recursive aliases, and alias bombs (a node budget).
"""

from __future__ import annotations

import datetime
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from shared.spec.issues import Issues, Path, Position, Source, Where

#: Largest spec text accepted (bytes of UTF-8); a pipeline spec is a few kilobytes.
MAX_TEXT_BYTES = 2 * 1024 * 1024
#: Most nodes a spec may expand to (aliases included); stops "billion laughs" documents.
MAX_NODES = 20_000
#: Deepest nesting accepted.
MAX_DEPTH = 64


class _TooLarge(Exception):
    """Internal: the document expands beyond the node budget."""


def load_text(text: str, name: str, issues: Issues) -> tuple[Any, Source]:
    """Parse ``text`` (YAML 1.2 or JSON) and return ``(data, source)``.

    On a problem the issue is recorded in ``issues`` and ``data`` is None.

    Args:
        text: the document.
        name: the name used in error locations (a file path or a blob name).
        issues: collector for located problems.
    """
    source = Source(name, lines=text.splitlines())
    where = Where(source)
    if len(text.encode("utf-8", errors="replace")) > MAX_TEXT_BYTES:
        issues.error(where, f"the spec is larger than {MAX_TEXT_BYTES // 1024} KiB", "a smaller file")
        return None, source
    yaml = YAML(typ="rt", pure=True)
    yaml.allow_duplicate_keys = False
    try:
        tree = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        problem = exc.problem or exc.context or "invalid YAML"
        context = exc.context_mark
        if exc.problem and exc.context and context is not None and context.line + 1 != line:
            problem += f" ({exc.context} at line {context.line + 1}, column {context.column + 1})"
        source.values[()] = Position(line, column)
        issues.error(where, f"invalid YAML: {_one_line(problem)}", "well-formed YAML or JSON")
        return None, source
    except (YAMLError, ValueError, TypeError, OverflowError, RecursionError) as exc:
        issues.error(where, f"invalid YAML: {_one_line(str(exc))}", "well-formed YAML or JSON")
        return None, source
    source.values[()] = Position(1, 1)
    converter = _Converter(source, issues)
    try:
        data = converter.convert(tree, (), 0, ())
    except _TooLarge:
        issues.error(where, f"the spec expands to more than {MAX_NODES} nodes (aliases?)", "a smaller spec")
        return None, source
    return data, source


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


class _Converter:
    """Turns a ruamel tree into plain data, recording positions into ``source``."""

    def __init__(self, source: Source, issues: Issues) -> None:
        self.source = source
        self.issues = issues
        self.nodes = 0

    def convert(self, node: Any, path: Path, depth: int, ancestors: tuple[int, ...]) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise _TooLarge
        if isinstance(node, CommentedMap | CommentedSeq | dict | list):
            if id(node) in ancestors:
                self.issues.error(Where(self.source, path), "a recursive alias", "a tree without cycles")
                return None
            if depth >= MAX_DEPTH:
                self.issues.error(
                    Where(self.source, path), f"nesting deeper than {MAX_DEPTH}", "a flatter document"
                )
                return None
            inner = (*ancestors, id(node))
            if isinstance(node, dict):
                return self._mapping(node, path, depth, inner)
            return self._sequence(node, path, depth, inner)
        value = _scalar(node)
        if isinstance(value, str) and not _encodable(value):
            # e.g. a lone surrogate from a JSON "\ud800" escape: no plan could store it.
            self.issues.error(
                Where(self.source, path), "the text contains an invalid character", "UTF-8 text"
            )
            return ""
        return value

    def _mapping(self, node: dict[Any, Any], path: Path, depth: int, ancestors: tuple[int, ...]) -> Any:
        result: dict[str, Any] = {}
        for key, value in node.items():
            key_pos, value_pos = _positions(node, key)
            if not isinstance(key, str) or not _encodable(key):
                if isinstance(key, str):
                    text = key.encode("utf-8", "replace").decode()
                    problem, expected = "contains an invalid character", "UTF-8 text"
                else:
                    text = str(_scalar(key)) if not isinstance(key, dict | list | tuple) else "<complex key>"
                    problem, expected = "is not a string", "string keys"
                where = Where(self.source, path)
                if key_pos is not None:
                    self.source.keys[(*path, text)] = key_pos
                    where = Where(self.source, (*path, text))
                self.issues.error(where, f"the key {text!r} {problem}", expected, key=True)
                continue
            child = (*path, key)
            if key_pos is not None:
                self.source.keys[child] = key_pos
            if value is None and key_pos is not None:
                self.source.values[child] = key_pos  # an empty value: point at its key
            elif value_pos is not None:
                self.source.values[child] = value_pos
            result[str(key)] = self.convert(value, child, depth + 1, ancestors)
        return result

    def _sequence(self, node: list[Any], path: Path, depth: int, ancestors: tuple[int, ...]) -> Any:
        result: list[Any] = []
        for index, item in enumerate(node):
            child = (*path, index)
            if isinstance(node, CommentedSeq):
                try:
                    line, column = node.lc.item(index)
                    self.source.values[child] = Position(line + 1, column + 1)
                except (KeyError, IndexError, TypeError, AttributeError):
                    pass
            result.append(self.convert(item, child, depth + 1, ancestors))
        return result


def _positions(node: dict[Any, Any], key: Any) -> tuple[Position | None, Position | None]:
    if not isinstance(node, CommentedMap):
        return None, None
    try:
        key_line, key_col = node.lc.key(key)
        key_pos = Position(key_line + 1, key_col + 1)
    except (KeyError, IndexError, TypeError, AttributeError):
        key_pos = None
    try:
        value_line, value_col = node.lc.value(key)
        value_pos: Position | None = Position(value_line + 1, value_col + 1)
    except (KeyError, IndexError, TypeError, AttributeError):
        value_pos = key_pos
    return key_pos, value_pos


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _scalar(value: Any) -> Any:
    """Plain Python scalars: bool, int, float, str, None (dates become ISO text)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        # ruamel's ScalarBoolean is an int subclass carrying a truth value.
        if type(value).__name__ == "ScalarBoolean":
            return bool(value)
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, datetime.date | datetime.datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)
