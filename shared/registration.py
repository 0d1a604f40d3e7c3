"""Registering a finished job's named outputs as data assets (Azure ML v1's ``register_on_complete``).

An output with ``name:`` (and optionally ``version:``) becomes a new version of that data asset when its
job completes. This module holds the policy — which jobs register, when a reused step may skip it, what
lineage a version records — on top of the version store of :mod:`shared.registry`, which knows nothing
of runs, steps or results. It is called by the step's finalize (and by prepare, for a reused step).

Decisions:

- **Failed, canceled and skipped jobs register nothing**; ``Completed`` and ``Reused`` jobs do.
- **Reused steps** register only when no version of the name already points at the reused location, so
  re-running an unchanged pipeline does not pile up identical versions.
- **Lineage** records the run, job, output, the step's reuse fingerprint and its data inputs (an asset
  as ``name:version``, anything else as its URI), from the step definition or else the stored
  ``step.json``; a retried registration of the same run/job/output returns the version it already made
  (:func:`shared.registry.register_asset`).
"""

from __future__ import annotations

from shared.errors import NotFoundError
from shared.orchestration.contracts import ResolvedInput, StepDefinition, StepResult, StepStatus
from shared.plan import JobPlan, RunPlan
from shared.registry import AssetLineage, location_uri, register_asset, version_at
from shared.storage import StorageClients


def register_outputs(
    clients: StorageClients,
    plan: RunPlan,
    job: JobPlan,
    result: StepResult,
    *,
    definition: StepDefinition | None = None,
) -> list[str]:
    """Register a finished job's named outputs as data assets; ``["name:version", ...]``.

    Only for ``Completed`` (and ``Reused``) jobs — any other status registers nothing. Lineage records
    the run, job, output, fingerprint and data inputs (from ``definition``, else the stored step.json).

    Raises:
        RegistryError: an explicit ``version:`` already exists with other content.
    """
    if result.status not in (StepStatus.COMPLETED, StepStatus.REUSED):
        return []
    named = {name: output for name, output in job.outputs.items() if output.asset_name}
    if not named:
        return []
    if definition is None:
        definition = _load_definition(clients, result)
    inputs = {}
    if definition is not None:
        for input_name, value in definition.inputs.items():
            if isinstance(value, ResolvedInput):
                inputs[input_name] = value.asset or location_uri(value.location)
    registered = []
    for output_name, output in named.items():
        asset_name = output.asset_name or output_name
        location = result.outputs.get(output_name, output.location)
        if result.status is StepStatus.REUSED:
            existing = version_at(clients, asset_name, location_uri(location))
            if existing is not None:
                registered.append(f"{asset_name}:{existing}")
                continue
        lineage = AssetLineage(
            run_id=plan.run_id,
            job=job.name,
            output=output_name,
            fingerprint=definition.fingerprint if definition is not None else "",
            inputs=inputs,
            reused_from=result.reused_from,
        )
        asset = register_asset(
            clients, asset_name, location, type=output.type, version=output.asset_version, lineage=lineage
        )
        registered.append(f"{asset.name}:{asset.version}")
    return registered


def _load_definition(clients: StorageClients, result: StepResult) -> StepDefinition | None:
    from shared.runs import load_step_definition

    try:
        return load_step_definition(clients, result.step)
    except NotFoundError:
        return None
