"""Outcomes: what the detector concludes, one per configuration item or direct CloudTrail fact.

An ``Outcome`` is plain data (JSON-safe fields only) because it travels through SQS to the Slack
sender and is written as one structured log line. Kinds are those of ``FORMAT.md``, plus the
operational ``dead_letter`` alert.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

MANUAL_CHANGE = "manual_change"
SUPPRESSED = "suppressed"
UNATTRIBUTED_CHANGE = "unattributed_change"
CONSOLE_SIGNIN = "console_signin"
API_CALL = "api_call"

DEAD_LETTER = "dead_letter"
"""Operational, not one of FORMAT.md's kinds: a message that ended in the dead-letter store (``dead_letters``).
Logged on ``mcd.operational`` (never the outcome logger) and posted to Slack as an operational alert."""
OPERATIONAL_KINDS = frozenset({DEAD_LETTER})

ALERT_KINDS = frozenset({MANUAL_CHANGE, UNATTRIBUTED_CHANGE, CONSOLE_SIGNIN, API_CALL, DEAD_LETTER})


@dataclass(frozen=True)
class EventSummary:
    """The parts of a CloudTrail record an alert shows."""

    event_id: str | None
    event_name: str | None
    event_time: str | None
    event_source: str | None = None
    region: str | None = None
    source_ip: str | None = None
    user_agent: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    request_parameters: Any = None


@dataclass(frozen=True)
class Outcome:
    kind: str
    outcome_id: str
    at: str
    account: str | None = None
    region: str | None = None
    resource_type: str | None = None
    resource_id: str | None = None
    resource_name: str | None = None
    resource_arn: str | None = None
    change_type: str | None = None
    capture_time: str | None = None
    principal_arn: str | None = None
    principal: dict[str, Any] | None = None
    event_ids: tuple[str, ...] = ()
    events: tuple[EventSummary, ...] = ()
    event_name: str | None = None
    reason: str | None = None
    signin: str | None = None
    changed_properties: tuple[dict[str, Any], ...] = ()
    archive_bucket: str | None = None
    archive_key: str | None = None
    partition: str = "aws"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_alert(self) -> bool:
        return self.kind in ALERT_KINDS

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["event_ids"] = list(self.event_ids)
        data["events"] = [dataclasses.asdict(e) for e in self.events]
        data["changed_properties"] = list(self.changed_properties)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Outcome:
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["event_ids"] = tuple(values.get("event_ids") or ())
        values["events"] = tuple(EventSummary(**e) for e in values.get("events") or ())
        values["changed_properties"] = tuple(values.get("changed_properties") or ())
        return cls(**values)
