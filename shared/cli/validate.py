"""``fanout validate pipeline.yml [--set inputs.x=value]`` — check a spec and show its frozen plan.

Exit 1 with every error (``file:line:col: path: what is wrong; expected ...``), or exit 0 with a
summary of the frozen plan: jobs in order, resolved inputs, normalised mini-batch settings, thresholds,
computes, output locations, and the warnings.
"""

from __future__ import annotations

import re
from pathlib import Path

import click

from shared.errors import SpecError
from shared.plan import (
    AssetRef,
    BlobData,
    DataInput,
    DataType,
    InputPlan,
    JobOutputRef,
    JobPlan,
    LocalData,
    ParallelSettings,
    RunPlan,
    UrlData,
)
from shared.spec import compile_file

PREVIEW_RUN_ID = "<run-id>"
_READ_TRANSFORM = re.compile(r"^\s*-?\s*read_(delimited|parquet|json_lines|delta_lake)\b", re.MULTILINE)


def parse_overrides(pairs: tuple[str, ...] | list[str]) -> dict[str, str]:
    """The ``--set`` pairs of ``validate``, ``run`` and ``submit`` as a dict.

    ``("inputs.x=1", "y=a=b")`` -> ``{"inputs.x": "1", "y": "a=b"}``.

    Raises:
        click.BadParameter: a pair has no ``=`` or an empty name.
    """
    overrides: dict[str, str] = {}
    for pair in pairs:
        name, separator, value = pair.partition("=")
        if not separator or not name.strip():
            raise click.BadParameter(
                f"{pair!r} is not NAME=VALUE (e.g. --set inputs.n_estimators=20)", param_hint="--set"
            )
        overrides[name.strip()] = value
    return overrides


@click.command("validate")
@click.argument("spec", type=click.Path(path_type=Path))
@click.option(
    "--set", "overrides", multiple=True, metavar="inputs.NAME=VALUE", help="Override a pipeline input."
)
@click.option("--json", "as_json", is_flag=True, help="Print the frozen plan as JSON instead of a summary.")
@click.option("--run-id", default=PREVIEW_RUN_ID, show_default=True, help="Run id used for output locations.")
@click.pass_context
def validate(ctx: click.Context, spec: Path, overrides: tuple[str, ...], as_json: bool, run_id: str) -> None:
    """Validate a pipeline YAML and print its frozen plan (exit 1 on errors)."""
    try:
        plan = compile_file(spec, run_id=run_id, overrides=parse_overrides(overrides))
    except SpecError as exc:
        errors = [i for i in exc.issues if i.severity == "error"]
        for issue in errors:
            click.echo(f"error: {issue}", err=True)
        for issue in exc.issues:
            if issue.severity != "error":
                click.echo(f"warning: {issue}", err=True)
        click.echo(f"{spec}: {len(errors)} error{'s' if len(errors) != 1 else ''}", err=True)
        ctx.exit(1)
    if as_json:
        click.echo(plan.model_dump_json(indent=2))
        return
    click.echo("\n".join(summary(plan)))


def summary(plan: RunPlan) -> list[str]:
    """The human-readable summary of a frozen plan."""
    title = plan.display_name or plan.source
    lines = [f"{plan.source}: valid — {len(plan.jobs)} job{'s' if len(plan.jobs) != 1 else ''}"]
    lines.append(
        f"pipeline: {title}" + (f" (experiment {plan.experiment_name})" if plan.experiment_name else "")
    )
    lines.append(
        f"settings: default_compute={plan.default_compute or '-'} "
        f"continue_on_step_failure={str(plan.continue_on_step_failure).lower()} "
        f"force_rerun={str(plan.force_rerun).lower()}"
    )
    if plan.inputs:
        lines.append("inputs:")
        lines.extend(f"  {name}: {describe_input(value)}" for name, value in plan.inputs.items())
    if plan.outputs:
        lines.append("outputs:")
        lines.extend(f"  {name} <- {ref.job}.{ref.output}" for name, ref in plan.outputs.items())
    lines.append("jobs (in order):")
    for index, job in enumerate(plan.jobs, start=1):
        lines.extend(_job_lines(index, job))
    if plan.warnings:
        lines.append(f"warnings ({len(plan.warnings)}):")
        lines.extend(f"  warning: {warning}" for warning in plan.warnings)
    return lines


