"""bundle_file: a self-contained spec whose local paths are absolute or rewritten by the submitter."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.errors import SpecError
from shared.plan import BlobData, CodeRef, DataType
from shared.spec import PathUse, bundle_file, compile_file, compile_text

from .conftest import SpecWriter

SPEC = """
type: pipeline
inputs:
  table:
    type: mltable
    path: ./data/table
    mode: direct
  rate: 0.5
jobs:
  score:
    type: parallel
    component: ./comp/score.yml
    inputs:
      data: ${{parent.inputs.table}}
      extra:
        path: ./data/one.csv
  report:
    type: command
    code: ./src
    inputs:
      result: ${{parent.jobs.score.outputs.result}}
    command: python train.py ${{inputs.result}}
"""
COMPONENT = """
type: parallel
inputs:
  data: {type: mltable}
  extra: {type: uri_file}
  defaults:
    type: uri_folder
    path: ../data/files
outputs:
  result: {type: uri_file}
input_data: ${{inputs.data}}
task:
  code: ../src
  entry_script: score.py
  environment:
    image: python:3.11
    conda_file: ../env/conda.yml
  append_row_to: ${{outputs.result}}
"""


def test_rewrite_sees_every_local_path_and_the_plan_uses_its_uris(write_spec: SpecWriter) -> None:
    path = write_spec(SPEC, files={"comp/score.yml": COMPONENT})
    root = path.parent
    uses: list[PathUse] = []

    def rewrite(use: PathUse) -> str:
        uses.append(use)
        if use.kind == "code":
            return "azureml://datastores/snapshots/paths/sha256-abc"
        return f"azureml://datastores/workspaceblobstore/paths/uploads/{use.path.name}"

    text = bundle_file(path, rewrite)
    assert sorted((u.kind, u.path, u.type, u.where) for u in uses) == sorted(
        [
            ("data", root / "data" / "table", DataType.MLTABLE, "inputs.table.path"),
            ("data", root / "data" / "one.csv", DataType.URI_FILE, "jobs.score.inputs.extra.path"),
            (
                "data",
                root / "data" / "files",
                DataType.URI_FOLDER,
                "jobs.score.component.inputs.defaults.path",
            ),
            ("code", root / "src", None, "jobs.score.component.task.code"),
            ("code", root / "src", None, "jobs.report.code"),
        ]
    )
    assert "./" not in text
    assert "conda_file:\n" in text  # the conda file is inlined
    plan = compile_text(text, source="specs/bundle.yml", run_id="r1")
    score = plan.job("score")
    assert score.code == CodeRef(snapshot="sha256-abc")
    assert plan.job("report").code == CodeRef(snapshot="sha256-abc")
    assert score.inputs["data"].source == BlobData(container="data", path="uploads/table")  # type: ignore[union-attr]
    assert score.inputs["defaults"].source == BlobData(container="data", path="uploads/files")  # type: ignore[union-attr]
    assert score.environment is not None
    assert score.environment.pip_requirements == ["pandas"]


def test_without_rewrite_the_bundle_compiles_to_the_same_plan(write_spec: SpecWriter) -> None:
    path = write_spec(SPEC, files={"comp/score.yml": COMPONENT})
    bundled = compile_text(bundle_file(path), source="b.yml", run_id="r1")
    assert bundled.model_dump(exclude={"source"}) == compile_file(path, run_id="r1").model_dump(
        exclude={"source"}
    )


def test_an_invalid_spec_is_not_bundled(write_spec: SpecWriter) -> None:
    path = write_spec(SPEC.replace("./data/one.csv", "./data/none.csv"), files={"comp/score.yml": COMPONENT})
    calls: list[PathUse] = []
    with pytest.raises(SpecError):
        bundle_file(path, calls.append)  # type: ignore[arg-type]
    assert calls == []


def test_paths_with_spaces_survive_bundling(tmp_path: Path) -> None:
    folder = tmp_path / "my project"
    (folder / "src").mkdir(parents=True)
    (folder / "src" / "s.py").write_text("")
    (folder / "p.yml").write_text(
        "type: pipeline\njobs:\n  j:\n    type: command\n    code: ./src\n    command: echo\n"
    )
    plan = compile_text(bundle_file(folder / "p.yml"), source="x", run_id="r")
    assert plan.jobs[0].code == CodeRef(local_path=str(folder / "src"))


def test_a_bundle_sent_as_json_gives_the_same_plan(write_spec: SpecWriter) -> None:
    import json

    from ruamel.yaml import YAML

    path = write_spec(SPEC, files={"comp/score.yml": COMPONENT})
    as_json = json.dumps(YAML(typ="safe", pure=True).load(bundle_file(path)), indent="\t")
    plan = compile_text(as_json, source="POST /api/pipelines", run_id="r1")
    assert plan.model_dump(exclude={"source"}) == compile_file(path, run_id="r1").model_dump(
        exclude={"source"}
    )
