"""Resuming a failed or canceled run: a new run that keeps the old run's finished work.

``fanout resume RUN`` and ``POST /api/runs/{id}/resume`` call :func:`resume_run`, which starts a **new
run** (new id, ``RunPlan.resumed_from`` = the old run, shown by the run index and the API) from the
old run's frozen plan:

- the same jobs, code snapshots (pinned when the old run was frozen), parameters and settings; the
  output locations move to the new run's folder (the run id in them is replaced, as step reuse
  compares them); a data asset input given as ``@latest`` is pinned to the version the old run read,
  so "latest" means what it meant then;
- jobs that ended ``Completed`` or ``Reused`` in the old run are taken over when their fingerprint is
  unchanged (``shared.orchestration.prepare``) — also those step reuse would not offer
  (``is_deterministic: false``, ``force_rerun``): the resume continues that run rather than starting
  a new one;
- a parallel job that failed or was canceled part-way keeps its finished mini-batches
  (``shared.runtime.resume``); only the others are dispatched.

**Inputs that changed** since the old run are not refused: the fingerprint of every job sees the data
(names, sizes, Content-MD5), so a job whose inputs changed simply runs in full, and so does whatever
depends on it; everything else is kept. A resume is exactly as safe as step reuse.

Only ``Failed`` and ``Canceled`` runs can be resumed (:class:`~shared.errors.ConflictError` otherwise,
409 over HTTP), and a run is resumed by one run at a time: while its latest resume has not ended, a
second resume is refused (two runs would do the same work). Resuming a resumed run works the same way
(chains): what the middle run carried over is carried again.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from shared.errors import ConflictError, NotFoundError
from shared.orchestration import run_index
from shared.orchestration.client import DurableClient, start_run
from shared.orchestration.contracts import ResolvedInput, RunStatus, StepRef
from shared.plan import AssetRef, DataInput, InputPlan, OutputPlan, RunPlan
from shared.runs import load_plan, load_step_definition
from shared.storage import StorageClients

logger = logging.getLogger(__name__)

RESUMABLE = (RunStatus.FAILED, RunStatus.CANCELED)
_PREFIX = "resume-"

__all__ = [
    "RESUMABLE",
    "pinned_asset_versions",
    "prepare_resume",
    "resume_run",
    "resume_run_id",
    "resumed_plan",
]


def resume_run(
    clients: StorageClients,
    client: DurableClient,
    run_id: str,
    *,
    trace: Mapping[str, str] | None = None,
    new_run_id: str | None = None,
) -> RunPlan:
    """Start a run that resumes ``run_id`` (module docstring); returns the new run's plan.

    Raises:
        NotFoundError: no run has this id.
        ConflictError: the run has not failed or been canceled, or another resume of it is running.
    """
    plan = prepare_resume(clients, run_id, trace=trace, new_run_id=new_run_id)
    start_run(clients, client, plan)
    return plan


def prepare_resume(
    clients: StorageClients,
    run_id: str,
    *,
    trace: Mapping[str, str] | None = None,
    new_run_id: str | None = None,
) -> RunPlan:
    """Check that ``run_id`` can be resumed, record the new run as its resume, return the new plan
    (not started: :func:`shared.orchestration.client.start_run` starts it).

    Raises:
        NotFoundError: no run has this id.
        ConflictError: the run has not failed or been canceled, or another resume of it is running.
    """
    entry, etag = run_index.read_for_update(clients, run_id)
    if entry.status not in RESUMABLE:
        raise ConflictError(
            _not_resumable(run_id, entry.status), run_id=run_id, run_status=entry.status.value
        )
    if entry.resumed_by:
        current = run_index.find_run(clients, entry.resumed_by)
        if current is not None and not current.status.is_terminal:
            raise ConflictError(
                f"run {run_id!r} is already being resumed by run {entry.resumed_by!r} "
                f"({current.status.value}); wait for that run to end (and resume it if it fails)",
                run_id=run_id,
                resumed_by=entry.resumed_by,
            )
    old = load_plan(clients, run_id)
    plan = resumed_plan(
        old,
        new_run_id or resume_run_id(run_id),
        trace=trace or {},
        pinned=pinned_asset_versions(clients, old),
    )
    if not run_index.set_resumed_by(clients, run_id, plan.run_id, etag=etag):
        raise ConflictError(
            f"run {run_id!r} was resumed by another request at the same time; see its resumed_by",
            run_id=run_id,
        )
    logger.info("run %s resumes run %s", plan.run_id, run_id)
    return plan


def resume_run_id(run_id: str) -> str:
    """A fresh id for a run resuming ``run_id``: ``resume-<old id, shortened>-<UTC time>-<hex>``."""
    from shared.ingest import new_run_id

    return new_run_id(_PREFIX + run_id.removeprefix(_PREFIX))


def resumed_plan(
    old: RunPlan,
    run_id: str,
    *,
    trace: Mapping[str, str],
    pinned: Mapping[str, Mapping[str, str]],
) -> RunPlan:
    """The plan of the run resuming ``old``: the same jobs under ``run_id`` (output locations moved
    to the new run), ``@latest`` assets pinned to ``pinned[job][input]``, the new trace context."""
    jobs = [
        job.model_copy(
            update={
                "outputs": {name: _moved(output, old.run_id, run_id) for name, output in job.outputs.items()},
                "inputs": {
                    name: _pinned(planned, pinned.get(job.name, {}).get(name))
                    for name, planned in job.inputs.items()
                },
            }
        )
        for job in old.jobs
    ]
    return old.model_copy(
        update={"run_id": run_id, "jobs": jobs, "trace": dict(trace), "resumed_from": old.run_id}
    )


def pinned_asset_versions(clients: StorageClients, plan: RunPlan) -> dict[str, dict[str, str]]:
    """``job -> input -> version`` of every data asset a started job of ``plan`` resolved."""
    pinned: dict[str, dict[str, str]] = {}
    for job in plan.jobs:
        try:
            definition = load_step_definition(clients, StepRef(run_id=plan.run_id, job=job.name))
        except NotFoundError:
            continue  # the job never started: its assets are resolved when it does
        for name, value in definition.inputs.items():
            if isinstance(value, ResolvedInput) and value.asset and ":" in value.asset:
                pinned.setdefault(job.name, {})[name] = value.asset.rsplit(":", 1)[1]
    return pinned


def _moved(output: OutputPlan, old_run: str, new_run: str) -> OutputPlan:
    location = output.location.model_copy(update={"path": output.location.path.replace(old_run, new_run)})
    return output.model_copy(update={"location": location})


def _pinned(planned: InputPlan, version: str | None) -> InputPlan:
    if version is None or not isinstance(planned, DataInput) or not isinstance(planned.source, AssetRef):
        return planned
    if planned.source.version is not None:
        return planned
    return planned.model_copy(update={"source": planned.source.model_copy(update={"version": version})})


def _not_resumable(run_id: str, status: RunStatus) -> str:
    if status is RunStatus.COMPLETED:
        return (
            f"run {run_id!r} completed; there is nothing to resume (submit the pipeline again: unchanged "
            "jobs are reused)"
        )
    return (
        f"run {run_id!r} is {status.value}; only a Failed or Canceled run can be resumed (cancel it "
        "first, or wait for it to end)"
    )
