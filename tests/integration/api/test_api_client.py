"""The CLI's API client: over HTTP to the local server and in-process over storage; the CLI commands."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from shared.cli.logs import LogFollower
from shared.cli.main import cli
from shared.cli.submit import progress_line, zip_spec_folder
from shared.client import FanoutClient
from shared.errors import ApiError, NotFoundError
from shared.host.server import ApiServer
from shared.settings import get_settings
from shared.storage import Container, StorageClients, logs_path
from tests.integration.api.conftest import seed_run


def _append(storage: StorageClients, run_id: str, path: str, text: str) -> None:
    blob = storage.container(Container.RUNS).get_blob_client(logs_path(run_id, "score", path))
    old = blob.download_blob().readall().decode() if blob.exists() else ""
    blob.upload_blob((old + text).encode(), overwrite=True)


@pytest.mark.parametrize("mode", ["http", "in-process"])
def test_client_reads_runs_and_follows_logs(
    storage: StorageClients, server: ApiServer, mode: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run_id = f"client-{uuid.uuid4().hex[:8]}"
    seed_run(storage, run_id, "score")
    _append(storage, run_id, "user/stdout/0/process000.stdout.txt", "first\n")
    client = (
        FanoutClient.connect(server.url, server.key)
        if mode == "http"
        else FanoutClient.in_process(storage, get_settings())
    )
    with client:
        assert client.get_run(run_id)["status"] == "Running"
        assert run_id in {run["run_id"] for run in client.list_runs(status="Running", limit=2)}
        follower = LogFollower(client, run_id, (), None)
        follower.read_new()
        _append(storage, run_id, "user/stdout/0/process000.stdout.txt", "second\n")
        follower.read_new()
        follower.read_new()
        with pytest.raises(NotFoundError, match="does not exist"):
            client.get_run("nope")
        if mode == "in-process":
            with pytest.raises(ApiError, match="needs a Fanout host: set FANOUT_API_URL"):
                client.cancel(run_id)
    printed = capsys.readouterr().out
    assert printed == "==> score/user/stdout/0/process000.stdout.txt <==\nfirst\nsecond\n"


def test_unreachable_api_is_a_clear_error() -> None:
    with (
        FanoutClient.connect("http://127.0.0.1:9", "k") as client,
        pytest.raises(ApiError, match="cannot reach"),
    ):
        client.get_run("x")


def test_cli_status_and_logs_over_storage(storage: StorageClients) -> None:
    run_id = f"cli-{uuid.uuid4().hex[:8]}"
    seed_run(storage, run_id, "score", display_name="Nightly")
    _append(storage, run_id, "job_result.txt", "Result: Completed\n")
    runner = CliRunner()
    listed = runner.invoke(cli, ["status", "--limit", "500"], standalone_mode=False)
    assert listed.exception is None, listed.output
    assert run_id in listed.output
    shown = runner.invoke(cli, ["status", run_id], standalone_mode=False)
    assert f"run {run_id}: Running" in shown.output
    assert "score (parallel): NotStarted" in shown.output
    logs = runner.invoke(
        cli, ["logs", run_id, "--job", "score", "--file", "job_result.txt"], standalone_mode=False
    )
    assert logs.output == "==> score/job_result.txt <==\nResult: Completed\n"


def test_cli_needs_somewhere_to_talk_to() -> None:
    result = CliRunner().invoke(cli, ["status"], standalone_mode=False)
    assert "no Fanout to talk to" in str(result.exception)


def test_spec_folder_zip_respects_the_ignore_file(tmp_path: Path) -> None:
    import io
    import zipfile

    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "score.py").write_text("x = 1\n")
    (tmp_path / "big.bin").write_bytes(b"0" * 10)
    (tmp_path / ".amlignore").write_text("*.bin\n")
    (tmp_path / "pipeline.yml").write_text("type: pipeline\n")
    names = set(zipfile.ZipFile(io.BytesIO(zip_spec_folder(tmp_path))).namelist())
    assert names == {"src/score.py", "pipeline.yml", ".amlignore"}


def test_progress_line() -> None:
    detail = {
        "status": "Running",
        "jobs": [
            {
                "name": "a",
                "status": "Completed",
                "mini_batches_total": 4,
                "mini_batches_succeeded": 4,
                "mini_batches_failed": 0,
            },
            {
                "name": "b",
                "status": "Running",
                "mini_batches_total": 10,
                "mini_batches_succeeded": 3,
                "mini_batches_failed": 1,
                "eta_seconds": 42.4,
            },
            {"name": "c", "status": "NotStarted", "mini_batches_total": None},
        ],
    }
    assert (
        progress_line(detail)
        == "Running | a: Completed 4/4 | b: Running 3/10 (1 failed) eta 42s | c: NotStarted"
    )


def test_http_errors_carry_the_servers_message(server: ApiServer) -> None:
    with FanoutClient(httpx.Client(base_url=server.url + "/api", timeout=30)) as keyless:
        with pytest.raises(ApiError, match="missing or wrong function key") as caught:
            keyless.get_run("x")
    assert caught.value.status == 401
