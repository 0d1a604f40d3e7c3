"""Logging set-up for Fanout's own entry points (the CLI, the agent, the local host).

Library modules only create module loggers; handlers are configured here and only by entry points.
In the Function App the Functions host owns the handlers, so this is never called there.
"""

from __future__ import annotations

import logging
import sys

FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def configure_logging(level: str | int = "INFO", *, stream: object = None) -> None:
    """Send log records at ``level`` and above to stderr (or ``stream``), once per process."""
    root = logging.getLogger()
    root.setLevel(level)
    if not any(getattr(h, "_fanout", False) for h in root.handlers):
        handler = logging.StreamHandler(stream or sys.stderr)  # type: ignore[arg-type]
        handler.setFormatter(logging.Formatter(FORMAT))
        handler._fanout = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    # The Azure SDKs log every HTTP request at INFO; keep them quiet unless debugging.
    if logging.getLevelName(root.level) != "DEBUG":
        logging.getLogger("azure").setLevel(logging.WARNING)
