"""Fixtures of the Function App tests: the app's functions called as the Python worker calls them.

The Functions host cannot run here, so each test calls a function's user code with the objects the
worker would pass (``func.HttpRequest``, ``func.blob.InputStream``, ``func.QueueMessage``) and, for a
``durable_client_input``, the binding's JSON — pointing at :class:`DurableFunctionsHost`, which serves
the Durable extension's HTTP API over a real in-memory durable engine. Storage is the session's Azurite.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterator
from typing import Any

import pytest

from functions import runtime
from shared.orchestration.durabletask_adapter import DurableTaskClient
from shared.storage import StorageClients
from tests.integration.api.durable_stand_in import DurableFunctionsHost, stand_in_engine
from tests.integration.functions.index import indexed_functions


@pytest.fixture(scope="session")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """One event loop for every invocation, as in the Python worker (DF's client session lives on it)."""
    running = asyncio.new_event_loop()
    yield running
    running.close()


@pytest.fixture(scope="session")
def engine() -> Iterator[DurableTaskClient]:
    with stand_in_engine() as client:
        yield client


@pytest.fixture(scope="session")
def df_host(engine: DurableTaskClient) -> Iterator[DurableFunctionsHost]:
    with DurableFunctionsHost(engine) as host:
        yield host


@pytest.fixture
def app_storage(storage: StorageClients) -> Iterator[StorageClients]:
    """The session's Azurite as the Function App's storage (its cached clients are reset around)."""
    runtime.reset()
    yield storage
    runtime.reset()


class Invoker:
    """Calls a function of the app by name, with the durable client binding when it has one."""

    def __init__(self, loop: asyncio.AbstractEventLoop, host: DurableFunctionsHost) -> None:
        self.loop = loop
        self.host = host

    def __call__(self, name: str, **arguments: Any) -> Any:
        user_function = indexed_functions()[name].get_user_function()
        if "client" in inspect.signature(user_function).parameters:
            arguments["client"] = self.host.starter
        result = user_function(**arguments)
        if inspect.isawaitable(result):
            return self.loop.run_until_complete(result)
        return result


@pytest.fixture
def invoke(
    loop: asyncio.AbstractEventLoop, df_host: DurableFunctionsHost, app_storage: StorageClients
) -> Invoker:
    return Invoker(loop, df_host)
