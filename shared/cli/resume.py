"""``fanout resume RUN [--wait]`` — resume a failed or canceled run without redoing its finished work.

A resume is a new run (its own id; ``fanout status`` shows which run it resumes) of the old run's
frozen plan: completed jobs are taken over, and a parallel job that failed or was canceled part-way
runs only the mini-batches that did not succeed (see ``shared.orchestration.resume``).

- With a Fanout host (``FANOUT_API_URL`` and ``FANOUT_API_KEY``): ``POST /api/runs/{id}/resume`` starts
  the new run there and the command prints its id; ``--wait`` follows it to its end.
- With only storage configured (the account a ``fanout run`` used): the new run is driven in this
  process, like ``fanout run`` — the durable engine runs here, agents are local processes (or Batch
  tasks with ``FANOUT_EXECUTOR=batch``), one progress bar per job — so the command always waits.

Exit code 0 when the new run was started (or, when waiting, completed), 1 otherwise.
"""

from __future__ import annotations

import json
import os

import click

from shared.cli.submit import wait_for_run
from shared.client import FanoutClient
from shared.errors import ConfigurationError
from shared.settings import Settings, get_settings


@click.command("resume")
@click.argument("run_id")
@click.option("--wait", is_flag=True, help="Follow the new run until it ends; exit 1 unless it completed.")
@click.option("--json", "as_json", is_flag=True, help="Print the new run (and its final status) as JSON.")
def resume(run_id: str, wait: bool, as_json: bool) -> int:
    """Resume RUN_ID (Failed or Canceled): a new run that keeps its finished jobs and mini-batches."""
    settings = get_settings()
    if settings.api_url:
        return _through_api(settings, run_id, wait=wait, as_json=as_json)
    if settings.storage_configured:
        return _in_this_process(settings, run_id)
    raise ConfigurationError(
        "nowhere to resume the run: set FANOUT_API_URL and FANOUT_API_KEY (a host: the Function App or "
        "`fanout serve`), or FANOUT_STORAGE_CONNECTION_STRING (the run's storage; the run is then "
        "driven in this process)"
    )


def _through_api(settings: Settings, run_id: str, *, wait: bool, as_json: bool) -> int:
    with FanoutClient.connect(str(settings.api_url), settings.api_key) as client:
        answer = client.resume(run_id)
        new_run = str(answer["run_id"])
        if as_json and not wait:
            click.echo(json.dumps(answer, indent=2))
        elif not as_json:
            click.echo(f"run id: {new_run} (resumes run {run_id})")
        if not wait:
            return 0
        final = wait_for_run(client, new_run, quiet=as_json)
    if as_json:
        click.echo(json.dumps({**answer, "final": final}, indent=2))
    return 0 if final.get("status") == "Completed" else 1


def _in_this_process(settings: Settings, run_id: str) -> int:
    from rich.console import Console

    from shared.cli.run import drive_plan
    from shared.orchestration.contracts import RunStatus
    from shared.orchestration.resume import prepare_resume
    from shared.storage import StorageClients
    from shared.telemetry import inject_trace_context, start_span

    # gRPC's C core logs to stderr unless told otherwise; set before the engine imports it.
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    console = Console()
    clients = StorageClients.from_settings(settings)
    with start_span("fanout.cli.resume", attributes={"fanout.resumed_run": run_id}):
        plan = prepare_resume(clients, run_id, trace=inject_trace_context())
    console.print(f"run id: [bold]{plan.run_id}[/bold] (resumes run {run_id})")
    result = drive_plan(clients, plan, settings, console)
    return 0 if result.status is RunStatus.COMPLETED else 1
