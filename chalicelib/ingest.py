"""Ingest (SNS → archive → dispatch queue) and dispatch (notification → one lookup job per item).

Ingest does as little as possible so that SNS's async invocation rarely fails: it archives the
notification exactly as received and queues a reference to it. Dispatch parses, fetches oversized
items from S3, drops what carries no change, and queues each changed item for attribution.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from chalicelib.adapters.archive import notification_key, split_s3_location
from chalicelib.adapters.queues import Message
from chalicelib.bootstrap import Deps
from chalicelib.config_notifications import parse_config_message, parse_config_object
from chalicelib.jobs import LookupJob, change_key
from chalicelib.logs import log_json
from chalicelib.model import ConfigChange, Ignored, Unparseable
from chalicelib.timeutil import iso, parse_time

log = logging.getLogger("mcd.ingest")

INLINE_LIMIT = 200_000
FIRST_LOOKUP_AFTER_CAPTURE = timedelta(seconds=45)


def ingest(event: dict[str, Any], deps: Deps) -> dict[str, int]:
    """Archive each SNS record and queue it for dispatch; malformed ones are archived and dead-lettered."""
    counts = {"queued": 0, "dead_lettered": 0}
    for record in event.get("Records") or []:
        sns = record.get("Sns") or record.get("sns") or {}
        message = sns.get("Message")
        if not isinstance(message, str):
            message = json.dumps(message)
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
            deps.queue("dispatch_dlq").send(body, attributes={"mcd-reason": reason[:250], "mcd-permanent": "true"})
            counts["dead_lettered"] += 1
            continue
        deps.queue("dispatch_queue").send(body)
        counts["queued"] += 1
    return counts


def config_event_as_sns(event: dict[str, Any]) -> dict[str, Any]:
    """An EventBridge "Config Configuration Item Change" event in the shape ``ingest`` takes."""
    detail = event.get("detail")
    return {"Records": [{"Sns": {"MessageId": str(event.get("id") or ""), "TopicArn": "",
                                 "Message": json.dumps(detail if detail is not None else {})}}]}


def dispatch(deps: Deps) -> dict[str, int]:
    """Drain the dispatch queue within the time budget."""
    deadline = deps.deadline()
    counts = {"notifications": 0, "changes": 0, "ignored": 0, "duplicates": 0, "dead_lettered": 0}
    queue = deps.queue("dispatch_queue")
    while deps.clock() < deadline:
        batch = queue.receive(10)
        if not batch:
            break
        done = []
        for message in batch:
            try:
                _dispatch_one(message, deps, counts)
            except Exception as error:  # leave it: it returns after the visibility timeout, then the DLQ
                log_json(log, logging.ERROR, "dispatch_failed", message_id=message.message_id,
                         error=f"{type(error).__name__}: {str(error)[:300]}")
                continue
            done.append(message)
        queue.delete(done)
    return counts


def _dispatch_one(message: Message, deps: Deps, counts: dict[str, int]) -> None:
    counts["notifications"] += 1
    try:
        body = message.json()
    except ValueError:
        _dead_letter(deps, {"raw": message.body[:200_000]}, "dispatch message is not JSON", counts)
        return
    text = body.get("message")
    if text is None:
        text = deps.archive.get_text(body["archive_key"], body.get("archive_bucket"))
    items = parse_config_message(text, f"sns:{body.get('message_id', '')}")
    arrived = parse_time(body.get("received_at")) or deps.now()
    settings = deps.settings()
    jobs: list[LookupJob] = []
    for item in items:
        if isinstance(item, Ignored):
            counts["ignored"] += 1
            log_json(log, logging.INFO, "notification_ignored", message_id=body.get("message_id"), reason=item.reason)
            continue
        if isinstance(item, Unparseable):
            _dead_letter(deps, body, item.reason, counts)
            continue
        change = _full_item(item, deps) if item.oversized else item
        if (change.resource_type or "").lower() in settings.ignored_resource_types:
            counts["ignored"] += 1
            continue
        if not change.resource_id or change.capture_time is None:
            _dead_letter(deps, body, "configuration item without resourceId or capture time", counts)
            continue
        jobs.append(LookupJob(change=change, change_key=change_key(change), arrived_at=arrived,
                              archive_bucket=body.get("archive_bucket"), archive_key=body.get("archive_key")))
    for job in jobs:
        _queue_job(job, deps, counts)


def _queue_job(job: LookupJob, deps: Deps, counts: dict[str, int]) -> None:
    marker = f"ci#{job.change_key}"
    if deps.state.get(marker, "dispatched") is not None:
        counts["duplicates"] += 1
        log_json(log, logging.INFO, "duplicate_item_skipped", change_key=job.change_key,
                 resource_id=job.change.resource_id)
        return
    change = job.change
    assert change.capture_time is not None
    now = deps.now()
    deps.state.put(_history_pk(change), f"cap#{iso(change.capture_time)}", deps.clock(), ttl_days=3)
    first = max(now, change.capture_time + FIRST_LOOKUP_AFTER_CAPTURE)
    deps.queue("lookup_queue").send(replace(job, not_before=first).to_json(),
                                    delay_seconds=(first - now).total_seconds())
    deps.state.put(marker, "dispatched", deps.clock(), resource_id=change.resource_id or "")
    counts["changes"] += 1


def _full_item(summary: ConfigChange, deps: Deps) -> ConfigChange:
    """Read an oversized item in full from Config's S3 object; keep the summary when that fails."""
    location = split_s3_location(summary.s3_location or "")
    if not location:
        return summary
    try:
        bucket, key = location
        text = deps.archive.get_text(key, bucket)
    except Exception as error:
        log_json(log, logging.WARNING, "oversized_item_unreadable", location=summary.s3_location,
                 error=type(error).__name__)
        return summary
    for item in parse_config_object(text, f"s3://{bucket}/{key}"):
        if isinstance(item, ConfigChange) and item.resource_id == summary.resource_id:
            return replace(item, oversized=True, s3_location=summary.s3_location,
                           message_type=summary.message_type)
    return summary


def _history_pk(change: ConfigChange) -> str:
    return f"res#{change.account}#{(change.resource_type or '').lower()}#{change.resource_id}"


def previous_capture(deps: Deps, change: ConfigChange) -> datetime | None:
    """The capture time of the item of the same resource recorded just before this one, if seen."""
    assert change.capture_time is not None
    found = deps.state.latest_before(_history_pk(change), "cap#", f"cap#{iso(change.capture_time)}")
    return parse_time(found[4:]) if found else None


def _dead_letter(deps: Deps, body: dict[str, Any], reason: str, counts: dict[str, int]) -> None:
    log_json(log, logging.WARNING, "item_dead_lettered", message_id=body.get("message_id"),
             archive_key=body.get("archive_key"), reason=reason)
    deps.queue("dispatch_dlq").send(body, attributes={"mcd-reason": reason[:250], "mcd-permanent": "true"})
    counts["dead_lettered"] += 1


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
    return _safe(account), _safe(region), when


def _safe(part: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in part)[:64] or "unknown"
