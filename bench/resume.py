"""Benchmark: what resuming a large failed step costs, next to what planning that step costs anyway.

    python -m bench.resume [--mini-batches 10000] [--failed-every 10]

A parallel step of N one-file mini-batches with ``append_row_to`` is planned, then its run is made to
end ``Failed`` with every ``--failed-every``-th mini-batch failed and the others succeeded — their rows
staged as blocks and their records and CSV rows written as agents would (not timed). Timed, in one
process, against the same storage:

- baseline: ``plan_step`` of the old step (listing + partitioning + the manifest: every resume pays
  it again, since it re-plans to compare descriptors);
- the failed step's finalize keeping the rows of its succeeded mini-batches (one Put Block List);
- ``plan_step`` of the resumed step: planning plus the carry-over (fingerprint and descriptor checks,
  the committed ranges, the carried records and tally shard, the CSV rows, the output files);
- ``dispatch_step`` of the resumed step (only the failed mini-batches);
- after the failed ones are "run" (staged and recorded, not timed), the resumed step's finalize: the
  carried rows copied server-side in contiguous ranges, the commit, and the Content-MD5 (one read);
  with, as its baseline, a plain commit of the same number of staged blocks.

The output is checked byte for byte against what a clean run writes.
"""

from __future__ import annotations

import argparse
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from azure.data.tables import UpdateMode

from bench.environment import describe, load_now
from bench.runtime_kit import storage
from bench.scale_plan import parallel_step, seed
from shared.orchestration.contracts import StepDefinition, StepFinalize, StepRef, StepStatus
from shared.orchestration.resume import resumed_plan
from shared.plan import BlobData, DataType, OutputPlan, RunPlan
from shared.reuse import fingerprint_step
from shared.runs import save_plan, save_step_definition
from shared.runtime import logs, phases
from shared.runtime.appendrow import append_row_location, blob_client, output_target, row_block_id
from shared.runtime.records import MiniBatchRecord, RecordStatus, minibatch_table, record_to_entity, step_key
from shared.storage import StorageClients, output_path


def _step(clients: StorageClients, location: BlobData, run_id: str) -> tuple[RunPlan, StepDefinition]:
    job, definition = parallel_step(location, 1)
    rows = OutputPlan(
        type=DataType.URI_FILE,
        location=BlobData(container="runs", path=output_path(run_id, job.name, "rows")),
    )
    assert job.parallel is not None
    job = job.model_copy(
        update={
            "outputs": {"rows": rows},
            "parallel": job.parallel.model_copy(update={"append_row_to": "rows"}),
        }
    )
    plan = RunPlan(run_id=run_id, jobs=[job])
    step = StepRef(run_id=run_id, job=job.name)
    definition = definition.model_copy(update={"step": step, "outputs": {"rows": rows}})
    return plan, _fingerprinted(clients, plan, definition)


def _fingerprinted(clients: StorageClients, plan: RunPlan, definition: StepDefinition) -> StepDefinition:
    job = plan.job(definition.step.job)
    definition = definition.model_copy(
        update={"fingerprint": fingerprint_step(clients, plan, job, definition.inputs)}
    )
    save_plan(clients, plan)
    save_step_definition(clients, definition)
    return definition


def _row(index: int) -> bytes:
    return f"img-{index:07d}.bin ok\n".encode()


