"""The agent ↔ worker protocol: one JSON object per line over a pair of pipes.

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
from typing import IO, Any, Literal

from pydantic import Field

from shared.models import FrozenModel
from shared.orchestration.contracts import StepRef
from shared.plan import AppendRowFormat, BlobData


class AppendRowConfig(FrozenModel):
    """How a worker formats and stages its rows (see :mod:`shared.runtime.appendrow`)."""

    format: AppendRowFormat = AppendRowFormat.AZUREML
    dataframe_header: bool = False
    final: BlobData
    total_mini_batches: int
    blocks_per_blob: int
    staging_prefix: str


class WorkerConfig(FrozenModel):
    """Everything a worker needs besides its tasks."""

    step: StepRef
    node_id: int
    process_name: str = Field(description="'process000', 'process001', ... (replacements get new numbers).")
    code_dir: str = Field(description="Folder of the job's code (the snapshot).")
    entry_script: str = Field(description="Entry script path relative to code_dir.")
    argv: list[str] = Field(default_factory=list, description="sys.argv[1:] for the entry script.")
    manifest_file: str = Field(description="The node's local copy of the step's manifest (JSON).")
    cache_dir: str = Field(description="Where mini-batch data is downloaded (shared by the node's workers).")
    working_dir: str
    output_dir: str = Field(description="AZUREML_BI_OUTPUT_PATH.")
    entry_script_log_dir: str
    error_log: str = Field(description="File that receives full tracebacks of init()/run() errors.")
    logging_level: str = "INFO"
    append_row: AppendRowConfig | None = None


class TaskOrder(FrozenModel):
    op: Literal["task"] = "task"
    index: int
    attempt: int
    mini_batch: dict[str, Any]


class StopOrder(FrozenModel):
    op: Literal["stop"] = "stop"


class EventKind(StrEnum):
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

    event: EventKind
    index: int | None = None
    attempt: int | None = None
    ok: bool = True
    items: int = 0
    returned: int = 0
    block_id: str = ""
    header: str = ""
    load_seconds: float = 0.0
    run_seconds: float = 0.0
    started_at: float | None = Field(default=None, description="UNIX time run() started.")
    finished_at: float | None = Field(default=None, description="UNIX time the attempt ended.")
    error_category: ErrorCategory | None = None
    error_message: str = ""


def write_line(stream: IO[str], payload: FrozenModel) -> None:
    stream.write(payload.model_dump_json() + "\n")
    stream.flush()


def parse_order(line: str) -> TaskOrder | StopOrder:
    data = json.loads(line)
    if data.get("op") == "stop":
        return StopOrder.model_validate(data)
    return TaskOrder.model_validate(data)
