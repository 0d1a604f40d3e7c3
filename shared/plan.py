"""The frozen run plan: what a validated spec becomes, and what every later phase reads.

A spec (YAML, with components, bindings and parameters) is validated and *frozen* into a
:class:`RunPlan`: jobs in topological order, every binding checked, literal parameters substituted,
defaults applied, ``mini_batch_size`` normalised to an int, the runtime flags inside
``program_arguments`` parsed into typed settings. The plan is stored once as ``runs/<run>/run.json``;
the orchestrator, the activities, the agents and step reuse read it and nothing else of the spec.

What is *not* known at freeze time stays symbolic and is resolved when a step starts:

- data produced by an upstream job (:class:`JobOutputRef`) — that job may be reused from an older run;
- data assets (:class:`AssetRef`) — the registry is read when the step starts, so ``@latest`` means
  latest at that moment, and the version used is recorded for lineage;
- ``${{inputs.x}}`` / ``${{outputs.y}}`` placeholders for data inside ``program_arguments`` and
  ``command`` — they become local paths on the node that runs the job.

Before a plan is submitted every :class:`LocalData` has been uploaded and replaced by :class:`BlobData`
(``fanout validate`` shows plans that still point at local files).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field

from shared.models import FrozenModel

# --- types and modes -------------------------------------------------------------------------------


class DataType(StrEnum):
    """Azure ML data types: one file, a folder (prefix), or an MLTable (a folder with an MLTable file)."""

    URI_FILE = "uri_file"
    URI_FOLDER = "uri_folder"
    MLTABLE = "mltable"


class LiteralType(StrEnum):
    """Types of literal (non-data) inputs, as the spec declares them."""

    STRING = "string"
    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"


class InputMode(StrEnum):
    """Azure ML input modes. Fanout materialises all of them by download on the node, except ``direct``
    (the URI is passed as is) and tabular ``mltable`` inputs (read range by range)."""

    RO_MOUNT = "ro_mount"
    RW_MOUNT = "rw_mount"
    DOWNLOAD = "download"
    DIRECT = "direct"
    EVAL_MOUNT = "eval_mount"
    EVAL_DOWNLOAD = "eval_download"


class OutputMode(StrEnum):
    """Azure ML output modes, kept as declared: Fanout treats them alike (the node writes to a local
    folder whose files are uploaded)."""

    RW_MOUNT = "rw_mount"
    UPLOAD = "upload"
    DIRECT = "direct"


class JobType(StrEnum):
    """Job types Fanout runs: a parallel job splits its input into mini-batches; a command job runs once."""

    PARALLEL = "parallel"
    COMMAND = "command"


class AppendRowFormat(StrEnum):
    """Row format of the ``append_row_to`` output.

    ``azureml``: Azure ML's — ``str(item)`` per line for lists; DataFrames space-separated, no index, no
    header unless ``--append_row_dataframe_header True``. ``csv``: comma-separated with one header
    line. ``jsonl``: one JSON document per item/row.
    """

    AZUREML = "azureml"
    CSV = "csv"
    JSONL = "jsonl"


# --- where data lives ------------------------------------------------------------------------------


class LocalData(FrozenModel):
    """A file or folder on the submitting machine; uploaded (content-addressed) before submission."""

    kind: Literal["local"] = Field(default="local", description="Discriminator of the data source union.")
    path: str = Field(description="Absolute local path.")


class BlobData(FrozenModel):
    """A blob or blob prefix in Fanout's own storage account."""

    kind: Literal["blob"] = Field(default="blob", description="Discriminator of the data source union.")
    container: str = Field(description="Container name, e.g. 'data' or 'runs'.")
    path: str = Field(description="Blob name (uri_file) or prefix without trailing slash (folders).")


class UrlData(FrozenModel):
    """Data at an https URL of another storage account (read with Fanout's identity or a SAS in the URL)."""

    kind: Literal["url"] = Field(default="url", description="Discriminator of the data source union.")
    url: str = Field(description="https://<account>.blob.core.windows.net/<container>/<path>")


class AssetRef(FrozenModel):
    """``azureml:<name>:<version>`` or ``azureml:<name>@latest`` (version None); resolved at step start."""

    kind: Literal["asset"] = Field(default="asset", description="Discriminator of the data source union.")
    name: str = Field(description="The data asset's name.")
    version: str | None = Field(default=None, description="None means the latest version.")


class JobOutputRef(FrozenModel):
    """``${{parent.jobs.<job>.outputs.<output>}}``: resolved from that job's result at step start."""

    kind: Literal["job_output"] = Field(
        default="job_output", description="Discriminator of the data source union."
    )
    job: str = Field(description="The upstream job.")
    output: str = Field(description="That job's output.")


