"""Literal and data values: types, modes, literal coercion, and the resolved-value record.

Literal types follow Azure ML: ``string``, ``integer``, ``number``, ``boolean``; a bare YAML scalar
gets the type of its YAML value. Binding a value to a declared type converts it when that is lossless
(an integer where a number is declared; anything where a string is declared; the text "3" where an
integer is declared) and is an error otherwise. Data types must match, except that ``uri_folder`` and
``mltable`` may be bound to each other: both are folders.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

from shared.plan import DataInput, DataType, InputMode, LiteralInput, LiteralType, OutputMode
from shared.spec.fields import describe
from shared.spec.issues import Issues, Where, suggest

E = TypeVar("E", bound=StrEnum)

_EXAMPLES = {
    LiteralType.STRING: "'text'",
    LiteralType.INTEGER: "3",
    LiteralType.NUMBER: "0.01",
    LiteralType.BOOLEAN: "true",
}
_FOLDERS = {DataType.URI_FOLDER, DataType.MLTABLE}


@dataclass(frozen=True)
class Value:
    """A resolved input value: its plan (None when an optional input has no value) and its origin.

    ``broken`` marks an input whose own error was already reported: uses of it stay silent, so one
    mistake is reported once.
    """

    plan: LiteralInput | DataInput | None
    where: Where
    broken: bool = False


class CoercionError(ValueError):
    """A value that cannot be converted to its declared type; callers record it as a located issue."""

    def __init__(self, message: str, expected: str) -> None:
        super().__init__(message)
        self.message = message
        self.expected = expected


def literal_type_of(value: Any) -> LiteralType | None:
    """The literal type of a bare YAML scalar (None for mappings, lists and null)."""
    if isinstance(value, bool):
        return LiteralType.BOOLEAN
    if isinstance(value, int):
        return LiteralType.INTEGER
    if isinstance(value, float):
        return LiteralType.NUMBER
    if isinstance(value, str):
        return LiteralType.STRING
    return None


def coerce_literal(value: Any, target: LiteralType) -> str | int | float | bool:
    """``value`` as a ``target`` value.

    Raises:
        CoercionError: the conversion would lose information or makes no sense.
    """
    expected = f"{'an' if target is LiteralType.INTEGER else 'a'} {target.value} (e.g. {_EXAMPLES[target]})"
    if isinstance(value, dict | list) or value is None:
        raise CoercionError(f"expected a {target.value}, got {describe(value)}", expected)
    if target is LiteralType.STRING:
        return value if isinstance(value, str) else str(value)
    if target is LiteralType.BOOLEAN:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        raise CoercionError(f"{describe(value)} is not a boolean", expected)
    if isinstance(value, bool):
        raise CoercionError(f"{describe(value)} is not a {target.value}", expected)
    if target is LiteralType.INTEGER:
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
        raise CoercionError(f"{describe(value)} is not an integer", expected)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise CoercionError(f"{value} is not a finite number", expected)
        return value
    try:
        number = float(str(value).strip())
    except ValueError:
        raise CoercionError(f"{describe(value)} is not a number", expected) from None
    if not math.isfinite(number):
        raise CoercionError(f"{describe(value)} is not a finite number", expected)
    return number


def literal_input(
    value: Any, target: LiteralType | None, where: Where, issues: Issues
) -> LiteralInput | None:
    """A LiteralInput of ``value`` (typed ``target``, or by its YAML type); None + error when invalid."""
    kind = target or literal_type_of(value)
    if kind is None:
        issues.error(where, f"expected a literal value, got {describe(value)}", "a string, number or boolean")
        return None
    try:
        coerced = coerce_literal(value, kind)
    except CoercionError as exc:
        issues.error(where, exc.message, exc.expected)
        return None
    return LiteralInput(type=kind, value=coerced)


def parse_enum(enum: type[E], text: Any, where: Where, issues: Issues, noun: str) -> E | None:
    """``text`` as a member of ``enum`` (None + error with the allowed values)."""
    values = [member.value for member in enum]
    if isinstance(text, str) and text.strip() in values:
        return enum(text.strip())
    shown = text if isinstance(text, str) else describe(text)
    hint = suggest(str(text), values)
    issues.error(where, f"{shown!r} is not a{'n' if noun[0] in 'aeiou' else ''} {noun}", hint)
    return None


def parse_type(text: Any, where: Where, issues: Issues) -> LiteralType | DataType | None:
    """An input type: a literal type or a data type."""
    names = [t.value for t in LiteralType] + [t.value for t in DataType]
    if isinstance(text, str) and text.strip() in names:
        stripped = text.strip()
        return LiteralType(stripped) if stripped in {t.value for t in LiteralType} else DataType(stripped)
    if isinstance(text, str) and text.strip() in ("mlflow_model", "custom_model", "triton_model"):
        issues.error(where, f"model inputs ({text}) are not supported", "uri_folder (a model is a folder)")
        return None
    issues.error(where, f"{text!r} is not an input type", suggest(str(text), names))
    return None


def parse_input_mode(text: Any, where: Where, issues: Issues) -> InputMode | None:
    """An input's ``mode:`` (None + error listing the allowed modes)."""
    return parse_enum(InputMode, text, where, issues, "input mode")


def parse_output_mode(text: Any, where: Where, issues: Issues) -> OutputMode | None:
    """An output's ``mode:`` (None + error listing the allowed modes)."""
    return parse_enum(OutputMode, text, where, issues, "output mode")


def data_types_compatible(declared: DataType, actual: DataType) -> bool:
    """Equal types, or two folder types (uri_folder and mltable)."""
    return declared == actual or (declared in _FOLDERS and actual in _FOLDERS)


def conform(
    value: Value,
    declared: LiteralType | DataType,
    name: str,
    where: Where,
    issues: Issues,
) -> Value | None:
    """``value`` checked against (and converted to) the declared type of input ``name``."""
    plan = value.plan
    if plan is None:
        return value
    if isinstance(declared, LiteralType):
        if isinstance(plan, DataInput):
            issues.error(
                where,
                f"input '{name}' is a {declared.value} literal but is given {plan.type.value} data",
                f"a {declared.value} value or a literal binding",
            )
            return None
        try:
            coerced = coerce_literal(plan.value, declared)
        except CoercionError as exc:
            issues.error(where, f"input '{name}': {exc.message}", exc.expected)
            return None
        return Value(LiteralInput(type=declared, value=coerced), value.where)
    if isinstance(plan, LiteralInput):
        issues.error(
            where,
            f"input '{name}' needs {declared.value} data but is given the literal {plan.value!r}",
            f"{{type: {declared.value}, path: ...}} or a data binding such as "
            "${{parent.jobs.<job>.outputs.<name>}}",
        )
        return None
    if not data_types_compatible(declared, plan.type):
        issues.error(
            where,
            f"input '{name}' is declared {declared.value} but is given {plan.type.value} data",
            f"{declared.value} data",
        )
        return None
    return value
