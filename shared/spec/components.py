"""Jobs and their components: validating a ``jobs:`` entry and loading the component it uses.

A job is inline (everything in the pipeline file) or uses a component: ``component: ./score.yml`` (a
file, relative to the file that names it; errors inside it point at its own lines), or the component
inline as a mapping (what a bundled spec contains). Registered components (``azureml:name:version``)
are not available: Fanout has no component registry.

The job's keys override the component's run settings (thresholds, retries, resources, environment
variables...); the component alone defines the code: ``task`` (parallel), ``command``/``code``/
``environment`` (command).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.plan import JobType
from shared.spec.context import Context, Layer, Layered
from shared.spec.fields import describe
from shared.spec.issues import Where
from shared.spec.loader import MAX_TEXT_BYTES, load_text
from shared.spec.locations import local_path
from shared.spec.schema import (
    CommandComponentSpec,
    CommandJobSpec,
    ParallelComponentSpec,
    ParallelJobSpec,
)
from shared.spec.validation import validate

_JOB_MODELS: dict[str, type[ParallelJobSpec] | type[CommandJobSpec]] = {
    "parallel": ParallelJobSpec,
    "command": CommandJobSpec,
}
_COMPONENT_MODELS: dict[str, type[ParallelComponentSpec] | type[CommandComponentSpec]] = {
    "parallel": ParallelComponentSpec,
    "command": CommandComponentSpec,
}
_COMPONENT_ONLY = {"parallel": ("task",), "command": ("command", "code", "environment")}
_UNSUPPORTED_TYPES = ("pipeline", "sweep", "spark", "automl", "import", "data_transfer", "flow")


@dataclass(frozen=True)
class JobSource:
    """A validated job: its own model and, when it uses one, its component's, as layers."""

    name: str
    kind: JobType
    where: Where
    job: ParallelJobSpec | CommandJobSpec
    component: ParallelComponentSpec | CommandComponentSpec | None
    component_where: Where | None
    layered: Layered


def load_job(name: str, raw: Any, where: Where, ctx: Context) -> JobSource | None:
    """Validate one ``jobs:`` entry (and its component). None when it is unusable (errors recorded)."""
    issues = ctx.issues
    if not isinstance(raw, dict):
        issues.error(where, f"expected a job mapping, got {describe(raw)}", "type: parallel or type: command")
        return None
    kind = raw.get("type")
    if kind is None:
        issues.error(where, f"job '{name}' has no type", "type: parallel or type: command", key=True)
        return None
    if not isinstance(kind, str) or kind not in _JOB_MODELS:
        what = "is not supported by Fanout" if kind in _UNSUPPORTED_TYPES else "is not a job type"
        issues.error(where / "type", f"job type {kind!r} {what}", "parallel or command")
        return None
    job = validate(_JOB_MODELS[kind], raw, where, issues, what=f"a {kind} job")
    if job is None:
        return None
    layers = [
        Layer(job, where, ctx.base_dir, frozenset(_COMPONENT_ONLY[kind]) if job.component else frozenset())
    ]
    component: ParallelComponentSpec | CommandComponentSpec | None = None
    component_where: Where | None = None
    if job.component is not None:
        loaded = _load_component(kind, job.component, where / "component", ctx)
        if loaded is None:
            return None
        component, component_where, component_base = loaded
        layers.append(Layer(component, component_where, component_base))
        for field in _COMPONENT_ONLY[kind]:
            if getattr(job, field, None) is not None:
                issues.error(
                    where / field,
                    f"'{field}' is defined by the component and cannot be set on the job",
                    f"set {field} in the component",
                    key=True,
                )
    return JobSource(
        name=name,
        kind=JobType(kind),
        where=where,
        job=job,
        component=component,
        component_where=component_where,
        layered=Layered(tuple(layers)),
    )


def _load_component(
    kind: str, ref: Any, where: Where, ctx: Context
) -> tuple[ParallelComponentSpec | CommandComponentSpec, Where, Path | None] | None:
    issues = ctx.issues
    if isinstance(ref, dict):
        data, component_where, base_dir = ref, where, ctx.base_dir
    elif isinstance(ref, str) and ref.strip().startswith("azureml:"):
        issues.error(
            where,
            f"registered components ({ref}) are not available: Fanout has no component registry",
            "a local component file (component: ./component.yml) or the component inline",
        )
        return None
    elif isinstance(ref, str) and ref.strip():
        loaded = _read_component_file(ref.strip(), where, ctx)
        if loaded is None:
            return None
        data, component_where, base_dir = loaded
    else:
        issues.error(where, f"expected a component file path, got {describe(ref)}", "./component.yml")
        return None
    if not isinstance(data, dict):
        issues.error(component_where, f"expected a component mapping, got {describe(data)}", f"type: {kind}")
        return None
    declared = data.get("type")
    if declared is None:
        issues.error(component_where, "the component has no type", f"type: {kind}", key=True)
        return None
    if declared != kind:
        issues.error(
            component_where / "type",
            f"the job is type {kind} but its component is type {declared!r}",
            f"a {kind} component",
        )
        return None
    model = validate(_COMPONENT_MODELS[kind], data, component_where, issues, what=f"a {kind} component")
    if model is None:
        return None
    return model, component_where, base_dir


def _read_component_file(ref: str, where: Where, ctx: Context) -> tuple[Any, Where, Path] | None:
    issues = ctx.issues
    path = local_path(ref, ctx.base_dir, where, issues, confine=ctx.confine)
    if path is None:
        return None
    key = str(path)
    if key in ctx.loaded_components:
        return ctx.loaded_components[key]  # type: ignore[no-any-return]
    if not path.is_file():
        issues.error(
            where, f"the component file {ref!r} does not exist (looked for {path})", "an existing file"
        )
        return None
    try:
        raw_bytes = path.read_bytes()
        if len(raw_bytes) > MAX_TEXT_BYTES:
            issues.error(where, f"the component file {ref!r} is too large", "a spec of a few kilobytes")
            return None
        text = raw_bytes.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        issues.error(where, f"the component file {ref!r} cannot be read: {exc}", "a UTF-8 text file")
        return None
    shown = os.path.normpath(os.path.join(os.path.dirname(where.source.name), ref))
    data, source = load_text(text, shown if not os.path.isabs(ref) else str(path), issues)
    if data is None:
        return None
    result = (data, Where(source), path.parent)
    ctx.loaded_components[key] = result
    return result
