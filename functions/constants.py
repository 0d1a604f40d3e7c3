"""Names the Function App's bindings use, once (STYLE habit 4).

Container, queue and table names come from :mod:`shared.storage`; orchestrator, activity and event
names from :mod:`shared.orchestration.names`; route templates from :mod:`shared.api.app`.
"""

from __future__ import annotations

from typing import Final

from shared.storage import EVENTS_QUEUE, Container

#: App setting (prefix) of the storage account the triggers watch: the Functions host's own account,
#: which is also Fanout's (``AzureWebJobsStorage`` or, with a managed identity,
#: ``AzureWebJobsStorage__blobServiceUri`` / ``__queueServiceUri`` / ``__credential`` / ``__clientId``).
STORAGE_CONNECTION: Final = "AzureWebJobsStorage"

#: Blob trigger paths (``container/{name}``); the handlers filter further (no ``.error.json``).
SPECS_BLOB_PATH: Final = f"{Container.SPECS.value}/{{name}}"
SNAPSHOTS_BLOB_PATH: Final = f"{Container.SNAPSHOTS.value}/incoming/{{name}}"

#: The completion-events queue (base64 messages, see host.json ``extensions.queues``).
EVENTS_QUEUE_NAME: Final = EVENTS_QUEUE

#: Function names of the triggers (the HTTP functions are named after their routes).
INGEST_SPEC_FUNCTION: Final = "ingest_spec"
INGEST_SNAPSHOT_FUNCTION: Final = "ingest_snapshot"
EVENTS_FUNCTION: Final = "handle_events"

#: Parameter name of the durable client binding.
CLIENT_ARG: Final = "client"

#: ``service.name`` of the Function App's telemetry.
SERVICE_NAME: Final = "fanout-functions"
