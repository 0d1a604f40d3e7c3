"""``fanout assets list`` and ``fanout assets show NAME[:VERSION|@latest]`` — the data asset registry.

Reads the registry in the configured storage account (``FANOUT_STORAGE_CONNECTION_STRING`` or the
account URLs); ``--json`` prints the same models the HTTP API returns.
"""

from __future__ import annotations

import json

import click

from shared.registry import AssetSummary, AssetVersion, AssetVersionInfo
from shared.storage import StorageClients


def _clients() -> StorageClients:
    from shared.settings import get_settings

    return StorageClients.from_settings(get_settings())


@click.group("assets")
def assets() -> None:
    """Data assets: outputs registered by runs (an output with 'name:'), and their versions."""


@assets.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_command(as_json: bool) -> None:
    """Every data asset with its latest version."""
    from shared.registry import list_assets

    summaries = list_assets(_clients())
    if as_json:
        click.echo(json.dumps([json.loads(s.model_dump_json()) for s in summaries], indent=2))
        return
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
    from shared.registry import get_asset, list_versions, parse_asset_ref

    ref = parse_asset_ref(reference)
    clients = _clients()
    asset = get_asset(clients, ref.name, ref.version)
    versions = list_versions(clients, ref.name)
    if as_json:
        document = {
            **json.loads(asset.model_dump_json()),
            "versions": [json.loads(v.model_dump_json()) for v in versions],
        }
        click.echo(json.dumps(document, indent=2))
        return
    click.echo(_describe(asset, versions))


def _describe(asset: AssetVersion, versions: list[AssetVersionInfo]) -> str:
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
    listed = ", ".join(v.version + (" (shown)" if v.version == asset.version else "") for v in versions)
    lines.append(f"versions:    {listed}")
    return "\n".join(lines)