DataSource = Annotated[LocalData | BlobData | UrlData | AssetRef | JobOutputRef, Field(discriminator="kind")]
ResolvedData = Annotated[BlobData | UrlData, Field(discriminator="kind")]


# --- inputs and outputs ---------------------------------------------------------------------------


class LiteralInput(FrozenModel):
    """A literal job input, its value final (parameters and ``--set`` already substituted)."""

    kind: Literal["literal"] = Field(default="literal", description="Discriminator of the input union.")
    type: LiteralType = Field(description="The declared type.")
    value: str | int | float | bool = Field(description="The value, converted to the declared type.")


class DataInput(FrozenModel):
    """A data job input: its type, how it reaches the node, and where it comes from."""

    kind: Literal["data"] = Field(default="data", description="Discriminator of the input union.")
    type: DataType = Field(description="The declared data type.")
    mode: InputMode = Field(default=InputMode.RO_MOUNT, description="How the node gets the data.")
    source: DataSource = Field(description="Where the data is, or how to find it when the step starts.")


InputPlan = Annotated[LiteralInput | DataInput, Field(discriminator="kind")]


class OutputPlan(FrozenModel):
    """A job output: where it is written and, optionally, the data asset it is registered as."""

    type: DataType = Field(default=DataType.URI_FOLDER, description="The declared data type.")
    mode: OutputMode = Field(
        default=OutputMode.RW_MOUNT, description="The declared mode (every mode is written the same way)."
    )
    location: BlobData = Field(
        description="Where the output is written: runs/<run>/<job>/outputs/<name> by default, or the "
        "spec's path: with ${{name}}, ${{default_datastore}}, {run-id}, {output-name} expanded."
    )
    asset_name: str | None = Field(default=None, description="Register as this data asset on success.")
    asset_version: str | None = Field(default=None, description="None: next version of asset_name.")


# --- code and environment --------------------------------------------------------------------------


class CodeRef(FrozenModel):
    """A job's code: a local folder before submission, a content-addressed snapshot after it."""

    local_path: str | None = Field(default=None, description="Absolute path of the code folder.")
    snapshot: str | None = Field(default=None, description="Snapshot content hash, e.g. 'sha256-…'.")


class EnvironmentPlan(FrozenModel):
    """Where user code runs. Locally, agents use the current interpreter whatever this says."""

    reference: str | None = Field(default=None, description="azureml:<name>:<version>, kept as given.")
    image: str | None = Field(default=None, description="Container image for Batch container tasks.")
    conda_file: dict[str, object] | None = Field(default=None, description="Parsed conda YAML.")
    pip_requirements: list[str] = Field(default_factory=list, description="pip lines from the conda file.")


# --- job settings ------------------------------------------------------------------------------------


class RetrySettings(FrozenModel):
    """``retry_settings`` of a parallel job: the retry budget and time limit of each mini-batch."""

    max_retries: int = Field(
        default=2,
        ge=0,
        description="Retries after the first try: a mini-batch runs at most 1 + max_retries times.",
    )
    timeout: int = Field(default=60, gt=0, le=259200, description="Seconds one run() call may take.")


class ParallelSettings(FrozenModel):
    """Everything a parallel job's runtime needs, normalised (reference §1–§4)."""

    input_data: str = Field(description="Name of the job input that is split into mini-batches.")
    entry_script: str = Field(description="Path of the entry script, relative to the code folder.")
    program_arguments: list[str] = Field(
        default_factory=list,
        description="argv tokens for the entry script, runtime flags included; data placeholders "
        "(${{inputs.x}}, ${{outputs.y}}) are left for the agent to replace with local paths.",
    )
    mini_batch_size: int | None = Field(
        default=None,
        ge=1,
        description="Files per mini-batch (file inputs) or bytes per mini-batch (tabular inputs); "
        "None: 10 files / 1 MiB. Ignored when partition_keys is set.",
    )
    partition_keys: list[str] | None = Field(
        default=None, description="Columns or path keys: one mini-batch per distinct combination of values."
    )
    instance_count: int = Field(default=1, ge=1, description="Nodes, one agent each.")
    max_concurrency_per_instance: int | None = Field(
        default=None, ge=1, description="None: the node's GPU count on GPU pools, its cores otherwise."
    )
    logging_level: str = Field(
        default="INFO", description="Log level of the worker processes and the entry script's logger."
    )
    error_threshold: int = Field(default=-1, ge=-1, description="Failed items tolerated; -1 = no limit.")
    mini_batch_error_threshold: int = Field(
        default=-1, ge=-1, description="Failed mini-batches; -1 = no limit."
    )
    allowed_failed_percent: float = Field(
        default=100, ge=0, le=100, description="Failed mini-batches tolerated, in percent; 100 = no limit."
    )
    retry: RetrySettings = Field(default_factory=RetrySettings, description="Retries and run() time limit.")
    task_overhead_timeout: int = Field(
        default=600, gt=0, le=259200, description="Seconds to load a mini-batch before run() is called."
    )
    progress_update_timeout: int | None = Field(
        default=None, gt=0, le=259200, description="None: 3 × (retry.timeout + task_overhead_timeout)."
    )
    first_task_creation_timeout: int = Field(
        default=600, gt=0, le=259200, description="Seconds until a warning if no mini-batch was picked up."
    )
    resource_monitor_interval: int = Field(default=600, ge=0, description="Seconds; 0 disables perf logs.")
    copy_logs_to_parent: bool = Field(
        default=False, description="Also copy the job's result and progress files to the run's log folder."
    )
    append_row_to: str | None = Field(default=None, description="Output name that collects run() results.")
    append_row_dataframe_header: bool = Field(
        default=False, description="azureml format: write a DataFrame's header line too."
    )
    append_row_format: AppendRowFormat = Field(
        default=AppendRowFormat.AZUREML, description="Row format of the append_row_to output."
    )
    append_row_file_name: str = Field(
        default="parallel_run_step.txt",
        description="File name of the aggregated output inside a folder output (a uri_file output "
        "uses its own blob name).",
    )


