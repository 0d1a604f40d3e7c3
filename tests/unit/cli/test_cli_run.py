"""`fanout run` before anything starts: --set parsing, and a bad spec reported with its location."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from shared.cli.main import main
from shared.cli.validate import parse_overrides


def test_set_pairs_become_overrides() -> None:
    assert parse_overrides(("inputs.n=3", "name=a=b", " spaced =x", "empty=")) == {
        "inputs.n": "3",
        "name": "a=b",
        "spaced": "x",
        "empty": "",
    }


@pytest.mark.parametrize("pair", ["no-equals", "=value", "  =v"])
def test_a_set_without_a_name_is_rejected(pair: str) -> None:
    with pytest.raises(click.BadParameter, match="is not NAME=VALUE"):
        parse_overrides((pair,))


def test_a_bad_spec_fails_with_its_location_and_starts_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = tmp_path / "pipeline.yml"
    spec.write_text("type: pipeline\njobs:\n  a:\n    type: parallell\n")
    monkeypatch.setenv("FANOUT_AZURITE_COMMAND", str(tmp_path / "no-azurite-here"))  # must not be needed
    with pytest.raises(SystemExit) as exit_info:
        main(["run", str(spec)])
    assert exit_info.value.code == 1
    error = capsys.readouterr().err
    assert error.startswith("error: ")
    assert f"{spec}:4:" in error
    assert "parallell" in error


def test_an_unknown_set_name_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "pipeline.yml"
    spec.write_text("type: pipeline\ninputs:\n  n: 1\njobs:\n  a:\n    type: command\n    command: echo hi\n")
    with pytest.raises(SystemExit) as exit_info:
        main(["run", str(spec), "--set", "nope=2"])
    assert exit_info.value.code == 1
    assert "the pipeline has no input 'nope'" in capsys.readouterr().err
