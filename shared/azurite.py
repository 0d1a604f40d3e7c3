"""Azurite lifecycle: find a configured storage emulator, or start the project's pinned one.

Azurite is Fanout's local storage (DESIGN decision 6), never a mock. The test session starts one
instance for all tests; the CLI starts one when no storage is configured. The pinned Azurite comes from
the project's ``node_modules`` (``package.json`` + lock file), so every machine runs the same version.

Azurite is started on free ports (``--blobPort 0`` etc.; it prints the ports it bound), in memory, with
the flags the Python SDKs need (``--skipApiVersionCheck --loose``), and stopped when the owner exits.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import queue
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from shared.errors import AzuriteError
from shared.settings import Settings

logger = logging.getLogger(__name__)

ACCOUNT_NAME = "devstoreaccount1"
#: Azurite's well-known development key (public, documented; not a secret).
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

PROJECT_ROOT = Path(__file__).resolve().parent.parent
START_FLAGS = (
    "--silent",
    "--inMemoryPersistence",
    "--skipApiVersionCheck",
    "--loose",
    "--disableTelemetry",
)
_LISTENING = re.compile(r"Azurite (Blob|Queue|Table) service is successfully listening at (http://\S+)")


@dataclass(frozen=True)
class AzuriteEndpoints:
    """The three service endpoints of one Azurite instance (account name in the path)."""

    blob_url: str
    queue_url: str
    table_url: str

    @property
    def connection_string(self) -> str:
        """A connection string for these endpoints with Azurite's well-known dev account and key."""
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT_NAME};AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint={self.blob_url};QueueEndpoint={self.queue_url};TableEndpoint={self.table_url};"
        )


class AzuriteProcess:
    """A running Azurite started by this process; stop it with :meth:`stop` (also runs at exit)."""

    def __init__(self, process: subprocess.Popen[str], endpoints: AzuriteEndpoints) -> None:
        self.process = process
        self.endpoints = endpoints
        atexit.register(self.stop)

    @property
    def connection_string(self) -> str:
        """The connection string of this instance (what ``FANOUT_STORAGE_CONNECTION_STRING`` takes)."""
        return self.endpoints.connection_string

    def stop(self) -> None:
        """Stop Azurite (and its process group); harmless when already stopped."""
        if self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        logger.info("stopped Azurite (pid %d)", self.process.pid)


def azurite_command(settings: Settings) -> list[str]:
    """The command that starts Azurite: the setting, else the project's pinned copy, else PATH.

    Raises:
        AzuriteError: none can be found; the message says how to install the pinned one.
    """
    if settings.azurite_command:
        return [settings.azurite_command]
    pinned = PROJECT_ROOT / "node_modules" / ".bin" / "azurite"
    if pinned.exists():
        return [str(pinned)]
    on_path = shutil.which("azurite")
    if on_path:
        return [on_path]
    raise AzuriteError(
        "Azurite is not installed: run `npm ci` in the project root (or `make setup`), "
        "or set FANOUT_STORAGE_CONNECTION_STRING to an existing storage account",
        looked_in=str(pinned),
    )


def start_azurite(settings: Settings, timeout: float = 60.0) -> AzuriteProcess:
    """Start Azurite on free ports and wait until all three services answer.

    Raises:
        AzuriteError: it could not be started or did not answer within ``timeout`` seconds.
    """
    command = [
        *azurite_command(settings),
        *START_FLAGS,
        "--blobPort", "0", "--queuePort", "0", "--tablePort", "0",
        "--blobHost", "127.0.0.1", "--queueHost", "127.0.0.1", "--tableHost", "127.0.0.1",
    ]  # fmt: skip
    # --silent hides the access log but not the start-up lines we need; its own folder keeps the
    # debug/config files it may write out of the caller's working directory.
    workdir = settings.home / "azurite"
    workdir.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        command,
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_pump, args=(process, lines), daemon=True, name="azurite-output").start()

    found: dict[str, str] = {}
    output: list[str] = []
    deadline = time.monotonic() + timeout
    while len(found) < 3:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or process.poll() is not None:
            _kill(process)
            raise AzuriteError(
                "Azurite did not start: " + (" | ".join(output[-5:]) or "no output"),
                command=" ".join(command),
            )
        try:
            line = lines.get(timeout=min(remaining, 0.5))
        except queue.Empty:
            continue
        output.append(line.strip())
        match = _LISTENING.search(line)
        if match:
            found[match.group(1).lower()] = f"{match.group(2)}/{ACCOUNT_NAME}"

    endpoints = AzuriteEndpoints(found["blob"], found["queue"], found["table"])
    instance = AzuriteProcess(process, endpoints)
    wait_until_answering(endpoints, timeout=max(deadline - time.monotonic(), 1.0))
    logger.info("started Azurite (pid %d) at %s", process.pid, endpoints.blob_url)
    return instance


def wait_until_answering(endpoints: AzuriteEndpoints, timeout: float = 30.0) -> None:
    """Poll each service until it answers an HTTP request (any status code counts as an answer)."""
    deadline = time.monotonic() + timeout
    for url in (endpoints.blob_url, endpoints.queue_url, endpoints.table_url):
        while True:
            try:
                httpx.get(url, timeout=2.0)
                break
            except httpx.TransportError as exc:
                if time.monotonic() > deadline:
                    raise AzuriteError(f"Azurite at {url} does not answer: {exc}") from exc
                time.sleep(0.05)


@contextlib.contextmanager
def storage_connection(settings: Settings) -> Iterator[str | None]:
    """Yield the connection string to use: the configured one, or a freshly started Azurite's.

    When storage is configured by account URLs (identity-based, in Azure) this yields ``None`` and the
    caller uses the URLs. An Azurite started here is stopped when the block ends.
    """
    if settings.storage_configured:
        yield settings.storage_connection_string
        return
    instance = start_azurite(settings)
    try:
        yield instance.connection_string
    finally:
        instance.stop()


def _pump(process: subprocess.Popen[str], lines: queue.Queue[str]) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        lines.put(line)


def _kill(process: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
