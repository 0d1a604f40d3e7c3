# ruff: noqa: E501

"""``confine_to``: a spec unpacked from someone else's archive cannot name files outside it."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.errors import SpecError
from shared.spec import bundle_file, compile_file

from .conftest import DEFAULT_FILES, write_files

BASE = """type: pipeline
jobs:
  a:
    type: command
    code: ./src
    inputs:
      data: {type: uri_folder, path: ./data/files}
    command: echo ${{inputs.data}}
"""


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    inside, outside = tmp_path / "archive", tmp_path / "server"
    write_files(inside, DEFAULT_FILES)
    write_files(
        outside, {"secret/key.txt": "x", "comp.yml": "type: command\ncommand: echo\n", "env.yml": "a: 1\n"}
    )
    return inside, outside


def test_paths_inside_the_folder_are_fine(folders: tuple[Path, Path]) -> None:
    inside, _ = folders
    (inside / "pipeline.yml").write_text(BASE)
    plan = compile_file(inside / "pipeline.yml", run_id="r", confine_to=inside)
    assert plan.jobs[0].code is not None
    assert bundle_file(inside / "pipeline.yml", confine_to=inside)


@pytest.mark.parametrize(
    ("edit", "path"),
    [
        (("./data/files", "{outside}/secret"), "jobs.a.inputs.data.path"),
        (("./data/files", "../server/secret"), "jobs.a.inputs.data.path"),
        (("./data/files", "./link"), "jobs.a.inputs.data.path"),
        (("code: ./src", "code: {outside}/secret"), "jobs.a.code"),
        (("    code: ./src\n", "    component: ../server/comp.yml\n"), "jobs.a.component"),
        (("    code: ./src\n", "    code: ./src\n    environment: {{image: x, conda_file: ../server/env.yml}}\n"),
         "jobs.a.environment.conda_file"),
    ],
)  # fmt: skip
def test_paths_leading_outside_are_errors(
    folders: tuple[Path, Path], edit: tuple[str, str], path: str
) -> None:
    inside, outside = folders
    (inside / "link").symlink_to(outside / "secret")
    old, new = edit
    text = BASE.replace(old, new.format(outside=outside))
    if "component" in new:
        text = text.replace("    inputs:\n      data: {type: uri_folder, path: ./data/files}\n", "").replace(
            "    command: echo ${{inputs.data}}\n", ""
        )
    (inside / "pipeline.yml").write_text(text)
    with pytest.raises(SpecError) as caught:
        compile_file(inside / "pipeline.yml", run_id="r", confine_to=inside)
    errors = [i for i in caught.value.issues if i.severity == "error"]
    assert [(i.path, i.message.split(" leads ")[1]) for i in errors] == [
        (path, "outside the submitted folder")
    ]
    # Without confinement the same spec is fine (a user's own machine).
    compile_file(inside / "pipeline.yml", run_id="r")


def test_set_paths_are_confined_too(folders: tuple[Path, Path]) -> None:
    inside, outside = folders
    (inside / "pipeline.yml").write_text(
        "type: pipeline\ninputs:\n  d: {type: uri_folder, path: ./data/files}\njobs:\n"
        "  a: {type: command, inputs: {d: '${{parent.inputs.d}}'}, command: echo}\n"
    )
    with pytest.raises(SpecError) as caught:
        compile_file(
            inside / "pipeline.yml", run_id="r", overrides={"d": str(outside / "secret")}, confine_to=inside
        )
    (issue,) = caught.value.issues
    assert (issue.file, issue.path) == ("--set", "inputs.d")
