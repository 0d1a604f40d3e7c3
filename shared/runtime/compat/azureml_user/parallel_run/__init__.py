"""``from azureml_user.parallel_run import EntryScript`` — Azure ML's entry-script helper, for Fanout.

Entry scripts written for Azure ML's parallel job use it unchanged:

    from azureml_user.parallel_run import EntryScript

    def init():
        logger = EntryScript().logger
        logger.info("model loaded")

``EntryScript`` is a singleton (the same object in ``init()`` and ``run()``). Its ``logger`` writes to
``logs/user/entry_script_log/<node_id>/<process_name>.log.txt``; ``log_dir`` is that folder;
``output_dir`` is ``AZUREML_BI_OUTPUT_PATH`` (created when missing); ``working_dir`` is the process's
own working directory; ``dir`` the folder of the entry script; ``agent_name`` / ``process_name`` the
worker's name ("process000"); ``node_id`` the node's id. The Fanout worker calls :func:`_configure`
before it imports the entry script.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Any, ClassVar

_LOG_FORMAT = "%(asctime)s|%(name)s|%(levelname)s|%(process)d|%(thread)d|%(funcName)s()|%(message)s"

_context: dict[str, Any] = {
    "node_id": "0",
    "process_name": "process000",
    "log_dir": "logs/user/entry_script_log/0",
    "entry_script_dir": ".",
    "working_dir": ".",
    "logging_level": "INFO",
}


def _configure(**context: Any) -> None:
    """Set the worker's context (called by the Fanout worker before the entry script is imported)."""
    _context.update({k: v for k, v in context.items() if v is not None})


class _SingletonMeta(type):
    _instances: ClassVar[dict[type, Any]] = {}
    _lock = threading.Lock()

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        with _SingletonMeta._lock:
            if cls not in _SingletonMeta._instances:
                _SingletonMeta._instances[cls] = super().__call__(*args, **kwargs)
            return _SingletonMeta._instances[cls]


class EntryScript(metaclass=_SingletonMeta):
    """Helper for entry scripts: a logger, the output folder and facts about the worker."""

    def __init__(self, logging_level: str | int | None = None) -> None:
        self._logger: logging.Logger | None = None
        self._output_dir: str | None = None
        self.logging_level = logging_level or _context["logging_level"]

    def __reduce__(self) -> tuple[type, tuple[()]]:
        return (self.__class__, ())

    def config_log(self) -> None:
        """Create the logger (done on first use of :attr:`logger`)."""
        Path(self.log_dir).mkdir(parents=True, exist_ok=True)
        logger = logging.getLogger(f"{self.node_id}_{self.process_name}")
        logger.setLevel(self.logging_level)
        formatter = logging.Formatter(_LOG_FORMAT)
        formatter.converter = time.gmtime
        handler = logging.FileHandler(Path(self.log_dir) / f"{self.process_name}.log.txt", delay=True)
        handler.setLevel(self.logging_level)
        handler.setFormatter(formatter)
        logger.addHandler(handler)
        self._logger = logger

    @property
    def logger(self) -> logging.Logger:
        """A logger whose records land in ``logs/user/entry_script_log/<node_id>/``."""
        if self._logger is None:
            self.config_log()
        assert self._logger is not None
        return self._logger

    @property
    def log_dir(self) -> str:
        """The folder of the logger's file, ``logs/user/entry_script_log/<node_id>``."""
        return str(_context["log_dir"])

    @property
    def dir(self) -> str:
        """The folder of the entry script."""
        return str(_context["entry_script_dir"])

    @property
    def working_dir(self) -> str:
        """The worker's own working directory (each worker process has one)."""
        return str(_context["working_dir"])

    @property
    def output_dir(self) -> str:
        """``AZUREML_BI_OUTPUT_PATH``: files written here become part of the job's output."""
        if self._output_dir is None:
            path = Path(os.environ.get("AZUREML_BI_OUTPUT_PATH", "."))
            path.mkdir(parents=True, exist_ok=True)
            self._output_dir = str(path)
        return self._output_dir

    @property
    def agent_name(self) -> str:
        """The worker's name, as :attr:`process_name` (Azure ML offers both)."""
        return str(_context["process_name"])

    @property
    def process_name(self) -> str:
        """The worker's name, e.g. ``process000``: tells the node's workers apart in logs."""
        return str(_context["process_name"])

    @property
    def node_id(self) -> str:
        """The node's id (``0`` .. ``instance_count - 1``), as a string as in Azure ML."""
        return str(_context["node_id"])


__all__ = ["EntryScript"]
