"""Bundling: one self-contained spec from a pipeline file, its component files and conda files.

``bundle_file`` validates the spec (a :class:`SpecError` stops it before anything is rewritten), then
edits the YAML in place with ruamel's round-trip loader, so comments and layout survive:

- ``component: ./x.yml`` becomes the component's mapping, its own local paths resolved against the
  component file's folder;
- ``conda_file: ./env.yml`` becomes the conda file's mapping;
- every local path (``code:``, a data input's ``path:``, a component input's default path) becomes
  absolute — or whatever ``rewrite(PathUse(...))`` returns (the submitter uploads the path
  content-addressed and answers its ``azureml://`` URI).

``compile_text(bundle_file(p), source=..., run_id=r)`` gives the plan ``compile_file(p, run_id=r)``
gives, apart from the rewritten locations.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ruamel.yaml import YAML

from shared.plan import DataType, LiteralType
from shared.spec.bindings import EXPRESSION_RE
from shared.spec.compiler import compile_file
from shared.spec.issues import format_path
from shared.spec.locations import is_local_path


@dataclass(frozen=True)
class PathUse:
    """One local path of a spec, as passed to ``bundle_file``'s ``rewrite``.

    Attributes:
        kind: ``"code"`` (a job's code folder) or ``"data"`` (an input's file or folder).
        path: the absolute local path.
        type: the data type of a data input (None for code).
        where: the JSON path of the value in the spec, e.g. ``jobs.score.task.code``.
    """

    kind: Literal["code", "data"]
    path: Path
    type: DataType | None
    where: str


Rewrite = Callable[[PathUse], str]


def bundle_file(path: Path, rewrite: Rewrite | None = None, *, confine_to: Path | None = None) -> str:
    """The self-contained YAML text of the pipeline at ``path``.

    Args:
        path: the pipeline file.
        rewrite: called once per local path use; returns what to write instead. Default: the absolute
            path.
        confine_to: the folder every local path must stay inside (see :func:`compile_file`).

    Raises:
        SpecError: the spec is invalid.
    """
    path = Path(path)
    compile_file(path, run_id="bundle", confine_to=confine_to)
    yaml = _yaml()
    root = yaml.load(path.read_text(encoding="utf-8"))
    _Bundler(yaml, rewrite, expand_user=confine_to is None).pipeline(root, path.parent.absolute())
    out = io.StringIO()
    yaml.dump(root, out)
    return out.getvalue()


def _yaml() -> YAML:
    yaml = YAML(typ="rt", pure=True)
    yaml.width = 4096
    yaml.preserve_quotes = True
    return yaml


@dataclass
class _Bundler:
    yaml: YAML
    rewrite: Rewrite | None
    expand_user: bool = True

    def use(
        self,
        kind: Literal["code", "data"],
        text: str,
        base: Path,
        dtype: DataType | None,
        where: tuple[Any, ...],
    ) -> str:
        local = Path(text[len("file://") :] if text.startswith("file://") else text.removeprefix("file:"))
        absolute = Path(_normpath(base / (local.expanduser() if self.expand_user else local)))
        if self.rewrite is None:
            return str(absolute)
        return self.rewrite(PathUse(kind=kind, path=absolute, type=dtype, where=format_path(where)))

    def pipeline(self, root: Any, base: Path) -> None:
        for name, spec in (root.get("inputs") or {}).items():
            self.data_input(spec, base, ("inputs", name), None)
        for name, job in (root.get("jobs") or {}).items():
            self.job(job, base, ("jobs", name))

    def job(self, job: Any, base: Path, where: tuple[Any, ...]) -> None:
        component = job.get("component")
        declared: dict[str, Any] = {}
        if isinstance(component, str) and is_local_path(component.strip()):
            component_path = Path(_normpath(base / component.strip()))
            loaded = self.yaml.load(component_path.read_text(encoding="utf-8"))
            self.component(loaded, component_path.parent, (*where, "component"))
            job["component"] = loaded
            component = loaded
        elif isinstance(component, dict):
            self.component(component, base, (*where, "component"))
        if isinstance(component, dict):
            declared = dict(component.get("inputs") or {})
        for name, spec in (job.get("inputs") or {}).items():
            self.data_input(spec, base, (*where, "inputs", name), declared.get(name))
        self.body(job, base, where)

    def component(self, component: Any, base: Path, where: tuple[Any, ...]) -> None:
        for name, spec in (component.get("inputs") or {}).items():
            if isinstance(spec, dict):
                key = "path" if spec.get("path") is not None else "default"
                self.data_value(spec, key, base, (*where, "inputs", name), _data_type(spec, None))
        self.body(component, base, where)

    def body(self, node: Any, base: Path, where: tuple[Any, ...]) -> None:
        holder, at = node, where
        if isinstance(node.get("task"), dict):
            holder, at = node["task"], (*where, "task")
        code = holder.get("code")
        if isinstance(code, str) and is_local_path(code.strip()):
            holder["code"] = self.use("code", code.strip(), base, None, (*at, "code"))
        environment = holder.get("environment")
        if isinstance(environment, dict):
            conda = environment.get("conda_file")
            if isinstance(conda, str) and is_local_path(conda.strip()):
                conda_path = Path(_normpath(base / conda.strip()))
                environment["conda_file"] = self.yaml.load(conda_path.read_text(encoding="utf-8"))

    def data_input(self, spec: Any, base: Path, where: tuple[Any, ...], declared: Any) -> None:
        if isinstance(spec, dict):
            self.data_value(spec, "path", base, where, _data_type(spec, declared))

    def data_value(
        self, spec: Any, key: str, base: Path, where: tuple[Any, ...], dtype: DataType | None
    ) -> None:
        text = spec.get(key)
        if dtype is None or not isinstance(text, str) or EXPRESSION_RE.search(text):
            return
        if is_local_path(text.strip()):
            spec[key] = self.use("data", text.strip(), base, dtype, (*where, key))


def _data_type(spec: Any, declared: Any) -> DataType | None:
    """The data type of an input mapping (None for literal inputs)."""
    text = spec.get("type")
    if text is None and isinstance(declared, dict):
        text = declared.get("type")
    if text is None:
        return DataType.URI_FOLDER
    if text in {t.value for t in LiteralType}:
        return None
    try:
        return DataType(text)
    except ValueError:
        return None


def _normpath(path: Path) -> str:
    import os

    return os.path.normpath(str(path.absolute()))
