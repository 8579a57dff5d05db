"""Dead letters: give failed messages a few more chances, then keep them in S3 and tell a person.

A message reaches a dead-letter queue when its consumer failed on it ``maxReceiveCount`` times (SQS
redrive), when a stage dead-lettered it after an exception (with ``mcd-reason``), or when a stage put
it there as permanently unusable (``mcd-permanent``). Transient ones go back to their source queue
with a growing delay, at most ``MAX_REDRIVES`` times; the rest are written to ``dead-letter/<queue>/...``
in the archive bucket with the reason, and logged. Nothing is dropped and nothing loops forever.

Nothing ends unseen either: every stored dead letter is surfaced (``shared.dead_letter_notices``).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from chalicelib.core.archive_keys import dead_letter_key
from chalicelib.core.logs import log_json
from chalicelib.ports import StageDeps
from chalicelib.stages.shared.dead_letter_notices import surface
from chalicelib.stages.shared.queues import DEAD_LETTER_QUEUES, PERMANENT, REASON, REDRIVES

log = logging.getLogger("mcd.dead_letters")

MAX_REDRIVES = 3
MAX_BATCHES = 50


def dl_retry(deps: StageDeps) -> dict[str, int]:
    """Redrive or store every dead letter; one queue or message that fails never stops the others."""
    counts = {"redriven": 0, "stored": 0}
    for dlq_name, source_name in DEAD_LETTER_QUEUES.items():
        try:
            _drain(deps, dlq_name, source_name, counts)
        except Exception as error:  # e.g. one queue unreachable: the others are still drained
            log_json(log, logging.ERROR, "dead_letter_queue_failed", queue=dlq_name,
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
