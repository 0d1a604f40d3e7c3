"""What every API handler gets: storage clients, the durable client, the settings.

The Function App builds one per invocation (its durable client is per invocation: the binding hands
it over); the local host builds one per request over its in-process engine's client.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.errors import ConfigurationError
from shared.orchestration.client import DurableClient
from shared.settings import Settings
from shared.storage import StorageClients


@dataclass(frozen=True)
class ApiContext:
    """Dependencies of the handlers.

    Attributes:
        clients: the storage account's clients.
        durable: the durable client (schedule, status, raise event, terminate); None for routes that
            do not talk to the engine.
        settings: the process's settings.
    """

    clients: StorageClients
    settings: Settings
    durable: DurableClient | None = None

    def require_durable(self) -> DurableClient:
        """The durable client. Raises ConfigurationError when the host gave none (a wiring bug)."""
        if self.durable is None:
            raise ConfigurationError("this API route needs the durable client, but the host gave none")
        return self.durable
