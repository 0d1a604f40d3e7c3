"""``fanout agent --run R --job J --node-id N [--workers W]``: the program every node runs.

The same command runs on a Batch node and as a local process (``shared.compute.local``). It reads the
run plan and the step from storage: a parallel job starts the node's workers and processes mini-batches
from the step's queue until it is drained; a command job runs the command
(``shared.runtime.command.run_command_node``). Exit code 0 when the node's share is done (or the step
was stopped), non-zero when the node could not work.
"""

from __future__ import annotations

import gc
import logging

import click

logger = logging.getLogger(__name__)


@click.command("agent")
@click.option("--run", "run_id", required=True, help="Run id.")
@click.option("--job", required=True, help="Job name.")
@click.option("--node-id", type=click.IntRange(min=0), required=True, help="This node's id (0..n-1).")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Worker processes (default: max_concurrency_per_instance, else GPUs, else cores).",
)
def agent(run_id: str, job: str, node_id: int, workers: int | None) -> int:
    """Run one node of a job (used by executors; not usually typed by hand)."""
    from shared.runtime.forkserver import start_fork_server

    start_fork_server()  # first: its imports run on another core while this process imports its own
    from shared.logconfig import configure_logging
    from shared.orchestration.contracts import StepRef
    from shared.runtime.launch import run_node
    from shared.settings import get_settings
    from shared.storage import StorageClients
    from shared.telemetry import configure_telemetry

    settings = get_settings()
    configure_logging("INFO")
    telemetry = configure_telemetry(settings, "fanout-agent")
    try:
        clients = StorageClients.from_settings(settings)
        return run_node(clients, StepRef(run_id=run_id, job=job), node_id, workers=workers, settings=settings)
    finally:
        telemetry.shutdown()
        # The process ends now (this command is a node's whole program). Freezing what is allocated
        # spares the interpreter's last full garbage collection over every imported module's objects
        # at exit (~0.2 s of a node's fixed cost); exit handlers and stream flushes still run.
        gc.freeze()
