"""Dead-letter retry: give failed messages a few more chances, then keep them in S3 for a person.

A message reaches a dead-letter queue when its consumer failed on it ``maxReceiveCount`` times (SQS
redrive) or when a stage put it there as permanently unusable (``mcd-permanent``). Transient ones go
back to their source queue with a growing delay, at most ``MAX_REDRIVES`` times; the rest are written
to ``dead-letter/<queue>/...`` in the archive bucket with the reason, and logged. Nothing is dropped
and nothing loops forever.
"""

from __future__ import annotations

import json
import logging

from chalicelib.adapters.archive import dead_letter_key
from chalicelib.bootstrap import Deps
from chalicelib.logs import log_json

log = logging.getLogger("mcd.dead_letters")

MAX_REDRIVES = 3
PAIRS = (("dispatch_dlq", "dispatch_queue"), ("lookup_dlq", "lookup_queue"), ("slack_dlq", "slack_queue"))


def dl_retry(deps: Deps) -> dict[str, int]:
    counts = {"redriven": 0, "stored": 0}
    for dlq_name, source_name in PAIRS:
        dlq = deps.queue(dlq_name)
        for _ in range(50):
            batch = dlq.receive(10, visibility_timeout=60)
            if not batch:
                break
            for message in batch:
                redrives = int(message.attributes.get("mcd-redrives", "0") or 0)
                permanent = message.attributes.get("mcd-permanent") == "true"
                if permanent or redrives >= MAX_REDRIVES:
                    reason = message.attributes.get("mcd-reason") or f"failed after {redrives} redrives"
                    key = dead_letter_key(source_name, deps.now(), message.message_id or f"{deps.clock():.6f}")
                    deps.archive.put(key, json.dumps({"reason": reason, "queue": source_name, "body": message.body}))
                    log_json(log, logging.ERROR, "dead_letter_stored", queue=source_name, key=key, reason=reason)
                    counts["stored"] += 1
                    if source_name == "lookup_queue":
                        _still_report(deps, message.body)
                else:
                    deps.queue(source_name).send(message.body, delay_seconds=60 * 2 ** redrives,
                                                 attributes={"mcd-redrives": str(redrives + 1)})
                    log_json(log, logging.WARNING, "dead_letter_redriven", queue=source_name,
                             message_id=message.message_id, redrives=redrives + 1)
                    counts["redriven"] += 1
                dlq.delete([message])
    return counts


def _still_report(deps: Deps, body: str) -> None:
    """A change whose lookups kept crashing is still a change: report it without an author."""
    from chalicelib.emit import emit
    from chalicelib.jobs import LookupJob
    from chalicelib.lookup_stage import build_outcome
    from chalicelib.outcomes import UNATTRIBUTED_CHANGE

    try:
        job = LookupJob.from_json(json.loads(body))
    except (ValueError, KeyError, TypeError):
        return  # unreadable: kept in S3 with its reason, nothing more can be said
    if not job.is_followup:
        emit(deps, build_outcome(job, UNATTRIBUTED_CHANGE, deps.now(), None))
