"""Whole-blob downloads for a worker process: one reader per storage root, one GET per small blob.

A worker materialises mini-batches one after another, often one small file each, so the fixed cost
of a download is what counts. ``ContainerClient.download_blob`` spends more CPU than the transfer
itself on a small blob (~1.6 ms): a new container client per call, a downloader object, a ranged first
request, the deserialisation of every response header, the SDK's pipeline of policies and ``requests``
(which also re-reads the environment's proxy settings and ``~/.netrc`` on every call). Here, per
process and storage root (its container, so all roots of one container share it):

- a blob up to :data:`SINGLE_GET_BYTES` is one ``GET`` on a pooled keep-alive connection, authorised
  by a short-lived, read-only SAS of the container (:data:`SAS_LIFETIME`, renewed before it ends):
  the root's own SAS, or one signed here with the account key, or with a user delegation key when
  Fanout authenticates with Entra ID. Proxies, the CA bundle and a client certificate are read from the
  environment once. ~0.3 ms of CPU per small blob;
- larger blobs, and every blob when no SAS can be had (or the service refuses it), go through the SDK:
  ``download_blob`` with parallel ranges, or one signed ``GET`` through the container client's
  pipeline.

Errors are the SDK's: :class:`~azure.core.exceptions.ResourceNotFoundError` for a missing blob,
:class:`~azure.core.exceptions.HttpResponseError` otherwise.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import IO, Any
from urllib.parse import quote

from azure.core.exceptions import (
    HttpResponseError,
    IncompleteReadError,
    ResourceNotFoundError,
    ServiceResponseError,
    map_error,
)
from azure.storage.blob import (
    BlobServiceClient,
    ContainerClient,
    ContainerSasPermissions,
    generate_container_sas,
)

from shared.data.locations import BlobRoot, _same_account
from shared.data.ranges import Fetch, checked_fetch
from shared.storage import StorageClients, environment_http_settings

logger = logging.getLogger(__name__)

#: Blobs up to this size are downloaded with a single GET; larger ones with parallel ranged reads.
SINGLE_GET_BYTES = 4 * 1024 * 1024
#: Parallel ranged reads of one large blob.
LARGE_BLOB_CONCURRENCY = 4
#: Attempts of a single GET that failed in transit or with a transient status (500, 503, ...).
READ_ATTEMPTS = 3
#: Lifetime of the read SAS a worker signs for itself; renewed when less than a quarter is left.
SAS_LIFETIME = timedelta(hours=1)
_TRANSIENT = frozenset({408, 429, 500, 502, 503, 504})

#: A read SAS for the container and when it stops being usable (``time.monotonic()``; inf: never renewed).
Sas = tuple[str, float]


@dataclass
class _Target:
    """A container reachable from this process, and how to read its blobs."""

    container: ContainerClient
    base_url: str  # the container URL without its query string
    query: str  # "?<sas>" of the root, or ""
    sign: Callable[[], Sas] | None  # a read SAS for the container, or None: the SDK's pipeline only
    settings: dict[str, Any]
    _sas: Sas | None = None
    _http: Any = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def blob_url(self, blob_name: str) -> str:
        return f"{self.base_url}/{quote(blob_name, safe='~/')}{self.query}"

    def sas_url(self, blob_name: str) -> str | None:
        """The blob's URL with a valid read SAS, or None when this container is read through the SDK."""
        with self._lock:
            if self.sign is None:
                return None
            if self._sas is None or time.monotonic() >= self._sas[1]:
                try:
                    self._sas = self.sign()
                except Exception as exc:  # noqa: BLE001 - no SAS (e.g. no delegation permission): use the SDK
                    logger.info("no read SAS for %s (%s); reading through the SDK", self.base_url, exc)
                    self.sign = None
                    return None
            return f"{self.base_url}/{quote(blob_name, safe='~/')}?{self._sas[0]}"

    def give_up_sas(self, reason: str) -> None:
        with self._lock:
            if self.sign is not None:
                logger.warning(
                    "reading %s with a SAS failed (%s); reading through the SDK", self.base_url, reason
                )
            self.sign = None

    def http(self) -> Any:
        """A pooled HTTP client with the environment's proxy, CA bundle and client certificate."""
        with self._lock:
            if self._http is None:
                self._http = _pool(self.base_url, self.settings)
            return self._http


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
    start = handle.tell()

    def once() -> None:
        handle.seek(start)
        handle.truncate()
        url = target.sas_url(blob_name)
        if url is None or not _sas_get(target, url, blob_name, {}, handle.write):
            _pipeline_get(target, blob_name, handle)

    _with_retries(blob_name, once)


def read_range(clients: StorageClients, root: BlobRoot, blob_name: str, offset: int, length: int) -> bytes:
    """Bytes ``offset .. offset + length - 1`` of a blob (fewer only at its end).

    Raises:
        ResourceNotFoundError: the blob does not exist.
        HttpResponseError: the service refused the read.
    """
    target = _target(clients, root)
    result: list[bytes] = []

    def once() -> None:
        result.clear()
        url = target.sas_url(blob_name)
        wanted = {"x-ms-range": f"bytes={offset}-{offset + length - 1}"}
        if url is None or not _sas_get(target, url, blob_name, wanted, result.append):
            downloader = target.container.download_blob(blob_name, offset=offset, length=length)
            result[:] = [downloader.readall()]

    _with_retries(blob_name, once)
    return b"".join(result)


