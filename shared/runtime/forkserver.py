"""The node's fork server: started first thing, so its imports overlap everything the agent does first.

Workers are forked by ``multiprocessing``'s fork server, which imports :data:`PRELOAD` (pandas, the
Azure SDKs, the data readers, the worker) once. That takes most of a second; started as the very first
thing ``fanout agent`` does — this module imports nothing heavy — it runs on another core while the
agent imports its own modules, reads the plan and prepares the node, instead of after them.

A node that turns out to have nothing to run in workers (a command job, a step with nothing left to do)
stops it again (:func:`stop_fork_server`).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
import threading
import types
from collections.abc import Iterator
from multiprocessing.context import ForkServerContext

#: Modules the fork server imports once, so workers start without importing them.
PRELOAD = (
    "shared.runtime.workerpool",
    "shared.runtime.worker",
    "shared.runtime.inputs",
    "shared.runtime.appendrow",
    "shared.data",
    "shared.settings",
    "shared.storage",
    "pandas",
)
_context_lock = threading.Lock()
_context: ForkServerContext | None = None


def fork_context() -> ForkServerContext:
    """The fork-server context, with the preload list set before its server starts (once per process)."""
    global _context  # noqa: PLW0603 - one fork server per process is multiprocessing's own model
    with _context_lock:
        if _context is None:
            context = multiprocessing.get_context("forkserver")
            assert isinstance(context, ForkServerContext)
            context.set_forkserver_preload(list(PRELOAD))
            _context = context
        return _context


def start_fork_server() -> None:
    """Start the fork server now (it imports the preload list in the background); harmless if running."""
    from multiprocessing import forkserver

    fork_context()
    with _context_lock, _main_hidden():
        forkserver.ensure_running()


def stop_fork_server() -> None:
    """Stop this process's fork server, if one runs, without waiting for its imports (no worker started)."""
    from multiprocessing import forkserver

    server = forkserver._forkserver
    stop = getattr(server, "_stop", None)  # the stdlib's own shutdown (it waits for the process)
    if stop is None:
        return
    with _context_lock:
        pid = getattr(server, "_forkserver_pid", None)
        if pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)  # it may still be importing: do not wait for that
        stop()


@contextlib.contextmanager
def main_module_hidden() -> Iterator[None]:
    """Start a process without multiprocessing re-running the parent's ``__main__`` in the child.

    multiprocessing records the main module's file or name so the child can import it (needed for
    targets defined in ``__main__``). Our target lives in :mod:`shared.runtime.workerpool`, and re-running
    the parent's main script in every worker (pytest, the ``fanout`` script, or a user's program that
    embeds an agent without a ``__main__`` guard) would cost time at best and run that program again
    at worst. While a worker starts, ``__main__`` is a bare module with neither.
    """
    with _context_lock, _main_hidden():
        yield


@contextlib.contextmanager
def _main_hidden() -> Iterator[None]:
    main = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main
