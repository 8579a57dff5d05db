"""Messages that travel between stages on SQS, with their JSON codecs.

A ``LookupJob`` is one configuration item waiting for its CloudTrail author. It carries a slim copy
of the item, what the lookup stage and the outcome read (the full notification stays in the S3
archive): the identity, the diff, the tags, and of the configuration only the strings attribution and
trust read (``KEPT_CONFIGURATION``); an item's relationships stay behind. It also carries the schedule
state: when it arrived, how often it was tried, when to try next. A job stays under SQS's 256 KB
whatever the item's size, and a lookup run holds a chunk of them at a time.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from chalicelib.core.attribution import ID_KEYS
from chalicelib.core.model import ConfigChange, PropertyChange, Relationship
from chalicelib.core.timeutil import iso, parse_time

MAX_JOB_BYTES = 180_000  # SQS takes 256 KB per message; leave room for the job's other fields
READ_TO_END = "complete"
MAX_CARRIED = 10  # candidate calls carried between ticks (the newest; an untrusted one is alerted at once)
KEPT_CONFIGURATION = frozenset({*ID_KEYS, "path"})
"""Configuration fields a job keeps (text only): the ids attribution finds an item by, a role's name and path."""


@dataclass(frozen=True)
class LookupJob:
    change: ConfigChange
    change_key: str
    arrived_at: datetime
    attempts: int = 0
    archive_bucket: str | None = None
    archive_key: str | None = None
    not_before: datetime | None = None
    # After an alert: follow-up lookups that add calls which became visible later.
    decided_event_ids: tuple[str, ...] = ()
    revision: int = 0
    decided_kind: str | None = None  # set once an outcome was emitted: later lookups can only revise it
    # Evidence carried across ticks while CloudTrail returns more than one run can read (a flood):
    # how far each lookup has read back (``READ_TO_END`` once complete), for which window, and the
    # candidate calls found so far (LookupEvents ``Events[]`` entries).
    cursors: dict[str, str] = field(default_factory=dict)
    decided_window: str | None = None  # the window an alert was decided on (a later, narrower one may revise it)
    cursor_window: str | None = None
    carried: tuple[dict[str, Any], ...] = ()
    pages_read: int = 0
    streamed: bool = False  # decided from the live stream: its suppression gets one history check (D29)

    @property
    def is_followup(self) -> bool:
        return self.decided_kind is not None

    @property
    def is_watch(self) -> bool:
        """A suppressed item watched for a person's call on it that becomes visible later."""
        return self.decided_kind == "suppressed"

    def to_json(self) -> dict[str, Any]:
        return {
            "v": 1,
            "change": change_to_json(self.change),
            "change_key": self.change_key,
            "arrived_at": iso(self.arrived_at),
            "attempts": self.attempts,
            "archive_bucket": self.archive_bucket,
            "archive_key": self.archive_key,
            "not_before": iso(self.not_before),
            "decided_event_ids": list(self.decided_event_ids),
            "revision": self.revision,
            "decided_kind": self.decided_kind,
            "cursors": dict(self.cursors),
            "decided_window": self.decided_window,
            "cursor_window": self.cursor_window,
            "carried": list(self.carried[-MAX_CARRIED:]),
            "pages_read": self.pages_read,
            "streamed": self.streamed,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LookupJob:
        arrived = parse_time(data.get("arrived_at"))
        if arrived is None:
            raise ValueError("lookup job without arrived_at")
        return cls(
            change=change_from_json(data["change"]),
            change_key=str(data["change_key"]),
            arrived_at=arrived,
            attempts=int(data.get("attempts") or 0),
            archive_bucket=data.get("archive_bucket"),
            archive_key=data.get("archive_key"),
            not_before=parse_time(data.get("not_before")),
            decided_event_ids=tuple(data.get("decided_event_ids") or ()),
            revision=int(data.get("revision") or 0),
            decided_kind=data.get("decided_kind"),
            cursors={str(k): str(v) for k, v in (data.get("cursors") or {}).items()},
            cursor_window=data.get("cursor_window"),
            decided_window=data.get("decided_window"),
            carried=tuple(c for c in data.get("carried") or () if isinstance(c, dict))[-MAX_CARRIED:],
            pages_read=int(data.get("pages_read") or 0),
            streamed=data.get("streamed") is True,
        )

    def retried(self, not_before: datetime) -> LookupJob:
        return replace(self, attempts=self.attempts + 1, not_before=not_before)


def change_key(change: ConfigChange) -> str:
    """Identity of one configuration item, the same for every redelivery of it."""
    parts = [change.account, (change.resource_type or "").lower(), change.resource_id,
             iso(change.capture_time), change.state_id, change.change_type]
    return hashlib.sha256("|".join(p or "" for p in parts).encode()).hexdigest()[:32]


def change_to_json(change: ConfigChange) -> dict[str, Any]:
    """The item as a job carries it: under SQS's 256 KB whatever the item's size (the archive has it all)."""
    props = [p.to_json() for p in change.changed_properties]
    config = slim_configuration(change.configuration)
    data = {
        "source": change.source,
        "message_type": change.message_type,
        "account": change.account,
        "region": change.region,
        "resource_type": change.resource_type,
        "resource_id": change.resource_id,
        "resource_name": change.resource_name,
        "arn": change.arn,
        "capture_time": iso(change.capture_time),
        "change_type": change.change_type,
        "status": change.status,
        "changed_properties": props,
        "oversized": change.oversized,
        "s3_location": change.s3_location,
        "related_events": list(change.related_events),
        "configuration": config,
        "tags": dict(change.tags),
        "state_id": change.state_id,
        "notification_time": iso(change.notification_time),
    }
    return _fit(data)


def slim_configuration(configuration: Any) -> dict[str, str] | None:
    """The configuration's ``KEPT_CONFIGURATION`` strings (a large item's configuration is most of its size)."""
    if not isinstance(configuration, dict):
        return None
    return {k: v for k, v in configuration.items() if k in KEPT_CONFIGURATION and isinstance(v, str) and len(v) < 2048}


MAX_TAGS = 50  # AWS's limit per resource


def _fit(data: dict[str, Any]) -> dict[str, Any]:
    """Shrink in order of least use: diff values, then properties other than relationships (which attribution
    needs)."""
    if _size(data) <= MAX_JOB_BYTES:
        return data
    data = {**data, "changed_properties": [p if _is_tag_path(p["path"]) else trim_property(p)
                                           for p in data["changed_properties"]]}
    if _size(data) <= MAX_JOB_BYTES:
        return data
    props = data["changed_properties"]
    kept = [p for p in props if p["path"].startswith("Relationships")][:200]
    # Tags and their diff stay whole (AWS allows 50 tags of at most 384 characters): routes read them, and an
    # item made large on purpose must not send its alert to another channel.
    kept += [p for p in props if _is_tag_path(p["path"])][:MAX_TAGS * 2]
    kept += [{**p, "previous": None, "updated": None} for p in props
             if not p["path"].startswith("Relationships") and not _is_tag_path(p["path"])][:300]
    return {**data, "changed_properties": kept, "tags": dict(list((data.get("tags") or {}).items())[:MAX_TAGS])}


def _is_tag_path(path: str) -> bool:
    return "tag" in path.lower()


def _size(data: dict[str, Any]) -> int:
    return len(json.dumps(data, default=str))


def change_from_json(data: dict[str, Any]) -> ConfigChange:
    return ConfigChange(
        source=data.get("source") or "",
        message_type=data.get("message_type"),
        account=data.get("account"),
        region=data.get("region"),
        resource_type=data.get("resource_type"),
        resource_id=data.get("resource_id"),
        resource_name=data.get("resource_name"),
        arn=data.get("arn"),
        capture_time=parse_time(data.get("capture_time")),
        change_type=data.get("change_type"),
        status=data.get("status"),
        changed_properties=tuple(
            PropertyChange(p["path"], p.get("change_type"), p.get("previous"), p.get("updated"))
            for p in data.get("changed_properties") or ()
        ),
        oversized=bool(data.get("oversized")),
        s3_location=data.get("s3_location"),
        related_events=tuple(data.get("related_events") or ()),
        relationships=tuple(Relationship(*r) for r in data.get("relationships") or ()),
        configuration=data.get("configuration"),
        tags=dict(data.get("tags") or {}),
        state_id=data.get("state_id"),
        notification_time=parse_time(data.get("notification_time")),
    )


def trim_property(prop: dict[str, Any]) -> dict[str, Any]:
    """A changed property whose values are cut to 500 characters of JSON (the archive keeps them whole)."""
    def short(value: Any) -> Any:
        text = json.dumps(value, default=str)
        return value if len(text) <= 500 else text[:500] + "…"

    return {**prop, "previous": short(prop.get("previous")), "updated": short(prop.get("updated"))}
