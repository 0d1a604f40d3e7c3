"""Inputs and outputs: pipeline parameters and --set, bindings between jobs, output locations."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.plan import (
    AssetRef,
    BlobData,
    DataInput,
    DataType,
    InputMode,
    JobOutputRef,
    LiteralInput,
    LiteralType,
    LocalData,
    OutputMode,
)

from .conftest import SpecWriter, compile_ok, one_error

TWO_JOBS = """
type: pipeline
inputs:
  raw:
    type: uri_folder
    path: ./data/files
  rate:
    type: number
    default: 0.5
    min: 0
    max: 1
  mode_name:
    type: string
    default: fast
    enum: [fast, slow]
  maybe:
    type: integer
    optional: true
outputs:
  final:
    type: uri_folder
    name: cleaned-data
    version: "3"
jobs:
  prep:
    type: command
    inputs:
      raw: ${{parent.inputs.raw}}
      rate: ${{parent.inputs.rate}}
    outputs:
      clean: ${{parent.outputs.final}}
      other:
        type: uri_folder
        path: azureml://datastores/${{default_datastore}}/paths/out/{run-id}/${{output_name}}/
        mode: upload
      report:
        type: uri_file
        path: azureml://datastores/reports/paths/${{name}}/{output-name}.txt
    command: prep ${{inputs.raw}} ${{inputs.rate}} ${{outputs.clean}}
  use:
    type: command
    inputs:
      table:
        type: mltable
        path: ${{parent.jobs.prep.outputs.clean}}
        mode: direct
      same_raw: ${{parent.jobs.prep.inputs.raw}}
      mode_name: ${{parent.inputs.mode_name}}
    command: use ${{inputs.table}} ${{inputs.mode_name}}
