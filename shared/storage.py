"""The storage layout and the clients that reach it — the only module that knows container names.

Layout (one storage account; Azurite locally):

Containers
    ``snapshots``  drop zone for zipped code (``incoming/...``) and the content-addressed snapshot store
    ``specs``      drop zone for pipeline specs; ``<blob>.error.json`` is written beside a rejected one
    ``data``       inputs uploaded by the CLI, content-addressed; the ``workspaceblobstore`` datastore
    ``runs``       everything a run writes, under ``<run_id>/`` (see the ``*_path`` helpers below)
    ``registry``   data asset versions (``<name>/<version>.json``)

Queues
    ``work-...``        one work queue per running parallel step (:func:`work_queue_name`)
    ``fanout-events``   completion events from agents to the Function App (base64, Functions-compatible)

Tables
    ``fanoutruns``         run index (list runs fast, newest first)
    ``fanoutminibatches``  one record per mini-batch and attempt; repeated deliveries cannot double-count
    ``fanouttallies``      per-step tallies
    ``fanoutreceipts``     blob-trigger receipts of the local host (a blob version is handled once)
    ``fanoutreuse``        step reuse index: fingerprint -> runs whose completed outputs can be reused

Everything else asks this module for names and paths; no other module spells a container name.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from azure.core.credentials import TokenCredential
from azure.core.exceptions import ResourceExistsError
from azure.data.tables import TableServiceClient
from azure.storage.blob import BlobServiceClient, ContainerClient
from azure.storage.queue import (
    QueueClient,
    QueueServiceClient,
    TextBase64DecodePolicy,
    TextBase64EncodePolicy,
)

from shared.errors import ConfigurationError
from shared.settings import Settings

logger = logging.getLogger(__name__)


class Container(StrEnum):
    """The blob containers of the layout (what each holds: the module docstring)."""

    SNAPSHOTS = "snapshots"
    SPECS = "specs"
    DATA = "data"
    RUNS = "runs"
    REGISTRY = "registry"


class Table(StrEnum):
    """The tables of the layout (what each holds: the module docstring)."""

    RUNS = "fanoutruns"
    MINIBATCHES = "fanoutminibatches"
    TALLIES = "fanouttallies"
    RECEIPTS = "fanoutreceipts"
    REUSE = "fanoutreuse"


EVENTS_QUEUE = "fanout-events"

_QUEUE_SAFE = re.compile(r"[^a-z0-9]+")


def work_queue_name(run_id: str, job: str) -> str:
    """The work queue of one parallel step: readable, unique, and a valid queue name (≤ 63 chars)."""
    digest = hashlib.sha256(f"{run_id}/{job}".encode()).hexdigest()[:12]
    readable = _QUEUE_SAFE.sub("-", f"{run_id}-{job}".lower()).strip("-")[:44].strip("-")
    return f"work-{readable}-{digest}"


# --- paths inside the `runs` container -------------------------------------------------------------


def run_path(run_id: str, *parts: str) -> str:
    """``<run_id>/<parts...>`` in the ``runs`` container."""
    return "/".join([run_id, *parts])


def run_plan_path(run_id: str) -> str:
    """The frozen plan of a run (``RunPlan`` JSON)."""
    return run_path(run_id, "run.json")


def job_path(run_id: str, job: str, *parts: str) -> str:
    """``<run_id>/<job>/<parts...>``: a job's folder in the ``runs`` container."""
    return run_path(run_id, job, *parts)


def output_path(run_id: str, job: str, output: str) -> str:
    """Default location of a job output: ``<run_id>/<job>/outputs/<output>``."""
    return job_path(run_id, job, "outputs", output)


def logs_path(run_id: str, job: str, *parts: str) -> str:
    """A job's log tree: ``<run_id>/<job>/logs/...`` (layout of reference §5)."""
    return job_path(run_id, job, "logs", *parts)


def run_logs_path(run_id: str, job: str, *parts: str) -> str:
    """The run-level copy of a job's main logs (``--copy_logs_to_parent``): ``<run_id>/logs/<job>/...``."""
    return run_path(run_id, "logs", job, *parts)


def manifest_path(run_id: str, job: str) -> str:
    """A parallel step's mini-batch manifest (gzip JSON, written once by ``shared.data``)."""
    return job_path(run_id, job, "manifest.json.gz")