def _settle(
    clients: StorageClients, plan: RunPlan, step: StepRef, indexes: list[int], failed: set[int]
) -> None:
    """What agents would leave: a staged block per succeeded mini-batch, final records, CSV rows."""
    job = plan.job(step.job)
    assert job.parallel is not None
    final = append_row_location(job.outputs["rows"], job.parallel)
    target = output_target(step, final, max(indexes) + 1)

    def record(index: int) -> MiniBatchRecord:
        if index in failed:
            return MiniBatchRecord(
                index=index, status=RecordStatus.FAILED, final=True, items=1, items_failed=1
            )
        block = row_block_id(index)
        blob_client(clients, target.staging_blob(index)).stage_block(block, _row(index))
        return MiniBatchRecord(
            index=index,
            status=RecordStatus.SUCCEEDED,
            final=True,
            items=1,
            items_succeeded=1,
            rows=1,
            block_id=block,
        )

    with ThreadPoolExecutor(32) as pool:
        records = list(pool.map(record, indexes))
    table, key = minibatch_table(clients), step_key(step)
    chunks = [records[i : i + 100] for i in range(0, len(records), 100)]
    with ThreadPoolExecutor(8) as pool:
        list(
            pool.map(
                lambda chunk: table.submit_transaction(
                    [("upsert", record_to_entity(key, r), {"mode": UpdateMode.REPLACE}) for r in chunk]
                ),
                chunks,
            )
        )
    logs.ensure_processed_csv(clients, step)
    lines = "".join(
        f"{r.index},1,0,process000,2030-01-01 00:00:00.000,1,1,0,0,0,0,RUN_DONE,,,{{}}\n" for r in records
    )
    logs.append_text(clients, step, logs.PROCESSED_CSV, lines)


def _timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mini-batches", type=int, default=10_000)
    parser.add_argument("--failed-every", type=int, default=10)
    args = parser.parse_args(argv)
    count = args.mini_batches
    failed = set(range(0, count, args.failed_every))
    with storage() as bench:
        print(describe(bench.label))
        clients = bench.clients
        location = seed(clients, count)
        old_plan, old_definition = _step(clients, location, f"bench-old-{uuid.uuid4().hex[:6]}")
        old = old_definition.step
        plan_old = _timed(lambda: phases.plan_step(clients, old))
        _settle(clients, old_plan, old, list(range(count)), failed)
        keep = _timed(lambda: phases.finalize_step(clients, StepFinalize(step=old, status=StepStatus.FAILED)))

        new_plan = resumed_plan(old_plan, f"bench-new-{uuid.uuid4().hex[:6]}", trace={}, pinned={})
        job = new_plan.job(old.job)
        new = StepRef(run_id=new_plan.run_id, job=old.job)
        _fingerprinted(
            clients,
            new_plan,
            StepDefinition(step=new, inputs=old_definition.inputs, outputs=job.outputs, fingerprint=""),
        )
        plan_new = _timed(lambda: phases.plan_step(clients, new))
        dispatch = _timed(lambda: phases.dispatch_step(clients, new))
        _settle(clients, new_plan, new, sorted(failed), set())
        finalize = _timed(
            lambda: phases.finalize_step(clients, StepFinalize(step=new, status=StepStatus.COMPLETED))
        )

        assert job.parallel is not None
        final = append_row_location(job.outputs["rows"], job.parallel)
        written = blob_client(clients, final).download_blob().readall()
        assert written == b"".join(_row(i) for i in range(count)), (
            "the resumed output differs from a clean run's"
        )
        clean_plan, clean_definition = _step(clients, location, f"bench-clean-{uuid.uuid4().hex[:6]}")
        clean = clean_definition.step
        phases.plan_step(clients, clean)
        _settle(clients, clean_plan, clean, list(range(count)), set())
        clean_finalize = _timed(
            lambda: phases.finalize_step(clients, StepFinalize(step=clean, status=StepStatus.COMPLETED))
        )
    carried = count - len(failed)
    print(f"mini-batches: {count:,}, carried over: {carried:,}, run again: {len(failed):,}")
    print(f"baseline plan_step of the step:          {plan_old:7.2f} s")
    print(f"failed finalize, rows kept:               {keep:7.2f} s")
    print(
        f"plan_step of the resumed step (+ carry):  {plan_new:7.2f} s  (carry ~{plan_new - plan_old:.2f} s)"
    )
    print(f"dispatch_step of the resumed step:        {dispatch:7.2f} s")
    print(f"baseline finalize of a clean step:        {clean_finalize:7.2f} s")
    print(f"finalize of the resumed step (+ copies):  {finalize:7.2f} s")
    print(load_now())


if __name__ == "__main__":
    main()
