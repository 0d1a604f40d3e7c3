"""``fanout cancel RUN`` — ask a run to stop (its agents are stopped; logs and finished outputs stay)."""

from __future__ import annotations

import click

from shared.client import FanoutClient
from shared.settings import get_settings


@click.command("cancel")
@click.argument("run_id")
def cancel(run_id: str) -> int:
    """Cancel RUN_ID (needs the HTTP API: FANOUT_API_URL and FANOUT_API_KEY)."""
    with FanoutClient.from_settings(get_settings()) as client:
        answer = client.cancel(run_id)
    click.echo(f"run {answer['run_id']}: {answer['status']}")
    return 0
