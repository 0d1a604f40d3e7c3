"""File-list inputs on Azurite: planning (reference §1.2, checks 3, 4, 5) and materialising."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from data_fixtures import DataFolder, JobFactory

from shared.data import listing, load_manifest, materialize, plan_mini_batches, save_manifest
from shared.data.locations import BlobRoot, list_files
from shared.errors import DataError
from shared.plan import BlobData, DataType
from shared.storage import Container


def names(files: list[str]) -> list[str]:
    return [f.rpartition("/")[2] for f in files]


def test_folder_of_25_files_with_size_10_gives_10_10_5(folder: DataFolder, parallel_job: JobFactory) -> None:
    for i in range(25):
        folder.put(f"in/f{i:02d}.txt", f"{i}")
    job, definition = parallel_job(folder.location("in"), DataType.URI_FOLDER, mini_batch_size=10)

    manifest = plan_mini_batches(folder.clients, job, definition)

    assert manifest.kind == "files"
    assert [mb.items for mb in manifest.mini_batches] == [10, 10, 5]
    assert manifest.total_items == 25
    assert manifest.mini_batches[0].files == [f"f{i:02d}.txt" for i in range(10)]
    assert manifest.mini_batches[2].files == [f"f{i:02d}.txt" for i in range(20, 25)]


def test_default_is_ten_files_per_mini_batch(folder: DataFolder, parallel_job: JobFactory) -> None:
    for i in range(12):
        folder.put(f"f{i:02d}.bin", b"x")
    job, definition = parallel_job(folder.location(), DataType.URI_FOLDER)

    manifest = plan_mini_batches(folder.clients, job, definition)

    assert [mb.items for mb in manifest.mini_batches] == [10, 2]


def test_mini_batches_never_mix_directories_and_walk_top_down(
    folder: DataFolder, parallel_job: JobFactory
) -> None:
    # Two sub-folders of 3 files each and one root file, size 5: 1 + 3 + 3, never 5 + 2.
    folder.put("root.txt", "r")
    for sub in ("b", "a"):
        for i in range(3):
            folder.put(f"{sub}/{i}.txt", f"{sub}{i}")
    folder.put("a/deeper/x.txt", "x")
    job, definition = parallel_job(folder.location(), DataType.URI_FOLDER, mini_batch_size=5)

    manifest = plan_mini_batches(folder.clients, job, definition)

    batches = [mb.files for mb in manifest.mini_batches]
    assert batches == [
        ["root.txt"],
        ["a/0.txt", "a/1.txt", "a/2.txt"],
        ["a/deeper/x.txt"],
        ["b/0.txt", "b/1.txt", "b/2.txt"],
    ]
    for files in batches:
        assert len({f.rpartition("/")[0] for f in files}) == 1


def test_uri_file_is_one_mini_batch_of_one_file(folder: DataFolder, parallel_job: JobFactory) -> None:
    folder.put("one/data.csv", "a,b\n1,2\n")
    job, definition = parallel_job(folder.location("one/data.csv"), DataType.URI_FILE)

    manifest = plan_mini_batches(folder.clients, job, definition)

    assert manifest.count == 1
    assert manifest.mini_batches[0].files == ["data.csv"]


def test_missing_uri_file_is_a_clear_error(folder: DataFolder, parallel_job: JobFactory) -> None:
    job, definition = parallel_job(folder.location("nope.csv"), DataType.URI_FILE)
    with pytest.raises(DataError, match=r"uri_file input .*nope\.csv does not exist"):
        plan_mini_batches(folder.clients, job, definition)


def test_empty_folder_plans_no_mini_batches(folder: DataFolder, parallel_job: JobFactory) -> None:
    job, definition = parallel_job(folder.location("empty"), DataType.URI_FOLDER)
    assert plan_mini_batches(folder.clients, job, definition).count == 0


def test_manifest_round_trips_through_storage(folder: DataFolder, parallel_job: JobFactory) -> None:
    for i in range(7):
        folder.put(f"d{i % 2}/{i}.txt", "x" * i)
    job, definition = parallel_job(folder.location(), DataType.URI_FOLDER, mini_batch_size=2)
    manifest = plan_mini_batches(folder.clients, job, definition)

    save_manifest(folder.clients, definition.step, manifest)
    loaded = load_manifest(folder.clients, definition.step)

    assert loaded == manifest
    assert list(loaded.mini_batches) == list(manifest.mini_batches)


def test_materialize_gives_existing_absolute_paths_and_reuses_downloads(
    folder: DataFolder, parallel_job: JobFactory, tmp_path: Path
) -> None:
    for i in range(3):
        folder.put(f"imgs/sub/{i}.png", bytes([i]) * (i + 1))
    job, definition = parallel_job(folder.location("imgs"), DataType.URI_FOLDER)
    manifest = plan_mini_batches(folder.clients, job, definition)
    batch = manifest.mini_batches[0]

    first = materialize(folder.clients, manifest, batch, tmp_path / "cache")

    assert isinstance(first.data, list)
    assert first.items == 3
    assert names(first.data) == ["0.png", "1.png", "2.png"]
    for index, path in enumerate(first.data):
        assert os.path.isabs(path)
        assert Path(path).read_bytes() == bytes([index]) * (index + 1)
        assert Path(path).parent.name == "sub"  # the relative layout is kept
    assert first.dataset.to_path() == first.data

    # A second worker finds the files current and downloads nothing: prove it by deleting the blobs.
    for i in range(3):
        folder.clients.container(Container.DATA).delete_blob(f"{folder.prefix}/imgs/sub/{i}.png")
    again = materialize(folder.clients, manifest, batch, tmp_path / "cache")
    assert again.data == first.data


def test_materialize_redownloads_a_changed_local_copy(
    folder: DataFolder, parallel_job: JobFactory, tmp_path: Path
) -> None:
    folder.put("a.txt", "original")
    job, definition = parallel_job(folder.location(), DataType.URI_FOLDER)
    manifest = plan_mini_batches(folder.clients, job, definition)
    path = Path(materialize(folder.clients, manifest, manifest.mini_batches[0], tmp_path).data[0])  # type: ignore[index]
    path.write_text("tampered!")

    materialize(folder.clients, manifest, manifest.mini_batches[0], tmp_path)

    assert path.read_text() == "original"


def test_materialize_reports_a_blob_deleted_after_planning(
    folder: DataFolder, parallel_job: JobFactory, tmp_path: Path
) -> None:
    folder.put("gone.txt", "x")
    job, definition = parallel_job(folder.location(), DataType.URI_FOLDER)
    manifest = plan_mini_batches(folder.clients, job, definition)
    folder.clients.container(Container.DATA).delete_blob(f"{folder.prefix}/gone.txt")

    with pytest.raises(DataError, match=r"gone\.txt does not exist"):
        materialize(folder.clients, manifest, manifest.mini_batches[0], tmp_path)


def test_folder_markers_are_skipped_but_empty_files_kept(
    folder: DataFolder, parallel_job: JobFactory
) -> None:
    folder.put("in/sub", b"")  # an ADLS Gen2 directory, as the blob API lists it
    folder.put("in/sub/x.txt", "x")
    folder.put("in/empty.txt", b"")
    folder.put("in/dir/", b"")
    job, definition = parallel_job(folder.location("in"), DataType.URI_FOLDER)
    manifest = plan_mini_batches(folder.clients, job, definition)
    assert [mb.files for mb in manifest.mini_batches] == [["empty.txt"], ["sub/x.txt"]]


def test_names_with_spaces_and_unicode(folder: DataFolder, parallel_job: JobFactory, tmp_path: Path) -> None:
    folder.put("u/my file ü €.txt", "ok")
    job, definition = parallel_job(folder.location("u"), DataType.URI_FOLDER)
    manifest = plan_mini_batches(folder.clients, job, definition)
    assert manifest.mini_batches[0].files == ["my file ü €.txt"]
    result = materialize(folder.clients, manifest, manifest.mini_batches[0], tmp_path)
    assert Path(result.data[0]).read_text() == "ok"  # type: ignore[index]


def test_listing_follows_pages(
    folder: DataFolder, parallel_job: JobFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(listing, "PAGE_SIZE", 3)
    for i in range(10):
        folder.put(f"p/{i}.txt", "x" * i)
    found = list_files(folder.clients, BlobRoot(container=Container.DATA.value, prefix=f"{folder.prefix}/p"))
    assert [(f.path, f.size) for f in found] == [(f"{i}.txt", i) for i in range(10)]
    assert all(f.modified > 1_600_000_000 for f in found)


def test_a_missing_container_is_a_clear_error(folder: DataFolder, parallel_job: JobFactory) -> None:
    job, definition = parallel_job(BlobData(container="no-such-container", path="x"), DataType.URI_FOLDER)
    with pytest.raises(DataError, match=r"cannot list no-such-container/x: the container does not exist"):
        plan_mini_batches(folder.clients, job, definition)
