"""Dispatch (notification → one lookup job per changed item).

Dispatch parses a queued notification, fetches oversized items from S3, drops what carries no change,
records each item's capture time and queues it for attribution, delayed until CloudTrail may show it.
"""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from chalicelib.core.archive_keys import split_s3_location
from chalicelib.core.jobs import LookupJob, change_key
from chalicelib.core.logs import log_json
from chalicelib.core.model import ConfigChange, Ignored, Unparseable
from chalicelib.core.timeutil import parse_time
from chalicelib.parsing.config_notifications import parse_config_message, parse_config_object
from chalicelib.ports import ReceivedMessage, StageDeps
from chalicelib.stages.shared.captures import record_capture
from chalicelib.stages.shared.queues import DISPATCH_DLQ, DISPATCH_QUEUE, LOOKUP_QUEUE, REDRIVES, dead_letter
from chalicelib.stages.shared.state_keys import DISPATCHED, STARTED, item_marker, run_marker

if TYPE_CHECKING:
    from chalicelib.core.settings import Settings

log = logging.getLogger("mcd.dispatch")

FIRST_LOOKUP_AFTER_CAPTURE = timedelta(seconds=45)


def dispatch(deps: StageDeps) -> dict[str, int]:
    """Drain the dispatch queue within the time budget; one poison message never takes others with it.

    * An exception on one message dead-letters that message with its reason (redriven later by
      ``dl_retry``, then stored and still reported) and the batch goes on.
    * A message received again after a run died (out of memory, timeout) is handled on its own, after
      the rest of its batch is deleted, under a marker; if a run dies on it once more, it is
      dead-lettered unread rather than taking its neighbours down with it again.
    """
    deadline = deps.deadline()
    counts = {"notifications": 0, "changes": 0, "ignored": 0, "duplicates": 0, "dead_lettered": 0}
    queue = deps.queue(DISPATCH_QUEUE)
    while deps.clock() < deadline:
        batch = queue.receive(10)
        if not batch:
            break
        done: list[ReceivedMessage] = []
        for message in sorted(batch, key=lambda m: m.receive_count):  # first-time messages first
            if message.receive_count > 1:
                queue.delete(done)  # what succeeded is safe before a suspect is touched
                done = []
                if _died_on_before(message, deps, counts):
                    queue.delete([message])
                    continue
            if _dispatch_guarded(message, deps, counts):
                done.append(message)
            if message.receive_count > 1:
                queue.delete(done)
                done = []
        queue.delete(done)
    return counts


def _dispatch_guarded(message: ReceivedMessage, deps: StageDeps, counts: dict[str, int]) -> bool:
    """Dispatch one message; ``True`` when it may be deleted (done, or dead-lettered with its reason)."""
    try:
        _dispatch_one(message, deps, counts)
        return True
    except Exception as error:
        reason = f"dispatch failed: {type(error).__name__}: {str(error)[:300]}"
        log_json(log, logging.ERROR, "dispatch_failed", message_id=message.message_id, error=reason)
    try:  # not permanent: dl_retry sends it back a few times (a transient failure heals), then reports it
        dead_letter(deps, DISPATCH_DLQ, message.body, reason, permanent=False,
                    redrives=message.attributes.get(REDRIVES) or "0")
    except Exception as error:  # leave it: it returns after the visibility timeout
        log_json(log, logging.ERROR, "dispatch_dead_letter_failed", message_id=message.message_id,
                 error=f"{type(error).__name__}: {str(error)[:200]}")
        return False
    counts["dead_lettered"] += 1
    return True


def _died_on_before(message: ReceivedMessage, deps: StageDeps, counts: dict[str, int]) -> bool:
    """``True`` (and dead-lettered) when a run already died while working on this very message."""
    marker = run_marker("dispatch", message.message_id)
    if deps.state.get(marker, STARTED) is None:
        deps.state.put(marker, STARTED, deps.clock(), ttl_days=1)
        return False
    reason = (f"the dispatch function stopped twice while working on this message (received "
              f"{message.receive_count} times: out of memory or time?); not read again")
    log_json(log, logging.ERROR, "dispatch_poison", message_id=message.message_id, reason=reason)
    dead_letter(deps, DISPATCH_DLQ, message.body, reason, permanent=True)
    counts["dead_lettered"] += 1
    return True


