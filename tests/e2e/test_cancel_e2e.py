"""Canceling a run mid-way: agents are stopped, the step's queue is drained, the run ends Canceled,
and the logs written so far are kept."""

from __future__ import annotations

from pathlib import Path

from shared.cli.run import submit
from shared.compute import get_executor
from shared.compute.base import AgentState
from shared.host.engine import local_engine
from shared.orchestration import names
from shared.orchestration.client import cancel_run, pipeline_input, start_run
from shared.orchestration.contracts import RunStatus, StepRef, StepStatus
from shared.orchestration.models import PipelineResult
from shared.orchestration.run_index import get_run
from shared.runs import load_step_result
from shared.runtime.logs import read_text
from shared.settings import get_settings
from shared.storage import StorageClients, work_queue_name
from tests.e2e.conftest import write
from tests.helpers import wait_until


def _slow_pipeline(root: Path, marker: Path) -> Path:
    for index in range(6):
        write(root / "data" / f"f{index}.txt", f"{index}\n")
    write(
        root / "src" / "slow.py",
        """
        import os, time
        from pathlib import Path

        def run(mini_batch):
            Path(os.environ["MARKER"]).write_text("started")
            print("working on", mini_batch, flush=True)
            time.sleep(300)
            return mini_batch
        """,
    )
    return write(
        root / "pipeline.yml",
        f"""
        type: pipeline
        display_name: slow
        settings:
          default_compute: azureml:cpu-cluster
        jobs:
          slow:
            type: parallel
            inputs:
              files:
                type: uri_folder
                path: ./data
            input_data: ${{{{inputs.files}}}}
            mini_batch_size: "1"
            resources:
              instance_count: 1
            max_concurrency_per_instance: 1
            retry_settings:
              max_retries: 0
              timeout: 600
            environment_variables:
              MARKER: {marker}
            task:
              type: run_function
              code: ./src
              entry_script: slow.py
              environment: azureml:tiny-env:1
          after:
            type: command
            command: echo never
            environment: azureml:tiny-env:1
            inputs:
              files:
                type: uri_folder
                path: ./data
        """,
    )


def test_cancel_mid_run_stops_agents_drains_the_queue_and_keeps_logs(
    tmp_path: Path, fast_polls: StorageClients
) -> None:
    clients = fast_polls
    settings = get_settings()
    marker = tmp_path / "started"
    plan = submit(
        clients, _slow_pipeline(tmp_path / "slow", marker), {}, force_rerun=False, settings=settings
    )
    # "after" has no dependency; make it wait for "slow" so it is still unstarted at the cancel.
    jobs = [
        job if job.name != "after" else job.model_copy(update={"depends_on": ["slow"]}) for job in plan.jobs
    ]
    plan = plan.model_copy(update={"jobs": jobs})
    executor = get_executor(settings, clients)
    with local_engine(clients, executor) as engine:
        start_run(clients, engine.client, plan, orchestration_input=pipeline_input(plan, settings))
        wait_until(marker.exists, timeout=120, message="the first mini-batch to start")
        assert cancel_run(engine.client, plan.run_id)
        status = engine.client.wait(names.instance_id_for(plan.run_id), timeout=120)
        assert status is not None
        result = PipelineResult.model_validate(status.output)
        agents = executor.status(plan.run_id, "slow")

    assert result.status is RunStatus.CANCELED
    assert result.jobs["slow"].status is StepStatus.CANCELED
    assert result.jobs["after"].status is StepStatus.CANCELED
    assert get_run(clients, plan.run_id).status is RunStatus.CANCELED
    assert agents
    assert all(agent.state is not AgentState.RUNNING for agent in agents)

    queue = clients.queue_client(work_queue_name(plan.run_id, "slow"))
    remaining = queue.peek_messages(max_messages=32) if _exists(queue) else []
    assert remaining == []

    step = StepRef(run_id=plan.run_id, job="slow")
    assert load_step_result(clients, step).status is StepStatus.CANCELED
    assert read_text(clients, step, "job_result.txt").startswith("Result: Canceled")
    stdout = read_text(clients, step, "user/stdout/0/process000.stdout.txt")
    assert "working on" in stdout  # what the worker printed before it was stopped is kept


def _exists(queue: object) -> bool:
    from azure.core.exceptions import ResourceNotFoundError

    try:
        queue.get_queue_properties()  # type: ignore[attr-defined]
    except ResourceNotFoundError:
        return False
    return True
