"""Asset handlers: the data asset registry (:mod:`shared.registry`) over HTTP, read-only."""

from __future__ import annotations

from shared import registry
from shared.api.context import ApiContext
from shared.api.models import AssetDetail, AssetList, AssetRequest

LATEST = "latest"


def list_assets(context: ApiContext) -> tuple[AssetList, int]:
    """Every registered data asset with its latest version, sorted by name."""
    return AssetList(assets=registry.list_assets(context.clients)), 200


def get_asset(context: ApiContext, request: AssetRequest) -> tuple[AssetDetail, int]:
    """One asset version (the latest when the version is absent or ``latest``) and every version.

    Raises:
        NotFoundError: no such asset or version (the message lists the versions that exist).
        RegistryError: the name or version is malformed.
    """
    version = None if request.version in (None, "", LATEST) else request.version
    asset, versions = registry.get_asset_and_versions(context.clients, request.name, version)
    return AssetDetail.model_validate({**asset.model_dump(), "versions": versions}), 200
