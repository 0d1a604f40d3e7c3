"""Asset handlers: the data asset registry (:mod:`shared.registry`) over HTTP, read-only."""

from __future__ import annotations

from importlib import import_module
from typing import Any

from pydantic import BaseModel

from shared.api.context import ApiContext
from shared.api.models import AssetList, AssetListRequest, AssetRequest

LATEST = "latest"


def _as_dict(asset: Any) -> dict[str, Any]:
    if isinstance(asset, BaseModel):
        return asset.model_dump(mode="json")
    return dict(asset)


def list_assets(context: ApiContext, request: AssetListRequest) -> tuple[AssetList, int]:
    """Every registered asset version (of one name when ``name`` is given)."""
    registry = import_module("shared.registry")

    found = registry.list_assets(context.clients, name=request.name)
    return AssetList(assets=[_as_dict(asset) for asset in found]), 200


def get_asset(context: ApiContext, request: AssetRequest) -> tuple[dict[str, Any], int]:
    """One asset version; the latest when the version is absent or ``latest``.

    Raises:
        NotFoundError / RegistryError: no such asset or version.
    """
    registry = import_module("shared.registry")

    version = None if request.version in (None, "", LATEST) else request.version
    return _as_dict(registry.get_asset(context.clients, request.name, version)), 200
