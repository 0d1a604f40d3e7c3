"""Input resolution on Azurite: URLs with SAS, MLTable path forms, JSON lines, whole-input downloads."""

from __future__ import annotations

import json
import multiprocessing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pandas as pd
import pytest
from azure.storage.blob import ContainerSasPermissions, generate_container_sas
from data_fixtures import DataFolder, JobFactory

from shared.azurite import ACCOUNT_KEY, ACCOUNT_NAME
from shared.data import input_argument, materialize, materialize_input, plan_mini_batches
from shared.errors import DataError
from shared.plan import DataType, InputMode, UrlData
from shared.storage import Container, StorageClients


def read_sas() -> str:
    return generate_container_sas(
        ACCOUNT_NAME,
        Container.DATA.value,
        account_key=ACCOUNT_KEY,
        permission=ContainerSasPermissions(read=True, list=True),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )


def locked_out(clients: StorageClients) -> StorageClients:
    """Clients for the same Azurite whose account key is wrong: only a SAS can read."""
    assert clients.connection_string is not None
    wrong = clients.connection_string.replace(ACCOUNT_KEY, "d3Jvbmcta2V5LXdyb25nLWtleQ==")
    return StorageClients.from_connection_string(wrong)


def test_url_input_with_a_sas_is_listed_and_read_with_the_sas(
    folder: DataFolder, parallel_job: JobFactory, tmp_path: Path
) -> None:
    for i in range(3):
        folder.put(f"shared/{i}.txt", f"file {i}")
    url = f"{folder.clients.container(Container.DATA).url}/{folder.prefix}/shared?{read_sas()}"
    job, definition = parallel_job(UrlData(url=url), DataType.URI_FOLDER)  # type: ignore[arg-type]
    clients = locked_out(folder.clients)

    manifest = plan_mini_batches(clients, job, definition)
    result = materialize(clients, manifest, manifest.mini_batches[0], tmp_path)

    assert [Path(p).read_text() for p in result.data] == ["file 0", "file 1", "file 2"]  # type: ignore[union-attr]


def test_url_without_sas_uses_fanouts_credential(folder: DataFolder, parallel_job: JobFactory) -> None:
    folder.put("own/a.txt", "x")
    url = f"{folder.clients.container(Container.DATA).url}/{folder.prefix}/own"
    job, definition = parallel_job(UrlData(url=url), DataType.URI_FOLDER)  # type: ignore[arg-type]
    assert plan_mini_batches(folder.clients, job, definition).mini_batches[0].files == ["a.txt"]


def test_mltable_paths_relative_above_and_absolute(
    folder: DataFolder, parallel_job: JobFactory, tmp_path: Path
) -> None:
    folder.put("raw/a.csv", "v\n1\n")
    folder.put("other/b.csv", "v\n2\n")
    folder.put("tables/t/c.csv", "v\n3\n")
    folder.put(
        "tables/t/MLTable",
        "paths:\n"
        "  - file: ./c.csv\n"
        "  - file: ../../raw/a.csv\n"
        f"  - pattern: azureml://datastores/workspaceblobstore/paths/{folder.prefix}/other/*.csv\n"
        "transformations:\n"
        "  - read_delimited:\n"
        "      include_path_column: true\n",
    )
    job, definition = parallel_job(folder.location("tables/t"), DataType.MLTABLE)

    manifest = plan_mini_batches(folder.clients, job, definition)

    frames = [materialize(folder.clients, manifest, mb, tmp_path).data for mb in manifest.mini_batches]
    every = pd.concat(frames)  # type: ignore[arg-type]
    assert every["v"].tolist() == [3, 1, 2]
    assert every["Path"].iloc[0] == "c.csv"  # under the MLTable folder: relative
    assert every["Path"].iloc[1].endswith(f"{folder.prefix}/raw/a.csv")


