"""Whole-blob downloads for a worker process: one client per storage root, one GET per small blob.

A worker materialises mini-batches one after another, often one small file each, so the fixed cost
of a download is what counts. ``ContainerClient.download_blob`` spends more CPU than the transfer
itself on a small blob: a new container client per call, a downloader object, a ranged first request
and the deserialisation of every response header — and ``requests`` scans the whole environment for
proxy settings and reads ``~/.netrc`` on every request. Here, per process and storage root:

- one container client, created once, whose HTTP settings (proxies, CA bundle, client certificate)
  are read from the environment once — exactly what ``requests`` would find — and then passed
  explicitly, so nothing is looked up again per request;
- a blob up to :data:`SINGLE_GET_BYTES` is one signed ``GET`` through that client's own pipeline
  (authentication, retries, the SAS of the root), its body streamed to the caller's file; larger
  blobs use ``download_blob`` with parallel ranges.

If the SDK's internals this relies on move, every blob goes through ``download_blob`` (slower, same
result).
"""

from __future__ import annotations

import logging
import threading
import weakref
from dataclasses import dataclass
from typing import IO
from urllib.parse import quote

from azure.core.exceptions import (
    HttpResponseError,
    IncompleteReadError,
    ResourceNotFoundError,
    ServiceResponseError,
    map_error,
)
from azure.storage.blob import ContainerClient

from shared.data.locations import BlobRoot, _same_account
from shared.storage import StorageClients, environment_http_settings

logger = logging.getLogger(__name__)

#: Blobs up to this size are downloaded with a single GET; larger ones with parallel ranged reads.
SINGLE_GET_BYTES = 4 * 1024 * 1024
#: Parallel ranged reads of one large blob.
LARGE_BLOB_CONCURRENCY = 4
#: Attempts of a single GET whose body broke off (the pipeline itself retries failed requests).
READ_ATTEMPTS = 3


@dataclass(frozen=True)
class _Target:
    """A container reachable from this process, and how to address its blobs."""

    container: ContainerClient
    base_url: str  # the container URL without its query string
    query: str  # "?<sas>" or ""

    def blob_url(self, blob_name: str) -> str:
        return f"{self.base_url}/{quote(blob_name, safe='~/')}{self.query}"


_lock = threading.Lock()
_targets: weakref.WeakKeyDictionary[StorageClients, dict[BlobRoot, _Target]] = weakref.WeakKeyDictionary()


def container_for(clients: StorageClients, root: BlobRoot) -> ContainerClient:
    """This process's client for ``root``'s container (created on first use)."""
    return _target(clients, root).container


def download_to(
    clients: StorageClients, root: BlobRoot, blob_name: str, size: int, handle: IO[bytes]
) -> None:
    """Write blob ``blob_name`` of ``root`` (``size`` bytes when planned) to ``handle``.

    Raises:
        ResourceNotFoundError: the blob does not exist.
        HttpResponseError: the service refused the read.
    """
    target = _target(clients, root)
    if size > SINGLE_GET_BYTES:
        downloader = target.container.download_blob(blob_name, max_concurrency=LARGE_BLOB_CONCURRENCY)
        downloader.readinto(handle)
        return
    for attempt in range(1, READ_ATTEMPTS + 1):
        start = handle.tell()
        try:
            _single_get(target, blob_name, handle)
            return
        except (IncompleteReadError, ServiceResponseError):
            if attempt == READ_ATTEMPTS:
                raise
            logger.info("reading %s broke off (attempt %d); reading it again", blob_name, attempt)
            handle.seek(start)
            handle.truncate()


def _single_get(target: _Target, blob_name: str, handle: IO[bytes]) -> None:
    from azure.core.rest import HttpRequest

    container = target.container
    request = HttpRequest(
        "GET",
        target.blob_url(blob_name),
        headers={"x-ms-version": container.api_version, "Accept": "application/xml"},
    )
    response = container._pipeline.run(request, stream=True).http_response
    try:
        if response.status_code != 200:
            response.read()
            map_error(
                status_code=response.status_code, response=response, error_map={404: ResourceNotFoundError}
            )
            raise HttpResponseError(response=response)
        for chunk in response.iter_bytes():
            handle.write(chunk)
    finally:
        response.close()


def _target(clients: StorageClients, root: BlobRoot) -> _Target:
    key = root.model_copy(update={"prefix": ""})
    with _lock:
        per_clients = _targets.setdefault(clients, {})
        target = per_clients.get(key)
        if target is None:
            target = per_clients[key] = _open(clients, root)
        return target


def _open(clients: StorageClients, root: BlobRoot) -> _Target:
    """A container client for ``root`` with the environment's HTTP settings read once."""
    if root.account_url is not None and root.sas:
        account_url, credential = root.account_url, root.sas
    elif root.account_url is None or _same_account(clients, root.account_url):
        account_url, credential = clients.blob.url, clients.blob.credential
    else:
        account_url, credential = root.account_url, clients.blob.credential
    account, _, account_sas = account_url.partition("?")
    if credential is None and account_sas:  # a SAS in the account URL
        credential = account_sas
    settings = environment_http_settings(account)
    container = ContainerClient(account, root.container, credential=credential, **settings)
    base, _, query = container.url.partition("?")
    return _Target(container=container, base_url=base.rstrip("/"), query=f"?{query}" if query else "")
