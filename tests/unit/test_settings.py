from __future__ import annotations

import re
from pathlib import Path

import pytest

from shared.errors import ConfigurationError
from shared.settings import ExecutorKind, PoolKind, Settings, get_settings

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_need_no_environment() -> None:
    settings = get_settings()
    assert settings.executor is ExecutorKind.LOCAL
    assert settings.snapshot_max_bytes == 300 * 1024 * 1024
    assert settings.snapshot_max_files == 2000
    assert not settings.storage_configured


def test_settings_are_read_lazily_and_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    first = get_settings()
    monkeypatch.setenv("FANOUT_TASK_HUB", "otherhub")
    assert get_settings() is first
    get_settings.cache_clear()
    assert get_settings().task_hub == "otherhub"


def test_compute_targets_parse_from_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "FANOUT_COMPUTE_TARGETS", '{"gpu-cluster": {"pool_id": "fanout-gpu", "kind": "gpu", "gpus": 1}}'
    )
    target = get_settings().compute_targets["gpu-cluster"]
    assert target.pool_id == "fanout-gpu"
    assert target.kind is PoolKind.GPU


def test_bad_value_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FANOUT_SNAPSHOT_MAX_FILES", "many")
    with pytest.raises(ConfigurationError, match="snapshot_max_files"):
        get_settings()


def test_example_settings_file_documents_every_key() -> None:
    example = (ROOT / "settings.example.env").read_text()
    documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", example, flags=re.MULTILINE))
    expected = set()
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        expected.add(alias.choices[0] if alias is not None else f"FANOUT_{name.upper()}")  # type: ignore[union-attr]
    assert expected == documented
