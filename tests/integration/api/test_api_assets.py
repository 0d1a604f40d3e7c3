"""``GET /api/assets`` and ``fanout assets`` against a running API server (no storage on the CLI side)."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest
from click.testing import CliRunner

from shared.cli.main import cli
from shared.errors import NotFoundError
from shared.host.server import ApiServer
from shared.plan import BlobData
from shared.registry import AssetLineage, register_asset
from shared.storage import StorageClients


def _register_two_versions(storage: StorageClients) -> str:
    name = f"api-asset-{uuid.uuid4().hex[:8]}"
    for path in ("one", "two"):
        register_asset(
            storage,
            name,
            BlobData(container="runs", path=path),
            lineage=AssetLineage(run_id=f"run-{path}", job="train", output="model"),
        )
    return name


def test_an_asset_comes_with_the_versions_it_has(storage: StorageClients, api: httpx.Client) -> None:
    name = _register_two_versions(storage)
    latest = api.get(f"/assets/{name}").json()
    assert (latest["version"], latest["lineage"]["run_id"]) == ("2", "run-two")
    assert [v["version"] for v in latest["versions"]] == ["1", "2"]
    first = api.get(f"/assets/{name}/1").json()
    assert (first["version"], first["uri"]) == ("1", "azureml://datastores/runs/paths/one")
    missing = api.get(f"/assets/{name}/9")
    assert missing.status_code == 404
    assert "1, 2" in missing.json()["message"]


def test_fanout_assets_reads_through_the_api(
    storage: StorageClients, server: ApiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shared.settings import get_settings

    name = _register_two_versions(storage)
    monkeypatch.setenv("FANOUT_API_URL", server.url)
    monkeypatch.setenv("FANOUT_API_KEY", server.key)
    monkeypatch.delenv("FANOUT_STORAGE_CONNECTION_STRING")  # only the API can answer
    get_settings.cache_clear()
    runner = CliRunner()

    listed = runner.invoke(cli, ["assets", "list"], standalone_mode=False)
    assert listed.exception is None, listed.output
    assert any(line.split()[:3] == [name, "2", "2"] for line in listed.output.splitlines())

    shown = runner.invoke(cli, ["assets", "show", f"azureml:{name}:1"], standalone_mode=False)
    assert shown.exception is None, shown.output
    assert "version:     1" in shown.output
    assert "run:         run-one" in shown.output
    assert "versions:    1 (shown), 2" in shown.output

    as_json = runner.invoke(cli, ["assets", "show", f"{name}@latest", "--json"], standalone_mode=False)
    assert json.loads(as_json.output)["version"] == "2"

    missing = runner.invoke(cli, ["assets", "show", f"{name}:9"], standalone_mode=False)
    assert isinstance(missing.exception, NotFoundError)
