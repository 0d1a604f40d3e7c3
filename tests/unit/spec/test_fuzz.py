"""Property-based fuzzing of the loader and compiler: whatever the text, the only exception is SpecError.

Generators: arbitrary text; YAML documents built from the spec's own vocabulary (keys, types,
bindings, sizes), alone and as job bodies; line-level mutations of the seed pipeline; and random edits
of a valid parallel job, which reach the binding and freezing phases. Run longer with
SPEC_FUZZ_EXAMPLES=3000.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.errors import SpecError
from shared.plan import RunPlan
from shared.spec import compile_text

from .conftest import DEFAULT_FILES, SEED, write_files

FUZZ = settings(
    max_examples=int(os.environ.get("SPEC_FUZZ_EXAMPLES", "100")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

KEYS = [
    "type", "jobs", "inputs", "outputs", "settings", "task", "code", "entry_script", "program_arguments",
    "append_row_to", "input_data", "mini_batch_size", "partition_keys", "resources", "instance_count",
    "retry_settings", "max_retries", "timeout", "mode", "path", "default", "optional", "component",
    "command", "environment", "conda_file", "image", "compute", "default_compute", "limits", "name",
    "version", "environment_variables", "error_threshold", "logging_level", "max_concurrency_per_instance",
    "mini_batch_error_threshold", "tags", "display_name", "is_deterministic", "$schema", "score", "data",
]  # fmt: skip
SCALARS = [
    "pipeline", "parallel", "command", "run_function", "uri_folder", "uri_file", "mltable", "integer",
    "string", "ro_mount", "direct", "download", "rw_mount", "./src", "./data/files", "./data/table",
    "score.py", "10kb", "10 kb", "5", "-1", "azureml:cpu-cluster", "azureml:iris:1", "azureml:x@latest",
    "azureml://datastores/workspaceblobstore/paths/a/b", "https://acct.blob.core.windows.net/c/p",
    "${{inputs.data}}", "${{outputs.result}}", "${{parent.inputs.x}}",
    "${{parent.jobs.score.outputs.result}}", "${{parent.outputs.y}}", "${{name}}", "${{bogus}}",
    "$[[--x ${{inputs.x}}]]", "--error_threshold 5", "--allowed_failed_percent",
    "python x.py ${{inputs.data}}", "",
]  # fmt: skip

scalars = st.one_of(
    st.sampled_from(SCALARS),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.text(max_size=20),
)
documents = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=8)), children, max_size=6),
    ),
    max_leaves=40,
)


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fuzz")
    write_files(root, DEFAULT_FILES)
    shutil.copytree(SEED, root / "seed")
    return root


def _compile(text: str, base: Path | None) -> None:
    issues = []
    try:
        result = compile_text(text, source="fuzz.yml", base_dir=base, run_id="fuzz")
    except SpecError as exc:
        issues = exc.issues
        assert issues, "a SpecError carries its issues"
    else:
        assert isinstance(result, RunPlan)
        assert RunPlan.model_validate_json(result.model_dump_json()) == result
    for issue in issues:
        assert issue.line >= 1
        assert issue.column >= 1
        assert issue.message
        str(issue).encode("utf-8")  # printable and storable


@FUZZ
@given(text=st.text(st.characters(exclude_categories=()), max_size=300))
def test_arbitrary_text_only_raises_spec_error(text: str, base_dir: Path) -> None:
    _compile(text, base_dir)


@FUZZ
@given(document=documents, self_contained=st.booleans())
def test_documents_from_the_spec_vocabulary_only_raise_spec_error(
    document: object, self_contained: bool, base_dir: Path
) -> None:
    text = json.dumps(document, allow_nan=True)
    _compile(text, None if self_contained else base_dir)


@FUZZ
@given(document=documents)
def test_pipelines_with_fuzzed_jobs_only_raise_spec_error(document: object, base_dir: Path) -> None:
    pipeline = {"type": "pipeline", "inputs": {"x": 3}, "jobs": {"score": document}}
    if isinstance(document, dict):
        pipeline["jobs"] = {
            "score": {"type": "parallel", **document},
            "other": {"type": "command", **document},
        }
    _compile(json.dumps(pipeline, allow_nan=True), base_dir)


@FUZZ
@given(data=st.data())
def test_mutations_of_the_seed_pipeline_only_raise_spec_error(data: st.DataObject, base_dir: Path) -> None:
    lines = (SEED / "pipeline.yml").read_text().splitlines()
    for _ in range(data.draw(st.integers(min_value=1, max_value=4))):
        index = data.draw(st.integers(min_value=0, max_value=len(lines) - 1))
        action = data.draw(st.sampled_from(["delete", "duplicate", "replace", "indent", "dedent"]))
        if action == "delete" and len(lines) > 1:
            del lines[index]
        elif action == "duplicate":
            lines.insert(index, lines[index])
        elif action == "replace":
            key = lines[index].split(":", 1)[0]
            lines[index] = f"{key}: {data.draw(st.sampled_from(SCALARS))}"
        elif action == "indent":
            lines[index] = "  " + lines[index]
        else:
            lines[index] = lines[index][2:]
    _compile("\n".join(lines) + "\n", base_dir / "seed")


VALID_JOB: dict[str, object] = {
    "type": "parallel",
    "inputs": {"data": {"type": "uri_folder", "path": "./data/files"}, "n": "${{parent.inputs.x}}"},
    "outputs": {"result": {"type": "uri_file"}},
    "input_data": "${{inputs.data}}",
    "mini_batch_size": "10kb",
    "retry_settings": {"max_retries": 2, "timeout": 60},
    "task": {
        "code": "./src",
        "entry_script": "score.py",
        "program_arguments": "--n ${{inputs.n}} --error_threshold 5",
        "append_row_to": "${{outputs.result}}",
    },
}


def _paths(node: object, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found.extend(_paths(value, (*prefix, key)))
    return found


@FUZZ
@given(data=st.data())
def test_edits_of_a_valid_job_only_raise_spec_error(data: st.DataObject, base_dir: Path) -> None:
    job = copy.deepcopy(VALID_JOB)
    for _ in range(data.draw(st.integers(min_value=1, max_value=3))):
        path = data.draw(st.sampled_from(_paths(job)))
        parent: dict[str, object] = job
        for key in path[:-1]:
            parent = parent[key]  # type: ignore[assignment]
        if data.draw(st.booleans()):
            parent[path[-1]] = data.draw(documents)
        else:
            parent[data.draw(st.sampled_from(KEYS))] = data.draw(scalars)
    pipeline = {"type": "pipeline", "inputs": {"x": 3}, "jobs": {"score": job}}
    _compile(json.dumps(pipeline, allow_nan=True), base_dir)
