"""A job's inputs: values and bindings, checked against the component's declarations, and job edges.

Inputs of an inline job are declared by the values given; inputs of a component job are declared by
the component (:mod:`shared.spec.component_inputs`) and bound by the job. A value is a literal, a
binding (``${{parent.inputs.x}}``, ``${{parent.jobs.j.outputs.o}}``, ``${{parent.jobs.j.inputs.x}}``)
or a data mapping whose ``path`` may itself be such a binding. Every binding is checked: the name
exists, the kind fits (data where data is needed), the types are compatible; each binding to another
job's output adds an edge of the job graph. :class:`Resolver` is the compiler's one entry point for a
job's inputs and outputs; the outputs themselves are drafted by :mod:`shared.spec.job_outputs`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.plan import DataInput, DataType, InputMode, JobOutputRef, LiteralInput, LiteralType
from shared.spec.bindings import EXPRESSION_RE
from shared.spec.component_inputs import Declaration, component_declarations
from shared.spec.components import JobSource
from shared.spec.context import Context
from shared.spec.fields import NAME_RE
from shared.spec.issues import Where, suggest
from shared.spec.job_outputs import OutputDraft, OutputResolver, binding
from shared.spec.locations import data_location
from shared.spec.pipeline_io import PipelineInput, PipelineOutput, check_literal_limits
from shared.spec.schema import InputSpec
from shared.spec.validation import validate
from shared.spec.values import Value, conform, literal_input, parse_input_mode, parse_type

#: Longest chain of ``${{parent.jobs.<job>.inputs.<x>}}`` bindings followed.
MAX_INPUT_CHAIN = 32
_PARENT_FORMS = "${{parent.inputs.<x>}} or ${{parent.jobs.<job>.outputs.<o>}}"


@dataclass
class Resolver:
    """Resolves every job's inputs and outputs, memoised, with the edges between jobs."""

    ctx: Context
    inputs: dict[str, PipelineInput]
    outputs: dict[str, PipelineOutput]
    jobs: dict[str, JobSource]
    edges: dict[str, set[str]] = field(default_factory=dict)
    _inputs: dict[str, dict[str, Value]] = field(default_factory=dict)
    _resolving: list[str] = field(default_factory=list)
    _output_resolver: OutputResolver = field(init=False)

    def __post_init__(self) -> None:
        self._output_resolver = OutputResolver(self.ctx, self.outputs)

    def job_outputs(self, job: JobSource) -> dict[str, OutputDraft]:
        """The outputs of ``job`` (declared by the component or by the job itself)."""
        return self._output_resolver.job_outputs(job)

    def unbound_pipeline_outputs(self) -> list[str]:
        """The pipeline outputs that no job bound (the compiler reports each)."""
        return self._output_resolver.unbound_pipeline_outputs()

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
        declarations, broken = component_declarations(job, self.ctx)
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

    def _value(
        self, job: JobSource, raw: Any, at: Where, declaration: Declaration | None, base_dir: Path | None
    ) -> Value | None:
        issues = self.ctx.issues
        if isinstance(raw, str) and EXPRESSION_RE.search(raw):
            expr = binding(raw, at, issues)
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
            expr = binding(spec.path, at / "path", issues)
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
