"""The spec blob trigger: a bad spec gets its .error.json, a good one starts one run per upload."""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path

import azure.functions as func

from shared.ingest import IngestStatus, ingest_spec_blob, run_id_for_blob
from shared.orchestration import run_index
from shared.plan import LiteralInput
from shared.runs import load_plan
from shared.storage import Container, StorageClients
from shared.submission import Submission, submit_spec
from tests.integration.api.durable_stand_in import DurableFunctionsHost
from tests.integration.api.specs import BROKEN, SELF_CONTAINED, side_effect_script
from tests.integration.functions.conftest import Invoker


def _drop(storage: StorageClients, name: str, text: str) -> tuple[func.blob.InputStream, str]:
    blob = storage.container(Container.SPECS).get_blob_client(name)
    result = blob.upload_blob(text.encode(), overwrite=True)
    stream = func.blob.InputStream(data=text.encode(), name=f"specs/{name}", length=len(text))
    return stream, str(result["etag"])


def _starts(host: DurableFunctionsHost, run_id: str) -> int:
    return sum(
        1
        for method, path in host.calls
        if method == "POST" and path.endswith(f"/{run_id}") and "orchestrators" in path
    )


def test_malformed_spec_gets_its_error_file_and_nothing_else(
    invoke: Invoker, app_storage: StorageClients, df_host: DurableFunctionsHost
) -> None:
    name = f"team/bad-{uuid.uuid4().hex[:8]}.yml"
    stream, etag = _drop(app_storage, name, BROKEN)
    invoke("ingest_spec", blob=stream)
    container = app_storage.container(Container.SPECS)
    error = json.loads(container.download_blob(name + ".error.json").readall())
    assert error["error"] == "SpecError"
    assert error["blob"] == f"specs/{name}"
    assert error["etag"] == etag
    (issue,) = error["issues"]
    assert (issue["file"], issue["line"], issue["column"], issue["path"]) == (name, 4, 11, "jobs.a.type")
    run_id = run_id_for_blob(name, etag)
    assert _starts(df_host, run_id) == 0
    assert run_index.find_run(app_storage, run_id) is None
    assert container.download_blob(name).readall().decode() == BROKEN  # nothing stored is touched

    # The error file is the app's own output: its trigger does nothing with it.
    error_stream = func.blob.InputStream(data=b"{}", name=f"specs/{name}.error.json")
    invoke("ingest_spec", blob=error_stream)
    assert not container.get_blob_client(name + ".error.json.error.json").exists()

    # A fixed upload of the same name starts a run and removes the stale error file.
    fixed, fixed_etag = _drop(app_storage, name, SELF_CONTAINED)
    invoke("ingest_spec", blob=fixed)
    assert not container.get_blob_client(name + ".error.json").exists()
    assert run_index.find_run(app_storage, run_id_for_blob(name, fixed_etag)) is not None


def test_duplicate_delivery_starts_one_run(
    invoke: Invoker, app_storage: StorageClients, df_host: DurableFunctionsHost
) -> None:
    name = f"dup-{uuid.uuid4().hex[:8]}.yaml"
    stream, etag = _drop(app_storage, name, SELF_CONTAINED)
    run_id = run_id_for_blob(name, etag)
    for _ in range(3):  # Event Grid and the host deliver at least once
        invoke("ingest_spec", blob=stream)
    assert _starts(df_host, run_id) == 1
    assert run_index.get_run(app_storage, run_id).source == name
    assert df_host.engine.get_status(run_id) is not None
    assert ingest_spec_blob(app_storage, df_host.engine, name).status is IngestStatus.ALREADY_STARTED

    # A new upload of the same name is a new run.
    again, second_etag = _drop(app_storage, name, SELF_CONTAINED)
    invoke("ingest_spec", blob=again)
    assert run_id_for_blob(name, second_etag) != run_id
    assert _starts(df_host, run_id_for_blob(name, second_etag)) == 1


