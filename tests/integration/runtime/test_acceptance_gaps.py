"""Acceptance checks of Azure ML's parallel job that no other test asserts in full (docs/acceptance.md).

- check 8: a two-parameter ``run()`` in a real worker gets exactly ``{key: value}`` of its mini-batch;
- check 9: ``init()`` runs once in every worker of every node (N nodes x P processes);
- check 23: a positive ``--resource_monitor_interval`` samples at that cadence, not once.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

from shared.orchestration.contracts import StepFinalize, StepStatus
from shared.plan import DataType, RetrySettings
from shared.runtime import phases
from shared.runtime.agent import Agent
from shared.runtime.records import read_progress, update_step_document
from shared.storage import StorageClients
from tests.helpers import wait_until
from tests.integration.runtime.stepkit import make_step

# Each process notes its init/run/shutdown calls; run() holds every mini-batch until BARRIER processes
# have called init(), so no node can drain the queue before the other node's workers have started.
EVERY_PROCESS_SCRIPT = """
import json, os, time
from pathlib import Path
from azureml_user.parallel_run import EntryScript

EVENTS = Path(os.environ["EVENTS_DIR"])

def note(kind, **fields):
    line = json.dumps({"kind": kind, "pid": os.getpid(), "t": time.time(), **fields})
    with open(EVENTS / f"{os.getpid()}.jsonl", "a") as handle:
        handle.write(line + "\\n")

def init():
    EVENTS.mkdir(parents=True, exist_ok=True)
    note("init", node=EntryScript().node_id)

def run(mini_batch):
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        if sum(1 for _ in EVENTS.glob("*.jsonl")) >= int(os.environ["BARRIER"]):
            break
        time.sleep(0.05)
    note("run", files=len(mini_batch))
    return mini_batch

def shutdown():
    note("shutdown")
"""


def _events(directory: Path) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for path in sorted(directory.glob("*.jsonl"))
        for line in path.read_text().splitlines()
    ]


def test_init_runs_once_in_every_worker_of_every_node(storage: StorageClients, tmp_path: Path) -> None:
    events_dir = tmp_path / "events"
    step = make_step(
        storage,
        tmp_path,
        EVERY_PROCESS_SCRIPT,
        files=12,
        environment_variables={"EVENTS_DIR": str(events_dir), "BARRIER": "4"},
        retry=RetrySettings(max_retries=0, timeout=60),  # longer than the barrier's 40 s
        dispatch=False,
    )
    update_step_document(storage, step.ref, mini_batches_per_message=1)  # both nodes can take work
    phases.dispatch_step(storage, step.ref)
    agents: list[tuple[Agent, threading.Thread]] = [
        step.run_agent_in_thread(node_id=n, workers=2) for n in (0, 1)
    ]
    for agent, thread in agents:
        thread.join(timeout=120)
        assert not thread.is_alive()
        assert agent.exit_code == 0

    events = _events(events_dir)
    inits = {e["pid"]: e for e in events if e["kind"] == "init"}
    runs = [e for e in events if e["kind"] == "run"]
    shutdowns = [e for e in events if e["kind"] == "shutdown"]
    # §9.9: 2 nodes x 2 processes = 4 init() calls, one per process, before its first run().
    assert len([e for e in events if e["kind"] == "init"]) == 4
    assert sorted(str(e["node"]) for e in inits.values()) == ["0", "0", "1", "1"]
    assert sum(int(e["files"]) for e in runs) == 12
    for event in runs:
        assert event["pid"] in inits
        assert inits[event["pid"]]["t"] <= event["t"]
    # shutdown() once per process, after its last run().
    assert sorted(e["pid"] for e in shutdowns) == sorted(inits)
    for shutdown in shutdowns:
        assert all(r["t"] <= shutdown["t"] for r in runs if r["pid"] == shutdown["pid"])
    assert read_progress(storage, step.ref).succeeded_mini_batches == 12


# The Azure ML notebook's layout: files of one (user, genres) combination across seasons.
PARTITIONED_FILES = {
    "MLTable": b"""\
