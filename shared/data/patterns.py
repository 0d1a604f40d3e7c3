"""Path patterns: MLTable globs and partition formats, compiled to regular expressions.

Globs (``pattern:`` paths) follow the MLTable rules: ``*`` and ``?`` stay inside one folder level,
``[abc]``/``[a-z]``/``[!a]`` are character classes, and a ``**`` segment matches any number of folder
levels, including none (``./**/*.csv`` matches ``a.csv`` and ``x/y/a.csv``).

Partition formats (``extract_columns_from_partition_format``) name path fields: ``{Store}/{Brand}/
{file_name}.{extension}``; ``{col:yyyy/MM/dd}`` makes a datetime column from ``yyyy``, ``MM``, ``dd``,
``HH``, ``mm`` and ``ss``; ``*`` matches anything inside a folder level. A format is matched against
the *end* of a file's path (whole folder levels), so it works both relative to the MLTable folder
and relative to any folder above the fields.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from shared.errors import MLTableError

_WILDCARD = re.compile(r"[*?\[]")
_FIELD = re.compile(r"\{([^{}:]+)(?::([^{}]+))?\}")
_DATE_TOKENS = {"yyyy": (r"\d{4}", "%Y"), "MM": (r"\d{2}", "%m"), "dd": (r"\d{2}", "%d"),
                "HH": (r"\d{2}", "%H"), "mm": (r"\d{2}", "%M"), "ss": (r"\d{2}", "%S")}  # fmt: skip
_DATE_TOKEN = re.compile("|".join(_DATE_TOKENS))


def glob_prefix(pattern: str) -> str:
    """The folder part of ``pattern`` before its first wildcard (where listing can start)."""
    segments = pattern.split("/")
    literal: list[str] = []
    for segment in segments[:-1]:
        if _WILDCARD.search(segment):
            break
        literal.append(segment)
    return "/".join(literal)


def has_wildcard(pattern: str) -> bool:
    """Whether ``pattern`` selects by glob (``*``, ``?``, ``[...]``) rather than naming one path."""
    return bool(_WILDCARD.search(pattern))


def compile_glob(pattern: str) -> re.Pattern[str]:
    """A regex that fully matches the paths ``pattern`` selects (paths use ``/``)."""
    parts: list[str] = []
    segments = pattern.split("/")
    for position, segment in enumerate(segments):
        last = position == len(segments) - 1
        if segment == "**":
            parts.append(".*" if last else "(?:[^/]+/)*")
            continue
        parts.append(_segment_regex(segment) + ("" if last else "/"))
    return re.compile("".join(parts))


def _segment_regex(segment: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(segment):
        char = segment[i]
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            end = segment.find("]", i + 2 if segment[i + 1 : i + 2] in {"!", "^", "]"} else i + 1)
            if end == -1:
                out.append(re.escape(char))
            else:
                body = segment[i + 1 : end]
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append(f"[{body.replace(chr(92), chr(92) * 2)}]")
                i = end
        else:
            out.append(re.escape(char))
        i += 1
    return "".join(out)


@dataclass(frozen=True)
class PartitionFormat:
    """A compiled partition format: which columns it yields and how to read them from a path."""

    text: str
    columns: tuple[str, ...]
    regex: re.Pattern[str]
    date_formats: dict[str, str]  # column -> strptime format, for {col:yyyy/MM/dd} fields

    def extract(self, path: str) -> dict[str, str | datetime] | None:
        """The field values of ``path``, or None when the path does not fit the format."""
        match = self.regex.search(path)
        if match is None:
            return None
        values: dict[str, str | datetime] = {}
        for position, column in enumerate(self.columns):
            raw = match.group(f"f{position}")
            date_format = self.date_formats.get(column)
            values[column] = datetime.strptime(raw, date_format) if date_format else raw
        return values


def compile_partition_format(text: str) -> PartitionFormat:
    """Compile a partition format.

    Raises:
        MLTableError: no ``{field}`` in it, a field named twice, or an unknown date token.
    """
    pattern = text.strip().lstrip("/")
    if pattern.startswith("./"):
        pattern = pattern[2:]
    columns: list[str] = []
    date_formats: dict[str, str] = {}
    regex: list[str] = ["(?:^|/)"]
    cursor = 0
    for match in _FIELD.finditer(pattern):
        regex.append(_literal(pattern[cursor : match.start()]))
        name, date_spec = match.group(1).strip(), match.group(2)
        if name in columns:
            raise MLTableError(f"partition format {text!r} names {name!r} twice")
        group = f"f{len(columns)}"
        columns.append(name)
        if date_spec:
            body, strptime = _date_regex(date_spec, text)
            date_formats[name] = strptime
            regex.append(f"(?P<{group}>{body})")
        else:
            regex.append(f"(?P<{group}>[^/]+)")
        cursor = match.end()
    regex.append(_literal(pattern[cursor:]) + "$")
    if not columns:
        raise MLTableError(
            f"partition format {text!r} has no {{field}}; expected e.g. '{{Store}}/{{file}}.csv'"
        )
    return PartitionFormat(
        text=text, columns=tuple(columns), regex=re.compile("".join(regex)), date_formats=date_formats
    )


def _literal(text: str) -> str:
    return "".join("[^/]*" if char == "*" else re.escape(char) for char in text)


def _date_regex(spec: str, text: str) -> tuple[str, str]:
    regex: list[str] = []
    strptime: list[str] = []
    cursor = 0
    for match in _DATE_TOKEN.finditer(spec):
        literal = spec[cursor : match.start()]
        if re.search(r"[A-Za-z]", literal):
            raise MLTableError(
                f"partition format {text!r}: unknown date token in {spec!r}; use yyyy, MM, dd, HH, mm, ss"
            )
        regex.append(re.escape(literal))
        strptime.append(literal.replace("%", "%%"))
        token_regex, token_format = _DATE_TOKENS[match.group(0)]
        regex.append(token_regex)
        strptime.append(token_format)
        cursor = match.end()
    tail = spec[cursor:]
    if re.search(r"[A-Za-z]", tail) or not strptime:
        raise MLTableError(
            f"partition format {text!r}: unknown date token in {spec!r}; use yyyy, MM, dd, HH, mm, ss"
        )
    regex.append(re.escape(tail))
    strptime.append(tail.replace("%", "%%"))
    return "".join(regex), "".join(strptime)
