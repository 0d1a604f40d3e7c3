"""Session-wide fixtures: a clean environment for every test, one real Azurite for the session.

Azurite is started once per test process (each xdist worker has its own) from the project's pinned
npm package. If it cannot be started the Azurite tests *fail* with the reason — they are never skipped.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shared.azurite import AzuriteProcess, start_azurite
from shared.settings import Settings, get_settings
from shared.storage import StorageClients


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Each test starts with no FANOUT_* settings, a private home folder and a fresh settings cache."""
    for key in list(os.environ):
        if key.startswith("FANOUT_") or key in {"APPLICATIONINSIGHTS_CONNECTION_STRING"}:
            monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("FANOUT_HOME", str(tmp_path / "fanout-home"))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AzuriteProcess]:
    """One Azurite for the whole session (per xdist worker), stopped at the end."""
    home = tmp_path_factory.mktemp("azurite-home")
    instance = start_azurite(Settings(home=home))
    yield instance
    instance.stop()


@pytest.fixture
def storage(azurite: AzuriteProcess, monkeypatch: pytest.MonkeyPatch) -> StorageClients:
    """Clients for the session's Azurite, with the layout created and the settings pointing at it."""
    monkeypatch.setenv("FANOUT_STORAGE_CONNECTION_STRING", azurite.connection_string)
    get_settings.cache_clear()
    clients = StorageClients.from_connection_string(azurite.connection_string)
    clients.ensure_layout()
    return clients


_SPAN_EXPORTER = InMemorySpanExporter()
_SPAN_EXPORTER_INSTALLED: list[bool] = []


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """The spans this process finishes during the test, kept in memory.

    The exporter is added once per process to the global SDK tracer provider (set here if none is yet):
    OpenTelemetry lets a process set its provider only once, so every test shares one exporter, emptied
    before and after each test.
    """
    if not _SPAN_EXPORTER_INSTALLED:
        provider = trace.get_tracer_provider()
        if not isinstance(provider, TracerProvider):
            provider = TracerProvider()
            trace.set_tracer_provider(provider)
        provider.add_span_processor(SimpleSpanProcessor(_SPAN_EXPORTER))
        _SPAN_EXPORTER_INSTALLED.append(True)
    _SPAN_EXPORTER.clear()
    yield _SPAN_EXPORTER
    _SPAN_EXPORTER.clear()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test by its tier folder (tests/unit, tests/integration, tests/e2e)."""
    for item in items:
        parts = Path(str(item.fspath)).parts
        for tier in ("unit", "integration", "e2e"):
            if tier in parts:
                item.add_marker(getattr(pytest.mark, tier))
