"""The agent's side of a step's work queue: receive, parse, renew leases, delete, release.

A received message becomes a :class:`HeldMessage`: the agent keeps it invisible to others (renewing
the lease at half the visibility timeout while it works) until every mini-batch in it is settled and
recorded, then deletes it. If the agent dies, the lease expires and the message comes back with a higher
``dequeue_count``; the next agent then reads the records of its range to skip what was already settled.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.storage.queue import QueueClient, QueueMessage
from pydantic import ValidationError

from shared.runtime.messages import WorkMessage

logger = logging.getLogger(__name__)


@dataclass
class HeldMessage:
    """A work message this agent holds (invisible to others) until its mini-batches are settled."""

    message_id: str
    pop_receipt: str
    dequeue_count: int
    work: WorkMessage
    renew_at: float
    unsettled: set[int] = field(default_factory=set)
    lost: bool = False  # the lease could not be renewed: another agent may have it


class MalformedMessage(ValueError):
    """A work message that cannot be processed (not JSON, wrong fields, another step, bad range)."""


def parse(message: QueueMessage, *, run_id: str, job: str, total: int) -> WorkMessage:
    """The work message in ``message``.

    Raises:
        MalformedMessage: what is wrong, naming the message id.
    """
    try:
        work = WorkMessage.model_validate_json(message.content)
    except ValidationError as exc:
        raise MalformedMessage(
            f"work message {message.id} is not a valid work message: {exc.errors(include_url=False)}"
        ) from exc
    if (work.run_id, work.job) != (run_id, job):
        raise MalformedMessage(
            f"work message {message.id} is for {work.run_id}/{work.job}, not {run_id}/{job}"
        )
    if work.end > total:
        raise MalformedMessage(
            f"work message {message.id} names mini-batches {work.start}..{work.end - 1}, but the step has "
            f"{total}"
        )
    return work


class WorkQueue:
    """Thin wrapper over the step's queue with the agent's lease policy."""

    def __init__(self, client: QueueClient, visibility_timeout: int) -> None:
        self.client = client
        self.visibility_timeout = visibility_timeout

    def receive(self, count: int) -> list[QueueMessage]:
        """Up to ``count`` messages (clamped to the service's 1..32), leased for the visibility timeout."""
        count = max(1, min(32, count))
        pages = self.client.receive_messages(
            messages_per_page=count, visibility_timeout=self.visibility_timeout, max_messages=count
        )
        return list(pages)

    def hold(self, message: QueueMessage, work: WorkMessage) -> HeldMessage:
        """Start tracking a received message's lease; its first renewal falls due at half the timeout."""
        return HeldMessage(
            message_id=message.id,
            pop_receipt=message.pop_receipt or "",
            dequeue_count=message.dequeue_count or 1,
            work=work,
            renew_at=time.monotonic() + self.visibility_timeout / 2,
        )

    def renew(self, held: HeldMessage) -> None:
        """Extend the lease by a full visibility timeout (a new pop receipt comes back)."""
        try:
            updated = self.client.update_message(
                held.message_id, pop_receipt=held.pop_receipt, visibility_timeout=self.visibility_timeout
            )
        except (ResourceNotFoundError, HttpResponseError) as exc:
            if not held.lost:
                logger.warning("lost the lease of work message %s: %s", held.message_id, exc)
            held.lost = True
            return
        held.pop_receipt = updated.pop_receipt or held.pop_receipt
        held.renew_at = time.monotonic() + self.visibility_timeout / 2

    def delete(self, held: HeldMessage) -> None:
        """Delete a message whose mini-batches are all settled; a lost lease or a gone message is fine."""
        if held.lost:
            return  # another agent holds it now; its records make the duplicate harmless
        try:
            self.client.delete_message(held.message_id, pop_receipt=held.pop_receipt)
        except (ResourceNotFoundError, HttpResponseError) as exc:
            logger.info("work message %s was already gone: %s", held.message_id, exc)

    def delete_raw(self, message: QueueMessage) -> None:
        """Delete a message that was never held (a malformed one: retrying cannot fix it)."""
        try:
            self.client.delete_message(message)
        except (ResourceNotFoundError, HttpResponseError) as exc:
            logger.info("work message %s was already gone: %s", message.id, exc)

    def release(self, held: HeldMessage) -> None:
        """Make the message visible again now (this agent is giving up its mini-batches)."""
        if held.lost:
            return
        try:
            self.client.update_message(held.message_id, pop_receipt=held.pop_receipt, visibility_timeout=0)
        except (ResourceNotFoundError, HttpResponseError):
            logger.info(
                "work message %s could not be released; it reappears when its lease ends", held.message_id
            )

    def approximate_count(self) -> int:
        """Messages in the queue, visible or not (never lower than the real number)."""
        return int(self.client.get_queue_properties().approximate_message_count or 0)
