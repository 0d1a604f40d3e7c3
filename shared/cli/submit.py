"""``fanout submit PIPELINE.yml [--set k=v] [--wait]`` — start a run on a Fanout host and return.

Two ways in, the same run:

- **storage** (when storage is configured): code folders become snapshots and local data is uploaded,
  content-addressed (``shared.submission.prepare_submission``); the bundled spec is dropped into the
  ``specs`` container (``submit_spec``), where the host watching it (the Function App, or
  ``fanout serve``) starts the run. The run id follows from the spec blob's name and ETag.
- **api** (when only ``FANOUT_API_URL`` is set): the spec's folder (minus what its ignore file
  excludes) is zipped and posted to ``POST /api/pipelines`` with the spec and the overrides.

``--wait`` follows the run until it ends (exit 0 when it completed, 1 otherwise).
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from pathlib import Path
from typing import Any

import click

from shared.cli.validate import parse_overrides
from shared.client import FanoutClient
from shared.errors import ConfigurationError, NotFoundError
from shared.orchestration.contracts import RunStatus
from shared.settings import Settings, get_settings
from shared.telemetry import CLI_SERVICE_NAME, configure_telemetry, inject_trace_context, start_span

#: Seconds between status reads while waiting.
POLL_SECONDS = 2.0
#: After this long without the run appearing, say that no host may be watching.
NO_HOST_HINT_SECONDS = 30.0


@click.command("submit")
@click.argument("spec", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--set", "set_values", multiple=True, metavar="NAME=VALUE", help="Set a pipeline input.")
@click.option("--wait", is_flag=True, help="Follow the run until it ends; exit 1 unless it completed.")
@click.option(
    "--via",
    type=click.Choice(["auto", "storage", "api"]),
    default="auto",
    show_default=True,
    help="Drop the spec into storage, or post it to the HTTP API (auto: storage when configured).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the submission (and final status) as JSON.")
def submit(spec: Path, set_values: tuple[str, ...], wait: bool, via: str, as_json: bool) -> int:
    """Submit the pipeline SPEC to a Fanout host (the Function App or `fanout serve`)."""
    settings = get_settings()
    overrides = parse_overrides(set_values)
    route = _route(settings, via)
    telemetry = configure_telemetry(settings, CLI_SERVICE_NAME)
    try:
        with start_span("fanout.cli.submit", attributes={"fanout.spec": str(spec)}):
            answer = (
                _through_storage(settings, spec, overrides)
                if route == "storage"
                else _through_api(settings, spec, overrides)
            )
    finally:
        telemetry.shutdown()  # the submission's spans are sent before the (long) wait
    run_id = str(answer["run_id"])
    if as_json and not wait:
        click.echo(json.dumps(answer, indent=2))
    elif not as_json:
        click.echo(f"run id: {run_id}")
        for warning in answer.get("warnings", []):
            click.echo(f"warning: {warning}", err=True)
    if not wait:
        return 0
    final = wait_for_run(FanoutClient.from_settings(settings), run_id, quiet=as_json)
    if as_json:
        click.echo(json.dumps({**answer, "final": final}, indent=2))
    return 0 if final.get("status") == "Completed" else 1


def _route(settings: Settings, via: str) -> str:
    if via == "storage" or (via == "auto" and settings.storage_configured):
        if not settings.storage_configured:
            raise ConfigurationError("--via storage needs FANOUT_STORAGE_CONNECTION_STRING (or account URLs)")
        return "storage"
    if not settings.api_url:
        raise ConfigurationError(
            "nowhere to submit: set FANOUT_STORAGE_CONNECTION_STRING (the host's storage) or FANOUT_API_URL "
            "and FANOUT_API_KEY (`fanout serve` prints them)"
        )
    return "api"


def _through_storage(settings: Settings, spec: Path, overrides: dict[str, str]) -> dict[str, Any]:
    from shared.ingest import run_id_for_blob
    from shared.storage import Container, StorageClients
    from shared.submission import prepare_submission, submit_spec

    clients = StorageClients.from_settings(settings)
    with start_span("fanout.submit", attributes={"fanout.source": str(spec)}):
        submission = prepare_submission(clients, spec, overrides, settings=settings)
        blob = submit_spec(clients, submission, metadata=inject_trace_context())
    etag = str(clients.container(Container.SPECS).get_blob_client(blob).get_blob_properties().etag)
    return {
        "run_id": run_id_for_blob(blob, etag),
        "spec_blob": f"{Container.SPECS.value}/{blob}",
        "uploads": [record.model_dump() for record in submission.uploads],
    }


def _through_api(settings: Settings, spec: Path, overrides: dict[str, str]) -> dict[str, Any]:
    archive = zip_spec_folder(spec.parent)
    with FanoutClient.connect(str(settings.api_url), settings.api_key) as client:
        source = f"{spec.parent.name}/{spec.name}" if spec.parent.name else spec.name  # names the run
        text = spec.read_text(encoding="utf-8")
        return client.submit(text, source=source, overrides=overrides, snapshot=archive)


def zip_spec_folder(folder: Path) -> bytes:
    """The spec's folder as a zip, without what its ignore file (.amlignore/.gitignore) excludes."""
    from shared.snapshot import scan_folder

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in scan_folder(folder).files:
            archive.write(file.source, file.path)
    return buffer.getvalue()


def wait_for_run(client: FanoutClient, run_id: str, *, quiet: bool = False) -> dict[str, Any]:
    """Poll the run until it ends, printing each job's progress when it changes; the final detail."""
    started = time.monotonic()
    hinted = False
    last = ""
    while True:
        try:
            detail = client.get_run(run_id)
        except NotFoundError:
            if not hinted and time.monotonic() - started > NO_HOST_HINT_SECONDS:
                click.echo(
                    f"run {run_id} has not started yet: is a host (`fanout serve`, the Function App) "
                    "watching this storage account?",
                    err=True,
                )
                hinted = True
            time.sleep(POLL_SECONDS)
            continue
        line = progress_line(detail)
        if line != last and not quiet:
            click.echo(line)
            last = line
        if RunStatus(detail["status"]).is_terminal:
            return detail
        time.sleep(POLL_SECONDS)


def progress_line(detail: dict[str, Any]) -> str:
    """``<status> | job: status done/total [failed] ...`` for one poll of a run."""
    parts = [str(detail["status"])]
    for job in detail.get("jobs", []):
        text = f"{job['name']}: {job['status']}"
        total = job.get("mini_batches_total")
        if total is not None:
            text += f" {job['mini_batches_succeeded']}/{total}"
            if job.get("mini_batches_failed"):
                text += f" ({job['mini_batches_failed']} failed)"
        if job.get("eta_seconds"):
            text += f" eta {int(job['eta_seconds'])}s"
        parts.append(text)
    return " | ".join(parts)
