"""The data asset registry: versions stored and listed, ``azureml:name:version`` lookup.

A data asset is a name with immutable versions, each pointing at a location (and recording where it
came from, :class:`AssetLineage`). Inputs use ``azureml:<name>:<version>`` or ``azureml:<name>@latest``;
the API and ``fanout assets`` list and show them. Which job outputs become versions, and when, is
:mod:`shared.registration` (Azure ML v1's ``register_on_complete``); this module is the store it writes
to and knows nothing of runs' results.

Storage: one blob per version, ``<name>/<version>.json`` in the ``registry`` container (an
:class:`AssetVersion`), with the producing run, job, output and location copied into the blob's
metadata so one listing answers "which versions exist", "which is latest" and "did this run register
already" without downloading every version.

Decisions:

- **Versions are immutable** and created with a conditional write (``If-None-Match: *``). Without
  ``version:`` the next version is ``max(integer versions) + 1``; two registrations racing for the same
  number cannot both win — the loser re-reads and takes the next. An explicit version that exists with
  other content is an error (:class:`RegistryError`), as in Azure ML.
- **Idempotent**: registering the same run/job/output again (a retried activity) returns the version it
  already made instead of adding one.
- **@latest** is the most recently created version (Azure ML's meaning), not the highest number.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import quote, unquote

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import ContainerClient
from pydantic import Field

from shared.errors import NotFoundError, RegistryError
from shared.models import FrozenModel
from shared.orchestration.contracts import ResolvedInput
from shared.plan import AssetRef, BlobData, DataType, UrlData
from shared.storage import Container, StorageClients

logger = logging.getLogger(__name__)

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}$")
_VERSION = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$")
_REF = re.compile(r"^(?:azureml:)?(?P<name>[^:@]+)(?::(?P<version>[^:@]+)|@(?P<label>[^:@]+))?$")
_MAX_ATTEMPTS = 50

AssetLocation = Annotated[BlobData | UrlData, Field(discriminator="kind")]


class AssetLineage(FrozenModel):
    """Where a registered version came from."""

    run_id: str
    job: str
    output: str
    fingerprint: str = Field(default="", description="Reuse fingerprint of the producing step.")
    inputs: dict[str, str] = Field(
        default_factory=dict, description="Data inputs of the producing step: name -> 'asset:version' or URI."
    )
    reused_from: str | None = Field(default=None, description="Run whose outputs were reused, if any.")


class AssetVersion(FrozenModel):
    """One version of a data asset (``<name>/<version>.json`` in the ``registry`` container)."""

    name: str
    version: str
    type: DataType = DataType.URI_FOLDER
    location: AssetLocation
    uri: str = Field(
        description="The location as a URI (azureml://datastores/<store>/paths/<path> or https)."
    )
    created_at: datetime
    description: str | None = None
    lineage: AssetLineage | None = None


class AssetVersionInfo(FrozenModel):
    """A version as one listing shows it (no download)."""

    version: str
    created_at: datetime
    run_id: str | None = None
    job: str | None = None


class AssetSummary(FrozenModel):
    """A data asset in ``fanout assets list`` and ``GET /api/assets``."""

    name: str
    latest_version: str
    version_count: int
    updated_at: datetime


# --- names and references -----------------------------------------------------------------------------


def parse_asset_ref(text: str) -> AssetRef:
    """``name``, ``name:3``, ``name@latest`` (with or without ``azureml:``) as an :class:`AssetRef`.

    Raises:
        RegistryError: not a reference, or a label other than ``latest``.
    """
    match = _REF.match(text.strip())
    if match is None or not _NAME.match(match["name"]):
        raise RegistryError(
            f"{text!r} is not a data asset reference; expected NAME, NAME:VERSION or NAME@latest", ref=text
        )
    if match["label"] is not None and match["label"] != "latest":
        raise RegistryError(f"{text!r}: the only label is @latest", ref=text)
    return AssetRef(name=match["name"], version=match["version"])


def location_uri(location: BlobData | UrlData) -> str:
    """The URI users write for a location (``data`` is the ``workspaceblobstore`` datastore)."""
    if isinstance(location, UrlData):
        return location.url
    store = "workspaceblobstore" if location.container == Container.DATA.value else location.container
    return f"azureml://datastores/{store}/paths/{location.path}"


def _check_name(name: str) -> None:
    if not _NAME.match(name):
        raise RegistryError(
            f"{name!r} is not a valid data asset name; use letters, digits, '_', '-' and '.', "
            "starting with a letter, digit or '_' (at most 255 characters)",
            asset=name,
        )


def _check_version(name: str, version: str) -> None:
    if not _VERSION.match(version):
        raise RegistryError(
            f"{version!r} is not a valid version of data asset {name!r}; "
            "use letters, digits, '_', '-' and '.'",
            asset=name,
        )


# --- reading ------------------------------------------------------------------------------------------


def _container(clients: StorageClients) -> ContainerClient:
    return clients.container(Container.REGISTRY)


def _blob_name(name: str, version: str) -> str:
    return f"{name}/{version}.json"


def _version_order(info: AssetVersionInfo) -> tuple[datetime, int, int, str]:
    numeric = info.version.isdigit()
    return (info.created_at, int(numeric), int(info.version) if numeric else 0, info.version)


def _listing(clients: StorageClients, name: str) -> list[tuple[AssetVersionInfo, dict[str, str]]]:
    found = []
    for blob in _container(clients).list_blobs(name_starts_with=f"{name}/", include=["metadata"]):
        version = blob.name[len(name) + 1 : -len(".json")]
        if not blob.name.endswith(".json") or "/" in version:
            continue
        metadata = {k: unquote(v) for k, v in (blob.metadata or {}).items()}
        info = AssetVersionInfo(
            version=version,
            created_at=_created_at(metadata, blob.creation_time or blob.last_modified),
            run_id=metadata.get("run_id"),
            job=metadata.get("job"),
        )
        found.append((info, metadata))
    found.sort(key=lambda item: _version_order(item[0]))
    return found


def _created_at(metadata: dict[str, str], fallback: datetime) -> datetime:
    """When a version was created: to the microsecond from its metadata (the blob's own creation time
    has one-second resolution, too coarse to order versions registered in quick succession)."""
    try:
        return datetime.fromisoformat(metadata["created_at"])
    except (KeyError, ValueError):
        return fallback


def list_versions(clients: StorageClients, name: str) -> list[AssetVersionInfo]:
    """Every version of ``name``, oldest first (empty when there is no such asset)."""
    _check_name(name)
    return [info for info, _ in _listing(clients, name)]


def version_at(clients: StorageClients, name: str, uri: str) -> str | None:
    """The newest version of ``name`` whose location is ``uri`` (None when no version points there).

    Answered from one listing (the location is in each version's blob metadata), so callers can avoid
    registering the same location twice without downloading every version.
    """
    matches = [info.version for info, metadata in _listing(clients, name) if metadata.get("location") == uri]
    return matches[-1] if matches else None


def get_asset(clients: StorageClients, name: str, version: str | None = None) -> AssetVersion:
    """A version of a data asset; ``version=None`` is the latest (most recently created).

    Raises:
        NotFoundError: no such asset or version (the message lists the versions that exist).
        RegistryError: the name or version is malformed.
    """
    _check_name(name)
    versions = list_versions(clients, name) if version is None else None
    return _read_version(clients, name, version, versions)


def get_asset_and_versions(
    clients: StorageClients, name: str, version: str | None = None
) -> tuple[AssetVersion, list[AssetVersionInfo]]:
    """:func:`get_asset` and :func:`list_versions` from one listing (what ``GET /api/assets/{name}`` shows).

    Raises:
        NotFoundError: no such asset or version (the message lists the versions that exist).
        RegistryError: the name or version is malformed.
    """
    _check_name(name)
    versions = list_versions(clients, name)
    return _read_version(clients, name, version, versions), versions


def _read_version(
    clients: StorageClients, name: str, version: str | None, versions: list[AssetVersionInfo] | None
) -> AssetVersion:
    """Download ``version`` (the last of ``versions`` when None); ``versions`` is listed only if needed."""
    if version is None:
        if not versions:
            raise NotFoundError(f"there is no data asset named {name!r}", asset=name)
        version = versions[-1].version
    _check_version(name, version)
    try:
        data = _container(clients).download_blob(_blob_name(name, version)).readall()
    except ResourceNotFoundError:
        existing = [v.version for v in (versions if versions is not None else list_versions(clients, name))]
        detail = f"versions: {', '.join(existing)}" if existing else "there is no data asset by that name"
        raise NotFoundError(
            f"data asset {name!r} has no version {version!r} ({detail})", asset=name
        ) from None
    return AssetVersion.model_validate_json(data)


def list_assets(clients: StorageClients) -> list[AssetSummary]:
    """Every data asset with its latest version, sorted by name (JSON-ready for the HTTP API)."""
    grouped: dict[str, list[AssetVersionInfo]] = {}
    for blob in _container(clients).list_blobs(include=["metadata"]):
        name, _, rest = blob.name.partition("/")
        if not rest.endswith(".json") or "/" in rest:
            continue
        metadata = {k: unquote(v) for k, v in (blob.metadata or {}).items()}
        created = _created_at(metadata, blob.creation_time or blob.last_modified)
        info = AssetVersionInfo(version=rest[: -len(".json")], created_at=created)
        grouped.setdefault(name, []).append(info)
    summaries = []
    for name in sorted(grouped):
        latest = max(grouped[name], key=_version_order)
        summaries.append(
            AssetSummary(
                name=name,
                latest_version=latest.version,
                version_count=len(grouped[name]),
                updated_at=latest.created_at,
            )
        )
    return summaries


def resolve_asset(clients: StorageClients, ref: AssetRef) -> ResolvedInput:
    """The location of ``azureml:name:version`` / ``azureml:name@latest``, labelled ``name:version``.

    Raises:
        RegistryError: no such asset or version.
    """
    try:
        asset = get_asset(clients, ref.name, ref.version)
    except NotFoundError as exc:
        raise RegistryError(exc.message, asset=ref.name) from exc
    return ResolvedInput(location=asset.location, asset=f"{asset.name}:{asset.version}")


# --- writing ------------------------------------------------------------------------------------------


def register_asset(
    clients: StorageClients,
    name: str,
    location: BlobData | UrlData,
    *,
    type: DataType = DataType.URI_FOLDER,
    version: str | None = None,
    description: str | None = None,
    lineage: AssetLineage | None = None,
) -> AssetVersion:
    """Create a version of a data asset (the next integer version when ``version`` is None).

    Raises:
        RegistryError: malformed name/version, or ``version`` exists already with other content.
    """
    _check_name(name)
    if version is not None:
        _check_version(name, version)
    for _ in range(_MAX_ATTEMPTS):
        listing = _listing(clients, name)
        if lineage is not None:
            same = _registered_by(listing, lineage)
            if same is not None:
                logger.info("%s:%s was already registered by %s/%s", name, same, lineage.run_id, lineage.job)
                return get_asset(clients, name, same)
        chosen = version or str(
            1 + max((int(i.version) for i, _ in listing if i.version.isdigit()), default=0)
        )
        if version is not None and any(i.version == version for i, _ in listing):
            raise RegistryError(
                f"data asset {name!r} already has a version {version!r}; versions are immutable — remove "
                "`version:` to register the next version automatically",
                asset=name,
                version=version,
            )
        asset = AssetVersion(
            name=name,
            version=chosen,
            type=type,
            location=location,
            uri=location_uri(location),
            created_at=datetime.now(UTC),
            description=description,
            lineage=lineage,
        )
        metadata = {"location": quote(asset.uri, safe=""), "created_at": quote(asset.created_at.isoformat())}
        if lineage is not None:
            metadata |= {
                k: quote(v, safe="")
                for k, v in (("run_id", lineage.run_id), ("job", lineage.job), ("output", lineage.output))
            }
        try:
            _container(clients).upload_blob(
                _blob_name(name, chosen), asset.model_dump_json().encode(), overwrite=False, metadata=metadata
            )
        except ResourceExistsError:
            logger.debug("%s:%s was taken concurrently; trying again", name, chosen)
            continue
        logger.info("registered data asset %s:%s -> %s", name, chosen, asset.uri)
        return asset
    raise RegistryError(
        f"could not register data asset {name!r}: {_MAX_ATTEMPTS} concurrent attempts lost", asset=name
    )


def _registered_by(
    listing: list[tuple[AssetVersionInfo, dict[str, str]]], lineage: AssetLineage
) -> str | None:
    for info, metadata in listing:
        if (metadata.get("run_id"), metadata.get("job"), metadata.get("output")) == (
            lineage.run_id,
            lineage.job,
            lineage.output,
        ):
            return info.version
    return None
