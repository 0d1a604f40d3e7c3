"""``fanout assets list`` and ``fanout assets show NAME[:VERSION|@latest]`` — the data asset registry.

Reads the HTTP API at ``FANOUT_API_URL`` (a deployed app, or ``fanout serve``), or — with only storage
configured — the registry directly, through the same handlers in this process. ``--json`` prints what
the API returns.
"""

from __future__ import annotations

import json

import click

from shared.api.models import AssetDetail
from shared.client import FanoutClient
from shared.registry import AssetSummary, parse_asset_ref
from shared.settings import get_settings


def _client() -> FanoutClient:
    return FanoutClient.from_settings(get_settings())


@click.group("assets")
def assets() -> None:
    """Data assets: outputs registered by runs (an output with 'name:'), and their versions."""


@assets.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_command(as_json: bool) -> None:
    """Every data asset with its latest version."""
    with _client() as client:
        listed = client.list_assets()
    if as_json:
        click.echo(json.dumps(listed, indent=2))
        return
    summaries = [AssetSummary.model_validate(item) for item in listed]
    if not summaries:
        click.echo("No data assets are registered yet. Give an output a `name:` to register it.")
        return
    click.echo(_table(summaries))


def _table(summaries: list[AssetSummary]) -> str:
    rows = [("NAME", "LATEST", "VERSIONS", "UPDATED (UTC)")]
    rows += [
        (s.name, s.latest_version, str(s.version_count), s.updated_at.strftime("%Y-%m-%d %H:%M:%S"))
        for s in summaries
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows)


@assets.command("show")
@click.argument("reference")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def show_command(reference: str, as_json: bool) -> None:
    """One version of a data asset (the latest unless REFERENCE is NAME:VERSION), and its lineage.

    REFERENCE is NAME, NAME:VERSION or NAME@latest (an 'azureml:' prefix is accepted).
    """
    ref = parse_asset_ref(reference)  # a malformed reference is refused before any request
    with _client() as client:
        document = client.get_asset(ref.name, ref.version)
    if as_json:
        click.echo(json.dumps(document, indent=2))
        return
    click.echo(_describe(AssetDetail.model_validate(document)))


def _describe(asset: AssetDetail) -> str:
    lines = [
        f"name:        {asset.name}",
        f"version:     {asset.version}",
        f"type:        {asset.type.value}",
        f"uri:         {asset.uri}",
        f"created:     {asset.created_at:%Y-%m-%d %H:%M:%S} UTC",
    ]
    if asset.description:
        lines.append(f"description: {asset.description}")
    lineage = asset.lineage
    if lineage is not None:
        lines += [
            "lineage:",
            f"  run:         {lineage.run_id}",
            f"  job:         {lineage.job} (output {lineage.output})",
        ]
        if lineage.reused_from:
            lines.append(f"  reused from: {lineage.reused_from}")
        if lineage.fingerprint:
            lines.append(f"  fingerprint: {lineage.fingerprint}")
        for name, source in sorted(lineage.inputs.items()):
            lines.append(f"  input {name}: {source}")
    listed = ", ".join(v.version + (" (shown)" if v.version == asset.version else "") for v in asset.versions)
    lines.append(f"versions:    {listed}")
    return "\n".join(lines)
