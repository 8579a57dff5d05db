"""The queues' names and the message attributes stages use to hand a message to the dead-letter stage.

``StageDeps.queue(name)`` takes these names. A dead-lettered message carries ``REASON`` (why, for the person
who reads the stored copy), ``PERMANENT`` (``"true"``: redriving cannot help) and ``REDRIVES`` (how many
times ``dl_retry`` already sent it back).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chalicelib.ports import StageDeps

DISPATCH_QUEUE = "dispatch_queue"
DISPATCH_DLQ = "dispatch_dlq"
LOOKUP_QUEUE = "lookup_queue"
LOOKUP_DLQ = "lookup_dlq"
SLACK_QUEUE = "slack_queue"
SLACK_DLQ = "slack_dlq"
DEAD_LETTER_QUEUES = {DISPATCH_DLQ: DISPATCH_QUEUE, LOOKUP_DLQ: LOOKUP_QUEUE, SLACK_DLQ: SLACK_QUEUE}
"""Each dead-letter queue and the source queue its messages are redriven to."""
ASYNC_FAILED_QUEUE = "async_failed_queue"
"""Lambda's on-failure destination of the asynchronously invoked functions: a record of each event that failed
all of Lambda's tries (``dl_retry`` runs it again, or keeps it as a dead letter)."""

REASON = "mcd-reason"
PERMANENT = "mcd-permanent"
REDRIVES = "mcd-redrives"
REASON_LIMIT = 250  # SQS attributes are small; the stored copy keeps the whole body


def dead_letter(deps: StageDeps, dlq: str, body: Any, reason: str, *, permanent: bool,
                redrives: str | None = None) -> None:
    """Send ``body`` to ``dlq`` with its reason; a permanent one is stored and reported, never redriven."""
    attributes = {REASON: reason[:REASON_LIMIT]}
    if permanent:
        attributes[PERMANENT] = "true"
    if redrives is not None:
        attributes[REDRIVES] = redrives
    deps.queue(dlq).send(body, attributes=attributes)
