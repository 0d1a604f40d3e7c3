"""Located issues: where in which file a spec node is, and the collector every phase reports into.

Loading a YAML file produces plain Python data plus a :class:`Source`: the file's name and, for every
JSON path in it, the 1-based line and column of the key and of the value. Every later phase refers to
a node by a :class:`Where` (source + path) and reports problems into one :class:`Issues` collector, so
a spec's errors are all reported at once, each pointing at the file it came from — a component file's
own line for an error inside a component.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field

from shared.errors import SpecError, SpecIssue

#: A JSON path inside one document: mapping keys and list indexes.
Path = tuple[str | int, ...]


def format_path(path: Path) -> str:
    """``jobs.score.inputs.x`` / ``partition_keys[1]``; keys that are not identifiers are quoted."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part.replace("_", "a").replace("-", "a").replace("$", "a").isalnum():
            text += f".{part}" if text else part
        else:
            text += f'["{part}"]'
    return text


@dataclass(frozen=True)
class Position:
    """A 1-based line and column in a source file, as editors count them."""

    line: int
    column: int


@dataclass
class Source:
    """One loaded document: its display name and the position of every key and value in it."""

    name: str
    keys: dict[Path, Position] = field(default_factory=dict)
    values: dict[Path, Position] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)

    def alias(self, old: Path, new: Path) -> None:
        """Give the nodes under ``new`` the positions of the nodes under ``old`` (a renamed key)."""
        for table in (self.keys, self.values):
            for path, position in list(table.items()):
                if path[: len(old)] == old:
                    table.setdefault((*new, *path[len(old) :]), position)

    def find(self, start: Position, needle: str) -> Position | None:
        """Where ``needle`` first occurs in the text at or after ``start`` (for tokens of folded strings)."""
        for index in range(max(start.line - 1, 0), len(self.lines)):
            line = self.lines[index]
            offset = line.find(needle, start.column - 1 if index == start.line - 1 else 0)
            if offset >= 0:
                return Position(index + 1, offset + 1)
        return None

    def position(self, path: Path, *, key: bool = False) -> Position:
        """The position of ``path`` (its key when ``key``), else of its nearest located ancestor."""
        probe = path
        while True:
            table = self.keys if key else self.values
            if probe in table:
                return table[probe]
            if probe in self.keys:
                return self.keys[probe]
            if probe in self.values:
                return self.values[probe]
            if not probe:
                return Position(1, 1)
            probe = probe[:-1]
            key = True  # an absent node is best pointed at by its parent's key


@dataclass(frozen=True)
class Where:
    """A node of a loaded document: the document and the path inside it."""

    source: Source
    path: Path = ()

    def __truediv__(self, part: str | int) -> Where:
        return Where(self.source, (*self.path, part))

    def child(self, *parts: str | int) -> Where:
        """The node ``parts`` below this one (``where / a / b`` in one call)."""
        return Where(self.source, (*self.path, *parts))

    @property
    def text(self) -> str:
        """The path as issues show it, e.g. ``jobs.score.inputs.x``."""
        return format_path(self.path)


def suggest(name: str, candidates: Iterable[str]) -> str:
    """``did you mean 'x'?`` for the closest candidate, or a list of the allowed names."""
    options = sorted(set(candidates))
    close = difflib.get_close_matches(name, options, n=1, cutoff=0.6)
    if close:
        return f"did you mean '{close[0]}'?"
    if not options:
        return "a declared name (there are none)"
    if len(options) > 12:
        return "one of " + ", ".join(options[:12]) + ", ..."
    return "one of " + ", ".join(options)


@dataclass
class Issues:
    """Collects errors and warnings; :meth:`raise_if_errors` raises one SpecError with all of them."""

    items: list[SpecIssue] = field(default_factory=list)

    def _add(
        self, where: Where, message: str, expected: str, *, severity: str, key: bool, at: Position | None
    ) -> None:
        position = at or where.source.position(where.path, key=key)
        issue = SpecIssue(
            file=where.source.name,
            line=position.line,
            column=position.column,
            path=where.text,
            message=message,
            expected=expected,
            severity=severity,
        )
        if issue not in self.items:
            self.items.append(issue)

    def error(
        self, where: Where, message: str, expected: str = "", *, key: bool = False, at: Position | None = None
    ) -> None:
        """Record an error at ``where`` (its value; its key when ``key``; ``at`` when given)."""
        self._add(where, message, expected, severity="error", key=key, at=at)

    def warn(
        self, where: Where, message: str, expected: str = "", *, key: bool = False, at: Position | None = None
    ) -> None:
        """Record a warning: the spec still compiles."""
        self._add(where, message, expected, severity="warning", key=key, at=at)

    @property
    def errors(self) -> list[SpecIssue]:
        """The issues that stop the spec from compiling."""
        return [i for i in self.items if i.severity == "error"]

    @property
    def warnings(self) -> list[SpecIssue]:
        """The issues reported but not fatal."""
        return [i for i in self.items if i.severity != "error"]

    def has_error_under(self, where: Where) -> bool:
        """True when an error was already recorded at ``where`` or below it."""
        prefix = where.text
        return any(
            i.severity == "error"
            and i.file == where.source.name
            and (not prefix or i.path == prefix or i.path.startswith((prefix + ".", prefix + "[")))
            for i in self.items
        )

    def raise_if_errors(self) -> None:
        """Raise :class:`SpecError` with every issue (errors sorted by file, line, column)."""
        if self.errors:
            raise SpecError(sorted(self.items, key=_order))


def _order(issue: SpecIssue) -> tuple[int, str, int, int]:
    return (0 if issue.severity == "error" else 1, issue.file, issue.line, issue.column)
