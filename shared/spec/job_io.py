"""A job's inputs and outputs: declarations, values, bindings, and the edges they create.

Inputs of an inline job are declared by the values given; inputs of a component job are declared by
the component (type, default, optional, mode) and bound by the job. A value is a literal, a binding
(``${{parent.inputs.x}}``, ``${{parent.jobs.j.outputs.o}}``, ``${{parent.jobs.j.inputs.x}}``) or a
data mapping whose ``path`` may itself be such a binding. Every binding is checked: the name exists,
the kind fits (data where data is needed), the types are compatible.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.plan import DataInput, DataType, InputMode, JobOutputRef, LiteralInput, LiteralType
from shared.spec.bindings import EXPRESSION_RE, ExpressionError, whole_expression
from shared.spec.components import JobSource
from shared.spec.context import Context
from shared.spec.fields import NAME_RE, describe
from shared.spec.issues import Where, suggest
from shared.spec.locations import data_location
from shared.spec.pipeline_io import PipelineInput, PipelineOutput, check_literal_limits
from shared.spec.schema import InputSpec, OutputSpec
from shared.spec.validation import validate
from shared.spec.values import Value, conform, literal_input, parse_enum, parse_input_mode, parse_type

#: Longest chain of ``${{parent.jobs.<job>.inputs.<x>}}`` bindings followed.
MAX_INPUT_CHAIN = 32
_PARENT_FORMS = "${{parent.inputs.<x>}} or ${{parent.jobs.<job>.outputs.<o>}}"


@dataclass(frozen=True)
class Declaration:
    """A component input: its type, default, optional flag and default mode."""

    type: LiteralType | DataType
    optional: bool
    default: Value | None
    mode: InputMode | None
    spec: InputSpec
    where: Where


@dataclass(frozen=True)
class OutputDraft:
    """A job output before its location is fixed: its layers (job, pipeline output, component)."""

    name: str
    type: DataType
    layers: tuple[tuple[OutputSpec, Where], ...]
    where: Where
    pipeline_output: str | None = None
    broken: bool = False


@dataclass
class Resolver:
    """Resolves every job's inputs and outputs, memoised, with the edges between jobs."""

    ctx: Context
    inputs: dict[str, PipelineInput]
    outputs: dict[str, PipelineOutput]
    jobs: dict[str, JobSource]
    edges: dict[str, set[str]] = field(default_factory=dict)
    _outputs: dict[str, dict[str, OutputDraft]] = field(default_factory=dict)
    _inputs: dict[str, dict[str, Value]] = field(default_factory=dict)
    _resolving: list[str] = field(default_factory=list)
    _bound_pipeline_outputs: dict[str, Where] = field(default_factory=dict)

    # --- outputs ---------------------------------------------------------------------------------

    def job_outputs(self, job: JobSource) -> dict[str, OutputDraft]:
        """The outputs of ``job`` (declared by the component or by the job itself)."""
        if job.name in self._outputs:
            return self._outputs[job.name]
        issues = self.ctx.issues
        declared: dict[str, tuple[OutputSpec, Where]] = {}
        if job.component is not None and job.component_where is not None:
            for name, raw in (job.component.outputs or {}).items():
                spec = self._output_spec(name, raw, job.component_where / "outputs" / name)
                if spec is not None:
                    declared[name] = spec
        result: dict[str, OutputDraft] = {}
        given = job.job.outputs or {}
        for name, raw in given.items():
            at = job.where / "outputs" / name
            if job.component is not None and name not in declared:
                issues.error(at, f"the component has no output '{name}'", suggest(name, declared), key=True)
                continue
            layers: list[tuple[OutputSpec, Where]] = []
            bound: str | None = None
            errors_before = len(issues.errors)
            expr = self._expression(raw, at)
            if expr is not None:
                if expr.kind != "parent_output":
                    issues.error(at, f"{expr} cannot bind a job output", "${{parent.outputs.<name>}}")
                else:
                    bound = self._bind_pipeline_output(expr.name, at)
                if bound is not None:
                    layers.append((self.outputs[bound].spec, self.outputs[bound].where))
            elif raw is not None or job.component is None:
                spec = self._output_spec(name, raw, at)
                if spec is not None:
                    layers.append(spec)
            if name in declared:
                layers.append(declared[name])
            draft = self._draft(name, layers, at, bound)
            if len(issues.errors) > errors_before:
                draft = OutputDraft(name, draft.type, draft.layers, at, bound, broken=True)
            result[name] = draft
        for name, spec in declared.items():
            if name not in result:
                result[name] = self._draft(name, [spec], spec[1], None)
        self._outputs[job.name] = result
        return result

    def unbound_pipeline_outputs(self) -> list[str]:
        return [name for name in self.outputs if name not in self._bound_pipeline_outputs]

    def _output_spec(self, name: str, raw: Any, at: Where) -> tuple[OutputSpec, Where] | None:
        if not NAME_RE.match(name):
            self.ctx.issues.error(
                at, f"{name!r} is not a valid output name", "letters, digits, underscores", key=True
            )
            return None
        if raw is None:
            return OutputSpec(), at
        if isinstance(raw, str):
            self.ctx.issues.error(
                at, f"expected an output mapping, got {describe(raw)}", "{type: uri_folder}"
            )
            return None
        model = validate(OutputSpec, raw, at, self.ctx.issues)
        return (model, at) if model is not None else None

    def _bind_pipeline_output(self, name: str, at: Where) -> str | None:
        issues = self.ctx.issues
        if name not in self.outputs:
            issues.error(at, f"the pipeline has no output '{name}'", suggest(name, self.outputs))
            return None
        if name in self._bound_pipeline_outputs:
            first = self._bound_pipeline_outputs[name]
            issues.error(
                at, f"pipeline output '{name}' is already bound at {first.text}", "one job per output"
            )
            return None
        self._bound_pipeline_outputs[name] = at
        return name

    def _draft(
        self, name: str, layers: list[tuple[OutputSpec, Where]], at: Where, bound: str | None
    ) -> OutputDraft:
        kind = DataType.URI_FOLDER
        for spec, where in layers:
            if spec.type is not None:
                parsed = parse_enum(DataType, spec.type, where / "type", self.ctx.issues, "output type")
                kind = parsed or kind
                break
        return OutputDraft(name, kind, tuple(layers), at, bound)

    # --- inputs ----------------------------------------------------------------------------------

    def job_inputs(self, job: JobSource) -> dict[str, Value]:
        """The inputs of ``job``, resolved; a plan of None means an optional input left without value."""
        if job.name in self._inputs:
            return self._inputs[job.name]
        if job.name in self._resolving:
            return {}
        self._resolving.append(job.name)
        try:
            result = self._resolve_inputs(job)
        finally:
            self._resolving.pop()
        self._inputs[job.name] = result
        return result

    def _resolve_inputs(self, job: JobSource) -> dict[str, Value]:
        issues = self.ctx.issues
        given = job.job.inputs or {}
        result: dict[str, Value] = {}
        if job.component is None or job.component_where is None:
            for name, raw in given.items():
                at = job.where / "inputs" / name
                if not NAME_RE.match(name):
                    issues.error(
                        at, f"{name!r} is not a valid input name", "letters, digits, underscores", key=True
                    )
                    continue
                if raw is None:
                    issues.error(at, f"input '{name}' has no value", "a literal, a binding or {type:, path:}")
                    value = None
                else:
                    value = self._value(job, raw, at, None, self.ctx.base_dir)
                result[name] = value if value is not None else Value(None, at, broken=True)
            return result
        declarations, broken = self._declarations(job)
        for name in broken:
            result[name] = Value(None, job.where / "inputs" / name, broken=True)
        for name in given:
            if name not in declarations and name not in broken:
                at = job.where / "inputs" / name
                issues.error(
                    at, f"the component has no input '{name}'", suggest(name, declarations), key=True
                )
        for name, declaration in declarations.items():
            at = job.where / "inputs" / name
            raw = given.get(name)
            if raw is not None:
                value = self._value(job, raw, at, declaration, self.ctx.base_dir)
            elif declaration.default is not None:
                value = declaration.default
            elif declaration.optional:
                value = Value(None, declaration.where)
            else:
                issues.error(
                    job.where / "inputs" if name not in given else at,
                    f"input '{name}' of the component is required and has no value",
                    f"inputs: {{{name}: ...}} on the job",
                    key=True,
                )
                value = None
            result[name] = self._declared_value(value, declaration, name, at, raw)
        return result

    def _declared_value(
        self, value: Value | None, declaration: Declaration, name: str, at: Where, raw: Any
    ) -> Value:
        broken = Value(None, at, broken=True)
        if value is None or value.broken:
            return broken
        if value.plan is None and raw is not None:
            # Bound to an optional input that has no value: the component's default, if any, applies.
            if declaration.default is not None:
                return declaration.default
            if not declaration.optional:
                self.ctx.issues.error(
                    at,
                    f"input '{name}' of the component is required, but {raw} has no value",
                    "a value for the bound input (a default or --set), or an optional component input",
                )
                return broken
            return value
        conformed = conform(value, declaration.type, name, at, self.ctx.issues)
        if conformed is None:
            return broken
        plan = conformed.plan
        if isinstance(plan, LiteralInput) and not check_literal_limits(plan, declaration.spec, at, self.ctx):
            return broken
        if isinstance(plan, DataInput) and declaration.mode is not None and not _sets_mode(raw):
            return Value(plan.model_copy(update={"mode": declaration.mode}), conformed.where)
        return conformed

    def _declarations(self, job: JobSource) -> tuple[dict[str, Declaration], set[str]]:
        """The component's input declarations, and the names whose declaration is invalid."""
        assert job.component is not None
        assert job.component_where is not None
        base_dir = job.layered.layers[-1].base_dir
        result: dict[str, Declaration] = {}
        broken: set[str] = set()
        for name, raw in (job.component.inputs or {}).items():
            at = job.component_where / "inputs" / name
            declaration = self._declaration(name, raw, at, base_dir)
            if declaration is None:
                broken.add(name)
            else:
                result[name] = declaration
        return result, broken

    def _declaration(self, name: str, raw: Any, at: Where, base_dir: Path | None) -> Declaration | None:
        issues = self.ctx.issues
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
            issues.error(
                at, f"input '{name}' has no type", "type: uri_folder (or integer, string...)", key=True
            )
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
            source = data_location(
                str(getattr(spec, key)), kind, base_dir, at / key, issues, confine=self.ctx.confine
            )
            if source is None:
                return None
            default = Value(DataInput(type=kind, mode=mode or InputMode.RO_MOUNT, source=source), at / key)
        return Declaration(kind, bool(spec.optional), default, mode, spec, at)

    def _expression(self, raw: Any, at: Where) -> Any:
        """The whole-string expression in ``raw`` (None when ``raw`` is no binding; errors recorded)."""
        try:
            expr = whole_expression(raw)
        except ExpressionError as exc:
            self.ctx.issues.error(at, exc.message, exc.expected)
            return None
        if expr is None and isinstance(raw, str) and EXPRESSION_RE.search(raw):
            self.ctx.issues.error(at, f"{raw!r} mixes a binding with other text", "exactly one ${{...}}")
        return expr

    def _value(
        self, job: JobSource, raw: Any, at: Where, declaration: Declaration | None, base_dir: Path | None
    ) -> Value | None:
        issues = self.ctx.issues
        if isinstance(raw, str) and EXPRESSION_RE.search(raw):
            expr = self._expression(raw, at)
            return self._bound(job, expr, at) if expr is not None else None
        if isinstance(raw, list):
            issues.error(at, "expected a value, got a list", "a literal, a binding or {type:, path:}")
            return None
        if not isinstance(raw, dict):
            target = (
                declaration.type
                if declaration is not None and isinstance(declaration.type, LiteralType)
                else None
            )
            if declaration is not None and isinstance(declaration.type, DataType):
                return Value(literal_input(raw, None, at, issues), at)  # conform() reports the kind
            plan = literal_input(raw, target, at, issues)
            return Value(plan, at) if plan is not None else None
        spec = validate(InputSpec, raw, at, issues)
        if spec is None:
            return None
        kind: LiteralType | DataType | None = None
        if spec.type is not None:
            kind = parse_type(spec.type, at / "type", issues)
            if kind is None:
                return None
        elif declaration is not None:
            kind = declaration.type
        if isinstance(kind, LiteralType):
            if spec.default is None:
                issues.error(
                    at, "a literal input mapping needs a default", f"default: <a {kind.value}>", key=True
                )
                return None
            plan = literal_input(spec.default, kind, at / "default", issues)
            return Value(plan, at / "default") if plan is not None else None
        if spec.path is None:
            issues.error(
                at, "a data input needs a path", "path: ./data, a URI, or " + _PARENT_FORMS, key=True
            )
            return None
        mode = parse_input_mode(spec.mode, at / "mode", issues) if spec.mode is not None else None
        if spec.mode is not None and mode is None:
            return None
        if EXPRESSION_RE.search(spec.path):
            expr = self._expression(spec.path, at / "path")
            bound = self._bound(job, expr, at / "path") if expr is not None else None
            if bound is None:
                return None
            if kind is not None:
                bound = conform(bound, kind, str(at.path[-1]) if at.path else "", at / "path", issues)
                if bound is None:
                    return None
            bound_plan = bound.plan
            if isinstance(bound_plan, LiteralInput):
                message = (
                    f"the path of a data input must be data, but {expr} is the literal {bound_plan.value!r}"
                )
                issues.error(at / "path", message, _PARENT_FORMS + " of data")
                return None
            if isinstance(bound_plan, DataInput):
                update: dict[str, Any] = {"mode": mode} if mode is not None else {}
                if kind is not None:
                    update["type"] = kind
                return Value(bound_plan.model_copy(update=update), bound.where)
            return bound
        data_kind = kind if isinstance(kind, DataType) else DataType.URI_FOLDER
        source = data_location(spec.path, data_kind, base_dir, at / "path", issues, confine=self.ctx.confine)
        if source is None:
            return None
        return Value(DataInput(type=data_kind, mode=mode or InputMode.RO_MOUNT, source=source), at / "path")

    def _bound(self, job: JobSource, expr: Any, at: Where) -> Value | None:
        issues = self.ctx.issues
        if expr.kind == "parent_input":
            if expr.name not in self.inputs:
                issues.error(at, f"the pipeline has no input '{expr.name}'", suggest(expr.name, self.inputs))
                return None
            found = self.inputs[expr.name].value
            return Value(found.plan, at, broken=found.broken)
        if expr.kind == "job_output":
            return self._job_output(job, expr.job, expr.name, at)
        if expr.kind == "job_input":
            other = self.jobs.get(expr.job)
            if other is None:
                issues.error(at, f"there is no job '{expr.job}'", suggest(expr.job, self.jobs))
                return None
            if expr.job == job.name or expr.job in self._resolving:
                issues.error(at, f"{expr} refers back to an input being resolved", "a binding without a loop")
                return None
            if len(self._resolving) >= MAX_INPUT_CHAIN:
                message = f"{expr} ends a chain of more than {MAX_INPUT_CHAIN} job-input bindings"
                issues.error(at, message, "bind to the pipeline input or job output directly")
                return None
            values = self.job_inputs(other)
            if expr.name not in values:
                known = (other.job.inputs or {}).keys() | values.keys()
                issues.error(at, f"job '{expr.job}' has no input '{expr.name}'", suggest(expr.name, known))
                return None
            found = values[expr.name]
            return Value(found.plan, at, broken=found.broken)
        issues.error(at, f"{expr} cannot be used in a job's inputs", _PARENT_FORMS)
        return None

    def _job_output(self, job: JobSource, producer: str, output: str, at: Where) -> Value | None:
        issues = self.ctx.issues
        other = self.jobs.get(producer)
        if other is None:
            issues.error(at, f"there is no job '{producer}'", suggest(producer, self.jobs))
            return None
        drafts = self.job_outputs(other)
        if output not in drafts:
            issues.error(at, f"job '{producer}' has no output '{output}'", suggest(output, drafts))
            return None
        self.edges.setdefault(job.name, set()).add(producer)
        if drafts[output].broken:
            return Value(None, at, broken=True)
        plan = DataInput(type=drafts[output].type, source=JobOutputRef(job=producer, output=output))
        return Value(plan, at)


def _sets_mode(raw: Any) -> bool:
    return isinstance(raw, dict) and raw.get("mode") is not None
