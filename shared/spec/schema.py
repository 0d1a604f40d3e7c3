"""Pydantic models of the Azure ML CLI v2 YAML that Fanout accepts (pipeline jobs, parallel and command
jobs and components).

The models describe the *shape* of a spec: which keys exist, their types, their defaults. Values that
can take several forms (an input is a literal, a binding or a data mapping; an environment is a
reference or a mapping; a job is parallel or command) are kept as ``Any`` here and validated by the
phase that understands them, so that every error can say which form was expected.

Fields marked with :func:`ignored` are Azure ML keys that Fanout accepts and does not use; they produce
a warning (see ``docs/spec.md``). Fields marked with :func:`unsupported` are rejected with an error.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from shared.models import FrozenModel
from shared.spec.fields import (
    COMMAND_TIMEOUT,
    CONCURRENCY,
    INSTANCE_COUNT,
    MAX_RETRIES,
    RUN_TIMEOUT,
    THRESHOLD,
    Bool,
    EnvironmentVariables,
    LoggingLevel,
    MiniBatchSize,
    PartitionKeys,
    ScalarText,
    Tags,
    Text,
)

IGNORED = "ignored"
UNSUPPORTED = "unsupported"


def ignored(reason: str) -> Any:
    """An Azure ML key Fanout accepts but does not use (a warning says so)."""
    return Field(default=None, description=reason, json_schema_extra={"fanout": IGNORED})


def unsupported(reason: str) -> Any:
    """An Azure ML key Fanout cannot honour (an error says so)."""
    return Field(default=None, description=reason, json_schema_extra={"fanout": UNSUPPORTED})


def example(text: str, description: str, default: Any = None) -> Any:
    """A field with an example shown in error messages."""
    return Field(default=default, description=description, json_schema_extra={"example": text})


class SpecModel(FrozenModel):
    """Base of the spec models: unknown keys are errors (with a did-you-mean)."""


# --- pieces shared by jobs and components ------------------------------------------------------


class InputSpec(SpecModel):
    """An input in mapping form: a data input (``type``/``path``/``mode``) or a declared literal
    (``type``/``default``/``optional``...)."""

    type: Text | None = example(
        "uri_folder", "uri_file, uri_folder, mltable, string, integer, number, boolean"
    )
    path: Text | None = example("./data", "Local path, azureml:// or https:// URI, asset, or a binding.")
    mode: Text | None = example("ro_mount", "ro_mount, download, direct, rw_mount, eval_mount, eval_download")
    default: Any = Field(default=None, description="Default value (literal inputs) or path (data inputs).")
    optional: Bool | None = Field(default=None, description="The input may be left without a value.")
    description: Text | None = None
    min: float | None = Field(default=None, description="Smallest value of a number/integer input.")
    max: float | None = Field(default=None, description="Largest value of a number/integer input.")
    enum: list[ScalarText] | None = Field(default=None, description="Allowed values of a string input.")
    datastore: Any = ignored("The datastore of a data input is given by its path.")
    path_on_compute: Any = ignored("Fanout chooses where inputs are materialised on a node.")


class OutputSpec(SpecModel):
    """A job or component output."""

    type: Text | None = example("uri_folder", "uri_folder (default), uri_file or mltable")
    mode: Text | None = example("rw_mount", "rw_mount (default), upload or direct")
    path: Text | None = example(
        "azureml://datastores/workspaceblobstore/paths/${{name}}/out", "Where the output is written."
    )
    name: Text | None = Field(default=None, description="Register the output as this data asset.")
    version: ScalarText | None = Field(default=None, description="Version of the registered asset.")
    description: Text | None = None
    early_available: Any = ignored("Outputs become available when their job finishes.")
    is_control: Any = ignored("Control outputs are not supported; the output is a normal output.")
    path_on_compute: Any = ignored("Fanout chooses where outputs are written on a node.")
    datastore: Any = ignored("The datastore of an output is given by its path.")


class EnvironmentSpec(SpecModel):
    """An inline environment."""

    image: Text | None = example("mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04", "Container image.")
    conda_file: Any = example("./environment/conda.yml", "Path of a conda YAML file (or the file inline).")
    name: ScalarText | None = Field(default=None, description="Accepted; inline environments are unnamed.")
    version: ScalarText | None = Field(default=None, description="Accepted; inline environments are unnamed.")
    description: Text | None = None
    tags: Tags | None = None
    build: Any = ignored("Docker build contexts are not built; give an image.")
    os_type: Any = ignored("Agents run on Linux pools (or this machine).")
    inference_config: Any = ignored("Inference servers are not part of batch jobs.")
    datastore: Any = ignored("Not used.")


class ResourcesSpec(SpecModel):
    """A job's ``resources``: how many nodes it runs on (the Batch pool decides the rest)."""

    instance_count: Annotated[int | str, INSTANCE_COUNT.validator] | None = example(
        "2", "Nodes (agents) to run on; default 1."
    )
    instance_type: Any = ignored("The pool named by compute decides the VM size.")
    shm_size: Any = ignored("Not configurable on Batch pools.")
    docker_args: Any = ignored("Not configurable on Batch pools.")
    properties: Any = ignored("Not used.")
    locations: Any = ignored("Not used.")
    max_instance_count: Any = ignored("Not used.")