def _dispatch_one(message: ReceivedMessage, deps: StageDeps, counts: dict[str, int]) -> None:
    counts["notifications"] += 1
    try:
        body = message.json()
        if not isinstance(body, dict):
            raise ValueError("not an object")
    except ValueError:
        _dead_letter(deps, {"raw": message.body[:200_000]}, "dispatch message is not a JSON object", counts)
        return
    text = body.get("message")
    if text is None:
        text = deps.archive.get_text(body["archive_key"], body.get("archive_bucket"))
    items = parse_config_message(text, f"sns:{body.get('message_id', '')}")
    arrived = parse_time(body.get("received_at")) or deps.now()
    settings = deps.settings()
    jobs: list[LookupJob] = []
    problems: list[str] = []
    for item in items:
        if isinstance(item, Ignored):
            counts["ignored"] += 1
            log_json(log, logging.INFO, "notification_ignored", message_id=body.get("message_id"), reason=item.reason)
            continue
        if isinstance(item, Unparseable):
            problems.append(item.reason)
            continue
        change = _full_item(item, deps, settings) if item.oversized else item
        if (change.resource_type or "").lower() in settings.ignored_resource_types:
            counts["ignored"] += 1
            continue
        if not change.resource_id or change.capture_time is None:
            problems.append(f"configuration item without {'resourceId' if not change.resource_id else 'capture time'}"
                            f" ({change.resource_type or 'no type'} {change.resource_id or ''})".rstrip())
            continue
        jobs.append(LookupJob(change=change, change_key=change_key(change), arrived_at=arrived,
                              archive_bucket=body.get("archive_bucket"), archive_key=body.get("archive_key")))
    for job in jobs:
        _queue_job(job, deps, counts)
    if problems:  # after the good items are queued: the dead letter reports only what is left
        reason = problems[0] if len(problems) == 1 else f"{len(problems)} items unusable; first: {problems[0]}"
        _dead_letter(deps, body, reason, counts)


def _queue_job(job: LookupJob, deps: StageDeps, counts: dict[str, int]) -> None:
    marker = item_marker(job.change_key)
    if deps.state.get(marker, DISPATCHED) is not None:
        counts["duplicates"] += 1
        log_json(log, logging.INFO, "duplicate_item_skipped", change_key=job.change_key,
                 resource_id=job.change.resource_id)
        return
    change = job.change
    assert change.capture_time is not None
    now = deps.now()
    record_capture(deps, change)
    first = max(now, change.capture_time + FIRST_LOOKUP_AFTER_CAPTURE)
    deps.queue(LOOKUP_QUEUE).send(replace(job, not_before=first).to_json(),
                                    delay_seconds=(first - now).total_seconds())
    deps.state.put(marker, DISPATCHED, deps.clock(), resource_id=change.resource_id or "")
    counts["changes"] += 1


def _full_item(summary: ConfigChange, deps: StageDeps, settings: Settings) -> ConfigChange:
    """Read an oversized item in full from Config's S3 object; keep the summary when that fails.

    Only Config's delivery bucket is read (``config_bucket_refusal``); the read is capped in size
    (``adapters.archive.read_object``). Whatever goes wrong, the summary is reported, with a log line.
    """
    location = split_s3_location(summary.s3_location or "")
    if not location:
        return summary
    bucket, key = location
    refused = config_bucket_refusal(bucket, key, summary.account, settings.config_buckets)
    if refused:
        log_json(log, logging.WARNING, "oversized_item_not_read", location=summary.s3_location[:500],
                 reason=refused, action="reported from its summary")
        return summary
    try:
        text = deps.archive.get_text(key, bucket)
    except Exception as error:
        log_json(log, logging.WARNING, "oversized_item_unreadable", location=summary.s3_location[:500],
                 reason=f"{type(error).__name__}: {str(error)[:300]}", action="reported from its summary")
        return summary
    for item in parse_config_object(text, f"s3://{bucket}/{key}"):
        if isinstance(item, ConfigChange) and item.resource_id == summary.resource_id:
            return replace(item, oversized=True, s3_location=summary.s3_location,
                           message_type=summary.message_type)
    log_json(log, logging.WARNING, "oversized_item_unreadable", location=summary.s3_location[:500],
             reason="the object holds no configuration item of this resource", action="reported from its summary")
    return summary


_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def config_bucket_refusal(bucket: str, key: str, account: str | None,
                          config_buckets: tuple[str, ...] | None) -> str | None:
    """Why an ``s3BucketLocation`` must not be read, or ``None`` when it is Config's delivery bucket.

    With ``config_buckets`` set, only those buckets are read. Without it, only an object in Config's own
    key layout for the item's account (``[prefix/]AWSLogs/<account>/Config/<region>/.../
    OversizedChangeNotification/...``): a notification cannot send the detector into another bucket's
    data or into a different account's folder.
    """
    if not _BUCKET_NAME.match(bucket):
        return f"{bucket[:80]!r} is not an S3 bucket name"
    if config_buckets is not None:
        if bucket in config_buckets:
            return None
        return f"bucket {bucket!r} is not one of the settings' config_buckets"
    if not account:
        return "the item names no account, so Config's key layout cannot be checked; set config_buckets"
    marker = f"AWSLogs/{account}/Config/"
    at = key.find(marker)
    if at < 0 or (at > 0 and key[at - 1] != "/") or "/OversizedChangeNotification/" not in key[at:]:
        return (f"key is not in Config's layout for account {account} (AWSLogs/{account}/Config/<region>/"
                ".../OversizedChangeNotification/...); name the delivery bucket in config_buckets to read it")
    return None


def _dead_letter(deps: StageDeps, body: dict[str, Any], reason: str, counts: dict[str, int]) -> None:
    log_json(log, logging.WARNING, "item_dead_lettered", message_id=body.get("message_id"),
             archive_key=body.get("archive_key"), reason=reason)
    dead_letter(deps, DISPATCH_DLQ, body, reason, permanent=True)
    counts["dead_lettered"] += 1