def describe_input(value: InputPlan) -> str:
    """One input in the plan summary: a literal's value, or a data input's type, mode and source."""
    if isinstance(value, DataInput):
        return f"{value.type.value} ({value.mode.value}) {describe_source(value.source)}"
    return f"{value.type.value} = {value.value!r}"


def describe_source(source: object) -> str:
    """Where a data input comes from, in words: a local path, a blob, a URL, an asset or a job's output."""
    if isinstance(source, LocalData):
        return f"local {source.path}"
    if isinstance(source, BlobData):
        return f"blob {source.container}/{source.path}"
    if isinstance(source, UrlData):
        return f"url {source.url}"
    if isinstance(source, AssetRef):
        return f"asset {source.name}@{source.version or 'latest'}"
    if isinstance(source, JobOutputRef):
        return f"output {source.output} of job {source.job}"
    return str(source)


def _job_lines(index: int, job: JobPlan) -> list[str]:
    after = f", after {', '.join(job.depends_on)}" if job.depends_on else ""
    reuse = "" if job.allow_reuse else ", never reused"
    lines = [f"  {index}. {job.name} ({job.type.value}) on {job.compute or 'local'}{after}{reuse}"]
    for name, value in job.inputs.items():
        lines.append(f"       input  {name}: {describe_input(value)}")
    for name, output in job.outputs.items():
        asset = f", registered as {output.asset_name}" if output.asset_name else ""
        where = f"{output.location.container}/{output.location.path}"
        lines.append(f"       output {name}: {output.type.value} ({output.mode.value}) -> {where}{asset}")
    if job.parallel is not None:
        lines.extend(_parallel_lines(job, job.parallel))
    if job.command is not None:
        lines.append(f"       command: {job.command.command}")
        if job.command.timeout is not None:
            lines.append(f"       timeout: {job.command.timeout}s")
        lines.append(f"       instances: {job.instance_count}")
    return lines


def split_kind(primary: InputPlan | None) -> str:
    """``tabular``, ``files``, or ``tabular or files`` for an MLTable that cannot be read here.

    An MLTable is a table when it has a ``read_*`` transformation (``docs/data.md``); only a local one
    can be looked at before the run.
    """
    if not isinstance(primary, DataInput) or primary.type is not DataType.MLTABLE:
        return "files"
    if not isinstance(primary.source, LocalData):
        return "tabular or files"
    try:
        text = (Path(primary.source.path) / "MLTable").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return "tabular or files"
    return "tabular" if _READ_TRANSFORM.search(text) else "files"


def _parallel_lines(job: JobPlan, settings: ParallelSettings) -> list[str]:
    kind = split_kind(job.inputs.get(settings.input_data))
    if settings.partition_keys:
        batches = f"one per combination of {', '.join(settings.partition_keys)}"
    elif settings.mini_batch_size is None:
        defaults = {"tabular": "1 MiB (default)", "files": "10 files (default)"}
        batches = defaults.get(kind, "10 files or 1 MiB (default)")
    else:
        unit = {"tabular": "bytes", "files": "files"}.get(kind, "files or bytes")
        batches = f"{settings.mini_batch_size} {unit}"
    workers = settings.max_concurrency_per_instance or "cores (or GPUs)"
    progress = (
        f"{settings.progress_update_timeout}s"
        if settings.progress_update_timeout
        else "3 × (timeout + overhead)"
    )
    lines = [
        f"       input_data: {settings.input_data} ({kind}); mini-batch: {batches}",
        f"       entry_script: {settings.entry_script}; instances: {settings.instance_count} × {workers} "
        f"workers; logging {settings.logging_level}",
        f"       thresholds: error_threshold={settings.error_threshold} "
        f"mini_batch_error_threshold={settings.mini_batch_error_threshold} "
        f"allowed_failed_percent={settings.allowed_failed_percent:g}",
        f"       retries: {settings.retry.max_retries} (run() timeout {settings.retry.timeout}s); "
        f"timeouts: overhead {settings.task_overhead_timeout}s, progress {progress}, "
        f"first task {settings.first_task_creation_timeout}s; "
        f"resource monitor {settings.resource_monitor_interval}s",
    ]
    if settings.append_row_to:
        header = ", with header" if settings.append_row_dataframe_header else ""
        lines.append(
            f"       append_row_to: {settings.append_row_to} ({settings.append_row_format.value}{header})"
        )
    if settings.program_arguments:
        lines.append(f"       arguments: {' '.join(settings.program_arguments)}")
    return lines