class RetrySettingsSpec(SpecModel):
    """A parallel job's ``retry_settings``: retries of a failed mini-batch and the run() timeout."""

    max_retries: Annotated[int | str, MAX_RETRIES.validator] | None = example(
        "2", "Retries after the first try; default 2."
    )
    timeout: Annotated[int | str, RUN_TIMEOUT.validator] | None = example(
        "60", "Seconds one run() call may take; default 60."
    )


class LimitsSpec(SpecModel):
    """A command job's ``limits``: how long the command may run."""

    timeout: Annotated[int | str, COMMAND_TIMEOUT.validator] | None = example(
        "3600", "Seconds the command may run."
    )


class TaskSpec(SpecModel):
    """The ``task`` of a parallel job."""

    type: Literal["run_function", "function"] = Field(
        default="run_function", description="run_function ('function' is an older spelling)."
    )
    code: Text | None = example("./src", "Folder with the entry script (uploaded as a snapshot).")
    entry_script: Text | None = example("score.py", "Python file with init()/run(), relative to code.")
    environment: Any = example("azureml:my-env:1", "A reference azureml:<name>:<version> or a mapping.")
    program_arguments: ScalarText | None = example("--model ${{inputs.model}}", "Arguments for the script.")
    args: ScalarText | None = Field(default=None, description="Older name of program_arguments.")
    append_row_to: Text | None = example("${{outputs.result}}", "Output that collects run() results.")


class JobBody(SpecModel):
    """Keys every job and component has, whatever its type (each type narrows ``type`` to its name)."""

    type: str
    display_name: Text | None = None
    description: Text | None = None
    tags: Tags | None = None
    is_deterministic: Bool | None = Field(default=None, description="false: never reuse this step.")
    inputs: dict[str, Any] | None = None
    outputs: dict[str, Any] | None = None


# --- parallel --------------------------------------------------------------------------------------


class ParallelBody(JobBody):
    """Keys shared by a parallel job and a parallel component."""

    type: Literal["parallel"] = "parallel"
    input_data: Text | None = example("${{inputs.input_data}}", "The input split into mini-batches.")
    mini_batch_size: MiniBatchSize | None = example('"10kb"', "Files or bytes per mini-batch.")
    partition_keys: PartitionKeys | None = example("[Store, Brand]", "One mini-batch per key combination.")
    resources: ResourcesSpec | None = None
    max_concurrency_per_instance: Annotated[int | str, CONCURRENCY.validator] | None = example(
        "2", "Worker processes per node."
    )
    mini_batch_error_threshold: Annotated[int | str, THRESHOLD.validator] | None = example(
        "5", "Failed mini-batches tolerated; -1 = no limit."
    )
    error_threshold: Annotated[int | str, THRESHOLD.validator] | None = example(
        "5", "Failed items tolerated; -1 = no limit."
    )
    logging_level: LoggingLevel | None = example("INFO", "INFO, WARNING or DEBUG.")
    retry_settings: RetrySettingsSpec | None = None
    environment_variables: EnvironmentVariables | None = None
    task: TaskSpec | None = None


