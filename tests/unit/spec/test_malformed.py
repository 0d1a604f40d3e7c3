"""Each malformed spec of the corpus fails with exactly one error, at the exact place, with the exact text."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.errors import SpecError
from shared.spec import compile_file

from .conftest import DEFAULT_FILES, write_files
from .malformed_cases import CASES, EXPECTED


def test_the_corpus_is_large_and_complete() -> None:
    assert len(CASES) >= 40
    assert set(CASES) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(CASES))
def test_malformed_spec_reports_one_located_error(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text, files, overrides = CASES[name]
    write_files(tmp_path, {**DEFAULT_FILES, **files})
    (tmp_path / "pipeline.yml").write_text(text)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SpecError) as caught:
        compile_file(Path("pipeline.yml"), run_id="run-1", overrides=overrides)
    errors = [issue for issue in caught.value.issues if issue.severity == "error"]
    assert len(errors) == 1, "\n".join(str(e) for e in errors)
    issue = errors[0]
    expected = tuple(
        part.replace("{dir}", str(tmp_path)) if isinstance(part, str) else part for part in EXPECTED[name]
    )
    assert (issue.file, issue.line, issue.column, issue.path, issue.message, issue.expected) == expected
    assert str(issue).startswith(f"{issue.file}:{issue.line}:{issue.column}: {issue.path or '<root>'}: ")
