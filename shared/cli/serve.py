"""``fanout serve`` — the Function App on this machine: HTTP API, blob triggers, durable engine, agents.

In one process:

1. storage: the configured account, or an Azurite started for this command (stopped at exit);
2. the durable engine in process (``shared/host/engine.py``) with every orchestrator and activity, and
   the events-queue pump; agents run on the configured executor (local processes by default);
3. the blob triggers: ``specs`` and ``snapshots/incoming/`` polled, each blob version handled once
   (receipts in table ``fanoutreceipts``, :mod:`shared.host.blobs`);
4. the HTTP API on 127.0.0.1:7071 (:mod:`shared.host.server`), with a function key generated at start
   (or ``--key``/``FANOUT_API_KEY``) required as the ``x-functions-key`` header or ``code`` parameter.

It prints the API URL, the key and (for a private Azurite) the storage connection string to export, so
``fanout submit/status/logs/cancel`` in another shell reach it. Ctrl-C (or SIGTERM) stops it.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType

import click

from shared.host.server import DEFAULT_HOST, DEFAULT_PORT, ApiServer
from shared.settings import Settings, get_settings
from shared.storage import StorageClients

logger = logging.getLogger(__name__)

SERVICE_NAME = "fanout-serve"


@dataclass(frozen=True)
class LocalHost:
    """A running local host: where its API is, its key, and its storage."""

    url: str
    key: str
    connection_string: str | None
    clients: StorageClients


@click.command("serve")
@click.option("--host", default=DEFAULT_HOST, show_default=True, help="Interface to bind the API to.")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=int, help="API port (0: any free).")
@click.option("--key", default=None, help="Function key to require (default: FANOUT_API_KEY, else random).")
@click.option("--poll-interval", default=1.0, show_default=True, help="Seconds between blob scans.")
def serve(host: str, port: int, key: str | None, poll_interval: float) -> int:
    """Run Fanout's host (API, triggers, engine) on this machine until Ctrl-C."""
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    settings = get_settings()
    from shared.telemetry import configure_telemetry

    telemetry = configure_telemetry(settings, SERVICE_NAME)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:  # noqa: ARG001 - signal signature
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    try:
        with local_host(
            settings, host=host, port=port, key=key or settings.api_key, poll_interval=poll_interval
        ) as running:
            _announce(running)
            try:
                while not stop.wait(0.5):
                    pass
            except KeyboardInterrupt:
                pass
            click.echo("stopping...", err=True)
    finally:
        telemetry.shutdown()
    return 0


@contextmanager
def local_host(
    settings: Settings,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    key: str | None = None,
    poll_interval: float = 1.0,
) -> Iterator[LocalHost]:
    """Steps 1–4 of the module docstring, for the duration of the block."""
    from shared.api.context import ApiContext
    from shared.azurite import storage_connection
    from shared.compute import get_executor
    from shared.host.blobs import BlobPoller, default_watches
    from shared.host.engine import local_engine

    with storage_connection(settings) as connection:
        started_azurite = connection is not None and not settings.storage_connection_string
        if started_azurite:
            settings = settings.model_copy(update={"storage_connection_string": connection})
            # Agents are child processes: they find the private Azurite through the environment.
            os.environ["FANOUT_STORAGE_CONNECTION_STRING"] = str(connection)
            get_settings.cache_clear()
        clients = StorageClients.from_settings(settings)
        clients.ensure_layout()
        with local_engine(clients, get_executor(settings, clients)) as engine:
            poller = BlobPoller(
                clients, default_watches(clients, engine.client), interval=poll_interval
            ).start()
            server = ApiServer(
                lambda: ApiContext(clients=clients, settings=settings, durable=engine.client),
                key=key,
                host=host,
                port=port,
            )
            try:
                server.start()
                yield LocalHost(
                    url=server.url,
                    key=server.key,
                    connection_string=connection if started_azurite else None,
                    clients=clients,
                )
            finally:
                server.stop()
                poller.stop()


def _announce(running: LocalHost) -> None:
    click.echo(f"Fanout is serving its API on {running.url}/api/ (OpenAPI: {running.url}/api/openapi.json)")
    click.echo(f"function key: {running.key}")
    click.echo(
        "Drop specs into the 'specs' container, zips into 'snapshots/incoming/', or, in another shell:"
    )
    click.echo(f"  export FANOUT_API_URL={running.url}")
    click.echo(f"  export FANOUT_API_KEY={running.key}")
    if running.connection_string:
        click.echo(f"  export FANOUT_STORAGE_CONNECTION_STRING='{running.connection_string}'")
        click.echo("(storage is a private Azurite that stops with this command)")
    click.echo("Ctrl-C stops it.")
