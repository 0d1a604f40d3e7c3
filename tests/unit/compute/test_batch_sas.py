"""The fallback when pools have no identity: a read-only, short-lived user-delegation SAS on the wheel."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qs, urlparse

from azure.storage.blob import UserDelegationKey

from shared.compute.batch.submission import SAS_LIFETIME, read_sas_url


def delegation_key() -> UserDelegationKey:
    key = UserDelegationKey()
    key.signed_oid = "00000000-0000-0000-0000-000000000001"
    key.signed_tid = "00000000-0000-0000-0000-000000000002"
    key.signed_start = "2026-01-01T00:00:00Z"
    key.signed_expiry = "2026-01-02T00:00:00Z"
    key.signed_service = "b"
    key.signed_version = "2025-01-05"
    key.value = "a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U="
    return key


def test_the_sas_reads_one_blob_over_https_for_a_limited_time() -> None:
    url = "https://acct.blob.core.windows.net/agent/fanout-0.1.0-py3-none-any.whl"
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    signed = read_sas_url(
        url,
        account_name="acct",
        container="agent",
        blob="fanout-0.1.0-py3-none-any.whl",
        key=delegation_key(),
        now=now,
    )
    parsed = urlparse(signed)
    assert f"{parsed.scheme}://{parsed.netloc}{parsed.path}" == url
    query = {k: v[0] for k, v in parse_qs(parsed.query).items()}
    assert query["sp"] == "r"  # read only
    assert query["sr"] == "b"  # this blob only
    assert query["spr"] == "https"
    assert (
        query["skoid"] == "00000000-0000-0000-0000-000000000001"
    )  # a user-delegation SAS, not an account key
    start = datetime.fromisoformat(query["st"].replace("Z", "+00:00"))
    expiry = datetime.fromisoformat(query["se"].replace("Z", "+00:00"))
    assert start < now < expiry
    assert expiry - now == SAS_LIFETIME
    assert "sig" in query