"""


def test_bindings_between_jobs_and_the_pipeline(write_spec: SpecWriter) -> None:
    path = write_spec(TWO_JOBS)
    plan = compile_ok(path, run_id="r9")
    assert [job.name for job in plan.jobs] == ["prep", "use"]
    assert plan.job("use").depends_on == ["prep"]
    assert plan.outputs == {"final": JobOutputRef(job="prep", output="clean")}
    raw = DataInput(type=DataType.URI_FOLDER, source=LocalData(path=str(path.parent / "data" / "files")))
    assert plan.inputs == {
        "raw": raw,
        "rate": LiteralInput(type=LiteralType.NUMBER, value=0.5),
        "mode_name": LiteralInput(type=LiteralType.STRING, value="fast"),
    }
    use = plan.job("use")
    # An mltable input may read a uri_folder output (both are folders); its own type and mode win.
    assert use.inputs["table"] == DataInput(
        type=DataType.MLTABLE, mode=InputMode.DIRECT, source=JobOutputRef(job="prep", output="clean")
    )
    assert use.inputs["same_raw"] == raw
    prep = plan.job("prep")
    clean = prep.outputs["clean"]
    assert (clean.type, clean.asset_name, clean.asset_version) == (DataType.URI_FOLDER, "cleaned-data", "3")
    assert clean.location == BlobData(container="runs", path="r9/prep/outputs/clean")
    other = prep.outputs["other"]
    assert other.mode is OutputMode.UPLOAD
    assert other.location == BlobData(container="data", path="out/r9/other")
    assert prep.outputs["report"].location == BlobData(container="reports", path="r9/report.txt")


def test_set_overrides_literals_and_data(write_spec: SpecWriter, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_spec(TWO_JOBS)
    monkeypatch.chdir(path.parent / "data")
    plan = compile_ok(
        path, overrides={"inputs.rate": "1", "mode_name": "slow", "raw": "./table", "inputs.maybe": "4"}
    )
    assert plan.inputs["rate"] == LiteralInput(type=LiteralType.NUMBER, value=1.0)
    assert plan.inputs["mode_name"] == LiteralInput(type=LiteralType.STRING, value="slow")
    assert plan.inputs["maybe"] == LiteralInput(type=LiteralType.INTEGER, value=4)
    # Relative --set paths are relative to the current directory; the input keeps its type.
    assert plan.inputs["raw"] == DataInput(
        type=DataType.URI_FOLDER, source=LocalData(path=str(path.parent / "data" / "table"))
    )
    assert plan.job("prep").command is not None
    assert plan.job("prep").command.command.startswith("prep ${{inputs.raw}} 1.0 ")  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("overrides", "message", "expected"),
    [
        ({"inputs.rate": "2"}, "2.0 is above the maximum 1", "a value ≤ 1"),
        ({"inputs.mode_name": "medium"}, "'medium' is not one of the allowed values", "one of fast, slow"),
        ({"inputs.rate": "abc"}, "--set inputs.rate: 'abc' is not a number", "a number (e.g. 0.01)"),
        (
            {"inputs.raw": "azureml:clean"},
            "'azureml:clean' is not a data asset reference",
            "azureml:<name>:<version> or azureml:<name>@latest (e.g. azureml:iris:1)",
        ),
    ],
)
def test_set_values_are_checked(
    write_spec: SpecWriter, overrides: dict[str, str], message: str, expected: str
) -> None:
    issue = one_error(write_spec(TWO_JOBS), overrides)
    assert (issue.message, issue.expected) == (message, expected)


def test_uris_and_assets_as_input_paths(write_spec: SpecWriter, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FANOUT_DEFAULT_DATASTORE", "mystore")
    path = write_spec(
        """
        type: pipeline
        jobs:
          job:
            type: command
            inputs:
              a: {type: uri_file, path: "azureml://datastores/workspaceblobstore/paths/x/y.csv"}
              b: {type: uri_folder, path: "azureml://datastores/mystore/paths/folder/"}
              c: {type: uri_folder, path: "azureml://datastores/scratch/paths/folder"}
              d: {type: uri_folder, path: "azureml://subscriptions/s/resourcegroups/g/workspaces/w/datastores/scratch/paths/z"}
              e: {type: uri_file, path: "https://acct.blob.core.windows.net/c/p.csv?sv=1"}
              f: {type: uri_folder, path: "wasbs://box@acct.blob.core.windows.net/p/q"}
              g: {type: uri_folder, path: "abfss://fs@acct.dfs.core.windows.net/p"}
              h: {type: uri_folder, path: "https://acct.dfs.core.windows.net/fs/p"}
              i: {type: mltable, path: "azureml:iris-table:2"}
              j: {type: uri_folder, path: "azureml:images@latest"}
              k: {type: uri_folder, path: "file://./data/files"}
            command: echo
        """
    )
    inputs = compile_ok(path).job("job").inputs
    sources = {name: value.source for name, value in inputs.items() if isinstance(value, DataInput)}
    assert sources["a"] == BlobData(container="data", path="x/y.csv")
    assert sources["b"] == BlobData(container="data", path="folder")
    assert sources["c"] == BlobData(container="scratch", path="folder")
    assert sources["d"] == BlobData(container="scratch", path="z")
    assert sources["e"].model_dump()["url"] == "https://acct.blob.core.windows.net/c/p.csv?sv=1"
    assert sources["f"].model_dump()["url"] == "https://acct.blob.core.windows.net/box/p/q"
    assert sources["g"].model_dump()["url"] == "https://acct.blob.core.windows.net/fs/p"
    assert sources["h"].model_dump()["url"] == "https://acct.blob.core.windows.net/fs/p"
    assert sources["i"] == AssetRef(name="iris-table", version="2")
    assert sources["j"] == AssetRef(name="images", version=None)
    assert sources["k"] == LocalData(path=str(path.parent / "data" / "files"))


def test_a_pipeline_output_is_bound_once(write_spec: SpecWriter) -> None:
    path = write_spec(
        """
        type: pipeline
        outputs:
          final:
        jobs:
          a:
            type: command
            outputs: {out: "${{parent.outputs.final}}"}
            command: echo a
          b:
            type: command
            outputs: {out: "${{parent.outputs.final}}"}
            command: echo b
        """
    )
    issue = one_error(path)
    assert (issue.line, issue.path) == (11, "jobs.b.outputs.out")
    assert issue.message == "pipeline output 'final' is already bound at jobs.a.outputs.out"


def test_a_self_consuming_job_is_a_cycle(write_spec: SpecWriter) -> None:
    path = write_spec(
        """
        type: pipeline
        jobs:
          loop:
            type: command
            inputs: {x: "${{parent.jobs.loop.outputs.out}}"}
            outputs: {out: }
            command: echo ${{inputs.x}}
        """
    )
    issue = one_error(path)
    assert issue.message == "the jobs form a cycle: loop -> loop (each consumes an output of the next)"


def test_a_three_job_cycle_is_spelled_out(write_spec: SpecWriter) -> None:
    jobs = "".join(
        f'  {name}:\n    type: command\n    inputs: {{x: "${{{{parent.jobs.{dep}.outputs.out}}}}"}}\n'
        f"    outputs: {{out: }}\n    command: echo ${{{{inputs.x}}}}\n"
        for name, dep in [("a", "c"), ("b", "a"), ("c", "b"), ("d", "a")]
    )
    issue = one_error(write_spec("type: pipeline\njobs:\n" + jobs))
    assert issue.message == "the jobs form a cycle: a -> c -> b -> a (each consumes an output of the next)"
    assert (issue.line, issue.column, issue.path) == (3, 3, "jobs.a")


def test_compile_text_without_a_base_folder_needs_a_self_contained_spec(write_spec: SpecWriter) -> None:
    from shared.spec import compile_text

    path = write_spec(TWO_JOBS)
    text = path.read_text()
    with pytest.raises(Exception) as caught:
        compile_text(text, source="specs/x.yml", run_id="r1")
    issues = caught.value.issues  # type: ignore[attr-defined]
    assert [(i.file, i.line, i.path) for i in issues if i.severity == "error"] == [
        ("specs/x.yml", 5, "inputs.raw.path")
    ]
    assert "must be self-contained" in issues[0].message
    plan = compile_text(text, source="specs/x.yml", base_dir=Path(path.parent), run_id="r1")
    assert plan.source == "specs/x.yml"


def test_compile_text_without_a_base_folder_rejects_component_files(write_spec: SpecWriter) -> None:
    from shared.errors import SpecError
    from shared.spec import compile_text

    text = "type: pipeline\njobs:\n  a:\n    type: command\n    component: ./comp.yml\n"
    with pytest.raises(SpecError) as caught:
        compile_text(text, source="body.json", run_id="r1")
    (issue,) = caught.value.issues
    assert (issue.file, issue.line, issue.column, issue.path) == ("body.json", 5, 16, "jobs.a.component")
    assert issue.message == (
        "the relative path './comp.yml' cannot be resolved: this spec was submitted as text, so it must be "
        "self-contained"
    )


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf"])
def test_non_finite_numbers_are_rejected(write_spec: SpecWriter, value: str) -> None:
    issue = one_error(
        write_spec(
            f"type: pipeline\ninputs:\n  rate: {value}\njobs:\n  a: {{type: command, command: echo}}\n"
        )
    )
    assert (issue.line, issue.column, issue.path) == (3, 9, "inputs.rate")
    assert issue.message.endswith("is not a finite number")


def test_binding_an_optional_input_without_value(write_spec: SpecWriter) -> None:
    component = """
        type: command
        inputs:
          required: {type: integer}
          with_default: {type: integer, default: 7}
          optional: {type: integer, optional: true}
        command: echo ${{inputs.with_default}} $[[${{inputs.optional}}]] ${{inputs.required}}
    """
    spec = """
        type: pipeline
        inputs:
          nothing: {type: integer, optional: true}
        jobs:
          a:
            type: command
            component: ./comp.yml
            inputs:
              required: 1
              with_default: ${{parent.inputs.nothing}}
              optional: ${{parent.inputs.nothing}}
    """
    job = compile_ok(write_spec(spec, files={"comp.yml": component})).job("a")
    assert job.command is not None
    assert job.command.command == "echo 7 1"
    issue = one_error(
        write_spec(
            spec.replace("required: 1", "required: ${{parent.inputs.nothing}}"), files={"comp.yml": component}
        )
    )
    assert (issue.line, issue.path) == (9, "jobs.a.inputs.required")
    assert (
        issue.message
        == "input 'required' of the component is required, but ${{parent.inputs.nothing}} has no value"
    )


def test_job_input_bindings_are_followed_but_not_forever(write_spec: SpecWriter) -> None:
    def chain(length: int) -> str:
        jobs = "".join(
            f"  j{i}:\n    type: command\n    inputs: {{x: '${{{{parent.jobs.j{i + 1}.inputs.x}}}}'}}\n"
            f"    command: echo ${{{{inputs.x}}}}\n"
            for i in range(length)
        )
        last = f"  j{length}:\n    type: command\n    inputs: {{x: 5}}\n    command: echo\n"
        return f"type: pipeline\njobs:\n{jobs}{last}"

    plan = compile_ok(write_spec(chain(10)))
    assert plan.job("j0").command is not None
    assert plan.job("j0").command.command == "echo 5"  # type: ignore[union-attr]
    issue = one_error(write_spec(chain(40)))
    assert issue.message == "${{parent.jobs.j32.inputs.x}} ends a chain of more than 32 job-input bindings"


def test_a_data_mapping_cannot_take_a_literal_path(write_spec: SpecWriter) -> None:
    path = write_spec(
        """
        type: pipeline
        inputs:
          n: 3
        jobs:
          a:
            type: command
            inputs:
              data:
                path: ${{parent.inputs.n}}
            command: echo ${{inputs.data}}
        """
    )
    issue = one_error(path)
    assert (issue.line, issue.column, issue.path) == (9, 15, "jobs.a.inputs.data.path")
    assert issue.message == "the path of a data input must be data, but ${{parent.inputs.n}} is the literal 3"
