from __future__ import annotations

import pytest
from azure.storage.blob import BlobServiceClient

from shared.azurite import AzuriteProcess, azurite_command, start_azurite, storage_connection
from shared.errors import AzuriteError
from shared.settings import Settings


def test_session_azurite_serves_blobs(azurite: AzuriteProcess) -> None:
    client = BlobServiceClient.from_connection_string(azurite.connection_string)
    container = client.get_container_client("azurite-smoke")
    container.create_container()
    container.upload_blob("hello.txt", b"hi")
    assert container.download_blob("hello.txt").readall() == b"hi"


def test_start_and_stop_on_free_ports(tmp_path: object) -> None:
    instance = start_azurite(Settings(home=tmp_path))  # type: ignore[arg-type]
    try:
        ports = {
            url.rsplit(":", 1)[1]
            for url in (
                instance.endpoints.blob_url,
                instance.endpoints.queue_url,
                instance.endpoints.table_url,
            )
        }
        assert len(ports) == 3, "each service gets its own port"
        assert instance.process.poll() is None
    finally:
        instance.stop()
    assert instance.process.poll() is not None
    instance.stop()  # stopping twice is harmless


def test_configured_storage_is_used_as_is(azurite: AzuriteProcess) -> None:
    settings = Settings(storage_connection_string=azurite.connection_string)
    with storage_connection(settings) as connection_string:
        assert connection_string == azurite.connection_string


def test_missing_azurite_names_the_fix(tmp_path: object) -> None:
    settings = Settings(azurite_command="/nonexistent/azurite", home=tmp_path)  # type: ignore[arg-type]
    assert azurite_command(settings) == ["/nonexistent/azurite"]
    with pytest.raises((AzuriteError, FileNotFoundError)):
        start_azurite(settings, timeout=5)
