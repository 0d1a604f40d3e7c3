"""Helpers of the data tests: a private folder in the ``data`` container, plan/definition builders."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from shared.orchestration.contracts import StepDefinition
from shared.plan import BlobData, JobPlan
from shared.storage import Container, StorageClients


@dataclass
class DataFolder:
    """A unique folder in the ``data`` container of the session's Azurite."""

    clients: StorageClients
    prefix: str

    def put(self, name: str, data: bytes | str) -> None:
        payload = data.encode() if isinstance(data, str) else data
        self.clients.container(Container.DATA).upload_blob(f"{self.prefix}/{name}", payload, overwrite=True)

    def location(self, path: str = "") -> BlobData:
        return BlobData(container=Container.DATA.value, path=f"{self.prefix}/{path}".rstrip("/"))


JobFactory = Callable[..., tuple[JobPlan, StepDefinition]]
