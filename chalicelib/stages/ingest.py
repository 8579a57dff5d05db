"""Ingest (SNS → archive → dispatch queue).

Ingest does as little as possible so that SNS's async invocation rarely fails: it archives the
notification exactly as received and queues a reference to it (``stages.dispatch`` does the rest).
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

from chalicelib.core.archive_keys import notification_key
from chalicelib.core.logs import log_json
from chalicelib.core.model import ConfigChange, Unparseable
from chalicelib.core.timeutil import iso
from chalicelib.parsing.config_notifications import parse_config_message
from chalicelib.ports import StageDeps
from chalicelib.stages.shared.queues import DISPATCH_DLQ, DISPATCH_QUEUE, dead_letter

log = logging.getLogger("mcd.ingest")

INLINE_LIMIT = 200_000


def ingest(event: dict[str, Any], deps: StageDeps) -> dict[str, int]:
    """Archive each SNS record and queue it for dispatch; malformed ones are archived and dead-lettered.

    One record that fails does not stop the others; the invocation then fails so that Lambda retries it
    (archiving and queueing again is harmless: dispatch skips items it has already queued).
    """
    counts = {"queued": 0, "dead_lettered": 0}
    failed: list[str] = []
    records = event.get("Records") if isinstance(event, dict) else None
    for record in records if isinstance(records, list) else []:
        try:
            _ingest_one(record if isinstance(record, dict) else {}, deps, counts)
        except Exception as error:
            failed.append(f"{type(error).__name__}: {str(error)[:200]}")
            log_json(log, logging.ERROR, "ingest_failed", error=failed[-1])
    if failed:
        raise RuntimeError(f"{len(failed)} SNS record(s) not ingested (Lambda retries them): {failed[0]}")
    return counts


def _ingest_one(record: dict[str, Any], deps: StageDeps, counts: dict[str, int]) -> None:
    sns = record.get("Sns") or record.get("sns")
    if not isinstance(sns, dict):
        sns = {}
    message = sns.get("Message")
    if not isinstance(message, str):
        message = json.dumps(message, default=str)
    message_id = str(sns.get("MessageId") or "")
    topic = str(sns.get("TopicArn") or "")
    received = deps.now()
    items = parse_config_message(message, f"sns:{message_id}")
    account, region, when = _archive_coordinates(items, message, topic, received, deps.env.home_region)
    key = notification_key(account, region, when, message_id or f"no-id-{received.timestamp():.0f}")
    deps.archive.put(key, message, metadata={"sns-message-id": message_id[:200], "topic": topic[:200]})
    body = {"message_id": message_id, "topic_arn": topic, "received_at": iso(received),
            "archive_bucket": deps.archive.bucket, "archive_key": key}
    if len(json.dumps(message)) <= INLINE_LIMIT:  # as encoded in the queue message, escapes included
        body["message"] = message
    unreadable = [i for i in items if isinstance(i, Unparseable)]
    if unreadable and not any(isinstance(i, ConfigChange) for i in items):
        reason = unreadable[0].reason
        log_json(log, logging.WARNING, "notification_unparseable", message_id=message_id, archive_key=key,
                 reason=reason)
        dead_letter(deps, DISPATCH_DLQ, body, reason, permanent=True)
        counts["dead_lettered"] += 1
        return
    deps.queue(DISPATCH_QUEUE).send(body)
    counts["queued"] += 1


def config_event_as_sns(event: dict[str, Any]) -> dict[str, Any]:
    """An EventBridge "Config Configuration Item Change" event in the shape ``ingest`` takes."""
    detail = event.get("detail")
    return {"Records": [{"Sns": {"MessageId": str(event.get("id") or ""), "TopicArn": "",
                                 "Message": json.dumps(detail if detail is not None else {})}}]}


def _archive_coordinates(items: list[Any], message: str, topic: str, received: datetime,
                         home_region: str) -> tuple[str, str, datetime]:
    topic_parts = topic.split(":")
    account = topic_parts[4] if len(topic_parts) > 5 and topic_parts[4] else "unknown-account"
    region = topic_parts[3] if len(topic_parts) > 5 and topic_parts[3] else home_region
    when = received
    for item in items:
        if isinstance(item, ConfigChange):
            account = item.account or account
            if item.region and item.region != "global":
                region = item.region
            when = item.notification_time or item.capture_time or received
            break
    return account, region, when
