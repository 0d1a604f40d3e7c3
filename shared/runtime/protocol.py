"""The agent ↔ worker protocol: one JSON object per message over a pair of ``multiprocessing`` pipes.

Agent → worker: :class:`TaskOrder` (run one mini-batch) and :class:`StopOrder` (the queue is drained:
call ``shutdown()`` and exit). Worker → agent: :class:`WorkerEvent` — ``ready`` after ``init()``,
``init_failed``, ``started`` (run() begins: the agent times it, and knows the next mini-batch is
loading now), ``result``, and ``shutdown_done``.

A worker's static configuration (:class:`WorkerConfig`) is written to a JSON file by the agent and passed
on the worker's command line.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any, Literal

from pydantic import Field

from shared.models import FrozenModel
from shared.orchestration.contracts import StepRef
from shared.plan import AppendRowFormat, BlobData


class AppendRowConfig(FrozenModel):
    """How a worker formats and stages its rows (see :mod:`shared.runtime.appendrow`)."""

    format: AppendRowFormat = Field(default=AppendRowFormat.AZUREML, description="Row format of the output.")
    dataframe_header: bool = Field(default=False, description="azureml format: keep a DataFrame's header.")
    final: BlobData = Field(description="The output blob the rows end up in.")
    total_mini_batches: int = Field(
        description="Mini-batches of the step (decides whether part blobs are used)."
    )
    blocks_per_blob: int = Field(description="Mini-batches per part blob.")
    staging_prefix: str = Field(description="Prefix of the step's part blobs in 'runs'.")


class WorkerConfig(FrozenModel):
    """Everything a worker needs besides its tasks."""

    step: StepRef = Field(description="The step the worker works for.")
    node_id: int = Field(description="The node the worker runs on.")
    process_name: str = Field(description="'process000', 'process001', ... (replacements get new numbers).")
    code_dir: str = Field(description="Folder of the job's code (the snapshot).")
    entry_script: str = Field(description="Entry script path relative to code_dir.")
    argv: list[str] = Field(default_factory=list, description="sys.argv[1:] for the entry script.")
    manifest_file: str = Field(description="The node's local copy of the step's manifest (JSON).")
    cache_dir: str = Field(description="Where mini-batch data is downloaded (shared by the node's workers).")
    working_dir: str = Field(description="The worker's own working directory (EntryScript().working_dir).")
    output_dir: str = Field(description="AZUREML_BI_OUTPUT_PATH.")
    entry_script_log_dir: str = Field(description="Where EntryScript loggers write (EntryScript().log_dir).")
    error_log: str = Field(description="File that receives full tracebacks of init()/run() errors.")
    logging_level: str = Field(default="INFO", description="Log level of the worker and the entry script.")
    append_row: AppendRowConfig | None = Field(
        default=None, description="Set when the job has append_row_to."
    )


class TaskOrder(FrozenModel):
    """Agent -> worker: run one mini-batch."""

    op: Literal["task"] = Field(default="task", description="Tells a task from a stop order.")
    index: int = Field(description="The mini-batch's index in the step's manifest.")
    attempt: int = Field(description="Which try this is (1 for the first).")
    mini_batch: dict[str, Any] = Field(description="The manifest's entry for the mini-batch (what to read).")


class StopOrder(FrozenModel):
    """Agent -> worker: no more work; call ``shutdown()`` and exit."""

    op: Literal["stop"] = Field(default="stop", description="Tells a stop from a task order.")


class EventKind(StrEnum):
    """What a :class:`WorkerEvent` reports (see the module docstring)."""

    READY = "ready"
    INIT_FAILED = "init_failed"
    STARTED = "started"
    RESULT = "result"
    SHUTDOWN_DONE = "shutdown_done"


class ErrorCategory(StrEnum):
    """Why an attempt failed (the Error Category column of processed_mini-batches.csv)."""

    LOAD_ERROR = "LOAD_ERROR"
    LOAD_TIMEOUT = "LOAD_TIMEOUT"
    RUN_EXCEPTION = "RUN_EXCEPTION"
    RUN_RESULT_INVALID = "RUN_RESULT_INVALID"
    RUN_TIMEOUT = "RUN_TIMEOUT"
    PROCESS_CRASH = "PROCESS_CRASH"
    OUTPUT_ERROR = "OUTPUT_ERROR"
    AGENT_LOST = "AGENT_LOST"


class WorkerEvent(FrozenModel):
    """A line from a worker. Fields beyond ``event`` are set as the kind requires."""

    event: EventKind = Field(description="What happened.")
    index: int | None = Field(default=None, description="The mini-batch (started, result).")
    attempt: int | None = Field(default=None, description="The try of that mini-batch (started, result).")
    ok: bool = Field(default=True, description="False when init() or the attempt failed.")
    items: int = Field(default=0, description="Items in the mini-batch, once loaded.")
    returned: int = Field(default=0, description="Length of run()'s result: items succeeded, rows written.")
    block_id: str = Field(default="", description="The block the rows were staged as ('' for none).")
    header: str = Field(default="", description="The header line that belongs above the rows ('' for none).")
    load_seconds: float = Field(default=0.0, description="Seconds spent loading the mini-batch.")
    run_seconds: float = Field(default=0.0, description="Seconds run() took.")
    started_at: float | None = Field(default=None, description="UNIX time run() started.")
    finished_at: float | None = Field(default=None, description="UNIX time the attempt ended.")
    error_category: ErrorCategory | None = Field(default=None, description="Why it failed, when it did.")
    error_message: str = Field(default="", description="The error's type and message.")


def parse_order(line: str) -> TaskOrder | StopOrder:
    """An order from its JSON text: a stop when ``op`` says so, a task otherwise."""
    data = json.loads(line)
    if data.get("op") == "stop":
        return StopOrder.model_validate(data)
    return TaskOrder.model_validate(data)
