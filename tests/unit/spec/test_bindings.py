"""Binding expressions: the forms, their canonical spelling, and substitution inside strings."""

from __future__ import annotations

import pytest

from shared.spec.bindings import (
    Expr,
    ExpressionError,
    find_expressions,
    parse_expression,
    substitute,
    whole_expression,
)


@pytest.mark.parametrize(
    ("inner", "expected"),
    [
        ("parent.inputs.x", Expr("parent_input", name="x")),
        (" parent.outputs.y ", Expr("parent_output", name="y")),
        ("parent.jobs.train.outputs.model", Expr("job_output", name="model", job="train")),
        ("parent.jobs.train.inputs.data", Expr("job_input", name="data", job="train")),
        ("inputs.x", Expr("input", name="x")),
        ("outputs.y", Expr("output", name="y")),
        ("name", Expr("name")),
        ("default_datastore", Expr("default_datastore")),
        ("output_name", Expr("output_name")),
    ],
)
def test_known_forms(inner: str, expected: Expr) -> None:
    parsed = parse_expression(inner)
    assert (parsed.kind, parsed.name, parsed.job) == (expected.kind, expected.name, expected.job)


@pytest.mark.parametrize(
    "inner", ["parent.foo.x", "inputs", "inputs.1x", "jobs.a.outputs.b", "parent.inputs.x.y"]
)
def test_unknown_forms(inner: str) -> None:
    with pytest.raises(ExpressionError):
        parse_expression(inner)


def test_parents_is_explained() -> None:
    with pytest.raises(ExpressionError) as caught:
        parse_expression("parents.outputs.y")
    assert caught.value.expected == "parent. (not parents.)"


def test_canonical_spelling_has_no_spaces() -> None:
    expr = whole_expression("  ${{ inputs.model }} ")
    assert expr is not None
    assert expr.canonical == "${{inputs.model}}"
    assert whole_expression("--x ${{inputs.model}}") is None
    assert whole_expression(3) is None


def test_find_reports_unclosed_expressions() -> None:
    found = list(find_expressions("a ${{inputs.x}} b ${{inputs.y"))
    assert found[0].expr is not None
    assert found[0].expr.name == "x"
    assert found[-1].error is not None
    assert found[-1].error.message.startswith("unclosed expression")


def test_substitute_replaces_or_keeps() -> None:
    text = "run --a ${{inputs.a}} --b ${{ inputs.b }} --c ${{bogus}}"
    result = substitute(text, lambda e: "1" if e.name == "a" else None)
    assert result == "run --a 1 --b ${{ inputs.b }} --c ${{bogus}}"
