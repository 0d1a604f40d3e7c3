"""The located loader: positions of keys and values, JSON input, and what it refuses."""

from __future__ import annotations

from shared.spec.issues import Issues, Position, Where, format_path
from shared.spec.loader import load_text


def test_positions_of_keys_values_and_items() -> None:
    issues = Issues()
    data, source = load_text("a: 1\nb:\n  c: [x, y]\n  d:\n    - e: 2\nf:\n", "s.yml", issues)
    assert issues.items == []
    assert data == {"a": 1, "b": {"c": ["x", "y"], "d": [{"e": 2}]}, "f": None}
    assert source.keys[("b", "c")] == Position(3, 3)
    assert source.values[("b", "c")] == Position(3, 6)
    assert source.values[("b", "c", 1)] == Position(3, 10)
    assert source.keys[("b", "d", 0, "e")] == Position(5, 7)
    assert source.values[("f",)] == Position(6, 1)  # an empty value points at its key
    # An absent node is located at its nearest ancestor's key.
    assert source.position(("b", "c", 5)) == Position(3, 3)


def test_json_text_with_tabs_is_accepted() -> None:
    issues = Issues()
    data, source = load_text('{\n\t"type": "pipeline",\n\t"jobs": {\n\t\t"a": 1\n\t}\n}', "body.json", issues)
    assert issues.items == []
    assert data == {"type": "pipeline", "jobs": {"a": 1}}
    assert source.keys[("jobs", "a")] == Position(4, 3)


def test_scalars_become_plain_python() -> None:
    issues = Issues()
    data, _ = load_text("a: 2024-01-02\nb: yes\nc: 1.5\nd: true\ne: !!binary aGk=\n", "s.yml", issues)
    assert data == {"a": "2024-01-02", "b": "yes", "c": 1.5, "d": True, "e": "hi"}


def test_refusals_are_located_issues() -> None:
    issues = Issues()
    data, _ = load_text("a: 1\n? [x, y]\n: 2\n", "s.yml", issues)
    assert data == {"a": 1}
    assert [(i.line, i.column, i.message) for i in issues.errors] == [
        (2, 3, "the key '<complex key>' is not a string")
    ]
    issues = Issues()
    assert load_text("a: 'x' * 2\n" * 0 + "x" * (3 * 1024 * 1024), "big.yml", issues)[0] is None
    assert issues.errors[0].message == "the spec is larger than 2048 KiB"


def test_format_path_quotes_odd_keys() -> None:
    assert format_path(("jobs", "a", "inputs", "x")) == "jobs.a.inputs.x"
    assert format_path(("partition_keys", 1)) == "partition_keys[1]"
    assert format_path(("tags", "a b")) == 'tags["a b"]'
    assert Where(load_text("a: 1", "s", Issues())[1], ("a",)).text == "a"


def test_lone_surrogates_from_json_escapes_are_refused() -> None:
    issues = Issues()
    data, _ = load_text('{"type": "pipeline", "tags": {"a": "\\ud800x", "\\udc00": 1}}', "body.json", issues)
    assert data == {"type": "pipeline", "tags": {"a": ""}}
    assert [(i.path, i.message) for i in issues.errors] == [
        ("tags.a", "the text contains an invalid character"),
        ('tags["?"]', "the key '?' contains an invalid character"),
    ]
    for issue in issues.errors:
        str(issue).encode("utf-8")
