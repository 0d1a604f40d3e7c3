"""Helpers for the spec tests: write a spec (and the files it names) into a temporary folder."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from shared.errors import SpecError, SpecIssue
from shared.plan import RunPlan
from shared.spec import compile_file

FIXTURES = Path(__file__).parent / "fixtures"
SEED = FIXTURES / "seed"

#: Files most specs of the tests refer to.
DEFAULT_FILES: dict[str, str] = {
    "src/score.py": "def init():\n    pass\n\n\ndef run(mini_batch):\n    return mini_batch\n",
    "src/train.py": "print('train')\n",
    "data/files/a.txt": "1\n",
    "data/table/MLTable": "paths:\n  - file: ./t.csv\ntransformations:\n  - read_delimited: {}\n",
    "data/table/t.csv": "a,b\n1,2\n",
    "data/one.csv": "a,b\n1,2\n",
    "env/conda.yml": "name: e\ndependencies:\n  - python=3.11\n  - pip:\n      - pandas\n",
}


def write_files(root: Path, files: Mapping[str, str]) -> None:
    for name, content in files.items():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)


@pytest.fixture
def spec_dir(tmp_path: Path) -> Path:
    """A folder with the default files; specs are written into it."""
    write_files(tmp_path, DEFAULT_FILES)
    return tmp_path


SpecWriter = Callable[..., Path]


@pytest.fixture
def write_spec(spec_dir: Path) -> SpecWriter:
    """``write_spec(yaml_text, name="pipeline.yml", **extra_files)`` -> the spec's path (text dedented)."""

    def write(text: str, name: str = "pipeline.yml", files: Mapping[str, str] | None = None) -> Path:
        write_files(spec_dir, {k: textwrap.dedent(v) for k, v in (files or {}).items()})
        path = spec_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
        return path

    return write


def compile_ok(path: Path, run_id: str = "run-1", overrides: Mapping[str, str] | None = None) -> RunPlan:
    return compile_file(path, run_id=run_id, overrides=overrides or {})


def spec_errors(path: Path, overrides: Mapping[str, str] | None = None) -> list[SpecIssue]:
    """The errors compiling ``path`` reports (fails the test when it compiles)."""
    with pytest.raises(SpecError) as caught:
        compile_file(path, run_id="run-1", overrides=overrides or {})
    return [issue for issue in caught.value.issues if issue.severity == "error"]


def one_error(path: Path, overrides: Mapping[str, str] | None = None) -> SpecIssue:
    errors = spec_errors(path, overrides)
    assert len(errors) == 1, "\n".join(str(e) for e in errors)
    return errors[0]