def test_overrides_stored_by_fanout_submit_are_applied(invoke: Invoker, app_storage: StorageClients) -> None:
    submission = Submission(
        spec_text=SELF_CONTAINED, source="nightly.yml", overrides={"inputs.threshold": "0.75"}
    )
    name = submit_spec(app_storage, submission)
    etag = str(app_storage.container(Container.SPECS).get_blob_client(name).get_blob_properties().etag)
    invoke("ingest_spec", blob=func.blob.InputStream(data=SELF_CONTAINED.encode(), name=f"specs/{name}"))
    threshold = load_plan(app_storage, run_id_for_blob(name, etag)).inputs["threshold"]
    assert isinstance(threshold, LiteralInput)
    assert threshold.value == 0.75


def test_no_user_code_runs_in_the_function_app(
    invoke: Invoker, app_storage: StorageClients, tmp_path: Path
) -> None:
    # The spec names an entry script with a side effect on import, at an absolute path the app
    # could read: validation must stay static.
    marker = tmp_path / "ran.txt"
    module = f"fanout_user_{uuid.uuid4().hex[:8]}"
    code = tmp_path / "code"
    code.mkdir()
    (code / f"{module}.py").write_text(side_effect_script(marker))
    spec = SELF_CONTAINED.replace("python count.py", f"python {module}.py")
    name = f"user-code-{uuid.uuid4().hex[:8]}.yml"
    stream, etag = _drop(app_storage, name, spec)
    invoke("ingest_spec", blob=stream)
    assert run_index.find_run(app_storage, run_id_for_blob(name, etag)) is not None
    assert not marker.exists()
    assert module not in sys.modules


def test_the_uploaders_trace_context_in_metadata_becomes_the_runs(
    invoke: Invoker, app_storage: StorageClients
) -> None:
    trace_id = uuid.uuid4().hex
    traceparent = f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01"
    name = f"traced-{uuid.uuid4().hex[:8]}.yml"
    blob = app_storage.container(Container.SPECS).get_blob_client(name)
    etag = str(blob.upload_blob(SELF_CONTAINED.encode(), metadata={"traceparent": traceparent})["etag"])
    invoke("ingest_spec", blob=func.blob.InputStream(data=SELF_CONTAINED.encode(), name=f"specs/{name}"))
    plan = load_plan(app_storage, run_id_for_blob(name, etag))
    assert plan.trace["traceparent"].split("-")[1] == trace_id


def test_a_zip_named_in_the_spec_is_pinned_when_the_run_starts(
    invoke: Invoker, app_storage: StorageClients
) -> None:
    from shared.snapshot import ingest_snapshot_blob
    from tests.integration.api.specs import SNAPSHOT, zip_folder

    zip_name = f"code-{uuid.uuid4().hex[:8]}.zip"
    snapshots = app_storage.container(Container.SNAPSHOTS)

    def drop_zip(text: str) -> str:
        snapshots.upload_blob(f"incoming/{zip_name}", zip_folder({"count.py": text}), overwrite=True)
        return ingest_snapshot_blob(app_storage, f"incoming/{zip_name}").snapshot_id

    first = drop_zip("print(1)\n")
    spec = SELF_CONTAINED.replace(SNAPSHOT, f"incoming/{zip_name}")
    name = f"pinned-{uuid.uuid4().hex[:8]}.yml"
    stream, etag = _drop(app_storage, name, spec)
    invoke("ingest_spec", blob=stream)
    run_id = run_id_for_blob(name, etag)
    second = drop_zip("print(2)\n")  # re-dropped while the run goes on
    assert second != first
    (job,) = load_plan(app_storage, run_id).jobs
    assert job.code is not None
    assert job.code.snapshot == first

    # A spec naming a zip that was never dropped is rejected with its reason, and starts nothing.
    missing = f"missing-{uuid.uuid4().hex[:8]}.yml"
    stream, etag = _drop(app_storage, missing, SELF_CONTAINED.replace(SNAPSHOT, "incoming/nowhere.zip"))
    invoke("ingest_spec", blob=stream)
    error = json.loads(
        app_storage.container(Container.SPECS).download_blob(missing + ".error.json").readall()
    )
    assert error["error"] == "SnapshotError"
    assert "nowhere.zip" in error["message"]
    assert run_index.find_run(app_storage, run_id_for_blob(missing, etag)) is None
