"""A job's outputs before their locations are fixed: declared, bound to pipeline outputs, layered.

An output is declared by the component, by the job itself (an inline job), or both, and a job may bind
it to a pipeline output (``${{parent.outputs.o}}``; one job per pipeline output). :class:`OutputResolver`
collects, for each output, its layers — job, pipeline output, component — as an :class:`OutputDraft`
whose location :mod:`shared.spec.outputs` fixes later. Kept apart from the inputs
(:mod:`shared.spec.job_io`): an input may name another job's output, so every job's outputs are
resolved first, and outputs need nothing from inputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shared.plan import DataType
from shared.spec.bindings import EXPRESSION_RE, Expr, ExpressionError, whole_expression
from shared.spec.components import JobSource
from shared.spec.context import Context
from shared.spec.fields import NAME_RE, describe
from shared.spec.issues import Issues, Where, suggest
from shared.spec.pipeline_io import PipelineOutput
from shared.spec.schema import OutputSpec
from shared.spec.validation import validate
from shared.spec.values import parse_enum


def binding(raw: Any, at: Where, issues: Issues) -> Expr | None:
    """The ``${{...}}`` binding that is the whole of ``raw``, for a job's inputs and outputs.

    Returns None when ``raw`` is no binding, and when it is a malformed one (an unknown form, or a
    binding mixed with other text), which is then recorded in ``issues`` at ``at``.
    """
    try:
        expr = whole_expression(raw)
    except ExpressionError as exc:
        issues.error(at, exc.message, exc.expected)
        return None
    if expr is None and isinstance(raw, str) and EXPRESSION_RE.search(raw):
        issues.error(at, f"{raw!r} mixes a binding with other text", "exactly one ${{...}}")
    return expr


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
class OutputResolver:
    """Resolves every job's outputs, memoised, and remembers which pipeline outputs were bound."""

    ctx: Context
    outputs: dict[str, PipelineOutput]
    _drafts: dict[str, dict[str, OutputDraft]] = field(default_factory=dict)
    _bound_pipeline_outputs: dict[str, Where] = field(default_factory=dict)

    def job_outputs(self, job: JobSource) -> dict[str, OutputDraft]:
        """The outputs of ``job`` (declared by the component or by the job itself)."""
        if job.name in self._drafts:
            return self._drafts[job.name]
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
            expr = binding(raw, at, issues)
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
        self._drafts[job.name] = result
        return result

    def unbound_pipeline_outputs(self) -> list[str]:
        """The pipeline outputs that no job bound (the compiler reports each)."""
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
