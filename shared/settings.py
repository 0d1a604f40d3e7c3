"""Typed settings, read lazily from the environment.

Every setting Fanout reads is declared here, once, with its type, default and meaning; nothing else in
the code reads ``os.environ`` for configuration. Settings are read on first use (``get_settings()``),
never at import time, so the Functions host can index the app before its settings exist, and tests can
change the environment and call ``get_settings.cache_clear()``.

``settings.example.env`` at the repository root documents every key; a test keeps the two in step.
In the Function App the same names are app settings (see ``infra/app/function.bicep``).
"""

from __future__ import annotations

import json
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.errors import ConfigurationError


class ExecutorKind(StrEnum):
    """Where agents run: local processes on this machine, or Azure Batch pools."""

    LOCAL = "local"
    BATCH = "batch"


class PoolKind(StrEnum):
    """A Batch pool's kind: decides whether workers per node default to cores or to GPUs."""

    CPU = "cpu"
    GPU = "gpu"


class ComputeTarget(BaseModel):
    """What a ``compute:`` name of the spec maps to when the Batch executor is used."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pool_id: str = Field(description="Azure Batch pool id, e.g. 'fanout-cpu'.")
    kind: PoolKind = Field(default=PoolKind.CPU, description="cpu or gpu.")
    vm_size: str = Field(default="Standard_D4s_v5", description="The pool's VM size (informational).")
    cores: int = Field(default=4, ge=1, description="vCPUs per node: default workers per node on CPU pools.")
    gpus: int = Field(default=0, ge=0, description="GPUs per node: default workers per node on GPU pools.")
    task_slots: int = Field(
        default=1, ge=1, description="The pool's taskSlotsPerNode; an agent task requires all of them."
    )
    containers: bool = Field(
        default=True,
        description="True when the pool has a container configuration: every agent task then runs in "
        "a container (the job's environment image, else `image`).",
    )
    image: str = Field(
        default="mcr.microsoft.com/mirror/docker/library/python:3.11-slim",
        description="Container image for jobs whose environment names none (Python 3.11+).",
    )


class TelemetryExporter(StrEnum):
    """Where traces and metrics go: nowhere, stdout, an OTLP collector, or Azure Monitor."""

    NONE = "none"
    CONSOLE = "console"
    OTLP = "otlp"
    AZURE_MONITOR = "azure_monitor"


class Settings(BaseSettings):
    """All of Fanout's settings; environment variables are ``FANOUT_<FIELD>`` unless aliased."""

    model_config = SettingsConfigDict(env_prefix="FANOUT_", extra="ignore", frozen=True)

    # --- storage -------------------------------------------------------------------------------
    storage_connection_string: str | None = Field(
        default=None,
        description="Connection string of the storage account (Azurite locally). When unset and no "
        "account URLs are set either, the CLI and the test session start Azurite themselves.",
    )
    storage_blob_url: str | None = Field(default=None, description="Blob endpoint for identity-based access.")
    storage_queue_url: str | None = Field(
        default=None, description="Queue endpoint for identity-based access."
    )
    storage_table_url: str | None = Field(
        default=None, description="Table endpoint for identity-based access."
    )
    storage_client_id: str | None = Field(
        default=None,
        description="Client id of the user-assigned managed identity to use for storage (and Batch); "
        "unset means DefaultAzureCredential.",
    )
    default_datastore: str = Field(
        default="workspaceblobstore",
        description="What ${{default_datastore}} expands to; it maps to the 'data' container.",
    )

    # --- local tooling -------------------------------------------------------------------------
    azurite_command: str | None = Field(
        default=None,
        description="Azurite executable; default: node_modules/.bin/azurite in the project, then PATH.",
    )
    home: Path = Field(
        default=Path(".fanout"),
        description="Local working folder for caches (snapshots, downloaded inputs) and agent work dirs.",
    )

    # --- compute -------------------------------------------------------------------------------
    executor: ExecutorKind = Field(default=ExecutorKind.LOCAL, description="local or batch.")
    compute_targets: dict[str, ComputeTarget] = Field(
        default_factory=dict,
        description='JSON object mapping compute names to Batch pools, e.g. {"gpu-cluster": '
        '{"pool_id": "fanout-gpu", "kind": "gpu", "gpus": 1, "cores": 4}}. Names are matched without '
        "an 'azureml:' prefix; unknown names use 'default' if present.",
    )
    batch_endpoint: str | None = Field(default=None, description="https://<account>.<region>.batch.azure.com")
    batch_identity_resource_id: str | None = Field(
        default=None, description="ARM id of the pools' user-assigned identity (resource file downloads)."
    )
    agent_package_url: str | None = Field(
        default=None, description="Blob URL of the Fanout wheel that Batch nodes install."
    )
    gpu_count: int | None = Field(
        default=None,
        ge=0,
        description="GPUs of this node for the agent (one per worker via CUDA_VISIBLE_DEVICES); unset: "
        "counted with nvidia-smi, 0 when it is absent.",
    )
    batch_task_retries: int = Field(
        default=2,
        ge=-1,
        description="Batch retries of a crashed agent task (maxTaskRetryCount; -1 = unlimited).",
    )

    # --- snapshots -----------------------------------------------------------------------------
    snapshot_max_bytes: int = Field(default=300 * 1024 * 1024, ge=1, description="Snapshot size limit.")
    snapshot_max_files: int = Field(default=2000, ge=1, description="Snapshot file-count limit.")

    # --- orchestration / API -------------------------------------------------------------------
    task_hub: str = Field(default="fanout", description="Durable task hub name (letters and digits).")
    api_url: str | None = Field(default=None, description="Base URL of a Fanout HTTP API (CLI client).")
    api_key: str | None = Field(default=None, description="Function key for the HTTP API (CLI client).")
    step_poll_seconds: float = Field(
        default=2.0, gt=0, description="First wait of a running step between reads of its tallies."
    )
    step_poll_max_seconds: float = Field(
        default=30.0, gt=0, description="Longest wait between reads (the wait grows up to it)."
    )
    output_md5_max_bytes: int = Field(
        default=4 * 1024**3,
        ge=0,
        description="append_row_to outputs up to this size get a Content-MD5 when committed (finalize "
        "reads the blob once to compute it); larger ones get none (0: never).",
    )

    # --- telemetry -----------------------------------------------------------------------------
    telemetry: TelemetryExporter | None = Field(
        default=None,
        description="Trace/metric exporter; default: azure_monitor when a connection string is set, "
        "otlp when OTEL_EXPORTER_OTLP_ENDPOINT is set, otherwise none.",
    )
    applicationinsights_connection_string: str | None = Field(
        default=None,
        validation_alias=AliasChoices("APPLICATIONINSIGHTS_CONNECTION_STRING"),
        description="Application Insights connection string (read without the FANOUT_ prefix).",
    )
    otel_exporter_otlp_endpoint: str | None = Field(
        default=None,
        validation_alias=AliasChoices("OTEL_EXPORTER_OTLP_ENDPOINT"),
        description="OTLP/HTTP collector endpoint (standard OpenTelemetry variable, no FANOUT_ prefix).",
    )

    @field_validator("compute_targets", mode="before")
    @classmethod
    def _parse_compute_targets(cls, value: Any) -> Any:
        if isinstance(value, str):
            return json.loads(value) if value.strip() else {}
        return value

    @property
    def uses_identity(self) -> bool:
        """True when storage is reached with Entra ID (account URLs) rather than a connection string."""
        return self.storage_connection_string is None and self.storage_blob_url is not None

    @property
    def storage_configured(self) -> bool:
        """Some storage is set (either way), so the CLI can reach it without an HTTP API."""
        return self.storage_connection_string is not None or self.storage_blob_url is not None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read from the environment on first call.

    Raises:
        ConfigurationError: a setting has a value of the wrong type.
    """
    try:
        return Settings()
    except (ValidationError, json.JSONDecodeError) as exc:
        raise ConfigurationError(f"invalid Fanout settings: {exc}") from exc
