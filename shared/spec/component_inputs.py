"""A component's input declarations: type, default, optional flag and default mode, each checked.

A component job's inputs are declared by its component (``inputs: {x: {type: integer, default: 3}}``)
and bound by the job. This module reads the declarations — a valid name, a type, a default that fits the
type (a data default is a location, relative to the component's own file) — into :class:`Declaration`
values; :mod:`shared.spec.job_io` then checks each job's values against them. Kept apart because a
declaration depends only on the component, never on bindings or other jobs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.plan import DataInput, DataType, InputMode, LiteralType
from shared.spec.components import JobSource
from shared.spec.context import Context
from shared.spec.fields import NAME_RE, describe
from shared.spec.issues import Where
from shared.spec.locations import data_location
from shared.spec.schema import InputSpec
from shared.spec.validation import validate
from shared.spec.values import Value, literal_input, parse_input_mode, parse_type


@dataclass(frozen=True)
class Declaration:
    """A component input: its type, default, optional flag and default mode."""

    type: LiteralType | DataType
    optional: bool
    default: Value | None
    mode: InputMode | None
    spec: InputSpec
    where: Where


def component_declarations(job: JobSource, ctx: Context) -> tuple[dict[str, Declaration], set[str]]:
    """The input declarations of ``job``'s component, and the names whose declaration is invalid.

    ``job`` must be a component job. Every problem is recorded in ``ctx.issues`` at the declaration's
    location; an invalid declaration leaves its name in the second result, so the job's input of that
    name is marked broken instead of being reported as unknown.
    """
    assert job.component is not None
    assert job.component_where is not None
    base_dir = job.layered.layers[-1].base_dir
    result: dict[str, Declaration] = {}
    broken: set[str] = set()
    for name, raw in (job.component.inputs or {}).items():
        at = job.component_where / "inputs" / name
        declaration = _declaration(name, raw, at, base_dir, ctx)
        if declaration is None:
            broken.add(name)
        else:
            result[name] = declaration
    return result, broken


def _declaration(name: str, raw: Any, at: Where, base_dir: Path | None, ctx: Context) -> Declaration | None:
    issues = ctx.issues
    if not NAME_RE.match(name):
        issues.error(at, f"{name!r} is not a valid input name", "letters, digits, underscores", key=True)
        return None
    if not isinstance(raw, dict):
        issues.error(at, f"expected an input declaration, got {describe(raw)}", "{type: uri_folder}")
        return None
    errors_before = len(issues.errors)
    spec = validate(InputSpec, raw, at, issues)
    if spec is None or len(issues.errors) > errors_before:
        return None
    if spec.type is None:
        issues.error(at, f"input '{name}' has no type", "type: uri_folder (or integer, string...)", key=True)
        return None
    kind = parse_type(spec.type, at / "type", issues)
    if kind is None:
        return None
    mode = parse_input_mode(spec.mode, at / "mode", issues) if spec.mode is not None else None
    default: Value | None = None
    if isinstance(kind, LiteralType) and spec.default is not None:
        plan = literal_input(spec.default, kind, at / "default", issues)
        if plan is None:
            return None
        default = Value(plan, at / "default")
    elif isinstance(kind, DataType) and (spec.path or spec.default) is not None:
        key = "path" if spec.path is not None else "default"
        source = data_location(str(getattr(spec, key)), kind, base_dir, at / key, issues, confine=ctx.confine)
        if source is None:
            return None
        default = Value(DataInput(type=kind, mode=mode or InputMode.RO_MOUNT, source=source), at / key)
    return Declaration(kind, bool(spec.optional), default, mode, spec, at)
