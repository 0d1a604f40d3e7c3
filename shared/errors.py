"""The one exception hierarchy of Fanout.

Every error the engine raises on purpose derives from :class:`FanoutError`. Errors carry structured
fields (run, job, mini-batch, location) and build their own message from them, so a handler can both
print a sentence a user can act on and return the fields as JSON.

    FanoutError
    ├── ConfigurationError      settings missing or invalid
    ├── SpecError               a pipeline spec failed validation (carries every located issue)
    ├── SnapshotError           a code snapshot or archive was rejected (limits, traversal, bombs)
    ├── DataError               an input could not be resolved, read or partitioned
    │   └── MLTableError        an MLTable file uses something unsupported or is malformed
    ├── StorageError            a storage operation failed in a way the caller cannot retry
    │   └── AzuriteError        no Azurite could be found or started
    ├── RegistryError           a data asset reference could not be resolved or registered
    ├── ExecutionError          the runtime could not run a step (agent, worker, executor)
    │   ├── EntryScriptError    the user's entry script broke the contract (bad return value, ...)
    │   └── ComputeError        an executor (local processes, Azure Batch) failed
    ├── OrchestrationError      the durable orchestration could not proceed
    └── ApiError                the HTTP API (or a client of it) answered with an error
        ├── NotFoundError       a run, job, log or asset does not exist
        └── ConflictError       the request does not fit the resource's state (resuming a run that did
                                not fail, say)

Rules: raise the most specific class; never ``except Exception`` without re-raising or recording the
error; never a bare ``except:``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


class FanoutError(Exception):
    """Base of every error Fanout raises on purpose.

    Args:
        message: what went wrong, as a sentence a user can act on.
        **context: structured fields (``run_id``, ``job``, ``mini_batch``, ``path`` ...) kept on the
            error for logs and JSON answers.
    """

    def __init__(self, message: str, **context: Any) -> None:
        super().__init__(message)
        self.message = message
        self.context: dict[str, Any] = {k: v for k, v in context.items() if v is not None}

    def to_dict(self) -> dict[str, Any]:
        """The error as a JSON-ready mapping: its kind, message and structured fields."""
        return {"error": type(self).__name__, "message": self.message, **self.context}


class ConfigurationError(FanoutError):
    """A setting is missing or has a value that cannot work."""


@dataclass(frozen=True)
class SpecIssue:
    """One located problem (or warning) in a pipeline spec.

    ``file:line:col: json.path: message; expected`` is the printed form (1-based line and column).
    """

    file: str
    line: int
    column: int
    path: str
    message: str
    expected: str = ""
    severity: str = "error"

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        text = f"{where}: {self.path or '<root>'}: {self.message}"
        if self.expected:
            text += f"; expected {self.expected}"
        return text

    def to_dict(self) -> dict[str, Any]:
        """The issue as JSON-ready fields (API error bodies, ``*.error.json`` beside rejected drops)."""
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "path": self.path,
            "message": self.message,
            "expected": self.expected,
            "severity": self.severity,
        }


class SpecError(FanoutError):
    """A spec failed validation. All issues are reported at once, never only the first.

    Args:
        issues: every located error (and any warnings found on the way).
    """

    def __init__(self, issues: Sequence[SpecIssue]) -> None:
        self.issues = list(issues)
        errors = [i for i in self.issues if i.severity == "error"]
        count = len(errors)
        lines = "\n".join(str(i) for i in errors)
        super().__init__(f"{count} error{'s' if count != 1 else ''} in the spec:\n{lines}")

    def to_dict(self) -> dict[str, Any]:
        """The error with every issue, JSON-ready: the body of an HTTP 400 and of a drop's error file."""
        return {
            "error": type(self).__name__,
            "message": self.message,
            "issues": [i.to_dict() for i in self.issues],
        }


class SnapshotError(FanoutError):
    """A code snapshot or an archive dropped into ``snapshots`` was rejected."""


class DataError(FanoutError):
    """An input could not be resolved, read or split into mini-batches."""


class MLTableError(DataError):
    """An MLTable file is malformed or uses a feature Fanout does not support."""


class StorageError(FanoutError):
    """A storage operation failed in a way the caller cannot simply retry."""


class AzuriteError(StorageError):
    """No Azurite was configured, found, or could be started."""


class RegistryError(FanoutError):
    """A data asset could not be resolved or registered."""


class ExecutionError(FanoutError):
    """The runtime could not run a step."""


class EntryScriptError(ExecutionError):
    """The user's entry script broke the contract (missing ``run``, a return value of the wrong type...)."""


class ComputeError(ExecutionError):
    """An executor (local agent processes or Azure Batch) failed."""


class OrchestrationError(FanoutError):
    """The durable orchestration could not proceed."""


class ApiError(FanoutError):
    """An HTTP API call failed; ``status`` is the HTTP status code."""

    def __init__(self, message: str, status: int = 400, **context: Any) -> None:
        super().__init__(message, **context)
        self.status = status


class NotFoundError(ApiError):
    """A run, job, log file or asset does not exist."""

    def __init__(self, message: str, **context: Any) -> None:
        super().__init__(message, status=404, **context)


class ConflictError(ApiError):
    """The request does not fit the state of what it names (HTTP 409), e.g. resuming a completed run."""

    def __init__(self, message: str, **context: Any) -> None:
        super().__init__(message, status=409, **context)
