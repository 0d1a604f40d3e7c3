"""Freezing a parallel job into :class:`~shared.plan.ParallelSettings`.

Decisions where Azure ML is ambiguous (documented in ``docs/spec.md``):

- ``partition_keys`` and ``mini_batch_size`` together: partition keys win (v2), with a warning.
- ``error_threshold`` as an attribute *and* ``--error_threshold`` in ``program_arguments`` with different
  values: the flag wins (it is what the runtime reads last), with a warning.
- ``mini_batch_size`` omitted: None in the plan — 10 files per mini-batch for file inputs, 1 MiB for
  tabular inputs (Azure ML's v1/v2 SDK defaults, not the YAML reference's "1").
- ``task.type: function`` and ``task.args`` (older Azure ML spellings) are accepted with a warning.
- The entry script also receives Fanout's runtime flags (``--logging_level`` ...), appended to
  ``program_arguments`` unless the user wrote the same flag (:mod:`shared.spec.script_flags`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ValidationError

from shared.plan import CodeRef, DataInput, EnvironmentPlan, ParallelSettings, RetrySettings
from shared.spec.arguments import Scope, parse_runtime_flags, split_arguments
from shared.spec.bindings import Expr, ExpressionError, whole_expression
from shared.spec.components import JobSource
from shared.spec.context import Context
from shared.spec.environment import check_entry_script, code_ref, environment_plan
from shared.spec.fields import (
    CONCURRENCY,
    INSTANCE_COUNT,
    LOGGING_LEVELS,
    MAX_RETRIES,
    RUN_TIMEOUT,
    THRESHOLD,
    fail,
)
from shared.spec.issues import Issues, Where, suggest
from shared.spec.job_settings import resolve_setting
from shared.spec.minibatch import parse_mini_batch_size, parse_partition_keys_text
from shared.spec.pipeline_io import PipelineInput
from shared.spec.schema import TaskSpec
from shared.spec.script_flags import with_script_flags
from shared.spec.values import Value


@dataclass(frozen=True)
class FrozenParallel:
    """A parallel job's settings, code, environment and node count, as the compiler puts them in the plan."""

    settings: ParallelSettings
    code: CodeRef | None
    environment: EnvironmentPlan | None
    instance_count: int


def _logging_level(value: Any) -> str:
    if isinstance(value, str) and value.strip().upper() in LOGGING_LEVELS:
        return value.strip().upper()
    raise fail(f"{value!r} is not a logging level", "one of INFO, WARNING, DEBUG")


def _partition_keys(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value]
    if isinstance(value, str):
        return parse_partition_keys_text(value)
    raise fail(f"{value!r} is not a list of partition keys", '"Store,Brand" or \'["Store", "Brand"]\'')


def freeze_parallel(
    job: JobSource,
    inputs: Mapping[str, Value],
    outputs: frozenset[str],
    pipeline: Mapping[str, PipelineInput],
    ctx: Context,
) -> FrozenParallel | None:
    """The parallel settings of ``job`` (None when something is invalid; errors recorded)."""
    return _Freezer(job, inputs, outputs, pipeline, ctx).freeze()