class ParallelJobSpec(ParallelBody):
    """A ``type: parallel`` job inside ``jobs:`` (inline, or using a component)."""

    component: Any = example("./score.yml", "A parallel component file, or the component inline.")
    compute: Text | None = example("azureml:cpu-cluster", "Compute name; default settings.default_compute.")
    name: Any = ignored("The job's key in jobs: is its name.")
    experiment_name: Any = ignored("Jobs belong to the pipeline's experiment.")
    identity: Any = ignored("Agents use the Batch pool's managed identity.")
    properties: Any = ignored("Not used.")


class ParallelComponentSpec(ParallelBody):
    """A parallel component file (``$schema: .../parallelComponent.schema.json``)."""

    schema_: Text | None = Field(default=None, alias="$schema", description="Accepted and not checked.")
    name: Text | None = None
    version: ScalarText | None = None


# --- command ---------------------------------------------------------------------------------------


class CommandBody(JobBody):
    """Keys shared by a command job and a command component."""

    type: Literal["command"] = "command"
    command: ScalarText | None = example("python train.py --data ${{inputs.data}}", "The shell command.")
    code: Text | None = example("./src", "Folder uploaded as the job's working directory.")
    environment: Any = example("azureml:my-env:1", "A reference azureml:<name>:<version> or a mapping.")
    environment_variables: EnvironmentVariables | None = None
    resources: ResourcesSpec | None = None
    limits: LimitsSpec | None = None
    distribution: Any = ignored("Distributed training launchers are not set up; the command runs as is.")
    additional_includes: Any = unsupported("the files in the code folder instead")


class CommandJobSpec(CommandBody):
    """A ``type: command`` job inside ``jobs:`` (inline, or using a component)."""

    component: Any = example("./train.yml", "A command component file, or the component inline.")
    compute: Text | None = example("azureml:cpu-cluster", "Compute name; default settings.default_compute.")
    name: Any = ignored("The job's key in jobs: is its name.")
    experiment_name: Any = ignored("Jobs belong to the pipeline's experiment.")
    identity: Any = ignored("Agents use the Batch pool's managed identity.")
    services: Any = ignored("Interactive services (SSH, Jupyter) are not offered.")
    queue_settings: Any = ignored("Not used.")
    properties: Any = ignored("Not used.")


class CommandComponentSpec(CommandBody):
    """A command component file (``$schema: .../commandComponent.schema.json``)."""

    schema_: Text | None = Field(default=None, alias="$schema", description="Accepted and not checked.")
    name: Text | None = None
    version: ScalarText | None = None


# --- the pipeline ----------------------------------------------------------------------------------


class PipelineSettingsSpec(SpecModel):
    """The pipeline's ``settings``: default compute and datastore, failure and reuse policy."""

    default_compute: Text | None = example("azureml:cpu-cluster", "Compute of jobs that name none.")
    default_datastore: Text | None = example("azureml:workspaceblobstore", "What ${{default_datastore}} is.")
    continue_on_step_failure: Bool | None = Field(default=None, description="Keep running other jobs.")
    force_rerun: Bool | None = Field(default=None, description="Never reuse earlier results.")
    on_init: Any = ignored("Init/finalize jobs are not supported; the job runs as an ordinary job.")
    on_finalize: Any = ignored("Init/finalize jobs are not supported; the job runs as an ordinary job.")
    default_environment: Any = ignored("Not used.")


class PipelineSpec(SpecModel):
    """A ``type: pipeline`` job file."""

    schema_: Text | None = Field(default=None, alias="$schema", description="Accepted and not checked.")
    type: Literal["pipeline"] = Field(
        description="Must be 'pipeline'.", json_schema_extra={"example": "pipeline"}
    )
    display_name: Text | None = None
    description: Text | None = None
    experiment_name: Text | None = None
    tags: Tags | None = None
    settings: PipelineSettingsSpec | None = None
    inputs: dict[str, Any] | None = None
    outputs: dict[str, Any] | None = None
    jobs: dict[str, Any] = Field(
        description="The steps.", json_schema_extra={"example": "{<name>: {type: parallel, ...}}"}
    )
    name: Any = ignored("The run id is chosen when the run is submitted.")
    identity: Any = ignored("Agents use the Batch pool's managed identity.")
    properties: Any = ignored("Not used.")
    services: Any = ignored("Not used.")
    compute: Any = ignored("Use settings.default_compute.")
