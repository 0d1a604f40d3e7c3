"""Names and targets of the Batch executor: which pool a job runs on, and how Batch objects are named.

- A job's ``compute:`` name (``azureml:`` prefix ignored) is looked up in ``FANOUT_COMPUTE_TARGETS``;
  an unknown name, or no name at all, uses the ``default`` entry when there is one.
- One Batch job per step, with a stable id derived from the run id and the job name, so every call for
  the same step addresses the same Batch job (a second ``start`` is a no-op, ``stop`` finds it).
- Agent task ``i`` is ``agent-<i>`` and runs the agent with ``--node-id i``.
- Workers per agent default to the node's GPU count on GPU pools and to its cores on CPU pools.
"""

from __future__ import annotations

import hashlib
import re

from shared.errors import ComputeError, ConfigurationError
from shared.settings import ComputeTarget, PoolKind, Settings

DEFAULT_TARGET = "default"
_ID_SAFE = re.compile(r"[^A-Za-z0-9_-]+")
_TASK_ID = re.compile(r"^agent-(\d+)$")
#: Batch job and task ids: at most 64 characters.
MAX_ID_LENGTH = 64


def resolve_target(settings: Settings, compute: str | None) -> tuple[str, ComputeTarget]:
    """The compute target of a job: ``(name used, target)``.

    Raises:
        ConfigurationError: neither the name nor ``default`` is configured; the message lists the
            names that are.
    """
    name = (compute or "").removeprefix("azureml:").strip()
    targets = settings.compute_targets
    if name and name in targets:
        return name, targets[name]
    if DEFAULT_TARGET in targets:
        return DEFAULT_TARGET, targets[DEFAULT_TARGET]
    known = ", ".join(sorted(targets)) or "none"
    wanted = f"compute '{name}'" if name else "a job without compute:"
    raise ConfigurationError(
        f"{wanted} has no Batch pool: FANOUT_COMPUTE_TARGETS names {known}; add it (or a 'default' "
        'entry), e.g. {"' + (name or DEFAULT_TARGET) + '": {"pool_id": "fanout-cpu", "kind": "cpu"}}',
        compute=name or None,
    )


def default_workers(target: ComputeTarget) -> int:
    """max_concurrency_per_instance when the job sets none: one worker per GPU on GPU pools, one per
    core on CPU pools (a GPU target with ``gpus: 0`` falls back to its cores)."""
    if target.kind is PoolKind.GPU and target.gpus > 0:
        return target.gpus
    return target.cores


def batch_job_id(run_id: str, job: str) -> str:
    """The Batch job id of a step: readable, unique, stable, and a valid Batch id (≤ 64 characters).

    Batch ids are case-insensitive, so the hash is taken over the exact names and keeps ids apart.
    """
    digest = hashlib.sha256(f"{run_id}/{job}".encode()).hexdigest()[:12]
    readable = _ID_SAFE.sub("-", f"{run_id}-{job}").strip("-")
    readable = readable[: MAX_ID_LENGTH - len("fanout--") - len(digest)].strip("-")
    return f"fanout-{readable}-{digest}"


def agent_task_id(node_id: int) -> str:
    """The task id of agent ``node_id`` (stable: resubmitting the same task is recognised)."""
    return f"agent-{node_id}"


def node_id_of(task_id: str) -> int:
    """The node id of an agent task id.

    Raises:
        ComputeError: the id is not one of Fanout's agent task ids.
    """
    match = _TASK_ID.match(task_id)
    if not match:
        raise ComputeError(f"Batch task '{task_id}' is not a Fanout agent task (expected 'agent-<n>')")
    return int(match.group(1))
