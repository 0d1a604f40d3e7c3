"""The ``prepare_step`` activity body: resolve a job's inputs, fingerprint it, and reuse an earlier run.

1. Every data input is resolved to a location: blobs and URLs as they are, ``azureml:name:version``
   through the registry (the version used is kept for lineage), ``${{parent.jobs.j.outputs.o}}``
   from the upstream job's result (which may itself have been reused from an older run).
2. The job's fingerprint (code, inputs' identities, parameters, result-changing settings) is
   computed by ``shared.reuse.fingerprint_step`` and ``step.json`` is written.
3. Unless reuse is off (``is_deterministic: false``, ``force_rerun``, ``--force-rerun``), a completed
   step with the same fingerprint whose outputs still exist is reused: its outputs become this job's,
   ``result.json`` and ``logs/job_result.txt`` say so, and no agent starts.

In a run that resumes another (``RunPlan.resumed_from``), the job's result in that run comes first: if
it ended ``Completed`` or ``Reused`` with the same fingerprint and its outputs still exist, it is taken
over the same way — whatever the reuse settings, since the resume continues that run.
"""

from __future__ import annotations

import logging

from shared.errors import DataError, NotFoundError
from shared.orchestration.contracts import (
    ResolvedInput,
    StepDefinition,
    StepPrepared,
    StepRef,
    StepResult,
    StepStart,
    StepStatus,
)
from shared.orchestration.models import reused_result
from shared.plan import AssetRef, BlobData, DataInput, JobOutputRef, JobPlan, LiteralInput, LocalData, UrlData
from shared.runs import (
    load_plan,
    load_step_definition,
    load_step_result,
    save_step_definition,
    save_step_result,
)
from shared.storage import StorageClients

logger = logging.getLogger(__name__)


def prepare_step(clients: StorageClients, start: StepStart) -> StepPrepared:
    """Phases 1–3 of the module docstring.

    Raises:
        DataError: an input cannot be resolved (local path never uploaded, missing upstream output).
        RegistryError: an asset reference names no registered version.
    """
    from shared import reuse
    from shared.orchestration.finalize import write_job_result
    from shared.registration import register_outputs

    step = start.step
    plan = load_plan(clients, step.run_id)
    job = plan.job(step.job)
    inputs = resolve_inputs(clients, job, start.upstream_outputs)
    fingerprint = reuse.fingerprint_step(clients, plan, job, inputs)
    definition = StepDefinition(step=step, inputs=inputs, outputs=dict(job.outputs), fingerprint=fingerprint)
    save_step_definition(clients, definition)

    taken = _resumed_result(clients, plan.resumed_from, step.job, fingerprint)
    if taken is not None:
        prepared = StepPrepared(
            step=step, fingerprint=fingerprint, reused_from=taken.reused_from, outputs=dict(taken.outputs)
        )
    else:
        if not reuse.reuse_enabled(plan, job, force_rerun=start.force_rerun):
            return StepPrepared(step=step, fingerprint=fingerprint)
        hit = reuse.find_reusable(clients, fingerprint)
        if hit is None or hit.run_id == step.run_id:
            return StepPrepared(step=step, fingerprint=fingerprint)
        prepared = StepPrepared(
            step=step, fingerprint=fingerprint, reused_from=hit.run_id, outputs=dict(hit.outputs)
        )
    registered = register_outputs(clients, plan, job, reused_result(prepared), definition=definition)
    prepared = prepared.model_copy(update={"registered_assets": registered})
    result = reused_result(prepared)
    save_step_result(clients, result)
    write_job_result(clients, result)
    logger.info("%s/%s reuses run %s", step.run_id, step.job, prepared.reused_from)
    return prepared


def _resumed_result(
    clients: StorageClients, resumed_from: str | None, job: str, fingerprint: str
) -> StepResult | None:
    """The resumed run's result of ``job`` when it can stand in: Completed or Reused, the same
    fingerprint, outputs still there. Its ``reused_from`` is the run that produced the outputs."""
    if not resumed_from:
        return None
    old = StepRef(run_id=resumed_from, job=job)
    try:
        result = load_step_result(clients, old)
        definition = load_step_definition(clients, old)
    except NotFoundError:
        return None
    if (
        result.status not in (StepStatus.COMPLETED, StepStatus.REUSED)
        or definition.fingerprint != fingerprint
    ):
        return None
    missing = [name for name, location in result.outputs.items() if not _stored(clients, location)]
    if missing:
        logger.info("%s/%s: not taking over outputs %s: they no longer exist", resumed_from, job, missing)
        return None
    return result.model_copy(update={"reused_from": result.reused_from or resumed_from})


def _stored(clients: StorageClients, location: BlobData) -> bool:
    """The blob, or at least one blob under the prefix, exists."""
    container = clients.blob.get_container_client(location.container)
    path = location.path.strip("/")
    if path and container.get_blob_client(path).exists():
        return True
    return next(iter(container.list_blobs(name_starts_with=f"{path}/", results_per_page=1)), None) is not None


def resolve_inputs(
    clients: StorageClients, job: JobPlan, upstream_outputs: dict[str, dict[str, BlobData]]
) -> dict[str, ResolvedInput | LiteralInput]:
    """Every input of ``job`` with its data located (see the module docstring)."""
    from shared import registry

    resolved: dict[str, ResolvedInput | LiteralInput] = {}
    for name, planned in job.inputs.items():
        if isinstance(planned, LiteralInput):
            resolved[name] = planned
            continue
        assert isinstance(planned, DataInput)
        source = planned.source
        if isinstance(source, BlobData | UrlData):
            resolved[name] = ResolvedInput(location=source)
        elif isinstance(source, AssetRef):
            resolved[name] = registry.resolve_asset(clients, source)
        elif isinstance(source, JobOutputRef):
            resolved[name] = ResolvedInput(location=_upstream(job, name, source, upstream_outputs))
        elif isinstance(source, LocalData):
            raise DataError(
                f"input {name!r} of job {job.name!r} is the local path {source.path}, which was never "
                "uploaded; submit the pipeline with `fanout run` or `fanout submit`, which upload local data",
                job=job.name,
                input=name,
            )
    return resolved


def _upstream(
    job: JobPlan, name: str, ref: JobOutputRef, upstream_outputs: dict[str, dict[str, BlobData]]
) -> BlobData:
    outputs = upstream_outputs.get(ref.job)
    if outputs is None or ref.output not in outputs:
        raise DataError(
            f"input {name!r} of job {job.name!r} binds to output {ref.output!r} of job {ref.job!r}, "
            "which that job did not produce",
            job=job.name,
            input=name,
        )
    return outputs[ref.output]
