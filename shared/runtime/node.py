"""Preparing a node for a parallel step: code, whole inputs, output folders, arguments, environment.

Everything an agent computes once before it starts workers lives in :class:`NodeContext`. The node's
folder is ``<FANOUT_HOME>/agents/<run>/<job>/node-<id>/`` (on Batch, FANOUT_HOME is the task's working
directory)::

    code/        the code snapshot (when the job's code is a snapshot id)
    inputs/<x>/  whole inputs (e.g. the model folder) for ${{inputs.x}}
    cache/       mini-batch data, downloaded by the workers
    outputs/<y>/ what ${{outputs.y}} and AZUREML_BI_OUTPUT_PATH point at (uploaded as it appears)
    work/<process>/   each worker's working directory
    logs-<agent>/     this agent incarnation's logs (uploaded to the log tree)
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from shared.errors import ExecutionError
from shared.orchestration.contracts import ResolvedInput, StepDefinition, StepRef
from shared.plan import DataInput, JobPlan, ParallelSettings, RunPlan
from shared.runtime import inputs
from shared.runtime.appendrow import MAX_BLOCKS_PER_BLOB, append_row_location, output_target
from shared.runtime.outputs import LocalOutput, local_output
from shared.runtime.protocol import AppendRowConfig
from shared.runtime.records import StepDocument
from shared.settings import Settings
from shared.storage import StorageClients

logger = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
_PLACEHOLDER = re.compile(r"\$\{\{\s*(inputs|outputs)\.([A-Za-z_][A-Za-z0-9_.-]*)\s*\}\}")


@dataclass
class NodeContext:
    """What the agent of one node knows about its step before it starts workers."""

    clients: StorageClients
    step: StepRef
    plan: RunPlan
    job: JobPlan
    parallel: ParallelSettings
    definition: StepDefinition
    document: StepDocument
    manifest: inputs.Manifest
    node_id: int
    agent_id: str
    node_dir: Path
    logs_root: Path
    code_dir: Path
    argv: list[str]
    environment: dict[str, str]
    outputs: list[LocalOutput]
    bi_output_dir: Path
    append_row: AppendRowConfig | None
    workers: int
    gpus: int
    manifest_file: Path

    @property
    def total(self) -> int:
        """Mini-batches in the step (its manifest's count)."""
        return self.manifest.count


def node_folder(settings: Settings, step: StepRef, node_id: int) -> Path:
    """This node's folder for the step (the layout is in the module docstring)."""
    return (settings.home / "agents" / step.run_id / step.job / f"node-{node_id}").resolve()


def detect_gpus(settings: Settings) -> int:
    """GPUs of this node: the ``gpu_count`` setting, else ``nvidia-smi --list-gpus``, else 0."""
    if settings.gpu_count is not None:
        return settings.gpu_count
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return 0
    try:
        listing = subprocess.run(
            [smi, "--list-gpus"], capture_output=True, text=True, timeout=20, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return 0
    return sum(1 for line in listing.stdout.splitlines() if line.startswith("GPU "))


def worker_count(parallel: ParallelSettings, override: int | None, gpus: int) -> int:
    """``--workers``, else ``max_concurrency_per_instance``, else one per GPU, else one per core."""
    if override is not None:
        return override
    if parallel.max_concurrency_per_instance is not None:
        return parallel.max_concurrency_per_instance
    if gpus > 0:
        return gpus
    return os.cpu_count() or 1


def substitute(tokens: list[str], values: dict[tuple[str, str], str], *, where: str) -> list[str]:
    """Replace ``${{inputs.x}}`` / ``${{outputs.y}}`` inside each token with local paths.

    Raises:
        ExecutionError: a placeholder names an input or output the job does not have.
    """

    def replace(match: re.Match[str]) -> str:
        key = (match.group(1), match.group(2))
        if key not in values:
            raise ExecutionError(
                f"{where}: {match.group(0)} names no {match.group(1)[:-1]} of the job "
                f"(known: {', '.join(sorted(f'{k}.{n}' for k, n in values)) or 'none'})"
            )
        return values[key]

    return [_PLACEHOLDER.sub(replace, token) for token in tokens]


def prepare_code(clients: StorageClients, job: JobPlan, node_dir: Path) -> Path:
    """The job's code folder: its local path, or its snapshot materialised on this node."""
    if job.code is None:
        raise ExecutionError(f"job {job.name} has no code folder, so no entry script", job=job.name)
    if job.code.snapshot:
        from shared.snapshot import materialize_snapshot

        path: Path = materialize_snapshot(clients, job.code.snapshot, node_dir.parent / "code-cache")
        return path
    if job.code.local_path:
        return Path(job.code.local_path)
    raise ExecutionError(f"job {job.name}: code has neither a local path nor a snapshot", job=job.name)


def prepare_inputs(
    clients: StorageClients,
    job: JobPlan,
    definition: StepDefinition,
    parallel: ParallelSettings,
    node_dir: Path,
) -> dict[tuple[str, str], str]:
    """Materialise every whole input once for the node; returns placeholder values."""
    values: dict[tuple[str, str], str] = {}
    for name, planned in job.inputs.items():
        resolved = definition.inputs.get(name)
        if not isinstance(planned, DataInput):
            if resolved is not None and not isinstance(resolved, ResolvedInput):
                values[("inputs", name)] = str(resolved.value)
            continue
        if name == parallel.input_data:
            values[("inputs", name)] = str(node_dir / "cache")
            continue
        if not isinstance(resolved, ResolvedInput):
            raise ExecutionError(f"input {name} of job {job.name} was not resolved", job=job.name, input=name)
        values[("inputs", name)] = inputs.input_argument(
            clients, resolved.location, planned.type, planned.mode, node_dir / "inputs" / name
        )
    return values


def prepare_outputs(
    job: JobPlan, definition: StepDefinition, parallel: ParallelSettings, node_dir: Path
) -> tuple[list[LocalOutput], Path]:
    """Local folders of the outputs, and the folder AZUREML_BI_OUTPUT_PATH points at."""
    plans = {**job.outputs, **definition.outputs}
    outputs = [local_output(name, plan, node_dir / "outputs") for name, plan in sorted(plans.items())]
    by_name = {o.name: o for o in outputs}
    if parallel.append_row_to and parallel.append_row_to in by_name:
        target = by_name[parallel.append_row_to]
        target.skip.add(target.placeholder_path.name if target.is_file else parallel.append_row_file_name)
        return outputs, target.local_dir
    folders = [o for o in outputs if not o.is_file]
    bi_output = folders[0].local_dir if folders else node_dir / "outputs" / "_scratch"
    return outputs, bi_output


def append_row_config(
    step: StepRef,
    *,
    job: JobPlan,
    definition: StepDefinition,
    parallel: ParallelSettings,
    document: StepDocument,
    total: int,
) -> AppendRowConfig | None:
    """How the workers stage ``append_row_to`` rows; None when the job collects none.

    Raises:
        ExecutionError: append_row_to names an output the job does not have.
    """
    if not parallel.append_row_to:
        return None
    plans = {**job.outputs, **definition.outputs}
    if parallel.append_row_to not in plans:
        raise ExecutionError(
            f"append_row_to names output {parallel.append_row_to!r}, which job {job.name} does not have",
            job=job.name,
        )
    final = append_row_location(plans[parallel.append_row_to], parallel)
    target = output_target(step, final, total, document.blocks_per_blob or MAX_BLOCKS_PER_BLOB)
    return AppendRowConfig(
        format=parallel.append_row_format,
        dataframe_header=parallel.append_row_dataframe_header,
        final=final,
        total_mini_batches=total,
        blocks_per_blob=target.blocks_per_blob,
        staging_prefix=target.staging_prefix,
    )


def worker_environment(job: JobPlan, bi_output_dir: Path) -> dict[str, str]:
    """The workers' environment: the agent's, the job's variables, AZUREML_BI_OUTPUT_PATH, our package."""
    env = dict(os.environ)
    env.update(job.environment_variables)
    env["AZUREML_BI_OUTPUT_PATH"] = str(bi_output_dir)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH", "")) if p)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def prepare_node(
    clients: StorageClients, step: StepRef, node_id: int, *, workers: int | None, settings: Settings
) -> NodeContext:
    """Read the step's plan, definition and manifest, and set up this node's folders and inputs.

    Raises:
        ExecutionError: the job is not a parallel job, or its plan cannot work on a node (an unknown
            placeholder, an append_row_to output the job does not have, no code folder).
    """
    import secrets

    from shared.runs import load_plan, load_step_definition
    from shared.runtime.records import read_step_document

    plan = load_plan(clients, step.run_id)
    job = plan.job(step.job)
    if job.parallel is None:
        raise ExecutionError(f"job {job.name} is not a parallel job", run_id=step.run_id, job=job.name)
    parallel = job.parallel
    definition = load_step_definition(clients, step)
    document = read_step_document(clients, step)
    if document is None:
        raise ExecutionError(
            f"step {step.run_id}/{step.job} was not planned (no step document): run plan_step first",
            run_id=step.run_id,
            job=step.job,
        )
    manifest = inputs.load_manifest(clients, step)
    node_dir = node_folder(settings, step, node_id)
    agent_id = f"{node_id}-{secrets.token_hex(4)}"
    logs_root = node_dir / f"logs-{agent_id}"
    logs_root.mkdir(parents=True, exist_ok=True)
    manifest_file = node_dir / f"manifest-{agent_id}.json"
    manifest_file.write_text(manifest.model_dump_json())
    code_dir = prepare_code(clients, job, node_dir)
    values = prepare_inputs(clients, job, definition, parallel, node_dir)
    outputs, bi_output_dir = prepare_outputs(job, definition, parallel, node_dir)
    bi_output_dir.mkdir(parents=True, exist_ok=True)
    for output in outputs:
        values[("outputs", output.name)] = str(output.placeholder_path)
        output.local_dir.mkdir(parents=True, exist_ok=True)
    argv = substitute(parallel.program_arguments, values, where=f"program_arguments of job {job.name}")
    gpus = detect_gpus(settings)
    total = manifest.count
    return NodeContext(
        clients=clients,
        step=step,
        plan=plan,
        job=job,
        parallel=parallel,
        definition=definition,
        document=document,
        manifest=manifest,
        node_id=node_id,
        agent_id=agent_id,
        node_dir=node_dir,
        logs_root=logs_root,
        code_dir=code_dir,
        argv=argv,
        environment=worker_environment(job, bi_output_dir),
        outputs=outputs,
        bi_output_dir=bi_output_dir,
        append_row=append_row_config(
            step, job=job, definition=definition, parallel=parallel, document=document, total=total
        ),
        workers=worker_count(parallel, workers, gpus),
        gpus=gpus,
        manifest_file=manifest_file,
    )