@dataclass
class _Freezer:
    job: JobSource
    inputs: Mapping[str, Value]
    outputs: frozenset[str]
    pipeline: Mapping[str, PipelineInput]
    ctx: Context

    def setting(self, *attrs: str, rule: Any, default: Any) -> Any:
        value, where, _ = self.job.layered.get(*attrs)
        if value is None:
            return default
        return resolve_setting(
            value, where, rule, inputs=self.inputs, pipeline=self.pipeline, issues=self.ctx.issues
        )

    def freeze(self) -> FrozenParallel | None:
        issues = self.ctx.issues
        errors_before = len(issues.errors)
        task, task_where, task_base = self.job.layered.get("task")
        input_data = _input_data(self.job.layered.get("input_data"), self.inputs, self.job, self.ctx)
        if not isinstance(task, TaskSpec):
            example = "task: {type: run_function, code: ..., entry_script: ...}"
            issues.error(self.job.layered.definition, "required key 'task' is missing", example, key=True)
            self.run_settings({})  # still check the run settings, so every error is reported at once
            return None
        code, environment, script = self.code_and_environment(task, task_where, task_base)
        tokens, flags = self.arguments(task, task_where)
        values: dict[str, Any] = {
            "input_data": input_data,
            "entry_script": script,
            "program_arguments": tokens,
            "append_row_to": _append_row_to(
                task.append_row_to, task_where / "append_row_to", self.outputs, self.ctx
            ),
            **self.run_settings(flags),
        }
        if len(issues.errors) > errors_before or input_data is None or script is None:
            return None
        try:
            settings = ParallelSettings(**values)
        except ValidationError as exc:  # every value was checked above; this is a safety net
            issues.error(
                self.job.where, f"invalid parallel settings: {exc.errors()[0]['msg']}", "docs/spec.md"
            )
            return None
        settings = with_script_flags(settings)
        return FrozenParallel(settings, code, environment, settings.instance_count)

    def code_and_environment(
        self, task: TaskSpec, task_where: Where, task_base: Any
    ) -> tuple[CodeRef | None, EnvironmentPlan | None, str | None]:
        issues = self.ctx.issues
        code = environment = script = None
        if task.type == "function":
            issues.warn(task_where / "type", "task type 'function' is an older spelling of 'run_function'")
        if task.code is None:
            issues.error(task_where, "required key 'code' is missing", "code: ./src", key=True)
        else:
            code = code_ref(task.code, task_base, task_where / "code", self.ctx)
        if task.entry_script is None:
            issues.error(
                task_where, "required key 'entry_script' is missing", "entry_script: score.py", key=True
            )
        else:
            script = check_entry_script(task.entry_script, code, task_where / "entry_script", self.ctx)
        if task.environment is not None:
            environment = environment_plan(task.environment, task_base, task_where / "environment", self.ctx)
        return code, environment, script

    def arguments(self, task: TaskSpec, task_where: Where) -> tuple[list[str], dict[str, Any]]:
        issues = self.ctx.issues
        text, where = task.program_arguments, task_where / "program_arguments"
        if task.args is not None:
            if task.program_arguments is not None:
                message = "both args and program_arguments are given"
                issues.error(task_where / "args", message, "program_arguments only", key=True)
            else:
                issues.warn(task_where / "args", "'args' is an older name of 'program_arguments'", key=True)
                text, where = task.args, task_where / "args"
        if text is None:
            return [], {}
        tokens = split_arguments(text, Scope(self.inputs, self.outputs, self.pipeline), where, issues) or []
        return tokens, parse_runtime_flags(tokens, where, issues)

    def run_settings(self, flags: dict[str, Any]) -> dict[str, Any]:
        issues = self.ctx.issues
        setting = self.setting
        mini_batch_size = setting("mini_batch_size", rule=parse_mini_batch_size, default=None)
        partition_keys = setting("partition_keys", rule=_partition_keys, default=None)
        if partition_keys is not None and mini_batch_size is not None:
            where = self.job.layered.get("mini_batch_size")[1]
            message = "mini_batch_size is ignored because partition_keys is set (partition keys win)"
            issues.warn(where, message, key=True)
            mini_batch_size = None
        error_threshold = setting("error_threshold", rule=THRESHOLD.check, default=None)
        if "error_threshold" in flags:
            flag = flags.pop("error_threshold")
            if error_threshold is not None and error_threshold != flag:
                where = self.job.layered.get("error_threshold")[1]
                message = (
                    f"error_threshold {error_threshold} differs from --error_threshold {flag}; the flag wins"
                )
                issues.warn(where, message, key=True)
            error_threshold = flag
        retry = RetrySettings(
            max_retries=setting("retry_settings", "max_retries", rule=MAX_RETRIES.check, default=2) or 0,
            timeout=setting("retry_settings", "timeout", rule=RUN_TIMEOUT.check, default=60) or 60,
        )
        return {
            "mini_batch_size": mini_batch_size,
            "partition_keys": partition_keys,
            "instance_count": setting("resources", "instance_count", rule=INSTANCE_COUNT.check, default=1),
            "max_concurrency_per_instance": setting(
                "max_concurrency_per_instance", rule=CONCURRENCY.check, default=None
            ),
            "logging_level": setting("logging_level", rule=_logging_level, default="INFO"),
            "error_threshold": -1 if error_threshold is None else error_threshold,
            "mini_batch_error_threshold": setting(
                "mini_batch_error_threshold", rule=THRESHOLD.check, default=-1
            ),
            "retry": retry,
            **flags,
        }


def _input_data(
    found: tuple[Any, Where, Any], inputs: Mapping[str, Value], job: JobSource, ctx: Context
) -> str | None:
    value, where, _ = found
    issues = ctx.issues
    if value is None:
        issues.error(
            job.layered.definition,
            "required key 'input_data' is missing",
            "input_data: ${{inputs.<name>}}",
            key=True,
        )
        return None
    name = _bound_name("input_data", value, where, inputs, kind="input", issues=issues)
    if name is None:
        return None
    plan = inputs[name].plan
    if inputs[name].broken:
        return None
    if plan is None:
        issues.error(where, f"input '{name}' has no value", "a value for the input that is split")
        return None
    if not isinstance(plan, DataInput):
        issues.error(
            where,
            f"input_data must be data, but input '{name}' is the literal {plan.value!r}",
            "a uri_folder, uri_file or mltable input",
        )
        return None
    return name


def _append_row_to(value: str | None, where: Where, outputs: frozenset[str], ctx: Context) -> str | None:
    if value is None:
        return None
    return _bound_name("append_row_to", value, where, outputs, kind="output", issues=ctx.issues)


def _bound_name(
    setting: str,
    value: Any,
    where: Where,
    names: Collection[str],
    *,
    kind: Literal["input", "output"],
    issues: Issues,
) -> str | None:
    """The job input or output that ``setting`` binds to (``${{inputs.<name>}}`` or
    ``${{outputs.<name>}}``), or None when it is not exactly such a binding (the error is recorded)."""
    try:
        expr = whole_expression(value)
    except ExpressionError as exc:
        issues.error(where, exc.message, exc.expected)
        return None
    if expr is None or expr.kind != kind:
        expected = Expr(kind, name="<name>").canonical
        issues.error(where, f"{setting} must name one of the job's {kind}s, got {value!r}", expected)
        return None
    if expr.name not in names:
        issues.error(where, f"the job has no {kind} '{expr.name}'", suggest(expr.name, names))
        return None
    return expr.name
