"""Benchmark: the durable engine's cost per activity, against calling the same bodies directly.

    python -m bench.orchestration [--jobs 20] [--polls 10]

A pipeline of ``--jobs`` independent parallel jobs runs on the local durable engine (durabletask's
in-memory backend, every wake-up a full replay) with instant activity bodies: each step prepares,
plans, dispatches, starts agents, reads its tallies ``--polls`` times (1 ms waits), stops and
finalizes. Prints:

- baseline: the same activity bodies called directly, one after the other (no orchestration at all);
- engine: wall time of the run, activities executed, and the engine's overhead per activity.

What matters for a real run is that the overhead per step stays far below a step's own costs (agent
start-up, storage round trips): a step costs ``(6 + polls)`` activities whatever its mini-batch count.
"""

from __future__ import annotations

import argparse
import threading
import time
from typing import Any

from shared.compute.base import AgentStatus, AgentTask
from shared.host.engine import local_engine
from shared.orchestration import names
from shared.orchestration.activities import ActivityBody
from shared.orchestration.context import RetryPolicy
from shared.orchestration.contracts import (
    StepFinalize,
    StepPlanned,
    StepPrepared,
    StepProgress,
    StepRef,
    StepResult,
    StepStart,
)
from shared.orchestration.dependencies import ActivityDependencies
from shared.orchestration.models import Outcome, PipelineInput, PollSettings, StepPoll
from shared.plan import JobPlan, JobType, ParallelSettings, RunPlan
from shared.storage import StorageClients

UNUSED_STORAGE = StorageClients.from_connection_string(
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
    "BlobEndpoint=http://127.0.0.1:9/a;QueueEndpoint=http://127.0.0.1:9/a;TableEndpoint=http://127.0.0.1:9/a;"
)


class _NoExecutor:
    def start(self, task: AgentTask) -> None: ...

    def stop(self, run_id: str, job: str) -> None: ...

    def status(self, _run_id: str, _job: str) -> list[AgentStatus]:
        return []


class InstantActivities:
    """Activity bodies that answer at once; a step is done after ``polls`` reads."""

    def __init__(self, polls: int) -> None:
        self.polls = polls
        self.calls = 0
        self.reads: dict[str, int] = {}
        self.lock = threading.Lock()

    def _count(self) -> None:
        with self.lock:
            self.calls += 1

    def bodies(self) -> dict[str, ActivityBody]:
        def outcome(value: Any = None) -> dict[str, Any]:
            return Outcome(value=value).model_dump(mode="json")

        def prepare(_deps: ActivityDependencies, payload: Any) -> Any:
            self._count()
            start = StepStart.model_validate(payload)
            return outcome(StepPrepared(step=start.step, fingerprint="fp").model_dump(mode="json"))

        def planned(_deps: ActivityDependencies, payload: Any) -> Any:
            self._count()
            return StepPlanned(step=StepRef.model_validate(payload), mini_batches=self.polls).model_dump(
                mode="json"
            )

        def read(_deps: ActivityDependencies, payload: Any) -> Any:
            self._count()
            step = StepRef.model_validate(payload)
            with self.lock:
                self.reads[step.job] = self.reads.get(step.job, 0) + 1
                settled = self.reads[step.job]
            progress = StepProgress(
                step=step, total_mini_batches=self.polls, dispatched=True, succeeded_mini_batches=settled
            )
            return StepPoll(progress=progress).model_dump(mode="json")

        def finalize(_deps: ActivityDependencies, payload: Any) -> Any:
            self._count()
            order = StepFinalize.model_validate(payload)
            return StepResult(step=order.step, status=order.status).model_dump(mode="json")

        def nothing(_deps: ActivityDependencies, _payload: Any) -> Any:
            self._count()
            return outcome()

        return {
            names.SET_RUN_STATUS: nothing,
            names.PREPARE_STEP: prepare,
            names.PLAN_STEP: lambda deps, payload: outcome(planned(deps, payload)),
            names.DISPATCH_STEP: planned,
            names.START_AGENTS: nothing,
            names.READ_PROGRESS: read,
            names.STOP_AGENTS: nothing,
            names.FINALIZE_STEP: finalize,
            names.SKIP_STEPS: nothing,
            names.CANCEL_STEPS: nothing,
        }


def _plan(jobs: int) -> RunPlan:
    parallel = ParallelSettings(input_data="d", entry_script="s.py")
    return RunPlan(
        run_id="bench-orchestration",
        jobs=[JobPlan(name=f"j{i}", type=JobType.PARALLEL, parallel=parallel) for i in range(jobs)],
    )


def baseline(jobs: int, polls: int) -> tuple[float, int]:
    """The activity bodies called directly in a step's order: seconds and calls."""
    fake = InstantActivities(polls)
    bodies = fake.bodies()
    deps = ActivityDependencies(clients=UNUSED_STORAGE, executor=_NoExecutor())
    started = time.perf_counter()
    for index in range(jobs):
        step = StepRef(run_id="bench", job=f"j{index}").model_dump(mode="json")
        bodies[names.PREPARE_STEP](deps, StepStart(step=StepRef.model_validate(step)).model_dump(mode="json"))
        bodies[names.PLAN_STEP](deps, step)
        bodies[names.DISPATCH_STEP](deps, step)
        bodies[names.START_AGENTS](deps, {"run_id": "bench", "job": step["job"]})
        for _ in range(polls):
            bodies[names.READ_PROGRESS](deps, step)
        bodies[names.STOP_AGENTS](deps, step)
        bodies[names.FINALIZE_STEP](deps, {"step": step, "status": "Completed"})
    return time.perf_counter() - started, fake.calls


def engine(jobs: int, polls: int) -> tuple[float, int]:
    """The same work as a pipeline run on the local durable engine: seconds and activities."""
    fake = InstantActivities(polls)
    poll = PollSettings(initial_seconds=0.001, max_seconds=0.001, polls_per_generation=100)
    payload = PipelineInput(plan=_plan(jobs), poll=poll, retry=RetryPolicy()).model_dump(mode="json")
    with local_engine(
        UNUSED_STORAGE, _NoExecutor(), activity_overrides=fake.bodies(), pump_events=False
    ) as running:
        started = time.perf_counter()
        running.client.schedule(names.RUN_PIPELINE, "bench-orchestration", payload)
        status = running.client.wait("bench-orchestration", timeout=600)
        elapsed = time.perf_counter() - started
    assert status is not None
    assert status.output["status"] == "Completed", status
    return elapsed, fake.calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--polls", type=int, default=10)
    args, _ = parser.parse_known_args()
    base_seconds, base_calls = baseline(args.jobs, args.polls)
    run_seconds, run_calls = engine(args.jobs, args.polls)
    print(f"baseline: {base_calls} activity bodies called directly in {base_seconds * 1000:.1f} ms")
    print(
        f"engine:   {args.jobs} steps, {run_calls} activities in {run_seconds:.2f} s "
        f"({run_seconds / args.jobs * 1000:.0f} ms per step, "
        f"{(run_seconds - base_seconds) / max(run_calls, 1) * 1000:.1f} ms engine overhead per activity)"
    )


if __name__ == "__main__":
    main()
