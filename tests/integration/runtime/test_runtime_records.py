"""Records and tallies on Azurite: decided once across agents, counted with their records; dispatch."""

from __future__ import annotations

import json
from pathlib import Path

from shared.orchestration.contracts import StepRef
from shared.runtime import phases
from shared.runtime.recorder import Outcome, Recorder
from shared.runtime.records import (
    AgentShard,
    MiniBatchRecord,
    RecordStatus,
    minibatch_table,
    read_progress,
    read_records,
    read_step_document,
    step_key,
    update_step_document,
)
from shared.storage import StorageClients, work_queue_name
from tests.integration.runtime.stepkit import make_step


def _record(index: int, status: RecordStatus, *, attempts: int = 1, items: int = 2) -> MiniBatchRecord:
    final = status is not RecordStatus.RETRYING
    ok = status is RecordStatus.SUCCEEDED
    return MiniBatchRecord(
        index=index,
        status=status,
        final=final,
        attempts=attempts,
        items=items,
        items_succeeded=items if ok and final else 0,
        items_failed=0 if ok or not final else items,
    )


def test_two_agents_settling_the_same_mini_batch_count_it_once(storage: StorageClients) -> None:
    step = StepRef(run_id="records-race", job="j")
    update_step_document(storage, step, total_mini_batches=3, dispatched=True)
    table, key = minibatch_table(storage), step_key(step)
    first = Recorder(table, key, AgentShard(agent_id="a", node_id=0))
    second = Recorder(table, key, AgentShard(agent_id="b", node_id=1))
    first.add(Outcome(record=_record(0, RecordStatus.SUCCEEDED), etag=None, token="a0"))
    first.add(Outcome(record=_record(1, RecordStatus.RETRYING), etag=None, token="a1"))
    written = {w.outcome.token: w for w in first.flush()}
    assert all(w.stored for w in written.values())
    # Agent b processed the same mini-batches from a redelivered message (it had not read the records).
    second.add(Outcome(record=_record(0, RecordStatus.FAILED, attempts=3), etag=None, token="b0"))
    second.add(Outcome(record=_record(1, RecordStatus.SUCCEEDED, attempts=2), etag=None, token="b1"))
    second.add(Outcome(record=_record(2, RecordStatus.SUCCEEDED), etag=None, token="b2"))
    outcome = {w.outcome.token: w.stored for w in second.flush()}
    assert outcome == {"b0": False, "b1": True, "b2": True}  # 0 was final: b's result is dropped
    records = {r.index: r for r in read_records(storage, step)}
    assert records[0].status is RecordStatus.SUCCEEDED
    assert records[1].status is RecordStatus.SUCCEEDED
    assert records[1].attempts == 2
    progress = read_progress(storage, step)
    assert (progress.succeeded_mini_batches, progress.failed_mini_batches) == (3, 0)
    assert progress.items_succeeded == 6
    assert progress.items_failed == 0
    assert progress.attempts == 1 + 1 + 1 + 1  # a0, a1, b1, b2: the dropped duplicate is not counted
    assert progress.done


def test_a_retrying_record_is_replaced_under_its_etag(storage: StorageClients) -> None:
    step = StepRef(run_id="records-etag", job="j")
    table, key = minibatch_table(storage), step_key(step)
    recorder = Recorder(table, key, AgentShard(agent_id="a"))
    recorder.add(Outcome(record=_record(5, RecordStatus.RETRYING), etag=None, token="t"))
    [first] = recorder.flush()
    assert first.etag
    recorder.add(Outcome(record=_record(5, RecordStatus.FAILED, attempts=2), etag=first.etag, token="t"))
    [second] = recorder.flush()
    assert second.stored
    [record] = read_records(storage, step)
    assert record.final
    assert record.attempts == 2
    assert recorder.shard.failed_mini_batches == 1
    assert recorder.shard.attempts == 2


def test_dispatch_is_idempotent_and_resumes_from_its_checkpoint(
    storage: StorageClients, tmp_path: Path
) -> None:
    step = make_step(storage, tmp_path, "def run(b):\n    return b\n", files=10, dispatch=False)
    again = phases.plan_step(storage, step.ref)  # planning twice keeps the first plan
    assert again.mini_batches == 10
    update_step_document(storage, step.ref, mini_batches_per_message=3, dispatched_through=6)
    planned = phases.dispatch_step(storage, step.ref)  # resumes after 6: messages 6-8 and 9
    assert planned.mini_batches == 10
    phases.dispatch_step(storage, step.ref)  # already dispatched: sends nothing
    queue = storage.queue_client(work_queue_name(step.ref.run_id, step.ref.job))
    ranges = sorted(
        (json.loads(m.content)["start"], json.loads(m.content)["end"]) for m in queue.peek_messages(32)
    )
    assert ranges == [(6, 9), (9, 10)]
    document = read_step_document(storage, step.ref)
    assert document is not None
    assert document.dispatched
    assert document.dispatched_through == 10
