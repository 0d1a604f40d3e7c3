"""Benchmark: plan AND dispatch 100,000 mini-batches (a folder of 100,000 small blobs), as the phases do.

    python -m bench.scale_dispatch [--blobs 100000] [--mini-batch-size 1]

Target: plan + dispatch ≤ 20 s and ≤ 300 MB peak RSS.

``bench.scale_plan`` (the data package's bench) times planning alone; this one runs the runtime's
phases end to end in a fresh process — ``plan_step`` (partition, store the manifest, create the queue,
write the step document) then ``dispatch_step`` (enqueue the ranges, several mini-batches per message,
eight sends in flight, checkpoints) — and prints, from the same run:

- baseline: a bare ``list_blobs`` over the folder (the least any planner pays) and the same number of
  work messages sent one after another from one thread (what a naive dispatcher pays);
- ``plan_step``, ``dispatch_step``, their sum, and the peak RSS of the process that ran them.

The 100,000 blobs are seeded once (not timed) and reused by later runs against the same storage.
"""

from __future__ import annotations

import argparse
import multiprocessing
import time

from bench.environment import describe, load_now, peak_rss_mb
from bench.runtime_kit import storage
from bench.scale_plan import baseline_listing, parallel_step, seed
from shared.orchestration.contracts import StepRef
from shared.plan import BlobData, RunPlan
from shared.runs import save_plan, save_step_definition
from shared.runtime import phases
from shared.runtime.messages import WorkMessage
from shared.runtime.records import read_step_document
from shared.storage import StorageClients, work_queue_name


def _plan_and_dispatch(connection_string: str, location: BlobData, mini_batch_size: int) -> dict[str, float]:
    clients = StorageClients.from_connection_string(connection_string)
    job, definition = parallel_step(location, mini_batch_size)
    save_plan(clients, RunPlan(run_id=definition.step.run_id, jobs=[job]))
    save_step_definition(clients, definition)
    started = time.perf_counter()
    planned = phases.plan_step(clients, definition.step)
    plan_seconds = time.perf_counter() - started
    started = time.perf_counter()
    phases.dispatch_step(clients, definition.step)
    dispatch_seconds = time.perf_counter() - started
    document = read_step_document(clients, definition.step)
    assert document is not None
    assert document.dispatched
    messages = -(-planned.mini_batches // document.mini_batches_per_message)
    return {
        "mini_batches": planned.mini_batches,
        "messages": messages,
        "plan": plan_seconds,
        "dispatch": dispatch_seconds,
        "rss_mb": peak_rss_mb(),
    }


def naive_dispatch(clients: StorageClients, messages: int) -> float:
    """Seconds to send ``messages`` work messages one by one from one thread."""
    step = StepRef(run_id="bench-naive", job="dispatch")
    queue = clients.queue_client(work_queue_name(step.run_id, step.job))
    queue.create_queue()
    try:
        started = time.perf_counter()
        for start in range(messages):
            message = WorkMessage(run_id=step.run_id, job=step.job, start=start, end=start + 1)
            queue.send_message(message.model_dump_json(exclude_none=True))
        return time.perf_counter() - started
    finally:
        queue.delete_queue()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blobs", type=int, default=100_000)
    parser.add_argument("--mini-batch-size", type=int, default=1)
    args = parser.parse_args(argv)
    with storage() as bench:
        print(describe(bench.label))
        clients, connection_string = bench.clients, bench.connection_string
        location = seed(clients, args.blobs)
        list_seconds, _ = baseline_listing(clients, location)
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            figures = pool.apply(_plan_and_dispatch, (connection_string, location, args.mini_batch_size))
        naive_seconds = naive_dispatch(clients, int(figures["messages"]))
    total = figures["plan"] + figures["dispatch"]
    mini_batches, messages = int(figures["mini_batches"]), int(figures["messages"])
    print(f"blobs: {args.blobs:,}: {mini_batches:,} mini-batches in {messages:,} messages")
    print(f"baseline list_blobs:              {list_seconds:7.2f} s")
    print(f"baseline one-by-one sends:        {naive_seconds:7.2f} s")
    print(f"plan_step:                        {figures['plan']:7.2f} s")
    print(f"dispatch_step:                    {figures['dispatch']:7.2f} s")
    print(f"plan + dispatch:                  {total:7.2f} s (target <= 20 s)")
    print(f"peak RSS of plan + dispatch:      {figures['rss_mb']:7.0f} MB (target <= 300 MB)")
    print(load_now())


if __name__ == "__main__":
    main()
