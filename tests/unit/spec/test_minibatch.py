"""mini_batch_size and partition_keys parse exactly as Azure ML parses them (reference §1.1, checks 1–2)."""

from __future__ import annotations

import pytest

from shared.spec.minibatch import MiniBatchSizeError, parse_mini_batch_size, parse_partition_keys_text


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("10KB", 10240),
        ("10kb", 10240),
        ("10Kb", 10240),
        ("10kB", 10240),
        ("1mb", 1048576),
        ("1MB", 1048576),
        ("1gb", 1073741824),
        ("100", 100),
        ("5", 5),
        (7, 7),
        (3.0, 3),
    ],
)
def test_accepted_sizes(value: object, expected: int) -> None:
    assert parse_mini_batch_size(value) == expected


@pytest.mark.parametrize(
    ("value", "hint"),
    [
        ("100 kb", 'no space between the number and the unit: "100kb"'),
        ("10k", 'a unit ending in b: "10kb"'),
        ("1.5mb", 'a whole number (e.g. "1536kb" instead of "1.5mb")'),
        ("-1", 'a positive size (e.g. "10")'),
        ("10tb", 'the unit kb, mb or gb (e.g. "10gb")'),
        ("10kbmb", 'one unit (e.g. "10kb")'),
        ("B", 'a file count (e.g. "10") or digits + kb/mb/gb with no space (e.g. "10kb", "1MB")'),
        ("0", 'a file count (e.g. "10") or digits + kb/mb/gb with no space (e.g. "10kb", "1MB")'),
        (0, 'a file count (e.g. "10") or digits + kb/mb/gb with no space (e.g. "10kb", "1MB")'),
        (True, 'a file count (e.g. "10") or digits + kb/mb/gb with no space (e.g. "10kb", "1MB")'),
        (2.5, 'a file count (e.g. "10") or digits + kb/mb/gb with no space (e.g. "10kb", "1MB")'),
    ],
)
def test_rejected_sizes_carry_a_hint(value: object, hint: str) -> None:
    with pytest.raises(MiniBatchSizeError) as caught:
        parse_mini_batch_size(value)
    assert caught.value.expected == hint


@pytest.mark.parametrize(
    ("text", "keys"),
    [
        ("Store,Brand", ["Store", "Brand"]),
        (" Store , Brand ", ["Store", "Brand"]),
        ('["Store", "Brand"]', ["Store", "Brand"]),
        ("Store", ["Store"]),
    ],
)
def test_partition_keys_from_a_parameter(text: str, keys: list[str]) -> None:
    assert parse_partition_keys_text(text) == keys


@pytest.mark.parametrize("text", ["", "Store,,Brand", "Store,Store", '["Store", 3]', "[unclosed"])
def test_bad_partition_keys_from_a_parameter(text: str) -> None:
    with pytest.raises(ValueError):
        parse_partition_keys_text(text)
