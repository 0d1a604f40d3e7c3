"""Cross-checks between the code and the Bicep: every setting the code reads is an app setting of the
Function App, and every container, queue and table the code uses is created by the deployment."""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

import pytest
from pydantic import AliasChoices

import shared.storage as storage_layout
from functions.constants import STORAGE_CONNECTION
from shared.settings import Settings
from tests.unit.infra.app_functions import app_functions
from tests.unit.infra.bicep import INFRA, load, param_defaults, variables

#: Settings the Function App must NOT get, and why (every other field of Settings must be set).
NOT_APP_SETTINGS = {
    "storage_connection_string": "account keys are never used in Azure: storage is reached with the identity",
    "azurite_command": "local tooling only",
    "api_url": "client-side setting of the `fanout` CLI (azd outputs FANOUT_API_URL for it)",
    "api_key": "client-side setting of the `fanout` CLI",
    "gpu_count": "a node setting: the Batch executor sets FANOUT_GPU_COUNT on each agent task",
    "otel_exporter_otlp_endpoint": "the app exports to Azure Monitor (FANOUT_TELEMETRY=azure_monitor)",
}
IDENTITY_CONNECTION_SUFFIXES = (
    "credential",
    "clientId",
    "blobServiceUri",
    "queueServiceUri",
    "tableServiceUri",
)


@lru_cache(maxsize=1)
def app_settings() -> dict[str, Any]:
    entries = variables(load("app/function.bicep"))["appSettings"]
    names = [entry["name"] for entry in entries]
    assert len(names) == len(set(names)), "an app setting is listed twice"
    return {entry["name"]: entry["value"] for entry in entries}


def environment_names(field: str) -> set[str]:
    info = Settings.model_fields[field]
    alias = info.validation_alias
    if isinstance(alias, AliasChoices):
        return {str(choice) for choice in alias.choices}
    if isinstance(alias, str):
        return {alias}
    return {f"FANOUT_{field.upper()}"}


def test_every_setting_the_code_reads_is_an_app_setting() -> None:
    missing = {
        field: sorted(environment_names(field))
        for field in Settings.model_fields
        if field not in NOT_APP_SETTINGS and not environment_names(field) & set(app_settings())
    }
    assert not missing, (
        f"add these to infra/app/function.bicep (or to NOT_APP_SETTINGS with a reason): {missing}"
    )


def test_exclusions_name_real_settings_that_are_not_set() -> None:
    assert set(NOT_APP_SETTINGS) <= set(Settings.model_fields)
    for field in NOT_APP_SETTINGS:
        assert not environment_names(field) & set(app_settings()), field


def test_every_fanout_app_setting_is_a_real_setting() -> None:
    known = set().union(*(environment_names(f) for f in Settings.model_fields))
    unknown = {name for name in app_settings() if name.startswith("FANOUT_") and name not in known}
    assert not unknown


def literal_settings() -> dict[str, str]:
    """App settings whose value is known before deployment (literals and parameter defaults)."""
    function = load("app/function.bicep")
    names = set(function["parameters"]) | set(function["variables"])
    defaults = param_defaults(function)
    literal = {}
    for name, raw in app_settings().items():
        value = defaults.get(raw) if isinstance(raw, str) and raw in names else raw
        if isinstance(value, str) and "${" not in value:
            literal[name] = value
    return literal


def test_literal_app_settings_are_valid_values(monkeypatch: pytest.MonkeyPatch) -> None:
    literal = literal_settings()
    for name, value in literal.items():
        if name.startswith("FANOUT_"):
            monkeypatch.setenv(name, value)
    settings = Settings()  # raises if a value has the wrong type
    assert settings.executor.value == "batch"
    assert re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", settings.task_hub)  # Durable task hub rule
    assert literal["FANOUT_TASK_HUB"] == settings.task_hub


def test_the_host_storage_uses_the_identity_and_no_key_is_anywhere() -> None:
    settings = app_settings()
    for suffix in IDENTITY_CONNECTION_SUFFIXES:
        assert f"{STORAGE_CONNECTION}__{suffix}" in settings
    assert settings[f"{STORAGE_CONNECTION}__credential"] == "managedidentity"
    assert STORAGE_CONNECTION not in settings  # no connection string
    assert "APPLICATIONINSIGHTS_CONNECTION_STRING" in settings
    assert "Authorization=AAD" in settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"]
    text = json.dumps(settings).lower()
    assert "accountkey" not in text
    assert "sharedaccesssignature" not in text


def test_every_binding_connection_has_identity_settings() -> None:
    connections = set()
    for function in app_functions():
        for binding in function.get_bindings():
            connection = binding.get_dict_repr().get("connection")
            if connection:
                connections.add(connection)
    assert connections
    for connection in connections:
        for suffix in IDENTITY_CONNECTION_SUFFIXES:
            assert f"{connection}__{suffix}" in app_settings(), (connection, suffix)


def test_settings_host_json_reads_are_app_settings() -> None:
    host = (INFRA.parent / "host.json").read_text()
    for name in re.findall(r"%([A-Za-z0-9_]+)%", host):
        assert name in app_settings(), name


def _code_queues() -> set[str]:
    return {
        value
        for name, value in vars(storage_layout).items()
        if name.isupper() and name.endswith("_QUEUE") and isinstance(value, str)
    }


def test_every_container_queue_and_table_of_the_code_is_created() -> None:
    storage = variables(load("app/storage.bicep"))
    assert set(storage["containerNames"]) == {c.value for c in storage_layout.Container}
    assert set(storage["tableNames"]) == {t.value for t in storage_layout.Table}
    assert set(storage["queueNames"]) == _code_queues()
    assert storage["infrastructureContainers"] == ["deploymentContainerName", "agentContainerName"]
