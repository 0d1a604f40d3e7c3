"""``fanout run PIPELINE.yml`` — run a pipeline to its end in this process, on this machine.

Steps:

1. Storage: the configured account, or a private Azurite started for this command (stopped at the end:
   keep results with ``--outputs-dir``). The storage layout is created if missing.
2. Submission: code folders become content-addressed snapshots and local data is uploaded
   (``shared.submission.prepare_submission``, unchanged content is not sent again); the bundled spec —
   every local path replaced by its storage URI — is compiled into the run's frozen plan and kept as
   ``runs/<run>/spec.yml``; the plan keeps the trace context of the run's root span (``fanout.cli.run``),
   so the activities and the agents' mini-batch spans join one trace. It is *not* dropped into the
   ``specs`` container: this command drives the run itself, and a host watching that drop zone
   (``fanout serve``, the Function App) would start the same spec a second time.
3. The in-process durable engine (``shared/host/engine.py``) runs the pipeline orchestration; agents
   are local processes (or Batch tasks with ``FANOUT_EXECUTOR=batch``). Progress bars show each job.
   Ctrl-C cancels the run (agents stopped, queues drained, logs kept) and waits for it to end.
4. The end: each job's status; for failed jobs the reason from ``logs/job_result.txt``;
   ``--outputs-dir`` downloads outputs and logs. Exit code 0 when the run completed, 1 otherwise.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import click
from azure.core.exceptions import AzureError
from rich.console import Console

from shared.cli.progress import RunProgress
from shared.cli.validate import parse_overrides
from shared.errors import FanoutError
from shared.orchestration.client import (
    DurableClient,
    InstanceStatus,
    cancel_run,
    pipeline_input,
    start_run,
)
from shared.orchestration.contracts import RunStatus, StepStatus
from shared.orchestration.models import PipelineResult
from shared.plan import RunPlan
from shared.settings import Settings, get_settings
from shared.storage import Container, StorageClients, run_path
from shared.telemetry import CLI_SERVICE_NAME, configure_telemetry, start_span

logger = logging.getLogger(__name__)

#: Seconds between refreshes of the progress bars.
REFRESH_SECONDS = 0.5


@click.command("run")
@click.argument("spec", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--set", "set_values", multiple=True, metavar="NAME=VALUE", help="Set a pipeline input.")
@click.option(
    "--outputs-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Download every job's outputs and logs here after the run.",
)
@click.option("--force-rerun", is_flag=True, help="Run every job even if an earlier result could be reused.")
def run(spec: Path, set_values: tuple[str, ...], outputs_dir: Path | None, force_rerun: bool) -> int:
    """Run the pipeline SPEC to its end on this machine, with live progress."""
    # gRPC's C core logs to stderr unless told otherwise; set before the engine imports it.
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    overrides = parse_overrides(set_values)
    console = Console()
    telemetry = configure_telemetry(get_settings(), CLI_SERVICE_NAME)
    try:
        result = run_pipeline_file(
            spec, overrides=overrides, outputs_dir=outputs_dir, force_rerun=force_rerun, console=console
        )
    finally:
        telemetry.shutdown()
    return 0 if result.status is RunStatus.COMPLETED else 1


def run_pipeline_file(
    spec: Path,
    *,
    overrides: dict[str, str] | None = None,
    outputs_dir: Path | None = None,
    force_rerun: bool = False,
    console: Console | None = None,
    settings: Settings | None = None,
) -> PipelineResult:
    """Steps 1–4 of the module docstring; the run's result (its status decides the exit code)."""
    from shared.azurite import storage_connection
    from shared.spec import compile_file

    console = console or Console()
    settings = settings or get_settings()
    compile_file(
        spec, run_id="validation", overrides=overrides or {}
    )  # a bad spec fails before anything starts
    with storage_connection(settings) as connection:
        if connection and not settings.storage_connection_string:
            settings = settings.model_copy(update={"storage_connection_string": connection})
            console.print("[dim]storage: a temporary Azurite (use --outputs-dir to keep the results)[/dim]")
        clients = StorageClients.from_settings(settings)
        clients.ensure_layout()
        # The root span of the run's trace: the plan keeps its context for activities and agents.
        with start_span("fanout.cli.run", attributes={"fanout.spec": str(spec)}):
            plan = submit(clients, spec, overrides or {}, force_rerun=force_rerun, settings=settings)
        console.print(f"run id: [bold]{plan.run_id}[/bold]")
        for warning in plan.warnings:
            console.print(f"[yellow]warning:[/yellow] {warning}")
        result = _drive(clients, plan, settings, console)
        _report(clients, result, console)
        if outputs_dir is not None:
            from shared.cli.downloads import download_run

            count = download_run(clients, plan.run_id, result.jobs, outputs_dir)
            console.print(f"outputs and logs: {outputs_dir.resolve()} ({count} files)")
    return result


