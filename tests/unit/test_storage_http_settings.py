"""HTTP settings read from the environment once (``shared.storage.environment_http_settings``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.storage import StorageClients, environment_http_settings

AZURITE = (
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
    "BlobEndpoint=http://127.0.0.1:1/devstoreaccount1;QueueEndpoint=http://127.0.0.1:2/devstoreaccount1;"
    "TableEndpoint=http://127.0.0.1:3/devstoreaccount1;"
)


def test_proxies_and_the_ca_bundle_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bundle = tmp_path / "corporate-ca.pem"
    bundle.write_text("certificate")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "internal.example")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    options = environment_http_settings("https://acct.blob.core.windows.net/?sv=secret")
    assert options["use_env_settings"] is False
    assert options["proxies"]["https"] == "http://proxy.example:3128"
    assert options["connection_verify"] == str(bundle)
    bypassed = environment_http_settings("https://internal.example/container")
    assert "proxies" not in bypassed  # NO_PROXY applies to this host


def test_without_settings_in_the_environment_defaults_stay(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    assert environment_http_settings("http://127.0.0.1:10000/devstoreaccount1") == {
        "use_env_settings": False,
        "connection_verify": True,
    }


def test_resolved_clients_reach_the_same_account() -> None:
    clients = StorageClients.from_connection_string(AZURITE)
    resolved = clients.with_resolved_environment()
    assert (resolved.blob.url, resolved.queue.url, resolved.table.url) == (
        clients.blob.url,
        clients.queue.url,
        clients.table.url,
    )
    assert resolved.connection_string == AZURITE
    assert resolved.blob.credential.account_name == "devstoreaccount1"
