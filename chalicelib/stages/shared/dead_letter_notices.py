"""Surfacing a stored dead letter: nothing ends unseen.

Every stored dead letter becomes one operational Slack alert (``dead_letter``, with its reason and a link
to the stored object; the Slack sender gathers many into one digest), and a Config change inside it is
still reported as ``unattributed_change``. An operational alert that itself ends as a dead letter is only
stored and logged, so Slack failures cannot loop. Used by the dead-letter stage and by the Slack sender for
the alerts it stores itself.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from chalicelib.core.change_outcomes import build_outcome
from chalicelib.core.jobs import LookupJob, change_key
from chalicelib.core.logs import log_json
from chalicelib.core.model import ConfigChange
from chalicelib.core.outcomes import DEAD_LETTER, OPERATIONAL_KINDS, UNATTRIBUTED_CHANGE, Outcome
from chalicelib.core.partitions import partition_of_region
from chalicelib.core.timeutil import iso, parse_time
from chalicelib.parsing.config_notifications import parse_config_message
from chalicelib.ports import StageDeps
from chalicelib.stages.shared.emit import emit, emit_operational
from chalicelib.stages.shared.queues import DISPATCH_QUEUE, LOOKUP_QUEUE, SLACK_QUEUE
from chalicelib.stages.shared.state_keys import DISPATCHED, item_marker

log = logging.getLogger("mcd.dead_letters")


def surface(deps: StageDeps, queue: str, key: str, reason: str, body: str, *, message_id: str | None = None) -> None:
    """Make a stored dead letter seen: still report the change it carried, and alert once in Slack.

    ``queue`` is the source queue (``dispatch_queue``, ``lookup_queue``, ``slack_queue``), ``key`` the
    archive key the message was stored under (one alert per key), ``body`` the message as stored. Also
    called by the Slack sender for the alerts it stores itself. Never raises: the dead letter is
    already safe in S3, and a failure here is logged.
    """
    reported: list[str] = []
    try:
        if queue == LOOKUP_QUEUE:
            reported = _still_report_job(deps, body)
        elif queue == DISPATCH_QUEUE:
            reported = _still_report_notification(deps, body)
    except Exception as error:
        log_json(log, logging.ERROR, "dead_letter_not_reported", queue=queue, key=key,
                 error=f"{type(error).__name__}: {str(error)[:300]}")
    try:
        subject = _undelivered_alert(body) if queue == SLACK_QUEUE else None
        if subject is None and queue == SLACK_QUEUE and _is_operational(body):
            # An operational alert that could not be delivered: kept and logged, never alerted again (no loop).
            log_json(log, logging.ERROR, "operational_alert_dead_lettered", key=key, reason=reason,
                     action="stored in S3 and logged only")
            return
        emit_operational(deps, dead_letter_alert(deps, queue, key, reason, message_id=message_id,
                                                 reported=reported, subject=subject))
    except Exception as error:
        log_json(log, logging.ERROR, "dead_letter_alert_failed", queue=queue, key=key, reason=reason,
                 error=f"{type(error).__name__}: {str(error)[:300]}")


def dead_letter_alert(deps: StageDeps, queue: str, key: str, reason: str, *, message_id: str | None = None,
                      reported: list[str] | None = None, subject: str | None = None) -> Outcome:
    """The operational ``dead_letter`` outcome for one stored dead letter (its id derives from ``key``)."""
    extra: dict[str, Any] = {"queue": queue}
    if message_id:
        extra["message_id"] = message_id[:200]
    if reported:
        extra["still_reported"] = reported[:20]
    if subject:
        extra["undelivered"] = subject
    return Outcome(
        kind=DEAD_LETTER,
        outcome_id="dl:" + hashlib.sha256(key.encode()).hexdigest()[:32],
        at=iso(deps.now()) or "",
        region=deps.env.home_region,
        reason=reason[:1000],
        archive_bucket=deps.archive.bucket,
        archive_key=key,
        partition=partition_of_region(deps.env.home_region),
        extra=extra,
    )


def _json_object(body: Any) -> dict[str, Any] | None:
    try:
        data = json.loads(body) if isinstance(body, (str, bytes)) else body
    except (ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def _is_operational(body: str) -> bool:
    """A Slack job carrying an operational alert (a dead letter's own alert)."""

    outcome = (_json_object(body) or {}).get("outcome")
    return isinstance(outcome, dict) and outcome.get("kind") in OPERATIONAL_KINDS


def _undelivered_alert(body: str) -> str | None:
    """What an undelivered Slack job was about (``manual_change AWS::EC2::SecurityGroup sg-1 ...``)."""

    outcome = (_json_object(body) or {}).get("outcome")
    if not isinstance(outcome, dict) or outcome.get("kind") in OPERATIONAL_KINDS:
        return None
    parts = [outcome.get(k) for k in ("kind", "resource_type", "resource_id", "event_name", "principal_arn")]
    return " ".join(str(p) for p in parts if isinstance(p, (str, int)) and p != "")[:300] or "an alert"


WATCH_LOST = "its suppression was being checked for a person's late call when the check kept failing"


def _still_report_job(deps: StageDeps, body: str) -> list[str]:
    """A change whose lookups kept crashing is still a change: report it without an author."""

    data = _json_object(body)
    if data is None:
        return []  # unreadable: kept in S3 with its reason, nothing more can be said
    try:
        job = LookupJob.from_json(data)
    except Exception:  # a job too damaged to read: the stored copy and the alert are what remains
        return []
    if job.is_watch:  # a suppression that could not be checked to the end is no longer silence
        emit(deps, build_outcome(job, UNATTRIBUTED_CHANGE, deps.now(), None, unverified=WATCH_LOST),
             revision=job.revision + 1)
        return [_label(job.change)]
    if job.is_followup:
        return []  # its alert was posted
    emit(deps, build_outcome(job, UNATTRIBUTED_CHANGE, deps.now(), None))
    return [_label(job.change)]


def _still_report_notification(deps: StageDeps, body: str) -> list[str]:
    """The changes of a notification that could not be dispatched, reported without an author.

    What can be parsed is reported (an oversized item from its ``configurationItemSummary``); items
    already queued for attribution (``ci#`` marker) are left to the lookup stage, which reports them.
    """

    data = _json_object(body)
    if data is None:
        return []
    text = data.get("message")
    if text is None and isinstance(data.get("archive_key"), str):
        text = deps.archive.get_text(data["archive_key"], data.get("archive_bucket"))  # size-capped read
    if not isinstance(text, (str, dict)):
        return []
    ignored = deps.settings().ignored_resource_types
    arrived = parse_time(data.get("received_at")) or deps.now()
    reported = []
    for item in parse_config_message(text, f"sns:{data.get('message_id', '')}"):
        if not isinstance(item, ConfigChange) or not item.resource_id or not item.resource_type:
            continue
        if item.resource_type.lower() in ignored:
            continue
        key = change_key(item)
        if deps.state.get(item_marker(key), DISPATCHED) is not None:
            continue
        job = LookupJob(change=item, change_key=key, arrived_at=arrived,
                        archive_bucket=data.get("archive_bucket"), archive_key=data.get("archive_key"))
        emit(deps, build_outcome(job, UNATTRIBUTED_CHANGE, deps.now(), None))
        reported.append(_label(item))
    return reported


def _label(change: Any) -> str:
    return f"{change.resource_type or '?'} {change.resource_id or '?'}"[:300]