def submit(
    clients: StorageClients, spec: Path, overrides: dict[str, str], *, force_rerun: bool, settings: Settings
) -> RunPlan:
    """Upload code and data, compile the bundled spec into the run's plan, keep the spec with the run."""
    from shared.ingest import new_run_id
    from shared.spec import compile_text
    from shared.submission import prepare_submission
    from shared.telemetry import inject_trace_context

    submission = prepare_submission(clients, spec, overrides, settings=settings)
    run_id = new_run_id(spec.parent.name if spec.stem == "pipeline" else spec.stem)
    plan = compile_text(
        submission.spec_text, source=str(spec), base_dir=None, run_id=run_id, overrides=submission.overrides
    )
    plan = plan.model_copy(
        update={"force_rerun": plan.force_rerun or force_rerun, "trace": inject_trace_context()}
    )
    clients.container(Container.RUNS).upload_blob(
        run_path(run_id, "spec.yml"), submission.spec_text.encode(), overwrite=True
    )
    return plan


def drive_plan(
    clients: StorageClients, plan: RunPlan, settings: Settings, console: Console
) -> PipelineResult:
    """Run a frozen plan to its end in this process (step 3) and print how each job ended (step 4)."""
    result = _drive(clients, plan, settings, console)
    _report(clients, result, console)
    return result


def _drive(clients: StorageClients, plan: RunPlan, settings: Settings, console: Console) -> PipelineResult:
    from shared.compute import get_executor
    from shared.host.engine import local_engine

    executor = get_executor(settings, clients)
    with local_engine(clients, executor) as engine:
        client = engine.client
        start_run(clients, client, plan, orchestration_input=pipeline_input(plan, settings))
        status: InstanceStatus | None = None
        with RunProgress(plan, client, console) as progress:
            try:
                status = _wait(client, plan.run_id, progress)
            except KeyboardInterrupt:
                console.print("[yellow]canceling the run (agents are stopped, logs are kept)...[/yellow]")
                cancel_run(client, plan.run_id)
                try:
                    status = _wait(client, plan.run_id, progress)
                except KeyboardInterrupt:  # a second Ctrl-C: no waiting, but no agent left behind
                    for job in plan.jobs:
                        executor.stop(plan.run_id, job.name)
                    raise
        if status.runtime_status.value != "Completed":
            raise FanoutError(
                f"the run's orchestration ended {status.runtime_status.value}: {status.failure}"
            )
        return PipelineResult.model_validate(status.output)


def _wait(client: DurableClient, run_id: str, progress: RunProgress) -> InstanceStatus:
    while True:
        progress.refresh()
        status = client.get_status(run_id)
        if status is not None and status.runtime_status.is_terminal:
            progress.refresh()
            return status
        time.sleep(REFRESH_SECONDS)


def _report(clients: StorageClients, result: PipelineResult, console: Console) -> None:
    from shared.runtime.logs import read_text

    colors = {RunStatus.COMPLETED: "green", RunStatus.FAILED: "red", RunStatus.CANCELED: "yellow"}
    for name, job in result.jobs.items():
        line = f"  {name}: {job.status.value}"
        if job.reused_from:
            line += f" (outputs of run {job.reused_from})"
        console.print(line)
        if job.status is StepStatus.FAILED:
            try:
                text = read_text(clients, job.step, "job_result.txt").strip()
            except AzureError:  # no job_result.txt: the reason in the result says it
                text = job.reason
            console.print(f"    [red]{text or job.reason}[/red]")
            console.print(f"    logs: runs/{job.logs or run_path(job.step.run_id, job.step.job, 'logs')}/")
    color = colors.get(result.status, "white")
    console.print(f"run {result.run_id}: [bold {color}]{result.status.value}[/bold {color}]")
