"""Dead letters: give failed messages a few more chances, then keep them in S3 and tell a person.

A message reaches a dead-letter queue when its consumer failed on it ``maxReceiveCount`` times (SQS
redrive), when a stage dead-lettered it after an exception (with ``mcd-reason``), or when a stage put
it there as permanently unusable (``mcd-permanent``). Transient ones go back to their source queue
with a growing delay, at most ``MAX_REDRIVES`` times; the rest are written to ``dead-letter/<queue>/...``
in the archive bucket with the reason, and logged. Nothing is dropped and nothing loops forever.

Nothing ends unseen either: every stored dead letter is surfaced (``shared.dead_letter_notices``).

Before the first queue, an event that an asynchronously invoked function (SNS, EventBridge, CloudWatch Logs)
failed on after Lambda's own retries arrives on the async-failed queue as Lambda's destination record. Its
event is run again through what that function runs (``reruns``: ``stages.reruns.RERUNS``, which ``app.py``
hands over, a stage never importing a sibling), at most ``MAX_RERUNS`` times; an event that still fails, or a
record that cannot be run (an unknown function, no payload: Lambda leaves it out of records over 256 KB), is
kept in ``dead-letter/async_failed_queue/...`` and surfaced like the others.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from chalicelib.core.archive_keys import dead_letter_key
from chalicelib.core.errors import ConfigurationError
from chalicelib.core.logs import log_json
from chalicelib.core.timeutil import parse_time
from chalicelib.ports import MessageQueue, ReceivedMessage, StageDeps
from chalicelib.stages.shared.dead_letter_notices import surface
from chalicelib.stages.shared.queues import ASYNC_FAILED_QUEUE, DEAD_LETTER_QUEUES, PERMANENT, REASON, REDRIVES

log = logging.getLogger("mcd.dead_letters")

MAX_REDRIVES = 3
MAX_BATCHES = 50
MAX_RERUNS = 3
"""Receives of one async-failure record that run its event again; a failure on the last one keeps it."""
RERUN_WAIT_SECONDS = 300
"""A record whose event failed again stays hidden this long, past the run (``dl_retry`` stops at 120 s): one try
per run, every 10 minutes."""

Rerun = Callable[[dict[str, Any], StageDeps], Any]
"""What an asynchronously invoked function runs on its event (raises when the event's work failed)."""


def dl_retry(deps: StageDeps, reruns: Mapping[str, Rerun] | None = None) -> dict[str, int]:
    """Redrive or store every dead letter; one queue or message that fails never stops the others.

    ``reruns`` maps each asynchronously invoked function to what it runs (``stages.reruns.RERUNS``); a
    failed event of a function without one is kept as a dead letter. ``redriven`` counts what got another
    chance: messages sent back to their source queue and failed events whose run succeeded this time.
    """
    counts = {"redriven": 0, "stored": 0}
    for dlq_name, source_name in DEAD_LETTER_QUEUES.items():
        try:
            _drain(deps, dlq_name, source_name, counts)
        except Exception as error:  # e.g. one queue unreachable: the others are still drained
            log_json(log, logging.ERROR, "dead_letter_queue_failed", queue=dlq_name,
                     error=f"{type(error).__name__}: {str(error)[:300]}")
    try:
        failures = deps.queue(ASYNC_FAILED_QUEUE)
    except ConfigurationError as error:  # resources made by hand before the queue existed (the sandbox)
        log_json(log, logging.INFO, "async_failed_queue_absent", reason=str(error)[:300])
        return counts
    try:
        _drain_async_failures(deps, failures, reruns or {}, counts)
    except Exception as error:
        log_json(log, logging.ERROR, "dead_letter_queue_failed", queue=ASYNC_FAILED_QUEUE,
                 error=f"{type(error).__name__}: {str(error)[:300]}")
    return counts


def _drain(deps: StageDeps, dlq_name: str, source_name: str, counts: dict[str, int]) -> None:
    dlq = deps.queue(dlq_name)
    for _ in range(MAX_BATCHES):
        batch = dlq.receive(10, visibility_timeout=60)
        if not batch:
            return
        for message in batch:
            try:
                _handle(deps, message, source_name, counts)
            except Exception as error:  # left on the queue: it returns in 60 s, on the next run
                log_json(log, logging.ERROR, "dead_letter_failed", queue=dlq_name, message_id=message.message_id,
                         error=f"{type(error).__name__}: {str(error)[:300]}")
                continue
            dlq.delete([message])


def _handle(deps: StageDeps, message: Any, source_name: str, counts: dict[str, int]) -> None:
    try:
        redrives = int(message.attributes.get(REDRIVES, "0") or 0)
    except ValueError:
        redrives = MAX_REDRIVES
    permanent = message.attributes.get(PERMANENT) == "true"
    if not permanent and redrives < MAX_REDRIVES:
        attributes = {REDRIVES: str(redrives + 1)}
        deps.queue(source_name).send(message.body, delay_seconds=60 * 2 ** redrives, attributes=attributes)
        log_json(log, logging.WARNING, "dead_letter_redriven", queue=source_name, message_id=message.message_id,
                 redrives=redrives + 1, reason=message.attributes.get(REASON))
        counts["redriven"] += 1
        return
    reason = message.attributes.get(REASON) or f"failed after {redrives} redrives"
    key = dead_letter_key(source_name, deps.now(), message.message_id or f"{deps.clock():.6f}")
    deps.archive.put(key, json.dumps({"reason": reason, "queue": source_name, "redrives": redrives,
                                      "body": message.body}))
    log_json(log, logging.ERROR, "dead_letter_stored", queue=source_name, key=key, reason=reason)
    counts["stored"] += 1
    surface(deps, source_name, key, reason, message.body, message_id=message.message_id)


# --- Lambda's on-failure destination records ------------------------------------------------------------


@dataclass(frozen=True)
class FailedInvocation:
    """One destination record: which function failed on which event, how, and the event itself.

    Lambda's shape: ``{"version", "timestamp", "requestContext": {"requestId", "functionArn", "condition",
    "approximateInvokeCount"}, "requestPayload", "responseContext": {...}, "responsePayload": {...}}``.
    """

    function: str = ""
    request_id: str = ""
    condition: str = ""
    invokes: int = 0
    error: str = ""
    at: datetime | None = None
    payload: dict[str, Any] | None = None
    problem: str = ""  # why the record cannot be run again ("" when it can)

    @classmethod
    def read(cls, body: str) -> FailedInvocation:
        try:
            record = json.loads(body)
        except (ValueError, RecursionError):
            return cls(problem="not a Lambda destination record: the message is not JSON")
        context = record.get("requestContext") if isinstance(record, dict) else None
        if not isinstance(context, dict):
            return cls(problem="not a Lambda destination record: no requestContext")
        arn = str(context.get("functionArn") or "")
        invokes = context.get("approximateInvokeCount")
        found = cls(function=arn.split(":")[6] if arn.count(":") >= 6 else arn, at=parse_time(record.get("timestamp")),
                    request_id=str(context.get("requestId") or "")[:200], condition=str(context.get("condition") or ""),
                    invokes=invokes if isinstance(invokes, int) else 0, error=_error_of(record))
        payload = record.get("requestPayload")
        if isinstance(payload, dict):
            return replace(found, payload=payload)
        return replace(found, problem="the record carries no event (Lambda leaves it out when event and response "
                                      "exceed 256 KB)" if payload is None else
                                      f"the event is a {type(payload).__name__}, not an object")

    def summary(self) -> str:
        tries = f" after {self.invokes} tries" if self.invokes else ""
        return f"{self.function or 'an unknown function'} failed ({self.condition or 'no condition'}{tries})" + (
            f": {self.error}" if self.error else "")


def _error_of(record: dict[str, Any]) -> str:
    response = record.get("responsePayload")
    if isinstance(response, dict):
        text = ": ".join(str(response[k]) for k in ("errorType", "errorMessage") if response.get(k))
    else:
        text = str(response or "")
    return " ".join(text.split())[:300]


def rerun_for(function: str, reruns: Mapping[str, Rerun]) -> str | None:
    """The ``reruns`` entry of a deployed function name: ``mcd-<stage>-<handler>`` ends with ``-<handler>``."""
    matches = [name for name in reruns if function == name or function.endswith(f"-{name}")]
    return max(matches, key=len) if matches else None


def _drain_async_failures(deps: StageDeps, failures: MessageQueue, reruns: Mapping[str, Rerun],
                          counts: dict[str, int]) -> None:
    deadline = deps.deadline()
    for _ in range(MAX_BATCHES):
        if deps.clock() >= deadline:
            return
        batch = failures.receive(10, visibility_timeout=RERUN_WAIT_SECONDS)
        if not batch:
            return
        for message in batch:
            try:
                done = _handle_failure(deps, message, reruns, counts)
            except Exception as error:  # e.g. S3 unreachable while storing it: it returns on a later run
                log_json(log, logging.ERROR, "dead_letter_failed", queue=ASYNC_FAILED_QUEUE,
                         message_id=message.message_id, error=f"{type(error).__name__}: {str(error)[:300]}")
                continue
            if done:
                failures.delete([message])


def _handle_failure(deps: StageDeps, message: ReceivedMessage, reruns: Mapping[str, Rerun],
                    counts: dict[str, int]) -> bool:
    """Run a failed event again, or keep it; ``True`` when the record is done with (delete it)."""
    failed = FailedInvocation.read(message.body)
    handler = rerun_for(failed.function, reruns) if not failed.problem else None
    if failed.problem or handler is None:
        why = failed.problem or f"{failed.function or 'no function'} is not a function dl_retry can run again"
        _store_failure(deps, message, failed, f"{failed.summary()}; {why}", counts)
        return True
    if message.receive_count > MAX_RERUNS:  # runs that never finished (a timeout) count too
        _store_failure(deps, message, failed, f"{failed.summary()}; not run again after {MAX_RERUNS} tries", counts)
        return True
    try:
        reruns[handler](failed.payload or {}, deps)
    except Exception as error:
        detail = f"{type(error).__name__}: {str(error)[:300]}"
        if message.receive_count >= MAX_RERUNS:
            _store_failure(deps, message, failed, f"{failed.summary()}; run again {message.receive_count} times, "
                                                  f"still failing: {detail}", counts)
            return True
        log_json(log, logging.WARNING, "async_failure_rerun_failed", function=failed.function,
                 request_id=failed.request_id, tries=message.receive_count, error=detail)
        return False
    log_json(log, logging.WARNING, "async_failure_rerun", function=failed.function, request_id=failed.request_id,
             condition=failed.condition, error=failed.error, tries=message.receive_count)
    counts["redriven"] += 1
    return True


def _store_failure(deps: StageDeps, message: ReceivedMessage, failed: FailedInvocation, reason: str,
                   counts: dict[str, int]) -> None:
    """Keep the record in the archive and surface it; one key per failed event, so a repeat stores it again."""
    name = f"{failed.function or 'unknown'}-{failed.request_id or message.message_id or f'{deps.clock():.6f}'}"
    key = dead_letter_key(ASYNC_FAILED_QUEUE, failed.at or deps.now(), name)
    deps.archive.put(key, json.dumps({"reason": reason, "queue": ASYNC_FAILED_QUEUE, "function": failed.function,
                                      "request_id": failed.request_id, "receives": message.receive_count,
                                      "body": message.body}))
    log_json(log, logging.ERROR, "dead_letter_stored", queue=ASYNC_FAILED_QUEUE, key=key, reason=reason)
    counts["stored"] += 1
    surface(deps, ASYNC_FAILED_QUEUE, key, reason, message.body, message_id=failed.request_id or message.message_id)
