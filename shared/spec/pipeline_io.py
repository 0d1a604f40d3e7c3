"""Pipeline-level inputs (with ``--set`` overrides) and outputs.

A pipeline input is a bare literal (``learning_rate: 0.01``), a declared literal
(``{type: integer, default: 3}``) or data (``{type: uri_folder, path: ./data, mode: download}``).
``--set inputs.x=value`` (or ``--set x=value``) replaces the default: literal values are converted to
the input's type (an error when they cannot be), data values are paths or URIs with the input's type.
Relative paths given with ``--set`` are relative to the current directory, like any command-line path.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared.plan import DataInput, DataType, InputMode, LiteralInput, LiteralType
from shared.spec.bindings import EXPRESSION_RE
from shared.spec.context import Context
from shared.spec.fields import NAME_RE, describe
from shared.spec.issues import Source, Where, suggest
from shared.spec.locations import data_location
from shared.spec.schema import InputSpec, OutputSpec
from shared.spec.validation import validate
from shared.spec.values import (
    CoercionError,
    Value,
    coerce_literal,
    literal_input,
    parse_input_mode,
    parse_type,
)

_DECLARATION_EXAMPLE = (
    "a literal (e.g. 0.01), {type: integer, default: 3}, or {type: uri_folder, path: ./data}"
)


@dataclass(frozen=True)
class PipelineInput:
    """A pipeline input after ``--set``: its value (plan None when optional and unset) and declared type."""

    value: Value
    declared: LiteralType | DataType | None
    mode: InputMode = InputMode.RO_MOUNT
    spec: InputSpec | None = None


def pipeline_inputs(
    raw: dict[str, Any] | None, where: Where, ctx: Context, overrides: Mapping[str, str]
) -> dict[str, PipelineInput]:
    """Every pipeline input, overrides applied."""
    pending = _normalise_overrides(overrides, set((raw or {}).keys()), ctx)
    result: dict[str, PipelineInput] = {}
    for name, spec in (raw or {}).items():
        at = where / name
        if not NAME_RE.match(name):
            ctx.issues.error(
                at, f"{name!r} is not a valid input name", "letters, digits, underscores", key=True
            )
            continue
        declared = _declare(name, spec, at, ctx, overridden=name in pending)
        if declared is not None and name in pending:
            declared = _override(name, declared, pending[name], ctx)
        result[name] = declared or PipelineInput(Value(None, at, broken=True), None)
    return result


def _normalise_overrides(overrides: Mapping[str, str], names: set[str], ctx: Context) -> dict[str, str]:
    source = Source("--set")
    pending: dict[str, str] = {}
    for key, value in overrides.items():
        name = key[len("inputs.") :] if key.startswith("inputs.") else key
        at = Where(source, ("inputs", name))
        if "." in name or name not in names:
            hint = suggest(name, names) if names else "this pipeline has no inputs"
            ctx.issues.error(at, f"--set {key}: the pipeline has no input {name!r}", hint)
            continue
        pending[name] = value
    return pending


def _declare(name: str, spec: Any, at: Where, ctx: Context, *, overridden: bool) -> PipelineInput | None:
    issues = ctx.issues
    if isinstance(spec, str) and EXPRESSION_RE.search(spec):
        issues.error(at, "a pipeline input cannot be a binding", _DECLARATION_EXAMPLE)
        return None
    if spec is None:
        if overridden:
            return PipelineInput(Value(None, at), None)
        issues.error(at, f"pipeline input '{name}' has no value", _DECLARATION_EXAMPLE)
        return None
    if not isinstance(spec, dict):
        plan = literal_input(spec, None, at, issues)
        return PipelineInput(Value(plan, at), plan.type) if plan is not None else None
    model = validate(InputSpec, spec, at, issues)
    if model is None:
        return None
    if model.type is None and model.path is None:
        issues.error(
            at, f"pipeline input '{name}' needs a type", "type: uri_folder (or integer, string...)", key=True
        )
        return None
    declared = parse_type(model.type, at / "type", issues) if model.type is not None else DataType.URI_FOLDER
    if declared is None:
        return None
    if isinstance(declared, LiteralType):
        return _literal_declaration(name, model, declared, at, ctx, overridden=overridden)
    return _data_declaration(name, model, declared, at, ctx, overridden=overridden)


def _literal_declaration(
    name: str, model: InputSpec, declared: LiteralType, at: Where, ctx: Context, *, overridden: bool
) -> PipelineInput | None:
    issues = ctx.issues
    if model.path is not None or model.mode is not None:
        issues.error(
            at / ("path" if model.path is not None else "mode"),
            "path/mode are for data inputs",
            f"default: <a {declared.value}>",
            key=True,
        )
        return None
    if model.default is None:
        if model.optional or overridden:
            return PipelineInput(Value(None, at), declared, spec=model)
        issues.error(
            at, f"pipeline input '{name}' has no default", f"default: <a {declared.value}>", key=True
        )
        return None
    plan = literal_input(model.default, declared, at / "default", issues)
    if plan is None or not check_literal_limits(plan, model, at / "default", ctx):
        return None
    return PipelineInput(Value(plan, at / "default"), declared, spec=model)


def check_literal_limits(plan: LiteralInput, model: InputSpec, where: Where, ctx: Context) -> bool:
    """``enum``/``min``/``max`` of a declared literal input."""
    value = plan.value
    if model.enum is not None and str(value) not in model.enum:
        ctx.issues.error(
            where, f"{value!r} is not one of the allowed values", "one of " + ", ".join(model.enum)
        )
        return False
    if isinstance(value, int | float) and not isinstance(value, bool):
        if model.min is not None and value < model.min:
            ctx.issues.error(where, f"{value} is below the minimum {model.min:g}", f"a value ≥ {model.min:g}")
            return False
        if model.max is not None and value > model.max:
            ctx.issues.error(where, f"{value} is above the maximum {model.max:g}", f"a value ≤ {model.max:g}")
            return False
    return True


def _data_declaration(
    name: str, model: InputSpec, declared: DataType, at: Where, ctx: Context, *, overridden: bool
) -> PipelineInput | None:
    issues = ctx.issues
    mode = InputMode.RO_MOUNT
    if model.mode is not None:
        parsed = parse_input_mode(model.mode, at / "mode", issues)
        if parsed is None:
            return None
        mode = parsed
    if model.default is not None:
        issues.error(at / "default", "data inputs take a path, not a default", "path: ./data", key=True)
        return None
    if model.path is None:
        if model.optional or overridden:
            return PipelineInput(Value(None, at), declared, mode)
        issues.error(at, f"pipeline input '{name}' has no path", "path: ./data (or a URI)", key=True)
        return None
    if EXPRESSION_RE.search(model.path):
        issues.error(at / "path", "a pipeline input cannot be a binding", "a path or URI")
        return None
    source = data_location(model.path, declared, ctx.base_dir, at / "path", issues, confine=ctx.confine)
    if source is None:
        return None
    return PipelineInput(
        Value(DataInput(type=declared, mode=mode, source=source), at / "path"), declared, mode
    )


def _override(name: str, declared: PipelineInput, text: str, ctx: Context) -> PipelineInput | None:
    at = Where(Source("--set"), ("inputs", name))
    issues = ctx.issues
    kind = declared.declared
    if kind is None or isinstance(kind, LiteralType):
        target = kind or LiteralType.STRING
        try:
            coerced = coerce_literal(text, target)
        except CoercionError as exc:
            issues.error(at, f"--set inputs.{name}: {exc.message}", exc.expected)
            return None
        plan = LiteralInput(type=target, value=coerced)
        if declared.spec is not None and not check_literal_limits(plan, declared.spec, at, ctx):
            return None
        return PipelineInput(Value(plan, at), target, spec=declared.spec)
    source = data_location(text, kind, ctx.override_dir, at, issues, confine=ctx.confine)
    if source is None:
        return None
    data = DataInput(type=kind, mode=declared.mode, source=source)
    return PipelineInput(Value(data, at), kind, declared.mode)


@dataclass(frozen=True)
class PipelineOutput:
    """A declared pipeline output and where it is in the spec (for errors when it is bound)."""

    spec: OutputSpec
    where: Where


def pipeline_outputs(raw: dict[str, Any] | None, where: Where, ctx: Context) -> dict[str, PipelineOutput]:
    """Every pipeline output (bound later from a job's ``outputs: {x: ${{parent.outputs.y}}}``)."""
    result: dict[str, PipelineOutput] = {}
    for name, spec in (raw or {}).items():
        at = where / name
        if not NAME_RE.match(name):
            ctx.issues.error(
                at, f"{name!r} is not a valid output name", "letters, digits, underscores", key=True
            )
            continue
        if spec is None:
            result[name] = PipelineOutput(OutputSpec(), at)
            continue
        model = None
        if not isinstance(spec, dict):
            ctx.issues.error(at, f"expected an output mapping, got {describe(spec)}", "{type: uri_folder}")
        else:
            model = validate(OutputSpec, spec, at, ctx.issues)
        # An invalid output is kept (empty) so that the jobs binding it report nothing more.
        result[name] = PipelineOutput(model or OutputSpec(), at)
    return result
