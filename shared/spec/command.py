"""Freezing a command job into :class:`~shared.plan.CommandSettings`.

The command keeps data placeholders (``${{inputs.data}}``, ``${{outputs.model}}``) for the agent;
literal inputs are substituted as text (Azure ML semantics: no quoting is added); ``$[[ ... ]]``
optional blocks are dropped when an input they use has no value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from shared.plan import CodeRef, CommandSettings, EnvironmentPlan
from shared.spec.arguments import Scope, render_text
from shared.spec.components import JobSource
from shared.spec.context import Context
from shared.spec.environment import code_ref, environment_plan
from shared.spec.fields import COMMAND_TIMEOUT, INSTANCE_COUNT
from shared.spec.job_settings import resolve_setting
from shared.spec.pipeline_io import PipelineInput
from shared.spec.values import Value


@dataclass(frozen=True)
class FrozenCommand:
    """A command job's settings, code, environment and node count, as the compiler puts them in the plan."""

    settings: CommandSettings
    code: CodeRef | None
    environment: EnvironmentPlan | None
    instance_count: int


def freeze_command(
    job: JobSource,
    inputs: Mapping[str, Value],
    outputs: frozenset[str],
    pipeline: Mapping[str, PipelineInput],
    ctx: Context,
) -> FrozenCommand | None:
    """The command settings of ``job`` (None when something is invalid; errors recorded)."""
    issues = ctx.issues
    layered = job.layered
    errors_before = len(issues.errors)
    command, command_where, _ = layered.get("command")
    rendered: str | None = None
    if command is None or not str(command).strip():
        issues.error(
            layered.definition, "required key 'command' is missing", "command: python train.py ...", key=True
        )
    else:
        rendered = render_text(str(command), Scope(inputs, outputs, pipeline), command_where, issues)
    code: CodeRef | None = None
    code_text, code_where, code_base = layered.get("code")
    if code_text is not None:
        code = code_ref(code_text, code_base, code_where, ctx)
    environment: EnvironmentPlan | None = None
    env_value, env_where, env_base = layered.get("environment")
    if env_value is not None:
        environment = environment_plan(env_value, env_base, env_where, ctx)
    timeout_value, timeout_where, _ = layered.get("limits", "timeout")
    timeout = None
    if timeout_value is not None:
        timeout = resolve_setting(
            timeout_value,
            timeout_where,
            COMMAND_TIMEOUT.check,
            inputs=inputs,
            pipeline=pipeline,
            issues=issues,
        )
    count_value, count_where, _ = layered.get("resources", "instance_count")
    instance_count = 1
    if count_value is not None:
        instance_count = (
            resolve_setting(
                count_value,
                count_where,
                INSTANCE_COUNT.check,
                inputs=inputs,
                pipeline=pipeline,
                issues=issues,
            )
            or 1
        )
    if rendered is None or len(issues.errors) > errors_before:
        return None
    return FrozenCommand(
        CommandSettings(command=rendered.strip(), timeout=timeout), code, environment, instance_count
    )
