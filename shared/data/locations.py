"""Where input data lives, and how to reach it: blob roots, URL parsing, listing.

At run time every input is blob data (local folders were uploaded by the CLI before the run): either
:class:`~shared.plan.BlobData` in Fanout's own account or :class:`~shared.plan.UrlData` at an https URL
of another account. Both become a :class:`BlobRoot` — account, container, prefix and an optional SAS —
which is what a manifest stores and what a worker re-opens to read its mini-batch.

MLTable ``paths`` may also be ``azureml://datastores/<store>/paths/<p>`` (long and short forms),
``wasbs://``/``abfss://`` URIs or https URLs; :func:`parse_uri` maps each to a root and a path.

Listing (:func:`list_files`) streams the service's flat listing and keeps only names, sizes and times
(``shared.data.listing``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.storage.blob import ContainerClient
from pydantic import Field

from shared.data.listing import iter_blobs
from shared.errors import DataError
from shared.models import FrozenModel
from shared.plan import BlobData, UrlData
from shared.settings import get_settings
from shared.storage import Container, StorageClients

logger = logging.getLogger(__name__)

#: Datastore names that mean Fanout's own ``data`` container (besides the configured default).
WORKSPACE_DATASTORES = frozenset({"workspaceblobstore", "workspaceartifactstore", "workspacefilestore"})

_LONG_DATASTORE_URI = re.compile(
    r"^azureml://subscriptions/[^/]+/resourcegroups/[^/]+/(?:providers/[^/]+/)?workspaces/[^/]+/"
    r"datastores/(?P<store>[^/]+)/paths/(?P<path>.*)$",
    re.IGNORECASE,
)
_SHORT_DATASTORE_URI = re.compile(
    r"^azureml://datastores/(?P<store>[^/]+)/paths/(?P<path>.*)$", re.IGNORECASE
)
_AZURE_HOST = re.compile(r"^(?P<account>[a-z0-9]+)\.(?P<service>blob|dfs)\.(?P<suffix>.+)$", re.IGNORECASE)
_CONTAINER_URI = re.compile(
    r"^(?P<scheme>wasbs?|abfss?)://(?P<container>[^@/]+)@(?P<host>[^/]+)(?P<path>/.*)?$"
)


class BlobRoot(FrozenModel):
    """A container (and a prefix inside it) in Fanout's account or another one.

    Files under a root are named by their path *relative to the prefix*; the root plus that relative
    path is the blob name.
    """

    account_url: str | None = Field(
        default=None,
        description="Blob endpoint of another account, e.g. https://acct.blob.core.windows.net; "
        "None means Fanout's own account.",
    )
    container: str = Field(description="Container name.")
    prefix: str = Field(default="", description="Folder inside the container, no leading/trailing '/'.")
    sas: str | None = Field(default=None, description="SAS query string (without '?') to read with.")

    def blob_name(self, relative: str) -> str:
        """The full blob name of ``relative`` (a path under this root)."""
        if not relative:
            return self.prefix
        return f"{self.prefix}/{relative}" if self.prefix else relative

    def child(self, relative_folder: str) -> BlobRoot:
        """The root of a sub-folder of this root."""
        return self.model_copy(update={"prefix": self.blob_name(relative_folder.strip("/"))})

    def describe(self) -> str:
        """A human-readable location (no SAS), for messages and the ``Path`` column."""
        where = f"{self.container}/{self.prefix}" if self.prefix else self.container
        return f"{self.account_url.rstrip('/')}/{where}" if self.account_url else where


@dataclass(frozen=True, slots=True)
class BlobFile:
    """One listed blob: its path relative to the root it was listed under, size and modification time."""

    path: str
    size: int
    modified: int  # seconds since the epoch (the blob's Last-Modified)


def root_of(location: BlobData | UrlData) -> BlobRoot:
    """The :class:`BlobRoot` of a resolved input location (``path`` becomes the prefix)."""
    if isinstance(location, BlobData):
        return BlobRoot(container=location.container, prefix=location.path.strip("/"))
    root, path = parse_blob_url(location.url)
    return root.child(path) if path else root


def datastore_container(store: str) -> str:
    """The container behind an ``azureml://datastores/<store>`` name.

    ``workspaceblobstore`` (and the configured ``FANOUT_DEFAULT_DATASTORE``) is Fanout's ``data``
    container; any other store name is the container of the same name in Fanout's account.
    """
    if store.lower() in WORKSPACE_DATASTORES or store == get_settings().default_datastore:
        return Container.DATA.value
    return store


def parse_uri(uri: str) -> tuple[BlobRoot, str] | None:
    """Map an absolute data URI to ``(root, path)``; ``None`` when ``uri`` is a relative path.

    Accepts ``azureml://datastores/<store>/paths/<p>`` (short and long forms), ``https://``/``http://``
    blob URLs (SAS query kept), ``wasbs://<container>@<account>.blob.../<p>`` and
    ``abfss://<fs>@<account>.dfs.../<p>``.

    Raises:
        DataError: the URI has a scheme Fanout cannot read (``adl://``, ``azureml:<asset>``, ...).
    """
    for pattern in (_SHORT_DATASTORE_URI, _LONG_DATASTORE_URI):
        match = pattern.match(uri)
        if match:
            container = datastore_container(match["store"])
            return BlobRoot(container=container), unquote(match["path"]).strip("/")
    if uri.startswith(("https://", "http://")):
        return parse_blob_url(uri)
    match = _CONTAINER_URI.match(uri)
    if match:
        host = _AZURE_HOST.match(match["host"])
        if not host:
            raise DataError(
                f"cannot read {uri!r}: expected <account>.blob.<suffix> or <account>.dfs.<suffix>"
            )
        scheme = "http" if match["scheme"] in {"wasb", "abfs"} else "https"
        account_url = f"{scheme}://{host['account']}.blob.{host['suffix']}"
        return BlobRoot(account_url=account_url, container=match["container"]), unquote(
            (match["path"] or "").strip("/")
        )
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", uri) and not re.match(r"^[a-zA-Z]:[\\/]", uri):
        raise DataError(
            f"cannot read {uri!r}: supported are relative paths, azureml://datastores/<store>/paths/<path>, "
            "https://<account>.blob.core.windows.net/<container>/<path>, wasbs:// and abfss:// URIs"
        )
    return None


def parse_blob_url(url: str) -> tuple[BlobRoot, str]:
    """Split a blob URL into ``(root, path)``: the account endpoint, the container and the blob path.

    Host-style URLs (``https://<account>.blob.core.windows.net/<container>/<path>``, also ``.dfs.``)
    and path-style URLs of emulators (``http://127.0.0.1:10000/<account>/<container>/<path>``) are
    both understood. A SAS query string is kept on the root.

    Raises:
        DataError: the URL names no container.
    """
    parts = urlsplit(url)
    segments = [unquote(s) for s in parts.path.split("/") if s]
    host = _AZURE_HOST.match(parts.hostname or "")
    if host:
        account_url = f"{parts.scheme}://{host['account']}.blob.{host['suffix']}"
        if parts.port:
            account_url += f":{parts.port}"
    else:  # path-style (Azurite, custom endpoints): the first segment is the account
        if not segments:
            raise DataError(f"cannot read {url!r}: no account in the URL path")
        account_url = f"{parts.scheme}://{parts.netloc}/{segments.pop(0)}"
    if not segments:
        raise DataError(f"cannot read {url!r}: the URL names no container")
    container = segments.pop(0)
    return BlobRoot(account_url=account_url, container=container, sas=parts.query or None), "/".join(segments)


def open_container(clients: StorageClients, root: BlobRoot) -> ContainerClient:
    """A client for ``root``'s container.

    A root with a SAS is always read with that SAS (the user gave it explicitly); otherwise Fanout's own
    clients serve its own account, and another account is read with Fanout's credential (its identity
    must be allowed to read there).
    """
    if root.account_url is not None and root.sas:
        return ContainerClient(root.account_url, root.container, credential=root.sas)
    if root.account_url is None or _same_account(clients, root.account_url):
        return clients.blob.get_container_client(root.container)
    credential: Any = clients.blob.credential
    return ContainerClient(root.account_url, root.container, credential=credential)


def _same_account(clients: StorageClients, account_url: str) -> bool:
    return clients.blob.url.rstrip("/").lower() == account_url.rstrip("/").lower()


def list_files(clients: StorageClients, root: BlobRoot, under: str = "") -> list[BlobFile]:
    """Every blob below ``root``'s prefix (plus ``under``), recursively, in name order.

    Paths are relative to the root. Folder markers are skipped: names ending in ``/``, and empty blobs
    that other blobs sit under (the directories of ADLS Gen2 accounts, listed as blobs).

    Raises:
        DataError: the container does not exist or cannot be listed.
    """
    container = open_container(clients, root)
    prefix = root.blob_name(under.strip("/"))
    listing_prefix = f"{prefix}/" if prefix else ""
    cut = len(root.prefix) + 1 if root.prefix else 0
    files: list[BlobFile] = []
    empty: set[str] = set()
    try:
        for name, size, modified in iter_blobs(container, listing_prefix):
            if name.endswith("/"):
                continue
            if size == 0:
                empty.add(name[cut:])
            files.append(BlobFile(path=name[cut:], size=size, modified=modified))
    except ResourceNotFoundError as exc:
        raise DataError(f"cannot list {root.describe()}: the container does not exist") from exc
    except HttpResponseError as exc:
        raise DataError(f"cannot list {root.describe()}: {exc.message or exc}") from exc
    if empty:
        folders = {parent for item in files for parent in _parents(item.path)} & empty
        files = [item for item in files if item.path not in folders]
    return files


def _parents(path: str) -> Iterator[str]:
    position = path.find("/")
    while position != -1:
        yield path[:position]
        position = path.find("/", position + 1)


def blob_properties(clients: StorageClients, root: BlobRoot, relative: str) -> BlobFile | None:
    """Size and modification time of one blob, or ``None`` when it does not exist."""
    client = open_container(clients, root).get_blob_client(root.blob_name(relative))
    try:
        props = client.get_blob_properties()
    except ResourceNotFoundError:
        return None
    except HttpResponseError as exc:
        raise DataError(f"cannot read {root.describe()}/{relative}: {exc.message or exc}") from exc
    return BlobFile(path=relative, size=int(props.size), modified=int(props.last_modified.timestamp()))
