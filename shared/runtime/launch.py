"""Starting a node of a job: what ``fanout agent`` runs, before and around the agent's loop.

:func:`run_node` decides what this node is for — a command job runs its command
(:mod:`shared.runtime.command`); a parallel job's node first checks that there is anything left to do
(:func:`nothing_to_do`: a late or restarted agent costs seconds, not a node preparation), then prepares
the node (code, inputs, environment), records why when it cannot, and runs the
:class:`~shared.runtime.agent.Agent` with SIGTERM wired to a graceful stop. Kept apart from the agent,
whose module is its message loop, so the decisions taken before any worker exists read on their own.
"""

from __future__ import annotations

import logging
import signal
import threading

from azure.core.exceptions import ResourceNotFoundError

from shared.orchestration.contracts import StepRef
from shared.runtime import logs
from shared.runtime.agent import EXIT_OK, Agent
from shared.runtime.forkserver import start_fork_server, stop_fork_server
from shared.runtime.node import prepare_node
from shared.runtime.records import read_progress, read_step_document, record_agent_failure
from shared.settings import Settings
from shared.storage import StorageClients, work_queue_name

logger = logging.getLogger(__name__)


def nothing_to_do(clients: StorageClients, step: StepRef) -> str:
    """Why a node starting now has no work at all ('' when it may have some).

    The step was stopped, its queue is gone (finalized) or holds no message at all — visible or not —
    after dispatch finished, or every mini-batch is already settled. Checked before the node downloads
    anything or starts a worker, so a late or restarted agent costs seconds, not a node preparation.
    """
    document = read_step_document(clients, step)
    if document is not None and document.stop_requested:
        return f"the step was stopped ({document.stop_reason or 'no reason given'})"
    if document is None or not document.dispatched:
        return ""  # not planned (preparing the node says so), or still being dispatched
    queue = clients.queue_client(work_queue_name(step.run_id, step.job))
    try:
        waiting = int(queue.get_queue_properties().approximate_message_count or 0)
    except ResourceNotFoundError:
        return "the step's work queue no longer exists (the step was finalized)"
    if waiting == 0:
        return "the work queue is empty: every mini-batch was taken and settled"
    progress = read_progress(clients, step)
    if progress.total_mini_batches and progress.settled_mini_batches >= progress.total_mini_batches:
        return f"all {progress.total_mini_batches} mini-batches are already settled"
    return ""


def run_node(
    clients: StorageClients, step: StepRef, node_id: int, *, workers: int | None, settings: Settings
) -> int:
    """Run node ``node_id`` of a job: its workers for a parallel job, its command for a command job."""
    from shared.plan import JobType
    from shared.runs import load_plan, load_step_definition

    plan = load_plan(clients, step.run_id)
    job = plan.job(step.job)
    if job.type is JobType.COMMAND:
        from shared.runtime.command import run_command_node

        stop_fork_server()  # started speculatively by ``fanout agent``: a command needs no workers

        definition = load_step_definition(clients, step)
        code: int = run_command_node(clients, plan, definition, node_id)
        return code
    clients = clients.with_resolved_environment()
    idle_reason = nothing_to_do(clients, step)
    if idle_reason:
        stop_fork_server()
        logs.append_line(
            clients, step, f"sys/node/{node_id}/_main.txt", f"agent exits at once: {idle_reason}"
        )
        logger.info("node %d of %s/%s exits at once: %s", node_id, step.run_id, step.job, idle_reason)
        return EXIT_OK
    start_fork_server()  # running already when started by ``fanout agent``; overlaps the preparation
    try:
        node = prepare_node(clients, step, node_id, workers=workers, settings=settings)
    except Exception as exc:  # record why this node cannot work, so the step fails now, not at a timeout
        reason = f"node {node_id} could not prepare the step: {getattr(exc, 'message', None) or exc}"
        record_agent_failure(clients, step, node_id, f"{node_id}-setup", reason)
        raise
    agent = Agent(node)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: agent.request_stop("the agent was terminated (SIGTERM)"))
    return agent.run()
