"""Parsing data asset references and writing asset locations as URIs (pure)."""

from __future__ import annotations

import pytest

from shared.errors import RegistryError
from shared.plan import AssetRef, BlobData, UrlData
from shared.registry import location_uri, parse_asset_ref


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("iris", AssetRef(name="iris")),
        ("iris:3", AssetRef(name="iris", version="3")),
        ("iris@latest", AssetRef(name="iris")),
        ("azureml:iris:2024.01", AssetRef(name="iris", version="2024.01")),
        ("azureml:my_data-v2@latest", AssetRef(name="my_data-v2")),
    ],
)
def test_references(text: str, expected: AssetRef) -> None:
    assert parse_asset_ref(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("iris@stable", "the only label is @latest"),
        ("iris:1:2", "is not a data asset reference"),
        ("a/b", "is not a data asset reference"),
        ("", "is not a data asset reference"),
    ],
)
def test_malformed_references_are_named(text: str, message: str) -> None:
    with pytest.raises(RegistryError, match=message):
        parse_asset_ref(text)


def test_location_uris() -> None:
    assert (
        location_uri(BlobData(container="data", path="a/b"))
        == "azureml://datastores/workspaceblobstore/paths/a/b"
    )
    assert location_uri(BlobData(container="runs", path="r/j")) == "azureml://datastores/runs/paths/r/j"
    assert (
        location_uri(UrlData(url="https://x.blob.core.windows.net/c/p"))
        == "https://x.blob.core.windows.net/c/p"
    )


def test_assets_command_without_storage_says_what_to_configure() -> None:
    from click.testing import CliRunner

    from shared.cli.main import cli
    from shared.errors import ConfigurationError

    result = CliRunner().invoke(cli, ["assets", "list"])
    assert isinstance(result.exception, ConfigurationError)
    assert "FANOUT_STORAGE_CONNECTION_STRING" in str(result.exception)
