"""Binding expressions: ``${{ ... }}`` parsing, and substitution inside strings.

The expressions Fanout understands (Azure ML's, see ``docs/spec.md``):

========================================  ==========================================================
``${{parent.inputs.<x>}}``                a pipeline input
``${{parent.outputs.<y>}}``               a pipeline output (in a job's ``outputs``)
``${{parent.jobs.<job>.outputs.<o>}}``    another job's output: an edge of the job graph
``${{parent.jobs.<job>.inputs.<x>}}``     another job's input (no edge)
``${{inputs.<x>}}`` / ``${{outputs.<y>}}``  the job's own inputs / outputs
``${{name}}``                             the run id (in output paths)
``${{default_datastore}}``                the default datastore name (in output paths)
``${{output_name}}``                      the output's name (in output paths)
========================================  ==========================================================

Where each may appear is decided by the caller; this module only parses and substitutes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

EXPRESSION_RE = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)
OPTIONAL_BLOCK_RE = re.compile(r"\$\[\[(.*?)\]\]([ \t]*)", re.DOTALL)
_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_FORMS: list[tuple[str, re.Pattern[str]]] = [
    ("parent_input", re.compile(rf"parent\.inputs\.({_IDENT})")),
    ("parent_output", re.compile(rf"parent\.outputs\.({_IDENT})")),
    ("job_output", re.compile(rf"parent\.jobs\.({_IDENT})\.outputs\.({_IDENT})")),
    ("job_input", re.compile(rf"parent\.jobs\.({_IDENT})\.inputs\.({_IDENT})")),
    ("input", re.compile(rf"inputs\.({_IDENT})")),
    ("output", re.compile(rf"outputs\.({_IDENT})")),
    ("name", re.compile(r"name")),
    ("default_datastore", re.compile(r"default_datastore")),
    ("output_name", re.compile(r"output_name")),
]
KNOWN_FORMS = (
    "${{parent.inputs.<x>}}, ${{parent.outputs.<y>}}, ${{parent.jobs.<job>.outputs.<o>}}, "
    "${{inputs.<x>}}, ${{outputs.<y>}}, ${{name}}, ${{default_datastore}}"
)

ExprKind = Literal[
    "parent_input",
    "parent_output",
    "job_output",
    "job_input",
    "input",
    "output",
    "name",
    "default_datastore",
    "output_name",
]


@dataclass(frozen=True)
class Expr:
    """One parsed ``${{ ... }}`` expression."""

    kind: ExprKind
    name: str = ""
    job: str = ""
    text: str = ""

    def __str__(self) -> str:
        return self.text or self.canonical

    @property
    def canonical(self) -> str:
        """The expression written without spaces, e.g. ``${{inputs.model}}`` (what agents replace)."""
        body = {
            "parent_input": f"parent.inputs.{self.name}",
            "parent_output": f"parent.outputs.{self.name}",
            "job_output": f"parent.jobs.{self.job}.outputs.{self.name}",
            "job_input": f"parent.jobs.{self.job}.inputs.{self.name}",
            "input": f"inputs.{self.name}",
            "output": f"outputs.{self.name}",
        }.get(self.kind, self.kind)
        return "${{" + body + "}}"


class ExpressionError(ValueError):
    """An expression that is not one of the known forms."""

    def __init__(self, message: str, expected: str = KNOWN_FORMS) -> None:
        super().__init__(message)
        self.message = message
        self.expected = expected


def parse_expression(inner: str, text: str = "") -> Expr:
    """Parse the inside of ``${{ ... }}``.

    Raises:
        ExpressionError: not a known form.
    """
    body = inner.strip()
    shown = text or "${{" + inner + "}}"
    for kind, pattern in _FORMS:
        match = pattern.fullmatch(body)
        if match is None:
            continue
        groups = match.groups()
        if kind in ("job_output", "job_input"):
            return Expr(kind, name=groups[1], job=groups[0], text=shown)  # type: ignore[arg-type]
        return Expr(kind, name=groups[0] if groups else "", text=shown)  # type: ignore[arg-type]
    if body.startswith("parents."):
        raise ExpressionError(f"{shown} is not an expression Fanout knows", "parent. (not parents.)")
    raise ExpressionError(f"{shown} is not an expression Fanout knows")


def whole_expression(value: object) -> Expr | None:
    """The expression when ``value`` is a string made of exactly one ``${{ ... }}``; else None.

    Raises:
        ExpressionError: the string is one expression of an unknown form.
    """
    if not isinstance(value, str):
        return None
    stripped = value.strip()
    match = EXPRESSION_RE.fullmatch(stripped)
    if match is None:
        return None
    return parse_expression(match.group(1), stripped)


@dataclass(frozen=True)
class Found:
    """An expression found inside a string, with its span."""

    start: int
    end: int
    expr: Expr | None
    error: ExpressionError | None


def find_expressions(text: str) -> Iterator[Found]:
    """Every ``${{ ... }}`` in ``text`` (parsed, or with its error); an unclosed ``${{`` is an error."""
    for match in EXPRESSION_RE.finditer(text):
        try:
            yield Found(match.start(), match.end(), parse_expression(match.group(1), match.group(0)), None)
        except ExpressionError as exc:
            yield Found(match.start(), match.end(), None, exc)
    remainder = EXPRESSION_RE.sub("", text)
    if "${{" in remainder:
        at = remainder.index("${{")
        yield Found(
            at,
            len(text),
            None,
            ExpressionError(f"unclosed expression {remainder[at : at + 30]!r}", "${{ ... }}"),
        )


def substitute(text: str, replace: Callable[[Expr], str | None]) -> str:
    """``text`` with each known expression replaced by ``replace(expr)`` (None keeps it as written)."""

    def one(match: re.Match[str]) -> str:
        try:
            expr = parse_expression(match.group(1), match.group(0))
        except ExpressionError:
            return match.group(0)
        value = replace(expr)
        return match.group(0) if value is None else value

    return EXPRESSION_RE.sub(one, text)