def range_fetcher(clients: StorageClients, root: BlobRoot, blob_name: str, describe: str) -> Fetch:
    """A :data:`~shared.data.ranges.Fetch` of one blob through :func:`read_range` (errors: DataError)."""
    return checked_fetch(partial(read_range, clients, root, blob_name), describe)


def _with_retries(blob_name: str, read: Callable[[], None]) -> None:
    """Run ``read`` until it succeeds, at most :data:`READ_ATTEMPTS` times for transient failures."""
    for attempt in range(1, READ_ATTEMPTS + 1):
        try:
            read()
            return
        except (IncompleteReadError, ServiceResponseError) as exc:
            if attempt == READ_ATTEMPTS:
                raise
            logger.info("reading %s failed (attempt %d: %s); reading it again", blob_name, attempt, exc)
            time.sleep(0.2 * attempt)


def _sas_get(
    target: _Target, url: str, blob_name: str, headers: dict[str, str], write: Callable[[bytes], Any]
) -> bool:
    """One GET with the SAS, its body handed to ``write``; False when the SAS was refused (the caller
    reads through the SDK)."""
    import urllib3

    try:
        response = target.http().request(
            "GET",
            url,
            headers={"x-ms-version": target.container.api_version, **headers},
            preload_content=False,
            redirect=False,
        )
    except urllib3.exceptions.HTTPError as exc:
        raise ServiceResponseError(f"cannot reach {target.base_url}: {exc}") from exc
    try:
        if response.status in (200, 206):
            for chunk in response.stream(1024 * 1024):
                write(chunk)
            return True
        body = response.read()
    except urllib3.exceptions.HTTPError as exc:
        raise IncompleteReadError(f"reading {blob_name} broke off: {exc}") from exc
    finally:
        response.release_conn()
    if response.status == 404:
        raise ResourceNotFoundError(f"{blob_name} does not exist ({response.headers.get('x-ms-error-code')})")
    if response.status in _TRANSIENT:
        raise ServiceResponseError(f"{blob_name}: HTTP {response.status} {body[:200]!r}")
    if response.status == 416:
        raise HttpResponseError(message=f"{blob_name}: the range is not satisfiable (HTTP 416)")
    target.give_up_sas(f"HTTP {response.status} {response.headers.get('x-ms-error-code', '')}")
    return False


def _pipeline_get(target: _Target, blob_name: str, handle: IO[bytes]) -> None:
    """One signed GET through the container client's own pipeline (authentication, retries)."""
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
    """A container client for ``root`` with the environment's HTTP settings read once, and its SAS signer."""
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
    return _Target(
        container=container,
        base_url=base.rstrip("/"),
        query=f"?{query}" if query else "",
        sign=_signer(container, root, query, settings),
        settings=settings,
    )


def _signer(
    container: ContainerClient, root: BlobRoot, query: str, settings: dict[str, Any]
) -> Callable[[], Sas] | None:
    """How this process gets a read SAS for the container: the root's own, the account key, or a user
    delegation key (Entra ID); None when there is no way (e.g. anonymous public access)."""
    if root.sas or (query and "sig=" in query):
        fixed = root.sas or query
        return lambda: (fixed, float("inf"))
    credential = container.credential
    account_key = getattr(credential, "account_key", None)
    name = container.account_name or ""
    if account_key:

        def with_key() -> Sas:
            token = generate_container_sas(
                name,
                container.container_name,
                account_key=account_key,
                permission=ContainerSasPermissions(read=True),
                expiry=datetime.now(UTC) + SAS_LIFETIME,
            )
            return token, time.monotonic() + SAS_LIFETIME.total_seconds() * 0.75

        return with_key
    if credential is not None and hasattr(credential, "get_token"):
        account_url = container.url.partition("?")[0].rstrip("/").rsplit("/", 1)[0]  # without the container
        service = BlobServiceClient(account_url, credential=credential, **settings)

        def with_delegation() -> Sas:
            now = datetime.now(UTC)
            key = service.get_user_delegation_key(now - timedelta(minutes=5), now + SAS_LIFETIME)
            token = generate_container_sas(
                name,
                container.container_name,
                user_delegation_key=key,
                permission=ContainerSasPermissions(read=True),
                expiry=now + SAS_LIFETIME,
            )
            return token, time.monotonic() + SAS_LIFETIME.total_seconds() * 0.75

        return with_delegation
    return None


def _pool(url: str, settings: dict[str, Any]) -> Any:
    """A urllib3 pool manager for ``url`` with the settings ``requests`` would have used."""
    import urllib3

    options: dict[str, Any] = {
        "num_pools": 4,
        "maxsize": 4,
        "retries": urllib3.Retry(total=2, connect=2, read=0, status=0, backoff_factor=0.2, redirect=False),
        "timeout": urllib3.Timeout(connect=20.0, read=120.0),
    }
    verify = settings.get("connection_verify", True)
    if isinstance(verify, str):
        options["ca_certs"] = verify
    elif verify is False:
        options["cert_reqs"] = "CERT_NONE"
    cert = settings.get("connection_cert")
    if isinstance(cert, str):
        options["cert_file"] = cert
    elif isinstance(cert, tuple):
        options["cert_file"], options["key_file"] = cert
    proxy = (settings.get("proxies") or {}).get(url.split(":", 1)[0])
    if proxy:
        return urllib3.ProxyManager(proxy, **options)
    return urllib3.PoolManager(**options)
