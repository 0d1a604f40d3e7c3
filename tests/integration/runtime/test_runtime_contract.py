"""The entry-script contract in real workers: init/run/shutdown, arguments, environment, EntryScript."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.plan import DataType, RetrySettings
from shared.runtime import phases
from shared.runtime.records import read_records
from shared.settings import get_settings
from shared.storage import StorageClients
from tests.integration.runtime.stepkit import make_step

CONTRACT_SCRIPT = """
import argparse, json, os, sys, time
from pathlib import Path
from azureml_user.parallel_run import EntryScript

EVENTS = Path(os.environ["EVENTS_DIR"])

def note(kind, **fields):
    EVENTS.mkdir(parents=True, exist_ok=True)
    line = json.dumps({"kind": kind, "pid": os.getpid(), "t": time.time(), **fields})
    with open(EVENTS / f"{os.getpid()}.jsonl", "a") as handle:
        handle.write(line + "\\n")

def init():
    parser = argparse.ArgumentParser(allow_abbrev=False)
    parser.add_argument("--model")
    parser.add_argument("--foo", type=int)
    parser.add_argument("--error_threshold", type=int)
    args, unknown = parser.parse_known_args()
    script = EntryScript()
    script.logger.info("init in %s", os.getpid())
    note(
        "init",
        model=args.model,
        model_files=sorted(os.listdir(args.model)),
        foo=args.foo,
        error_threshold=args.error_threshold,
        unknown=unknown,
        cwd=os.getcwd(),
        output_dir=script.output_dir,
        bi_output=os.environ.get("AZUREML_BI_OUTPUT_PATH"),
        custom=os.environ.get("MY_SETTING"),
        agent_name=script.agent_name,
        same=EntryScript() is script,
        log_dir=script.log_dir,
    )

def run(mini_batch):
    note("run", paths=mini_batch, exist=[os.path.isabs(p) and os.path.exists(p) for p in mini_batch])
    print("processing", len(mini_batch), "files")
    Path(EntryScript().output_dir, f"copy-{os.path.basename(mini_batch[0])}").write_text("seen")
    return [os.path.basename(p) for p in mini_batch]

def shutdown():
    note("shutdown")
"""


def _events(directory: Path) -> list[dict[str, object]]:
    lines = []
    for path in sorted(directory.glob("*.jsonl")):
        lines += [json.loads(line) for line in path.read_text().splitlines()]
    return lines


def test_entry_script_contract_in_real_workers(storage: StorageClients, tmp_path: Path) -> None:
    events_dir = tmp_path / "events"
    step = make_step(
        storage,
        tmp_path,
        CONTRACT_SCRIPT,
        files=6,
        mini_batch_size=2,
        outputs={"scored": DataType.URI_FOLDER},
        program_arguments=[
            "--model",
            "${{inputs.model}}",
            "--foo",
            "1",
            "--error_threshold",
            "5",
            "--out=${{outputs.scored}}",
        ],
        environment_variables={"MY_SETTING": "from-the-job", "EVENTS_DIR": str(events_dir)},
        extra_inputs={"model": {"weights.bin": b"w", "sub/config.json": b"{}"}},
    )
    assert step.run_agent(workers=2) == 0
    events = _events(events_dir)
    inits = [e for e in events if e["kind"] == "init"]
    runs = [e for e in events if e["kind"] == "run"]
    shutdowns = [e for e in events if e["kind"] == "shutdown"]
    pids = {e["pid"] for e in inits}
    # §9.9: init once per worker process, before that process's first run; shutdown once at the end.
    assert len(inits) == 2
    assert len(pids) == 2
    assert len(shutdowns) == 2
    assert {e["pid"] for e in shutdowns} == pids
    for event in runs:
        init = next(i for i in inits if i["pid"] == event["pid"])
        shutdown = next(s for s in shutdowns if s["pid"] == event["pid"])
        assert init["t"] <= event["t"] <= shutdown["t"]
    # §9.5: absolute local paths that exist, every file exactly once.
    assert all(all(e["exist"]) for e in runs)
    assert sorted(Path(p).name for e in runs for p in e["paths"]) == step.files
    # §9.20: program arguments readable with parse_known_args, runtime flags included, unknown kept.
    for init in inits:
        assert init["foo"] == 1
        assert init["error_threshold"] == 5
        assert init["model_files"] == ["sub", "weights.bin"]
        assert len(init["unknown"]) == 1
        assert init["unknown"][0].startswith("--out=/")
        assert init["custom"] == "from-the-job"
        assert init["output_dir"] == init["bi_output"]
        assert init["same"] is True
        assert init["agent_name"] in {"process000", "process001"}
        assert Path(init["cwd"]).name == init["agent_name"]  # each process has its own working directory
    # Files written to the output folder are uploaded to the output's location.
    result = phases.finalize_step(storage, _finalize(step))
    scored = result.outputs["scored"]
    names = sorted(
        b.name.rsplit("/", 1)[-1]
        for b in storage.blob.get_container_client(scored.container).list_blobs(
            name_starts_with=scored.path + "/"
        )
    )
    assert names == [f"copy-{step.files[i]}" for i in (0, 2, 4)]
    # EntryScript().logger and print() reach the log tree.
    logs = step.log_names()
    assert any(name.startswith("user/entry_script_log/0/process00") for name in logs)
    stdout = step.log("user/stdout/0/process000.stdout.txt") + step.log("user/stdout/0/process001.stdout.txt")
    assert stdout.count("processing 2 files") == 3


def test_two_argument_run_receives_the_mini_batch_context(storage: StorageClients, tmp_path: Path) -> None:
    script = """