paths:
  - pattern: ./**/*.wav
transformations:
  - extract_columns_from_partition_format: {partition_format: "{user}/{season}/{genres}.wav"}
""",
    "u1/spring/rock.wav": b"u1/spring/rock",
    "u1/summer/rock.wav": b"u1/summer/rock",
    "u1/summer/jazz.wav": b"u1/summer/jazz",
    "u2/winter/pop.wav": b"u2/winter/pop",
}

CONTEXT_SCRIPT = """
import json
from pathlib import Path

def run(mini_batch, mini_batch_context):
    key = mini_batch_context.partition_key_value
    assert type(key) is dict, type(key)
    return [json.dumps({"key": key, "file": Path(p).read_text()}) for p in mini_batch]
"""


def test_a_two_parameter_run_gets_exactly_the_partition_keys_of_its_mini_batch(
    storage: StorageClients, tmp_path: Path
) -> None:
    step = make_step(
        storage,
        tmp_path,
        CONTEXT_SCRIPT,
        files=PARTITIONED_FILES,
        input_type=DataType.MLTABLE,
        partition_keys=["user", "genres"],
        mini_batch_size=1,  # §9.7 (v2): the partition keys win
        append_row=DataType.URI_FILE,
        mini_batch_error_threshold=0,
    )
    assert step.run_agent(workers=1) == 0
    progress = read_progress(storage, step.ref)
    # §9.8: one mini-batch per (user, genres) combination present, whatever the season folder.
    assert (progress.total_mini_batches, progress.succeeded_mini_batches, progress.items_failed) == (3, 3, 0)
    phases.finalize_step(storage, StepFinalize(step=step.ref, status=StepStatus.COMPLETED))
    rows = [json.loads(line) for line in step.output_bytes().decode().splitlines()]
    assert rows == [
        {"key": {"user": "u1", "genres": "rock"}, "file": "u1/spring/rock"},
        {"key": {"user": "u1", "genres": "rock"}, "file": "u1/summer/rock"},
        {"key": {"user": "u1", "genres": "jazz"}, "file": "u1/summer/jazz"},
        {"key": {"user": "u2", "genres": "pop"}, "file": "u2/winter/pop"},
    ]


HOLD_SCRIPT = """
import os, time
from pathlib import Path

def run(mini_batch):
    deadline = time.monotonic() + 50
    while not Path(os.environ["RELEASE"]).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return mini_batch
"""


def _stamps(text: str) -> list[datetime]:
    rows = list(csv.DictReader(io.StringIO(text)))
    return sorted({datetime.strptime(row["Time (UTC)"], "%Y-%m-%d %H:%M:%S.%f") for row in rows})


def test_a_positive_resource_monitor_interval_samples_at_that_cadence(
    storage: StorageClients, tmp_path: Path
) -> None:
    release = tmp_path / "release"
    step = make_step(
        storage,
        tmp_path,
        HOLD_SCRIPT,
        files=1,
        resource_monitor_interval=1,
        environment_variables={"RELEASE": str(release)},
        retry=RetrySettings(max_retries=0, timeout=60),
    )
    agent, thread = step.run_agent_in_thread(workers=1)
    try:
        # §9.23: while run() works, a sample every second (a single sample at start is not a cadence).
        wait_until(
            lambda: (
                "sys/perf/0/node_resource_usage.csv" in step.log_names()
                and len(_stamps(step.log("sys/perf/0/node_resource_usage.csv"))) >= 3
            ),
            timeout=30,
            interval=0.2,
            message="three node resource samples",
        )
    finally:
        release.touch()
    thread.join(timeout=60)
    assert not thread.is_alive()
    assert agent.exit_code == 0
    node = _stamps(step.log("sys/perf/0/node_resource_usage.csv"))
    gaps = [(later - earlier).total_seconds() for earlier, later in itertools.pairwise(node)]
    assert min(gaps) >= 0.95, gaps  # never more often than the interval
    assert len(_stamps(step.log("sys/perf/0/processes_resource_usage.csv"))) >= 3  # the same cadence
