"""How a worker gets its read SAS for a container (``shared.data.fetch._signer``), without a service."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from azure.storage.blob import BlobServiceClient, ContainerClient, UserDelegationKey

from shared.data import fetch
from shared.data.locations import BlobRoot


class FakeTokenCredential:
    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken("token", 2**31)


def _delegation_key() -> UserDelegationKey:
    key = UserDelegationKey()
    key.signed_oid, key.signed_tid = (
        "00000000-0000-0000-0000-000000000001",
        "00000000-0000-0000-0000-000000000002",
    )
    key.signed_start, key.signed_expiry = "2026-01-01T00:00:00Z", "2026-01-01T01:00:00Z"
    key.signed_service, key.signed_version = "b", "2025-01-05"
    key.value = base64.b64encode(b"k" * 32).decode()
    return key


def test_with_entra_id_a_user_delegation_key_of_the_account_signs_the_sas(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[str] = []

    def delegation_key(self: BlobServiceClient, start: datetime, expiry: datetime) -> UserDelegationKey:
        asked.append(self.url)
        assert timedelta(minutes=55) < expiry - datetime.now(UTC) <= fetch.SAS_LIFETIME
        return _delegation_key()

    monkeypatch.setattr(BlobServiceClient, "get_user_delegation_key", delegation_key)
    container = ContainerClient(
        "https://data.blob.core.windows.net", "data", credential=FakeTokenCredential()
    )
    sign = fetch._signer(container, BlobRoot(container="data"), "", {})
    assert sign is not None
    token, _renew_at = sign()
    fields = dict(part.split("=", 1) for part in token.split("&"))
    assert (fields["sp"], fields["sr"]) == ("r", "c")
    assert fields["skoid"] == "00000000-0000-0000-0000-000000000001"
    assert asked == ["https://data.blob.core.windows.net/"]  # the account, not the container


def test_a_roots_own_sas_is_used_as_it_is() -> None:
    container = ContainerClient("https://acct.blob.core.windows.net", "c", credential="sv=1&sig=abc")
    root = BlobRoot(account_url="https://acct.blob.core.windows.net", container="c", sas="sv=1&sig=abc")
    sign = fetch._signer(container, root, "sv=1&sig=abc", {})
    assert sign is not None
    assert sign() == ("sv=1&sig=abc", float("inf"))


def test_without_a_credential_there_is_no_sas() -> None:
    container = ContainerClient("https://acct.blob.core.windows.net", "public")
    assert fetch._signer(container, BlobRoot(container="public"), "", {}) is None
