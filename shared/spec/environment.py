"""A job's code folder and environment.

``code:`` is a local folder (relative to the file that names it) or an uploaded snapshot
(``azureml://datastores/snapshots/paths/<id>``). ``environment:`` is a registered reference, kept as
given, or an inline mapping whose ``conda_file`` (a path, or the file's content inline in a bundled spec)
is read and parsed here so the plan carries its pip requirements. Locally, agents run with the current
interpreter whatever the environment says; Batch pools use ``image`` for container tasks.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

from shared.plan import CodeRef, EnvironmentPlan
from shared.spec.context import Context
from shared.spec.fields import describe
from shared.spec.issues import Where
from shared.spec.loader import MAX_TEXT_BYTES, load_text
from shared.spec.locations import code_location, environment_reference, local_path
from shared.spec.schema import EnvironmentSpec
from shared.spec.validation import validate


def code_ref(text: str, base_dir: Path | None, where: Where, ctx: Context) -> CodeRef | None:
    """A job's ``code:`` as a local folder or a stored snapshot (None when invalid; error recorded)."""
    found = code_location(text, base_dir, where, ctx.issues, confine=ctx.confine)
    if found is None:
        return None
    kind, value = found
    return CodeRef(local_path=value) if kind == "local" else CodeRef(snapshot=value)


def check_entry_script(script: str, code: CodeRef | None, where: Where, ctx: Context) -> str | None:
    """The entry script's path relative to the code folder (checked to exist when the folder is local)."""
    posix = PurePosixPath(script.strip().replace("\\", "/"))
    if not script.strip() or posix.is_absolute() or ".." in posix.parts:
        ctx.issues.error(
            where, f"{script!r} is not a path inside the code folder", "e.g. score.py or src/score.py"
        )
        return None
    if not posix.name.endswith(".py"):
        ctx.issues.error(where, f"the entry script {script!r} is not a Python file", "a .py file")
        return None
    if code is not None and code.local_path is not None and not (Path(code.local_path) / posix).is_file():
        ctx.issues.error(
            where,
            f"the entry script {script!r} is not in the code folder {code.local_path}",
            "a file that exists in the code folder",
        )
        return None
    return str(posix)


def environment_plan(value: Any, base_dir: Path | None, where: Where, ctx: Context) -> EnvironmentPlan | None:
    """The environment of a job (None with an error when invalid)."""
    issues = ctx.issues
    if isinstance(value, str):
        reference = environment_reference(value, where, issues)
        return EnvironmentPlan(reference=reference) if reference is not None else None
    if not isinstance(value, dict):
        issues.error(
            where,
            f"expected an environment, got {describe(value)}",
            "azureml:<name>:<version> or {image: ...}",
        )
        return None
    spec = validate(EnvironmentSpec, value, where, issues, what="an environment mapping")
    if spec is None:
        return None
    conda: dict[str, object] | None = None
    if spec.conda_file is not None:
        conda = _conda(spec.conda_file, base_dir, where / "conda_file", ctx)
        if conda is None:
            return None
    if spec.image is None and conda is None:
        issues.error(
            where, "an inline environment needs an image or a conda_file", "image: <container image>"
        )
        return None
    return EnvironmentPlan(image=spec.image, conda_file=conda, pip_requirements=_pip_lines(conda))


def _conda(value: Any, base_dir: Path | None, where: Where, ctx: Context) -> dict[str, object] | None:
    issues = ctx.issues
    if isinstance(value, dict):
        data: Any = value
        at = where
    elif isinstance(value, str):
        path = local_path(value, base_dir, where, issues, confine=ctx.confine)
        if path is None:
            return None
        if not path.is_file():
            issues.error(
                where, f"the conda file {value!r} does not exist (looked for {path})", "an existing file"
            )
            return None
        try:
            raw = path.read_bytes()
            text = raw.decode("utf-8") if len(raw) <= MAX_TEXT_BYTES else ""
        except (OSError, UnicodeDecodeError) as exc:
            issues.error(where, f"the conda file {value!r} cannot be read: {exc}", "a UTF-8 YAML file")
            return None
        shown = str(Path(where.source.name).parent / value) if not Path(value).is_absolute() else value
        data, source = load_text(text, shown, issues)
        if data is None:
            return None
        at = Where(source)
    else:
        issues.error(where, f"expected a conda file path, got {describe(value)}", "./environment/conda.yml")
        return None
    if not isinstance(data, dict):
        issues.error(at, f"a conda file is a mapping, got {describe(data)}", "name/channels/dependencies")
        return None
    dependencies = data.get("dependencies", [])
    if not isinstance(dependencies, list):
        issues.error(at / "dependencies", "dependencies must be a list", "- python=3.11")
        return None
    return dict(data)


def _pip_lines(conda: dict[str, object] | None) -> list[str]:
    lines: list[str] = []
    for item in conda.get("dependencies", []) if conda else []:  # type: ignore[attr-defined]
        if isinstance(item, dict) and isinstance(item.get("pip"), list):
            lines.extend(str(line) for line in item["pip"])
    return lines