def run(mini_batch, mini_batch_context):
    ctx = mini_batch_context
    return [f"{ctx.minibatch_index}:{len(mini_batch)}:{ctx.partition_key_value}"] * len(mini_batch)
"""
    step = make_step(storage, tmp_path, script, files=3, mini_batch_size=3, append_row=DataType.URI_FOLDER)
    assert step.run_agent(workers=1) == 0
    result = phases.finalize_step(storage, _finalize(step))
    assert result.status.value == "Completed"
    assert step.output is not None
    assert step.output.path.endswith("/parallel_run_step.txt")
    assert step.output_bytes() == b"0:3:{}\n" * 3
    [record] = read_records(storage, step.ref)
    assert record.status.value == "succeeded"
    assert record.items == 3


def _finalize(step):  # type: ignore[no-untyped-def]
    from shared.orchestration.contracts import StepFinalize, StepStatus

    return StepFinalize(step=step.ref, status=StepStatus.COMPLETED)


GPU_SCRIPT = """
import os, time
from pathlib import Path

OUT = Path(os.environ["GPU_DIR"])

def init():
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{os.getpid()}.txt").write_text(os.environ.get("CUDA_VISIBLE_DEVICES", "none"))

def run(mini_batch):
    if Path(mini_batch[0]).read_text().strip() == "item 0" and not (OUT / "hung").exists():
        (OUT / "hung").write_text(os.environ.get("CUDA_VISIBLE_DEVICES", "none"))
        time.sleep(600)
    return mini_batch
"""


def test_each_worker_gets_one_gpu_and_a_replacement_takes_the_freed_one(
    storage: StorageClients, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FANOUT_GPU_COUNT", "2")
    get_settings.cache_clear()
    gpu_dir = tmp_path / "gpus"
    step = make_step(
        storage,
        tmp_path,
        GPU_SCRIPT,
        files=4,
        environment_variables={"GPU_DIR": str(gpu_dir)},
        retry=RetrySettings(max_retries=1, timeout=2),
    )
    assert step.run_agent(workers=3) == 0  # three workers, two GPUs
    seen = sorted(p.read_text() for p in gpu_dir.glob("*.txt"))
    hung_on = (gpu_dir / "hung").read_text()
    # Workers 0 and 1 get GPUs 0 and 1, worker 2 none (Azure ML's rule); the worker killed for its
    # timeout is replaced by one that takes over the same GPU.
    assert sorted(seen) == sorted(["0", "1", "none", hung_on])
    assert "CUDA_VISIBLE_DEVICES" in step.log("sys/node/0/_main.txt")


def test_code_from_a_snapshot_is_materialised_for_the_node(storage: StorageClients, tmp_path: Path) -> None:
    import shutil

    from shared.plan import CodeRef
    from shared.runs import save_plan
    from shared.snapshot import build_snapshot

    script = "import helper\n\ndef run(mini_batch):\n    return [helper.tag(p) for p in mini_batch]\n"
    step = make_step(storage, tmp_path, script, files=2, mini_batch_size=2, append_row=DataType.URI_FILE)
    (step.code_dir / "helper.py").write_text(
        "from pathlib import Path\n\ndef tag(p):\n    return Path(p).name\n"
    )
    record = build_snapshot(storage, step.code_dir)
    job = step.plan.jobs[0].model_copy(update={"code": CodeRef(snapshot=record.snapshot_id)})
    save_plan(storage, step.plan.model_copy(update={"jobs": [job]}))
    shutil.rmtree(step.code_dir)  # only the snapshot is left
    assert step.run_agent(workers=1) == 0
    phases.finalize_step(storage, _finalize(step))
    assert step.output_bytes() == b"f000.txt\nf001.txt\n"
