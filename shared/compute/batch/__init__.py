"""The Azure Batch executor (``FANOUT_EXECUTOR=batch``): one Batch job per step, one agent task per node.

Modules: :mod:`.targets` (compute names → pools, ids, default workers), :mod:`.submission` (node
settings, the agent wheel and the pool's shape, gathered before submitting), :mod:`.specs` (the job, its
environment preparation task and the agent tasks as Batch REST objects), :mod:`.tasks` (adding tasks
idempotently), :mod:`.status` (reading a job's task states), :mod:`.diagnostics` (Batch states and
failures in words), :mod:`.executor` (:class:`BatchExecutor`). Node environments are built by
:mod:`shared.compute.environment`.
"""

from shared.compute.batch.diagnostics import agents_report
from shared.compute.batch.executor import BatchExecutor, make_batch_client
from shared.compute.batch.targets import batch_job_id, default_workers, resolve_target

__all__ = [
    "BatchExecutor",
    "agents_report",
    "batch_job_id",
    "default_workers",
    "make_batch_client",
    "resolve_target",
]
