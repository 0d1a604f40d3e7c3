"""Where data and code live: paths and URIs of a spec turned into the plan's location models.

==================================================  ==============================================
``./data`` or ``/abs/data`` (``file://`` too)       :class:`LocalData` (absolute; must exist)
``azureml://datastores/<store>/paths/<p>``          :class:`BlobData` in the store's container
``https://<acct>.blob.core.windows.net/<c>/<p>``    :class:`UrlData` (``wasbs://``/``abfss://`` and
                                                    ``.dfs.`` URLs are rewritten to this form)
``azureml:<name>:<version>`` / ``azureml:<name>@latest``  :class:`AssetRef`
==================================================  ==============================================

The datastore ``workspaceblobstore`` (and whatever ``FANOUT_DEFAULT_DATASTORE`` names) is Fanout's
``data`` container; any other datastore name is the container of the same name in Fanout's account.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

from shared.plan import AssetRef, BlobData, DataType, LocalData, UrlData
from shared.settings import get_settings
from shared.spec.issues import Issues, Where
from shared.storage import Container

WORKSPACE_BLOB_STORE = "workspaceblobstore"
SNAPSHOTS_STORE = Container.SNAPSHOTS.value

_DATASTORE_RE = re.compile(
    r"^azureml://(?:subscriptions/[^/]+/resource[gG]roups/[^/]+/(?:providers/[^/]+/)?workspaces/[^/]+/)?"
    r"datastores/(?P<store>[^/]+)/paths(?:/(?P<path>.*))?$"
)
_ASSET_RE = re.compile(r"^azureml:(?P<name>[A-Za-z0-9_][A-Za-z0-9_.-]*)(?::(?P<version>[^:@/]+)|@latest)$")
_ENV_REGISTRY_RE = re.compile(r"^azureml://registries/[^/]+/environments/[^/]+/(versions|labels)/[^/]+$")
_CONTAINER_RE = re.compile(r"^(?!.*--)[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
_BLOB_HOST_RE = re.compile(r"^(?P<account>[a-z0-9]{3,24})\.(?P<kind>blob|dfs)\.core\.windows\.net$")
_ASSET_EXAMPLE = "azureml:<name>:<version> or azureml:<name>@latest (e.g. azureml:iris:1)"
_PATH_EXAMPLE = "a local path (./data), azureml://datastores/<store>/paths/<path>, https://..., or " + (
    _ASSET_EXAMPLE
)

DataLocation = LocalData | BlobData | UrlData | AssetRef


def container_for_datastore(store: str, where: Where, issues: Issues) -> str | None:
    """The container a datastore name maps to (None, with an error, when it cannot be one)."""
    if store in (WORKSPACE_BLOB_STORE, get_settings().default_datastore):
        return Container.DATA.value
    if not _CONTAINER_RE.match(store):
        issues.error(
            where,
            f"datastore {store!r} maps to a container of the same name, which is not a valid container name",
            "workspaceblobstore, or 3-63 lowercase letters, digits and single hyphens",
        )
        return None
    return store


def is_local_path(text: str) -> bool:
    """True when ``text`` is not a URI or an asset reference (so it names a local file or folder)."""
    return text.startswith("file:") or not (
        text.startswith("azureml:") or re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", text)
    )


def local_path(
    text: str, base_dir: Path | None, where: Where, issues: Issues, *, confine: Path | None = None
) -> Path | None:
    """The absolute local path ``text`` names, relative to ``base_dir`` (the YAML file's folder).

    With ``confine``, the path (symlinks resolved) must lie inside that folder: a spec that arrived
    from elsewhere (an uploaded archive) must not name files of the machine compiling it.
    """
    raw = text[len("file://") :] if text.startswith("file://") else text
    raw = raw[len("file:") :] if raw.startswith("file:") else raw
    path = Path(raw) if confine is not None else Path(raw).expanduser()
    if path.is_absolute():
        return _confined(Path(_normalise(path)), text, where, issues, confine)
    if base_dir is None:
        issues.error(
            where,
            f"the relative path {text!r} cannot be resolved: this spec was submitted as text, so it must "
            "be self-contained",
            "a bundled spec (fanout submit bundles it), absolute paths, or URIs",
        )
        return None
    return _confined(Path(_normalise(base_dir / path)), text, where, issues, confine)


def _confined(path: Path, text: str, where: Where, issues: Issues, confine: Path | None) -> Path | None:
    if confine is None or path.resolve().is_relative_to(confine.resolve()):
        return path
    issues.error(where, f"the path {text!r} leads outside the submitted folder", "a path inside the folder")
    return None


def _normalise(path: Path) -> str:
    import os

    return os.path.normpath(str(path.absolute()))


def data_location(
    text: str,
    dtype: DataType,
    base_dir: Path | None,
    where: Where,
    issues: Issues,
    *,
    confine: Path | None = None,
) -> DataLocation | None:
    """The location of a data input's ``path`` (checked: local paths must exist with the right kind)."""
    text = text.strip()
    if not text:
        issues.error(where, "the path is empty", _PATH_EXAMPLE)
        return None
    if text.startswith("azureml://"):
        return _datastore_data(text, where, issues)
    if text.startswith("azureml:"):
        match = _ASSET_RE.match(text)
        if match is None:
            issues.error(where, f"{text!r} is not a data asset reference", _ASSET_EXAMPLE)
            return None
        return AssetRef(name=match.group("name"), version=match.group("version"))
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", text) and not text.startswith("file://"):
        url = blob_url(text, where, issues)
        return UrlData(url=url) if url is not None else None
    path = local_path(text, base_dir, where, issues, confine=confine)
    if path is None:
        return None
    if not path.exists():
        issues.error(where, f"{text!r} does not exist (looked for {path})", "an existing file or folder")
        return None
    if dtype is DataType.URI_FILE and not path.is_file():
        issues.error(
            where, f"{text!r} is a folder but the input type is uri_file", "a file, or type uri_folder"
        )
        return None
    if dtype is not DataType.URI_FILE and not path.is_dir():
        issues.error(
            where, f"{text!r} is a file but the input type is {dtype.value}", "a folder, or uri_file"
        )
        return None
    if dtype is DataType.MLTABLE and not (path / "MLTable").is_file():
        issues.error(where, f"{text!r} has no MLTable file", "a folder containing a file named MLTable")
        return None
    return LocalData(path=str(path))


def _datastore_data(text: str, where: Where, issues: Issues) -> BlobData | None:
    match = _DATASTORE_RE.match(text)
    if match is None:
        issues.error(where, f"{text!r} is not a datastore URI Fanout understands", _PATH_EXAMPLE)
        return None
    container = container_for_datastore(match.group("store"), where, issues)
    if container is None:
        return None
    return BlobData(container=container, path=(match.group("path") or "").strip("/"))


def blob_url(text: str, where: Where, issues: Issues) -> str | None:
    """An https blob URL for ``https``/``wasbs``/``abfss`` URIs of Azure Storage (None + error otherwise)."""
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme in ("wasbs", "wasb", "abfss", "abfs"):
        container, _, host = parts.netloc.partition("@")
        host_match = _BLOB_HOST_RE.match(host.lower())
        if not container or host_match is None:
            issues.error(
                where, f"{text!r} is not an Azure Storage URI", f"{scheme}://<container>@<account>..."
            )
            return None
        return f"https://{host_match.group('account')}.blob.core.windows.net/{container}{parts.path}"
    if scheme == "https":
        host_match = _BLOB_HOST_RE.match(parts.netloc.lower())
        if host_match is None:
            issues.error(
                where,
                f"{text!r} is not an Azure Blob Storage URL",
                "https://<account>.blob.core.windows.net/<container>/<path>",
            )
            return None
        query = f"?{parts.query}" if parts.query else ""
        return f"https://{host_match.group('account')}.blob.core.windows.net{parts.path}{query}"
    if scheme == "http":
        issues.error(where, f"{text!r} uses plain http", "an https:// URL")
        return None
    issues.error(where, f"the URI scheme {scheme!r} is not supported", _PATH_EXAMPLE)
    return None


def code_location(
    text: str, base_dir: Path | None, where: Where, issues: Issues, *, confine: Path | None = None
) -> tuple[str, str] | None:
    """``("local", <abs path>)`` or ``("snapshot", <id>)`` for a ``code:`` value (None + error)."""
    text = text.strip()
    if text.startswith("azureml://"):
        match = _DATASTORE_RE.match(text)
        if (
            match is None
            or match.group("store") != SNAPSHOTS_STORE
            or not (match.group("path") or "").strip("/")
        ):
            issues.error(
                where,
                f"{text!r} is not a code location Fanout understands",
                "a local folder (./src) or azureml://datastores/snapshots/paths/<snapshot id>",
            )
            return None
        return "snapshot", (match.group("path") or "").strip("/")
    if not is_local_path(text):
        issues.error(where, f"code must be a local folder, got {text!r}", "a local folder such as ./src")
        return None
    path = local_path(text, base_dir, where, issues, confine=confine)
    if path is None:
        return None
    if not path.is_dir():
        issues.error(
            where, f"the code folder {text!r} does not exist (looked for {path})", "an existing folder"
        )
        return None
    return "local", str(path)


def environment_reference(text: str, where: Where, issues: Issues) -> str | None:
    """A registered environment reference, kept as given (None + error when malformed)."""
    text = text.strip()
    if _ASSET_RE.match(text) or _ENV_REGISTRY_RE.match(text):
        return text
    issues.error(
        where,
        f"{text!r} is not an environment reference",
        "azureml:<name>:<version>, azureml:<name>@latest, or an inline mapping with image/conda_file",
    )
    return None


def compute_name(text: str, where: Where, issues: Issues) -> str | None:
    """The compute name without ``azureml:`` (also from the long ARM form)."""
    name = text.strip()
    if name.startswith("azureml:"):
        name = name[len("azureml:") :]
        if name.startswith("/"):
            name = name.rstrip("/").rsplit("/computes/", 1)[-1] if "/computes/" in name else ""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}", name):
        issues.error(
            where, f"{text!r} is not a compute name", "azureml:<compute-name> (e.g. azureml:cpu-cluster)"
        )
        return None
    return name
