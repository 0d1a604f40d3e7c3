"""Field types of the spec models: each validates one YAML value and fails with a sentence a user can act on.

Every validator here raises ``PydanticCustomError("spec", message, {"expected": ...})`` so
:mod:`shared.spec.validation` can print ``what is wrong; what was expected (example)`` instead of
pydantic's generic text. Values that may be a binding (``${{parent.inputs.x}}``) stay strings here and
are resolved when the plan is frozen.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import PlainValidator
from pydantic_core import PydanticCustomError

from shared.spec.minibatch import MiniBatchSizeError, parse_mini_batch_size

BINDING_RE = re.compile(r"^\s*\$\{\{\s*([^{}]*?)\s*\}\}\s*$")
NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
LOGGING_LEVELS = ("DEBUG", "INFO", "WARNING")
BINDING_HINT = "${{parent.inputs.<name>}}"


def is_binding(value: object) -> bool:
    """True when ``value`` is a string made of exactly one ``${{ ... }}`` expression."""
    return isinstance(value, str) and BINDING_RE.match(value) is not None


def describe(value: object) -> str:
    """A short description of a YAML value for error messages."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        shown = value if len(value) <= 60 else value[:57] + "..."
        return f"{shown!r}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def fail(message: str, expected: str) -> PydanticCustomError:
    """The error every validator raises."""
    return PydanticCustomError("spec", "{message}", {"message": message, "expected": expected})


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise fail(f"expected a string, got {describe(value)}", "a string (e.g. 'my-value')")


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"true", "false"}:
        return value.strip().lower() == "true"
    raise fail(f"expected true or false, got {describe(value)}", "true or false")


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str | int | float):
        return str(value)
    raise fail(f"expected a text value, got {describe(value)}", "a string, number or boolean")


class IntRule:
    """An integer in ``[minimum, maximum]`` (digit strings accepted) or a binding left for later.

    ``rule.validator`` is the pydantic validator; ``rule.check`` re-checks a value a binding resolved to.
    """

    def __init__(self, minimum: int | None, maximum: int | None, example: int) -> None:
        self.minimum = minimum
        self.maximum = maximum
        self.example = example
        self.validator = PlainValidator(self.check_or_binding)

    def check_or_binding(self, value: Any) -> int | str:
        """A ``${{...}}`` binding kept as text for later resolution, else :meth:`check`'s integer."""
        if is_binding(value):
            return str(value).strip()
        return self.check(value)

    def check(self, value: Any) -> int:
        """The integer ``value`` stands for. Raises PydanticCustomError with a located-ready message."""
        number: int | None = None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif (isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value)) or (
            isinstance(value, float) and value.is_integer()
        ):
            number = int(value)
        if number is None:
            raise fail(
                f"expected an integer, got {describe(value)}",
                f"an integer (e.g. {self.example}) or a binding {BINDING_HINT}",
            )
        too_low = self.minimum is not None and number < self.minimum
        too_high = self.maximum is not None and number > self.maximum
        if too_low or too_high:
            low = "" if self.minimum is None else f"{self.minimum} ≤ "
            high = "" if self.maximum is None else f" ≤ {self.maximum}"
            raise fail(f"{number} is out of range", f"an integer {low}n{high} (e.g. {self.example})")
        return number


MAX_RETRIES = IntRule(0, None, 2)
RUN_TIMEOUT = IntRule(1, 259200, 60)
INSTANCE_COUNT = IntRule(1, None, 2)
CONCURRENCY = IntRule(1, None, 2)
THRESHOLD = IntRule(-1, None, 5)
COMMAND_TIMEOUT = IntRule(1, None, 3600)


def _mini_batch_size(value: Any) -> int | str:
    if is_binding(value):
        return str(value).strip()
    try:
        return parse_mini_batch_size(value)
    except MiniBatchSizeError as exc:
        raise fail(exc.message, exc.expected) from None


def _partition_keys(value: Any) -> list[str] | str:
    if is_binding(value):
        return str(value).strip()
    if not isinstance(value, list) or not value:
        raise fail(
            f"expected a non-empty list of column names, got {describe(value)}",
            "a list such as [Store, Brand], or a binding " + BINDING_HINT,
        )
    keys: list[str] = []
    for item in value:
        if not isinstance(item, str) or not item.strip():
            raise fail(f"partition key {describe(item)} is not a column name", "strings such as Store")
        if item in keys:
            raise fail(f"partition key {item!r} is listed twice", "each key once")
        keys.append(item)
    return keys


def _logging_level(value: Any) -> str:
    if is_binding(value):
        return str(value).strip()
    if isinstance(value, str) and value.strip().upper() in LOGGING_LEVELS:
        return value.strip().upper()
    raise fail(f"{describe(value)} is not a logging level", "one of INFO, WARNING, DEBUG")


def _env_name(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
        raise fail(f"{value!r} is not an environment variable name", "letters, digits, underscores")
    return value


def _env_value(value: Any) -> str:
    if isinstance(value, dict | list) or value is None:
        raise fail(f"expected a value, got {describe(value)}", "a string, number or boolean")
    return str(value)


def _tag_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        raise fail(f"a tag value must be text, got {describe(value)}", "a string")
    return _scalar_text(value)


Text = Annotated[str, PlainValidator(_text)]
Bool = Annotated[bool, PlainValidator(_boolean)]
ScalarText = Annotated[str, PlainValidator(_scalar_text)]
MiniBatchSize = Annotated[int | str, PlainValidator(_mini_batch_size)]
PartitionKeys = Annotated[list[str] | str, PlainValidator(_partition_keys)]
LoggingLevel = Annotated[str, PlainValidator(_logging_level)]
EnvironmentVariables = dict[
    Annotated[str, PlainValidator(_env_name)], Annotated[str, PlainValidator(_env_value)]
]
Tags = dict[str, Annotated[str, PlainValidator(_tag_value)]]
