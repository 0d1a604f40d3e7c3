"""Names of the durable orchestrators, activities and external events, and the instance ids of a run.

Every name the durable engines, the Function App blueprints, the local host and the HTTP API use lives
here once (STYLE habit 4). The orchestration of a run has the instance id :func:`instance_id_for`
(``run id`` itself), so the API can find, query, signal and cancel a run knowing only its id; each job of
the run is a sub-orchestration with the instance id :func:`step_instance_id`.
"""

from __future__ import annotations

import hashlib
from typing import Final

# --- orchestrators -----------------------------------------------------------------------------------

#: The pipeline orchestration: one per run, instance id = ``instance_id_for(run_id)``.
RUN_PIPELINE: Final = "run_pipeline"
#: One job of a pipeline (parallel or command): a sub-orchestration of ``run_pipeline``.
RUN_STEP: Final = "run_step"

ORCHESTRATORS: Final = (RUN_PIPELINE, RUN_STEP)

# --- activities --------------------------------------------------------------------------------------

SET_RUN_STATUS: Final = "set_run_status"
PREPARE_STEP: Final = "prepare_step"
PLAN_STEP: Final = "plan_step"
DISPATCH_STEP: Final = "dispatch_step"
START_AGENTS: Final = "start_agents"
READ_PROGRESS: Final = "read_progress"
STOP_AGENTS: Final = "stop_agents"
FINALIZE_STEP: Final = "finalize_step"
#: Records jobs that never ran (skipped after an upstream failure, or canceled) with their reason.
SKIP_STEPS: Final = "skip_steps"
#: Marks a run as cancel-requested and asks each running step to stop (through the events queue).
CANCEL_STEPS: Final = "cancel_steps"

ACTIVITIES: Final = (
    SET_RUN_STATUS,
    PREPARE_STEP,
    PLAN_STEP,
    DISPATCH_STEP,
    START_AGENTS,
    READ_PROGRESS,
    STOP_AGENTS,
    FINALIZE_STEP,
    SKIP_STEPS,
    CANCEL_STEPS,
)

# --- external events -----------------------------------------------------------------------------

#: Raised on a step's orchestration when its mini-batches settled or a threshold was crossed
#: (data: ignored; the orchestrator re-reads the tallies).
STEP_SETTLED_EVENT: Final = "step_settled"
#: Raised on a run's (pipeline) orchestration to cancel the run; propagated to running steps.
CANCEL_EVENT: Final = "cancel"

# --- instance ids ----------------------------------------------------------------------------------

#: Durable Functions rejects instance ids longer than this (and ids containing / \ # ?).
MAX_INSTANCE_ID_LENGTH: Final = 100
_STEP_SEPARATOR: Final = ":"


def instance_id_for(run_id: str) -> str:
    """The instance id of a run's pipeline orchestration: the run id itself."""
    return run_id


def step_instance_id(run_id: str, job: str) -> str:
    """The instance id of one job's sub-orchestration: ``<run_id>:<job>``.

    Too long for Durable Functions (more than 100 characters), the job part is shortened and a short
    hash of the full pair keeps it unique.
    """
    instance = f"{run_id}{_STEP_SEPARATOR}{job}"
    if len(instance) <= MAX_INSTANCE_ID_LENGTH:
        return instance
    digest = hashlib.sha256(instance.encode()).hexdigest()[:12]
    keep = MAX_INSTANCE_ID_LENGTH - len(digest) - 1
    return f"{instance[:keep]}-{digest}"
