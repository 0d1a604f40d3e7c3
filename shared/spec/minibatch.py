"""``mini_batch_size`` and ``partition_keys`` exactly as Azure ML parses them.

``mini_batch_size`` is an int, or a string matching ``^\\d+([kKmMgG][bB])*$``: digits alone are a count,
otherwise the last two characters (any case) are the unit — kb ×1024, mb ×1024², gb ×1024³. The driver
only ever sees the integer, so the plan stores the integer. What Azure ML rejects is rejected here too,
with a hint: ``"10 kb"`` (space), ``"10k"`` (no b), ``"1.5mb"`` (decimal), ``"10tb"`` (unit), ``"-1"``.

``partition_keys`` bound to a pipeline parameter arrive as one string: either a JSON list
(``'["Store", "Brand"]'``, the v1 PipelineParameter form) or comma-separated (``"Store,Brand"``).
"""

from __future__ import annotations

import json
import re
from typing import Any

_SIZE_RE = re.compile(r"^\d+([kKmMgG][bB])*$")
_UNITS = {"kb": 1024, "mb": 1024**2, "gb": 1024**3}
_EXPECTED = 'a file count (e.g. "10") or digits + kb/mb/gb with no space (e.g. "10kb", "1MB")'


class MiniBatchSizeError(ValueError):
    """A mini_batch_size Azure ML would reject; ``expected`` carries the hint."""

    def __init__(self, message: str, expected: str = _EXPECTED) -> None:
        super().__init__(message)
        self.message = message
        self.expected = expected


def parse_mini_batch_size(value: Any) -> int:
    """The integer Azure ML would pass to the driver for ``value``.

    Raises:
        MiniBatchSizeError: ``value`` is not accepted by Azure ML (message + hint).
    """
    if isinstance(value, bool) or value is None or isinstance(value, dict | list):
        raise MiniBatchSizeError(f"mini_batch_size must be a number or a size string, got {value!r}")
    if isinstance(value, float):
        if not value.is_integer():
            raise MiniBatchSizeError(f"mini_batch_size {value} is not a whole number")
        value = int(value)
    if isinstance(value, int):
        if value < 1:
            raise MiniBatchSizeError(f"mini_batch_size {value} must be at least 1")
        return value
    text = str(value)
    if not _SIZE_RE.match(text):
        raise MiniBatchSizeError(f"{text!r} is not a mini_batch_size", _hint(text))
    if text.isdigit():
        number = int(text)
        if number < 1:
            raise MiniBatchSizeError(f"mini_batch_size {text!r} must be at least 1")
        return number
    unit = text[-2:].lower()
    try:
        number = int(text[:-2])
    except ValueError:
        # Azure ML's quirk: the regex lets "10kbmb" through, then int("10kb") fails.
        raise MiniBatchSizeError(f"{text!r} has more than one unit", 'one unit (e.g. "10kb")') from None
    if number < 1:
        raise MiniBatchSizeError(f"mini_batch_size {text!r} must be at least 1")
    return number * _UNITS[unit]


def _hint(text: str) -> str:
    compact = text.replace(" ", "")
    if compact != text and _SIZE_RE.match(compact):
        return f'no space between the number and the unit: "{compact}"'
    lowered = compact.lower()
    if re.fullmatch(r"\d+[kmg]", lowered):
        return f'a unit ending in b: "{compact}b"'
    if re.fullmatch(r"\d*\.\d+([kmg]b)?", lowered):
        return 'a whole number (e.g. "1536kb" instead of "1.5mb")'
    if re.fullmatch(r"\d+[a-z]+", lowered):
        return 'the unit kb, mb or gb (e.g. "10gb")'
    if lowered.startswith("-"):
        return 'a positive size (e.g. "10")'
    return _EXPECTED


def parse_partition_keys_text(text: str) -> list[str]:
    """Partition keys from a pipeline parameter: a JSON list or comma-separated names.

    Raises:
        ValueError: the text names no key, names one twice, or is a JSON value that is not a list of
            strings.
    """
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            parsed = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{text!r} is not a JSON list ({exc.msg})") from None
        if not isinstance(parsed, list) or not all(isinstance(k, str) for k in parsed):
            raise ValueError(f"{text!r} is not a list of column names")
        keys = [k.strip() for k in parsed]
    else:
        keys = [k.strip() for k in stripped.split(",")]
    if not keys or any(not k for k in keys):
        raise ValueError(f"{text!r} contains an empty partition key")
    if len(set(keys)) != len(keys):
        raise ValueError(f"{text!r} lists a partition key twice")
    return keys
