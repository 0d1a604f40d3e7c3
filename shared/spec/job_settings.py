"""Run settings that may be bound to literal inputs, resolved at freeze time.

``mini_batch_size``, ``partition_keys``, ``retry_settings``, ``resources.instance_count``,
``max_concurrency_per_instance``, the thresholds, ``logging_level`` and ``limits.timeout`` accept
``${{parent.inputs.x}}`` (a pipeline input) or ``${{inputs.x}}`` (a literal input of the job). The
value is known when the plan is frozen, so it is substituted and checked with the same rule as a
value written in place; an error names both the binding and the value it resolved to.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from pydantic_core import PydanticCustomError

from shared.plan import DataInput
from shared.spec.bindings import ExpressionError, whole_expression
from shared.spec.issues import Issues, Where, suggest
from shared.spec.pipeline_io import PipelineInput
from shared.spec.values import Value

T = TypeVar("T")


def resolve_setting(
    value: Any,
    where: Where,
    rule: Callable[[Any], T],
    *,
    inputs: Mapping[str, Value],
    pipeline: Mapping[str, PipelineInput],
    issues: Issues,
) -> T | None:
    """``value`` checked by ``rule``, after resolving a literal binding (None with an error)."""
    if not isinstance(value, str) or "${{" not in value:
        return _apply(rule, value, where, issues, "")
    try:
        expr = whole_expression(value)
    except ExpressionError as exc:
        issues.error(where, exc.message, exc.expected)
        return None
    if expr is None:
        issues.error(where, f"{value!r} mixes a binding with other text", "exactly one ${{...}}")
        return None
    if expr.kind == "parent_input":
        if expr.name not in pipeline:
            issues.error(where, f"the pipeline has no input '{expr.name}'", suggest(expr.name, pipeline))
            return None
        found = pipeline[expr.name].value
    elif expr.kind == "input":
        if expr.name not in inputs:
            issues.error(where, f"the job has no input '{expr.name}'", suggest(expr.name, inputs))
            return None
        found = inputs[expr.name]
    else:
        issues.error(where, f"{expr} cannot set a run setting", "${{parent.inputs.<x>}} or ${{inputs.<x>}}")
        return None
    if found.broken:
        return None
    plan = found.plan
    if plan is None:
        issues.error(where, f"{expr} has no value", "a value for that input (a default or --set)")
        return None
    if isinstance(plan, DataInput):
        issues.error(
            where, f"{expr} is {plan.type.value} data, not a literal", "a binding to a literal input"
        )
        return None
    return _apply(rule, plan.value, where, issues, f"{expr} = {plan.value!r}: ")


def _apply(rule: Callable[[Any], T], value: Any, where: Where, issues: Issues, prefix: str) -> T | None:
    try:
        return rule(value)
    except PydanticCustomError as exc:
        issues.error(where, prefix + exc.message(), str((exc.context or {}).get("expected", "")))
    except ValueError as exc:
        message = getattr(exc, "message", str(exc))
        issues.error(where, prefix + message, str(getattr(exc, "expected", "")))
    return None
