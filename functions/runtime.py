"""The Function App's process-wide dependencies, built on first use — never at import time.

The Functions host imports ``function_app`` to index it before app settings may be readable, so
settings are read, storage clients created and telemetry configured only when the first invocation
asks for them (STYLE habit 2). Every trigger module gets them from here.
"""

from __future__ import annotations

from functools import lru_cache

from shared.settings import Settings, get_settings
from shared.storage import StorageClients


@lru_cache(maxsize=1)
def storage_clients() -> StorageClients:
    """Clients for Fanout's storage account; telemetry is configured on the same first call."""
    settings = get_settings()
    configure()
    return StorageClients.from_settings(settings)


@lru_cache(maxsize=1)
def configure() -> Settings:
    """Configure telemetry once (Azure Monitor when APPLICATIONINSIGHTS_CONNECTION_STRING is set)."""
    from functions.constants import SERVICE_NAME
    from shared.telemetry import configure_telemetry

    settings = get_settings()
    configure_telemetry(settings, SERVICE_NAME)
    return settings


def reset() -> None:
    """Forget the cached dependencies (tests change the environment between cases)."""
    storage_clients.cache_clear()
    configure.cache_clear()
