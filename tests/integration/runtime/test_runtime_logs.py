"""The log tree of a parallel job (reference §5), streamed while the job runs."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from shared.orchestration.contracts import StepFinalize, StepStatus
from shared.plan import RetrySettings
from shared.runtime import phases
from shared.runtime.logs import PROCESSED_COLUMNS
from shared.runtime.nodelog import PROCESS_COLUMNS
from shared.storage import Container, StorageClients, run_logs_path
from tests.helpers import wait_until
from tests.integration.runtime.stepkit import Step, make_step

SCRIPT = """
import os, time
from pathlib import Path
from azureml_user.parallel_run import EntryScript

def init():
    EntryScript().logger.info("model loaded")

def run(mini_batch):
    index = int(Path(mini_batch[0]).read_text().split()[1])
    print(f"scoring item {index}", flush=True)
    if index == 1:
        raise KeyError("missing column")
    time.sleep(float(os.environ.get("DELAY", "0")))
    return mini_batch
"""


def test_the_log_tree_has_every_file_users_look_for(storage: StorageClients, tmp_path: Path) -> None:
    step = make_step(
        storage,
        tmp_path,
        SCRIPT,
        files=3,
        retry=RetrySettings(max_retries=0, timeout=30),
        resource_monitor_interval=1,
        environment_variables={"DELAY": "1.2"},
    )
    assert step.run_agent(workers=1) == 0
    phases.finalize_step(storage, StepFinalize(step=step.ref, status=StepStatus.COMPLETED))
    names = step.log_names()
    # §9.22
    for name in (
        "readme.txt",
        "job_result.txt",
        "job_error.txt",
        "sys/master_role.0.txt",
        "sys/job_report/processed_mini-batches.csv",
        "user/stdout/0/process000.stdout.txt",
        "user/error/0/process000.txt",
        "user/entry_script_log/0/process000.log.txt",
        "sys/node/0/_main.txt",
        "sys/node/0/process000.txt",
    ):
        assert name in names, name
    assert any(n.startswith("job_progress_overview.") and n.endswith(".txt") for n in names)
    overview = "".join(step.log(n) for n in names if n.startswith("job_progress_overview."))
    assert "Scheduling finished. Scheduled 3 mini batches" in overview
    assert "The job completed." in overview
    assert "job_result.txt" in step.log("readme.txt")
    assert "KeyError: 'missing column'" in step.log("user/error/0/process000.txt")
    assert "Traceback" in step.log("user/error/0/process000.txt")
    assert "mini-batch 1 (1 tries" in step.log("job_error.txt")
    assert "model loaded" in step.log("user/entry_script_log/0/process000.log.txt")
    rows = list(csv.reader(io.StringIO(step.log("sys/job_report/processed_mini-batches.csv"))))
    assert tuple(rows[0]) == PROCESSED_COLUMNS
    by_id = {row[0]: dict(zip(PROCESSED_COLUMNS, row, strict=True)) for row in rows[1:]}
    assert by_id["1"]["Status"] == "RUN_EXCEPTION"
    assert by_id["1"]["Failed"] == "1"
    assert by_id["0"]["Status"] == "RUN_DONE"
    assert by_id["0"]["Succeeded"] == "1"
    # §9.23: a positive resource_monitor_interval writes node resource samples.
    perf = step.log("sys/perf/0/node_resource_usage.csv").splitlines()
    assert perf[0].startswith("Time (UTC),CPU %")
    assert len(perf) >= 2
    # ... and per process: the agent and each worker, at the same cadence.
    processes = list(csv.DictReader(io.StringIO(step.log("sys/perf/0/processes_resource_usage.csv"))))
    assert tuple(processes[0]) == PROCESS_COLUMNS
    names = {row["Process"] for row in processes}
    assert {"agent", "process000"} <= names
    worker = next(row for row in processes if row["Process"] == "process000")
    assert float(worker["RSS MB"]) > 0
    assert int(worker["PID"]) > 0
    # The job report sums the tries by process and by node (written at finalize).
    by_process = list(csv.DictReader(io.StringIO(step.log("sys/job_report/process_summary.csv"))))
    assert [(r["Node"], r["Process"]) for r in by_process] == [("0", "process000")]
    assert (by_process[0]["Tries"], by_process[0]["Mini-batches Done"], by_process[0]["Failed Tries"]) == (
        "3",
        "2",
        "1",
    )
    assert (by_process[0]["Items Succeeded"], by_process[0]["Items Failed"]) == ("2", "1")
    assert float(by_process[0]["Run Method Seconds"]) >= 2.4  # two runs of 1.2 s
    [by_node] = list(csv.DictReader(io.StringIO(step.log("sys/job_report/node_summary.csv"))))
    assert (by_node["Node"], by_node["Processes"], by_node["Tries"]) == ("0", "1", "3")
    assert "job_result.txt" not in _run_level_logs(storage, step)  # copy_logs_to_parent is off


def test_copy_logs_to_parent_puts_the_main_logs_in_the_runs_log_folder(
    storage: StorageClients, tmp_path: Path
) -> None:
    step = make_step(storage, tmp_path, SCRIPT, files=1, copy_logs_to_parent=True)
    assert step.run_agent(workers=1) == 0
    phases.finalize_step(storage, StepFinalize(step=step.ref, status=StepStatus.COMPLETED))
    copied = _run_level_logs(storage, step)
    overviews = [name for name in copied if name.startswith("job_progress_overview.")]
    assert {"job_result.txt", "job_error.txt"} <= set(copied)
    assert overviews
    runs = storage.container(Container.RUNS)
    for name in ["job_result.txt", "job_error.txt", *overviews]:
        parent = runs.download_blob(run_logs_path(step.ref.run_id, step.ref.job, name)).readall().decode()
        assert parent == step.log(name)
    assert "The job completed." in "".join(step.log(name) for name in overviews)
    assert "Copied job_result.txt, job_error.txt, job_progress_overview." in step.log("sys/master_role.0.txt")


def _run_level_logs(storage: StorageClients, step: Step) -> list[str]:
    prefix = run_logs_path(step.ref.run_id, step.ref.job) + "/"
    names = storage.container(Container.RUNS).list_blob_names(name_starts_with=prefix)
    return sorted(name[len(prefix) :] for name in names)


def test_no_perf_logs_when_the_monitor_is_off_and_logs_stream_while_running(
    storage: StorageClients, tmp_path: Path
) -> None:
    step = make_step(
        storage,
        tmp_path,
        SCRIPT,
        files=1,
        resource_monitor_interval=0,
        environment_variables={"DELAY": "5"},
    )
    agent, thread = step.run_agent_in_thread(workers=1)
    # The print() of a run() still in progress is readable in the log tree.
    wait_until(
        lambda: (
            "user/stdout/0/process000.stdout.txt" in step.log_names()
            and "scoring item 0" in step.log("user/stdout/0/process000.stdout.txt")
        ),
        timeout=30,
        message="streamed stdout",
    )
    assert thread.is_alive()
    thread.join(timeout=60)
    assert agent.exit_code == 0
    assert not [n for n in step.log_names() if n.startswith("sys/perf/")]  # §9.23: interval 0 (both files)
