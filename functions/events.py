"""Queue trigger on ``fanout-events``: completion events and notices wake step orchestrations.

A thin adapter over :func:`shared.orchestration.events.handle_completion_message`, which raises
"step settled" or "cancel" through the durable client. Messages are base64 (host.json
``extensions.queues.messageEncoding``); a message whose handling raises is retried by the host and
moved to ``fanout-events-poison`` after ``maxDequeueCount`` deliveries.
"""

from __future__ import annotations

import azure.durable_functions as df
import azure.functions as func

from functions.client import FunctionsDurableClient, run_with_client
from functions.constants import CLIENT_ARG, EVENTS_FUNCTION, EVENTS_QUEUE_NAME, STORAGE_CONNECTION

bp = df.Blueprint()


@bp.function_name(EVENTS_FUNCTION)
@bp.queue_trigger(arg_name="message", queue_name=EVENTS_QUEUE_NAME, connection=STORAGE_CONNECTION)
@bp.durable_client_input(client_name=CLIENT_ARG)
async def handle_events(message: func.QueueMessage, client: df.DurableOrchestrationClient) -> None:
    """Hand one events-queue message to the orchestration's handler."""
    text = message.get_body().decode("utf-8", errors="replace")

    def handle(durable: FunctionsDurableClient) -> None:
        from functions.runtime import storage_clients
        from shared.orchestration.events import handle_completion_message

        handle_completion_message(storage_clients(), durable.raise_event, text)

    await run_with_client(client, handle)