def test_json_lines_ranges_and_invalid_lines(
    folder: DataFolder, parallel_job: JobFactory, tmp_path: Path
) -> None:
    lines = [json.dumps({"id": i, "text": "x" * 50}) for i in range(400)]
    lines.insert(150, "{not json")
    folder.put("j/data.jsonl", "\n".join(lines) + "\n")
    folder.put(
        "j/MLTable",
        "paths: [{file: data.jsonl}]\ntransformations:\n  - read_json_lines: {invalid_lines: drop}\n",
    )
    job, definition = parallel_job(folder.location("j"), DataType.MLTABLE, mini_batch_size=5_000)

    manifest = plan_mini_batches(folder.clients, job, definition)

    assert manifest.count > 3
    frames = [materialize(folder.clients, manifest, mb, tmp_path).data for mb in manifest.mini_batches]
    assert pd.concat(frames)["id"].tolist() == list(range(400))  # type: ignore[arg-type]

    folder.put("j/MLTable", "paths: [{file: data.jsonl}]\ntransformations:\n  - read_json_lines\n")
    strict = plan_mini_batches(folder.clients, job, definition)
    offset = len("\n".join(lines[:150])) + 1  # where the invalid line starts
    bad = [mb for mb in strict.mini_batches if mb.parts[0].start <= offset][-1]
    with pytest.raises(DataError, match=r"is not valid JSON.*invalid_lines: drop"):
        materialize(folder.clients, strict, bad, tmp_path)


def test_materialize_input_folder_file_and_mltable(folder: DataFolder, tmp_path: Path) -> None:
    folder.put("model/weights.bin", b"\x00\x01")
    folder.put("model/config/params.json", "{}")
    folder.put("tab/MLTable", "paths: [{file: d.csv}]\n")
    folder.put("tab/d.csv", "a\n1\n")

    model = materialize_input(
        folder.clients, folder.location("model"), DataType.URI_FOLDER, InputMode.RO_MOUNT, tmp_path / "model"
    )
    single = materialize_input(
        folder.clients,
        folder.location("model/weights.bin"),
        DataType.URI_FILE,
        InputMode.DOWNLOAD,
        tmp_path / "w",
    )
    table = materialize_input(
        folder.clients, folder.location("tab"), DataType.MLTABLE, InputMode.RO_MOUNT, tmp_path / "t"
    )

    assert model == tmp_path / "model"
    assert (model / "config" / "params.json").read_text() == "{}"
    assert single == tmp_path / "w" / "weights.bin"
    assert single.read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in table.iterdir()) == ["MLTable", "d.csv"]


def test_materialize_input_errors(folder: DataFolder, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="is empty or does not exist"):
        materialize_input(
            folder.clients, folder.location("none"), DataType.URI_FOLDER, InputMode.RO_MOUNT, tmp_path / "x"
        )
    with pytest.raises(DataError, match="does not exist"):
        materialize_input(
            folder.clients, folder.location("none.bin"), DataType.URI_FILE, InputMode.DOWNLOAD, tmp_path / "y"
        )


def _download_in_process(connection_string: str, container: str, path: str, dest: str) -> tuple[str, int]:
    from shared.plan import BlobData

    clients = StorageClients.from_connection_string(connection_string)
    location = BlobData(container=container, path=path)
    local = materialize_input(clients, location, DataType.URI_FOLDER, InputMode.RO_MOUNT, Path(dest))
    return str(local), (local / "7.bin").stat().st_ino


def test_concurrent_workers_share_one_download(folder: DataFolder, tmp_path: Path) -> None:
    for i in range(20):
        folder.put(f"m/{i}.bin", bytes([i]) * 1000)
    assert folder.clients.connection_string is not None
    args = (
        folder.clients.connection_string,
        Container.DATA.value,
        f"{folder.prefix}/m",
        str(tmp_path / "node" / "m"),
    )
    # spawn, not fork: a forked copy of a test process that already runs gRPC threads (the durable
    # engine of other tests) can crash in the child.
    with multiprocessing.get_context("spawn").Pool(3) as pool:
        results = pool.starmap(_download_in_process, [args] * 3)
    # One process downloaded; the others waited on the lock and found the files current (a second
    # download would have renamed a new file, with a new inode, into place).
    assert len(set(results)) == 1
    files = sorted((tmp_path / "node" / "m").iterdir())
    assert [f.name for f in files] == sorted(f"{i}.bin" for i in range(20))
    assert (tmp_path / "node" / "m" / "3.bin").read_bytes() == bytes([3]) * 1000
    assert not list((tmp_path / "node" / "m").rglob(".*partial"))


def test_direct_mode_gives_a_readable_url(folder: DataFolder, tmp_path: Path) -> None:
    folder.put("d/file.txt", "hello")
    url = input_argument(
        folder.clients, folder.location("d/file.txt"), DataType.URI_FILE, InputMode.DIRECT, tmp_path
    )
    assert "sig=" in url
    assert httpx.get(url).text == "hello"
    assert not any(tmp_path.iterdir())  # nothing downloaded
    path = input_argument(
        folder.clients, folder.location("d/file.txt"), DataType.URI_FILE, InputMode.DOWNLOAD, tmp_path / "dl"
    )
    assert Path(path).read_text() == "hello"
