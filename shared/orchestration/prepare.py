"""The ``prepare_step`` activity body: resolve a job's inputs, fingerprint it, and reuse an earlier run.

1. Every data input is resolved to a location: blobs and URLs as they are, ``azureml:name:version``
   through the registry (the version used is kept for lineage), ``${{parent.jobs.j.outputs.o}}``
   from the upstream job's result (which may itself have been reused from an older run).
2. The job's fingerprint (code, inputs' identities, parameters, result-changing settings) is
   computed by ``shared.reuse.fingerprint_step`` and ``step.json`` is written.
3. Unless reuse is off (``is_deterministic: false``, ``force_rerun``, ``--force-rerun``), a completed
   step with the same fingerprint whose outputs still exist is reused: its outputs become this job's,
   ``result.json`` and ``logs/job_result.txt`` say so, and no agent starts.
"""

from __future__ import annotations

import logging

from shared.errors import DataError
from shared.orchestration.contracts import ResolvedInput, StepDefinition, StepPrepared, StepStart
from shared.orchestration.models import reused_result
from shared.plan import AssetRef, BlobData, DataInput, JobOutputRef, JobPlan, LiteralInput, LocalData, UrlData
from shared.runs import load_plan, save_step_definition, save_step_result
from shared.storage import StorageClients

logger = logging.getLogger(__name__)


def prepare_step(clients: StorageClients, start: StepStart) -> StepPrepared:
    """Phases 1–3 of the module docstring.

    Raises:
        DataError: an input cannot be resolved (local path never uploaded, missing upstream output).
        RegistryError: an asset reference names no registered version.
    """
    from shared import registry, reuse
    from shared.orchestration.finalize import write_job_result

    step = start.step
    plan = load_plan(clients, step.run_id)
    job = plan.job(step.job)
    inputs = resolve_inputs(clients, job, start.upstream_outputs)
    fingerprint = reuse.fingerprint_step(clients, plan, job, inputs)
    definition = StepDefinition(step=step, inputs=inputs, outputs=dict(job.outputs), fingerprint=fingerprint)
    save_step_definition(clients, definition)

    if not reuse.reuse_enabled(plan, job, force_rerun=start.force_rerun):
        return StepPrepared(step=step, fingerprint=fingerprint)
    hit = reuse.find_reusable(clients, fingerprint)
    if hit is None or hit.run_id == step.run_id:
        return StepPrepared(step=step, fingerprint=fingerprint)
    prepared = StepPrepared(
        step=step, fingerprint=fingerprint, reused_from=hit.run_id, outputs=dict(hit.outputs)
    )
    registered = registry.register_outputs(clients, plan, job, reused_result(prepared), definition=definition)
    prepared = prepared.model_copy(update={"registered_assets": registered})
    result = reused_result(prepared)
    save_step_result(clients, result)
    write_job_result(clients, result)
    logger.info("%s/%s reuses run %s", step.run_id, step.job, hit.run_id)
    return prepared


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
