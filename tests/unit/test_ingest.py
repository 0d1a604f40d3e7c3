"""Run ids of spec blobs and the drop-zone filters (pure parts of shared.ingest)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from shared.api.models import RUN_ID_PATTERN
from shared.ingest import blob_path, is_snapshot_blob, is_spec_blob, new_run_id, run_id_for_blob
from shared.orchestration.names import MAX_INSTANCE_ID_LENGTH
from shared.storage import Container


def test_blob_run_ids_are_deterministic_per_upload() -> None:
    first = run_id_for_blob("team/Iris Batch.yml", '"0x8DC1"')
    assert first == run_id_for_blob("team/Iris Batch.yml", "0x8DC1")  # quotes around ETags don't matter
    assert first.startswith("iris-batch-")
    assert first != run_id_for_blob("team/Iris Batch.yml", "0x8DC2")  # a new upload is a new run
    assert first != run_id_for_blob("other/Iris Batch.yml", "0x8DC1")


@pytest.mark.parametrize("name", ["a.yml", "x" * 300 + ".yaml", "ünïcödé/#?\\.json", "...yml"])
def test_run_ids_are_valid_instance_ids(name: str) -> None:
    for run_id in (run_id_for_blob(name, "etag"), new_run_id(name)):
        assert re.match(RUN_ID_PATTERN, run_id), run_id
        assert len(run_id) <= MAX_INSTANCE_ID_LENGTH
        assert not set(run_id) & set("/\\#?")


def test_new_run_ids_are_unique_and_dated() -> None:
    moment = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    ids = {new_run_id("pipeline.yml", now=moment) for _ in range(50)}
    assert len(ids) == 50
    assert all(run_id.startswith("pipeline-20260304050607-") for run_id in ids)


@pytest.mark.parametrize(
    ("name", "spec"),
    [
        ("p.yml", True),
        ("dir/p.YAML", True),
        ("p.json", True),
        ("p.yml.error.json", False),
        ("p.error.json", False),
        ("README.md", False),
        ("p.yml.bak", False),
    ],
)
def test_only_specs_are_ingested_never_our_error_files(name: str, spec: bool) -> None:
    assert is_spec_blob(name) is spec


def test_snapshot_filter_and_container_prefix() -> None:
    assert is_snapshot_blob("incoming/code.zip")
    assert is_snapshot_blob("incoming/code.tar.gz")  # handed over, to get an error file saying why
    assert not is_snapshot_blob("incoming/code.zip.error.json")
    assert not is_snapshot_blob("objects/ab/abcdef")
    assert not is_snapshot_blob("code.zip")
    assert blob_path("specs/a/b.yml", Container.SPECS) == "a/b.yml"
    assert blob_path("a/b.yml", Container.SPECS) == "a/b.yml"