# --- clients --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StorageClients:
    """Service clients for one storage account. Cheap to share; create once per process."""

    blob: BlobServiceClient
    queue: QueueServiceClient
    table: TableServiceClient
    connection_string: str | None = None

    @classmethod
    def from_connection_string(cls, connection_string: str) -> StorageClients:
        """Clients authenticated by a connection string (Azurite, or an account key); the string is kept
        so :meth:`with_resolved_environment` can build the clients again."""
        return cls(
            blob=BlobServiceClient.from_connection_string(connection_string),
            queue=QueueServiceClient.from_connection_string(connection_string),
            table=TableServiceClient.from_connection_string(connection_string),
            connection_string=connection_string,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> StorageClients:
        """Clients from settings: a connection string, or account URLs with Entra ID.

        Raises:
            ConfigurationError: neither is configured.
        """
        if settings.storage_connection_string:
            return cls.from_connection_string(settings.storage_connection_string)
        if not (settings.storage_blob_url and settings.storage_queue_url and settings.storage_table_url):
            raise ConfigurationError(
                "storage is not configured: set FANOUT_STORAGE_CONNECTION_STRING, or all of "
                "FANOUT_STORAGE_BLOB_URL, FANOUT_STORAGE_QUEUE_URL and FANOUT_STORAGE_TABLE_URL"
            )
        credential = azure_credential(settings)
        return cls(
            blob=BlobServiceClient(settings.storage_blob_url, credential=credential),
            queue=QueueServiceClient(settings.storage_queue_url, credential=credential),
            table=TableServiceClient(endpoint=settings.storage_table_url, credential=credential),
        )

    def with_resolved_environment(self) -> StorageClients:
        """The same clients, with their HTTP settings read from the environment once, now.

        ``requests`` otherwise re-reads every environment variable (proxies, CA bundle) and
        ``~/.netrc`` on each call; an agent or a worker making thousands of small calls reads them
        once (:func:`environment_http_settings`) and passes them explicitly.
        """
        blob, queue, table = self.blob, self.queue, self.table
        options = {
            name: environment_http_settings(url)
            for name, url in (("blob", blob.url), ("queue", queue.url), ("table", table.url))
        }
        if self.connection_string:
            cs = self.connection_string
            return StorageClients(
                blob=BlobServiceClient.from_connection_string(cs, **options["blob"]),
                queue=QueueServiceClient.from_connection_string(cs, **options["queue"]),
                table=TableServiceClient.from_connection_string(cs, **options["table"]),
                connection_string=cs,
            )
        return StorageClients(
            blob=BlobServiceClient(blob.url, credential=blob.credential, **options["blob"]),
            queue=QueueServiceClient(queue.url, credential=queue.credential, **options["queue"]),
            table=TableServiceClient(endpoint=table.url, credential=table.credential, **options["table"]),
        )

    def container(self, container: Container) -> ContainerClient:
        """A client of one of the layout's containers."""
        return self.blob.get_container_client(container.value)

    def queue_client(self, name: str, *, base64: bool = False) -> QueueClient:
        """A queue client; ``base64=True`` for queues read by Functions queue triggers."""
        kwargs: dict[str, Any] = {}
        if base64:
            kwargs = {
                "message_encode_policy": TextBase64EncodePolicy(),
                "message_decode_policy": TextBase64DecodePolicy(),
            }
        return self.queue.get_queue_client(name, **kwargs)

    def events_queue(self) -> QueueClient:
        """The shared events queue, base64-encoded because a Functions queue trigger reads it."""
        return self.queue_client(EVENTS_QUEUE, base64=True)

    def ensure_layout(self) -> None:
        """Create every container, table and shared queue of the layout (idempotent)."""
        for container in Container:
            with contextlib.suppress(ResourceExistsError):
                self.blob.create_container(container.value)
        for table in Table:
            self.table.create_table_if_not_exists(table.value)
        with contextlib.suppress(ResourceExistsError):
            self.queue.create_queue(EVENTS_QUEUE)


def environment_http_settings(url: str) -> dict[str, Any]:
    """What ``requests`` would read from the environment for ``url``, as explicit SDK client options.

    Proxies (``HTTPS_PROXY``/``NO_PROXY``...), the CA bundle (``REQUESTS_CA_BUNDLE``...) and a client
    certificate, resolved now; ``use_env_settings=False`` stops the transport from reading them again
    on every request.
    """
    import requests

    found = requests.Session().merge_environment_settings(url.partition("?")[0], {}, None, None, None)
    options: dict[str, Any] = {"use_env_settings": False, "connection_verify": found.get("verify", True)}
    if found.get("proxies"):
        options["proxies"] = dict(found["proxies"])
    if found.get("cert"):
        options["connection_cert"] = found["cert"]
    return options


def azure_credential(settings: Settings) -> TokenCredential:
    """The Entra ID credential: the configured user-assigned identity, else DefaultAzureCredential."""
    from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

    if settings.storage_client_id:
        return ManagedIdentityCredential(client_id=settings.storage_client_id)
    return DefaultAzureCredential()