class CommandSettings(FrozenModel):
    """What a command job runs."""

    command: str = Field(description="Shell command; data placeholders are replaced on the node.")
    timeout: int | None = Field(default=None, gt=0, description="limits.timeout in seconds.")


class JobPlan(FrozenModel):
    """One job of the run, frozen: everything its activities and agents need besides resolved inputs."""

    name: str = Field(description="The job's name in the pipeline.")
    type: JobType = Field(description="Parallel or command.")
    display_name: str | None = Field(default=None, description="Shown instead of the name, when set.")
    compute: str | None = Field(default=None, description="Compute name without 'azureml:'.")
    code: CodeRef | None = Field(default=None, description="The job's code folder or snapshot.")
    environment: EnvironmentPlan | None = Field(default=None, description="Where the user code runs.")
    inputs: dict[str, InputPlan] = Field(default_factory=dict, description="Input name -> input.")
    outputs: dict[str, OutputPlan] = Field(default_factory=dict, description="Output name -> output.")
    environment_variables: dict[str, str] = Field(
        default_factory=dict, description="Set for the user code on every node."
    )
    instance_count: int = Field(default=1, ge=1, description="Nodes the job runs on.")
    depends_on: list[str] = Field(default_factory=list, description="Upstream jobs (from data bindings).")
    allow_reuse: bool = Field(default=True, description="False when the component is_deterministic: false.")
    parallel: ParallelSettings | None = Field(default=None, description="Set for parallel jobs.")
    command: CommandSettings | None = Field(default=None, description="Set for command jobs.")


class RunPlan(FrozenModel):
    """The whole run, frozen at submit and stored as ``runs/<run>/run.json`` (see the module docstring)."""

    run_id: str = Field(description="The run's id, unique in the storage account.")
    display_name: str | None = Field(default=None, description="The spec's display_name.")
    description: str | None = Field(default=None, description="The spec's description.")
    experiment_name: str | None = Field(default=None, description="The spec's experiment_name.")
    tags: dict[str, str] = Field(default_factory=dict, description="The spec's tags.")
    default_compute: str | None = Field(default=None, description="Compute of jobs that name none.")
    continue_on_step_failure: bool = Field(
        default=False, description="After a job fails, still start the jobs that do not depend on it."
    )
    force_rerun: bool = Field(default=False, description="Never reuse an earlier run's outputs.")
    inputs: dict[str, InputPlan] = Field(default_factory=dict, description="Pipeline inputs after --set.")
    outputs: dict[str, JobOutputRef] = Field(default_factory=dict, description="Pipeline outputs.")
    jobs: list[JobPlan] = Field(description="Jobs in a topological order.")
    source: str = Field(default="", description="Where the spec came from (file path or blob name).")
    warnings: list[str] = Field(default_factory=list, description="Validation warnings, printed at submit.")
    trace: dict[str, str] = Field(
        default_factory=dict,
        description="W3C trace context of the run's root span ({'traceparent': ...}), set at submit; "
        "orchestration, agents and mini-batch spans continue this trace (see shared.telemetry).",
    )
    resumed_from: str | None = Field(
        default=None,
        description="The failed or canceled run this run resumes: its finished jobs and mini-batches "
        "are kept, not run again (shared.orchestration.resume).",
    )

    def job(self, name: str) -> JobPlan:
        """The job called ``name``. Raises KeyError when there is none."""
        for job in self.jobs:
            if job.name == name:
                return job
        raise KeyError(name)
