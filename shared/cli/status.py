"""``fanout status [RUN]`` — list runs (newest first), or show one run with each job's progress.

Reads the HTTP API at ``FANOUT_API_URL``, or — with only storage configured — the run index and run
folders directly (the same handlers, in this process).
"""

from __future__ import annotations

import json
from typing import Any

import click

from shared.client import FanoutClient
from shared.settings import get_settings


@click.command("status")
@click.argument("run_id", required=False)
@click.option("--status", "status_filter", help="Only runs with this status (Running, Failed, ...).")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 10_000), help="Runs to list.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def status(run_id: str | None, status_filter: str | None, limit: int, as_json: bool) -> int:
    """Show RUN_ID's status and progress, or list recent runs."""
    with FanoutClient.from_settings(get_settings()) as client:
        if run_id is None:
            runs = []
            for run in client.list_runs(status=status_filter, limit=min(limit, 500)):
                runs.append(run)
                if len(runs) >= limit:
                    break
            click.echo(json.dumps(runs, indent=2) if as_json else format_runs(runs))
            return 0
        detail = client.get_run(run_id)
    click.echo(json.dumps(detail, indent=2) if as_json else format_run(detail))
    return 0


def format_runs(runs: list[dict[str, Any]]) -> str:
    """The run list as an aligned table (id, status, creation time, name), in the order given."""
    if not runs:
        return "no runs"
    rows = [("RUN", "STATUS", "CREATED", "NAME")]
    rows += [
        (run["run_id"], run["status"], (run.get("created_at") or "")[:19], run.get("display_name") or "")
        for run in runs
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join(
        "  ".join(cell.ljust(widths[i]) if i < 3 else cell for i, cell in enumerate(row)).rstrip()
        for row in rows
    )


def format_run(detail: dict[str, Any]) -> str:
    """One run's detail as indented text: its status, then each job's tallies, reason and outputs."""
    lines = [f"run {detail['run_id']}: {detail['status']}"]
    if detail.get("display_name"):
        lines.append(f"  name: {detail['display_name']}")
    if detail.get("error"):
        lines.append(f"  error: {detail['error']}")
    if detail.get("resumed_from"):
        lines.append(f"  resumes run {detail['resumed_from']} (its finished work is kept)")
    if detail.get("resumed_by"):
        lines.append(f"  resumed by run {detail['resumed_by']}")
    for job in detail["jobs"]:
        text = f"  {job['name']} ({job['type']}): {job['status']}"
        total = job.get("mini_batches_total")
        if total is not None:
            done, failed = job["mini_batches_succeeded"], job["mini_batches_failed"]
            text += f" — mini-batches {done}/{total} done, {failed} failed;"
            text += f" items {job['items_succeeded']} ok, {job['items_failed']} failed"
            if job.get("mini_batches_carried"):
                text += f"; {job['mini_batches_carried']} mini-batches carried over"
        if job.get("eta_seconds") is not None:
            text += f"; eta {int(job['eta_seconds'])}s"
        if job.get("reused_from"):
            text += f" (reused run {job['reused_from']})"
        lines.append(text)
        if job.get("reason"):
            lines.append(f"    {job['reason']}")
        for name, link in job.get("outputs", {}).items():
            lines.append(f"    output {name}: {link['href']}")
    for warning in detail.get("warnings", []):
        lines.append(f"  warning: {warning}")
    return "\n".join(lines)
