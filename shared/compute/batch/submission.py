"""What a step's Batch job needs before it is submitted: node settings, the agent wheel, the pool's shape.

:class:`~shared.compute.batch.executor.BatchExecutor` gathers these, in this order, before it sends
anything to Batch (steps 1–3 of its module docstring): the settings nodes get as environment variables
(identity-based storage URLs only, never a key), the Fanout wheel they install and how they may read it
(the pool identity, else a short-lived read-only SAS), and the pool's task slots and container support.
Each reads configuration or one resource and fails with an error that names the fix; kept apart from
the executor, which submits, stops and watches jobs, so that these checks can be read (and tested) on
their own.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import PurePosixPath
from urllib.parse import unquote, urlparse

from azure.batch import BatchClient
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.storage.blob import BlobSasPermissions, UserDelegationKey, generate_blob_sas

from shared.compute.batch.specs import AgentPackage
from shared.errors import ComputeError, ConfigurationError
from shared.settings import ComputeTarget, Settings
from shared.storage import StorageClients

logger = logging.getLogger(__name__)

#: Lifetime of the read-only SAS used when the pool has no identity (nodes may take a while to appear).
SAS_LIFETIME = timedelta(hours=12)


def node_settings(settings: Settings) -> dict[str, str]:
    """The settings agents on Batch nodes need, as environment variables (never a key or connection string).

    Raises:
        ConfigurationError: storage is not configured with account URLs (identity-based access).
    """
    if not (settings.storage_blob_url and settings.storage_queue_url and settings.storage_table_url):
        raise ConfigurationError(
            "the Batch executor needs FANOUT_STORAGE_BLOB_URL, FANOUT_STORAGE_QUEUE_URL and "
            "FANOUT_STORAGE_TABLE_URL: Batch nodes reach storage with the pool's managed identity and are "
            "never given account keys or connection strings"
        )
    values = {
        "FANOUT_STORAGE_BLOB_URL": settings.storage_blob_url,
        "FANOUT_STORAGE_QUEUE_URL": settings.storage_queue_url,
        "FANOUT_STORAGE_TABLE_URL": settings.storage_table_url,
        "FANOUT_DEFAULT_DATASTORE": settings.default_datastore,
    }
    if settings.storage_client_id:
        values["FANOUT_STORAGE_CLIENT_ID"] = settings.storage_client_id
    if settings.telemetry is not None:
        values["FANOUT_TELEMETRY"] = settings.telemetry.value
    if settings.applicationinsights_connection_string:
        values["APPLICATIONINSIGHTS_CONNECTION_STRING"] = settings.applicationinsights_connection_string
    return values


def read_sas_url(
    url: str, *, account_name: str, container: str, blob: str, key: UserDelegationKey, now: datetime
) -> str:
    """``url`` with a read-only user-delegation SAS for one blob, valid from 5 minutes ago for
    :data:`SAS_LIFETIME` (https only)."""
    token = generate_blob_sas(
        account_name=account_name,
        container_name=container,
        blob_name=blob,
        user_delegation_key=key,
        permission=BlobSasPermissions(read=True),
        start=now - timedelta(minutes=5),
        expiry=now + SAS_LIFETIME,
        protocol="https",
    )
    return f"{url}?{token}"


def agent_package(settings: Settings, clients: StorageClients) -> AgentPackage:
    """The Fanout wheel nodes install: its URL, version (the blob's ETag) and how nodes may read it.

    The ETag goes into the environment hash, so a redeployed wheel is rebuilt on the nodes. Nodes read
    it with the pool identity when one is configured, else through a read-only user-delegation SAS
    (:func:`read_sas_url`) when the wheel is in Fanout's own account and the URL carries no SAS.

    Raises:
        ConfigurationError: no wheel URL is configured, or it names no ``*.whl``.
        ComputeError: the wheel is in Fanout's account but does not exist.
    """
    url = settings.agent_package_url
    if not url:
        raise ConfigurationError(
            "the Batch executor needs FANOUT_AGENT_PACKAGE_URL, the blob URL of the Fanout wheel that "
            "nodes install (`azd deploy` uploads it)"
        )
    base_url = url.split("?", 1)[0]
    file_name = PurePosixPath(unquote(urlparse(base_url).path)).name
    if not file_name.endswith(".whl"):
        raise ConfigurationError(f"FANOUT_AGENT_PACKAGE_URL must name a wheel (*.whl), got {url}")
    identity = settings.batch_identity_resource_id
    located = _own_blob(clients, base_url)
    version = ""
    download_url = url
    if located is not None:
        container, blob = located
        blob_client = clients.blob.get_blob_client(container, blob)
        try:
            version = str(blob_client.get_blob_properties().etag or "")
        except ResourceNotFoundError as exc:
            raise ComputeError(
                f"the Fanout wheel {base_url} does not exist: run `azd deploy` (its post-deploy hook "
                "builds and uploads it) or fix FANOUT_AGENT_PACKAGE_URL"
            ) from exc
        if not identity and "?" not in url:
            now = datetime.now(UTC)
            key = clients.blob.get_user_delegation_key(now - timedelta(minutes=5), now + SAS_LIFETIME)
            account = clients.blob.account_name or ""
            download_url = read_sas_url(
                base_url, account_name=account, container=container, blob=blob, key=key, now=now
            )
    return AgentPackage(
        url=base_url,
        file_name=file_name,
        version=version,
        download_url=download_url,
        identity_resource_id=identity,
    )


def _own_blob(clients: StorageClients, url: str) -> tuple[str, str] | None:
    """(container, blob) when ``url`` is a blob of Fanout's own storage account."""
    account_url = clients.blob.url.rstrip("/") + "/"
    if not url.startswith(account_url):
        return None
    container, _, blob = unquote(url[len(account_url) :]).partition("/")
    return (container, blob) if container and blob else None


def pool_shape(
    client: BatchClient, settings: Settings, compute_name: str, target: ComputeTarget
) -> tuple[int, bool]:
    """(task slots per node, runs containers) from the pool itself; the target's values if unreadable.

    The pool is the truth (the settings may be stale); an unreadable pool (no permission, a hiccup)
    falls back to ``FANOUT_COMPUTE_TARGETS``.

    Raises:
        ComputeError: the pool does not exist (the message names the compute and the fix).
    """
    try:
        pool = client.get_pool(
            target.pool_id, select=["id", "vmSize", "taskSlotsPerNode", "virtualMachineConfiguration"]
        )
    except ResourceNotFoundError as exc:
        raise ComputeError(
            f"Batch pool '{target.pool_id}' (compute '{compute_name}') does not exist in "
            f"{settings.batch_endpoint}: deploy the pools (`azd provision`) or fix "
            "FANOUT_COMPUTE_TARGETS",
            compute=compute_name,
        ) from exc
    except HttpResponseError as exc:
        logger.warning(
            "cannot read Batch pool %s (%s); using FANOUT_COMPUTE_TARGETS",
            target.pool_id,
            exc.status_code,
        )
        return target.task_slots, target.containers
    slots = pool.task_slots_per_node or target.task_slots
    if slots != target.task_slots:
        logger.warning(
            "pool %s has %d task slots per node (settings say %d)", pool.id, slots, target.task_slots
        )
    vm = pool.virtual_machine_configuration
    containers = vm.container_configuration is not None if vm is not None else target.containers
    return slots, containers
