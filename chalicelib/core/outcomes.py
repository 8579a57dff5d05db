"""Outcomes: what the detector concludes, one per configuration item or direct CloudTrail fact.

An ``Outcome`` travels through SQS to the Slack sender and is written as one structured log line, so
``to_json`` gives plain JSON and ``from_json`` reads it back. Kinds are those of ``FORMAT.md``, plus the
operational ``dead_letter`` alert.

Every field holds the type it is declared with, whatever it was built from: a message from the queue, an
older release's message, or a value of the wrong type (bad input is normal input). Construction
normalises: odd text fields become text, a principal given as a dict (the JSON shape) becomes a
``Principal``, items of the wrong type are dropped from ``events`` and ``changed_properties``. Readers
(the Slack room, severity, routing) then trust the types; only free-form contents (``request_parameters``,
the values inside ``changed_properties`` and ``extra``) can still be anything.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from chalicelib.core.model import Principal, TrailEvent
from chalicelib.core.text import optional_text
from chalicelib.core.timeutil import iso


class Kind(str, Enum):
    """What an outcome says happened; its value is the ``kind`` written in JSON and logs."""

    MANUAL_CHANGE = "manual_change"
    SUPPRESSED = "suppressed"
    UNATTRIBUTED_CHANGE = "unattributed_change"
    CONSOLE_SIGNIN = "console_signin"
    API_CALL = "api_call"
    DEAD_LETTER = "dead_letter"
    """Operational, not one of FORMAT.md's kinds: a message that ended in the dead-letter store
    (``dead_letters``). Logged on ``mcd.operational`` (never the outcome logger) and posted to Slack as an
    operational alert."""
    DETECTOR_HEALTH = "detector_health"
    """Operational: the dead-man's switch (``core.watchdog``) saw the detector go deaf or a schedule stall,
    or saw it recover. Logged and posted like ``dead_letter``."""

    def __str__(self) -> str:  # the value, as a plain ``str`` would show (f-strings, ``str()``)
        return str.__str__(self)


MANUAL_CHANGE = Kind.MANUAL_CHANGE
SUPPRESSED = Kind.SUPPRESSED
UNATTRIBUTED_CHANGE = Kind.UNATTRIBUTED_CHANGE
CONSOLE_SIGNIN = Kind.CONSOLE_SIGNIN
API_CALL = Kind.API_CALL
DEAD_LETTER = Kind.DEAD_LETTER
DETECTOR_HEALTH = Kind.DETECTOR_HEALTH

OPERATIONAL_KINDS = frozenset({DEAD_LETTER, DETECTOR_HEALTH})
ALERT_KINDS = frozenset({MANUAL_CHANGE, UNATTRIBUTED_CHANGE, CONSOLE_SIGNIN, API_CALL, DEAD_LETTER,
                         DETECTOR_HEALTH})

_EVENT_TEXT_FIELDS = (
    "event_id", "event_name", "event_time", "event_source", "region", "source_ip", "user_agent", "error_code",
    "error_message",
)  # fmt: skip
_OUTCOME_TEXT_FIELDS = (
    "outcome_id", "at", "account", "region", "resource_type", "resource_id", "resource_name", "resource_arn",
    "change_type", "capture_time", "principal_arn", "event_name", "reason", "signin", "archive_bucket",
    "archive_key",
)  # fmt: skip
_PRINCIPAL_TEXT_FIELDS = (
    "type", "arn", "account", "issuer_arn", "display_name", "session_name", "source_identity", "invoked_by",
)  # fmt: skip


TAGS_UNKNOWN = "tags_unknown"
"""``Outcome.extra`` flag: the change touched the resource's tags in a shape whose former tags cannot be read
(routing then treats tag conditions as unknown: ``core.routing``)."""

@dataclass(frozen=True)
class EventSummary:
    """The parts of a CloudTrail record an alert shows (text fields are text or ``None``)."""

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

    def __post_init__(self) -> None:
        _set_all(self, {name: optional_text(getattr(self, name)) for name in _EVENT_TEXT_FIELDS})

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EventSummary:
        """The summary a JSON object describes (unknown keys ignored, missing ones absent)."""
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        return cls(**{"event_id": None, "event_name": None, "event_time": None, **values})


@dataclass(frozen=True)
class Outcome:
    kind: Kind | str  # a ``Kind``; an unknown kind stays the text it was (renderers refuse it)
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
    principal: Principal | None = None
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
    resource_tags: dict[str, str] = field(default_factory=dict)
    """The resource's tags after the change (a Config item's; routes by tag read them)."""
    resource_tags_before: dict[str, str] | None = None
    """Its tags before the change, when the change altered them (``None``: the same as ``resource_tags``)."""

    def __post_init__(self) -> None:
        _set_all(self, _normalised(self))

    @property
    def is_alert(self) -> bool:
        return self.kind in ALERT_KINDS

    @property
    def event_names(self) -> tuple[str, ...]:
        """Distinct non-blank event names (the outcome's own first, then its events'), in order."""
        names = [self.event_name, *(e.event_name for e in self.events)]
        return tuple(dict.fromkeys(n for n in names if n and n.strip()))

    @property
    def by_root(self) -> bool:
        """The account's root user acted (its identity type, or a principal ARN ending in ``:root``)."""
        if self.principal is not None and (self.principal.type or "").lower() == "root":
            return True
        return bool(self.principal_arn and self.principal_arn.endswith(":root"))

    def to_json(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data["kind"] = self.kind.value if isinstance(self.kind, Kind) else self.kind
        data["principal"] = self.principal.to_json() if self.principal is not None else None
        data["event_ids"] = list(self.event_ids)
        data["events"] = [dataclasses.asdict(e) for e in self.events]
        data["changed_properties"] = list(self.changed_properties)
        data["extra"] = copy.deepcopy(self.extra)
        data["resource_tags"] = dict(self.resource_tags)
        before = self.resource_tags_before
        data["resource_tags_before"] = dict(before) if before is not None else None
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Outcome:
        """The outcome ``to_json`` wrote, also from older releases' messages (unknown keys are ignored).

        A principal is read from its JSON object; one that is not an object is absent. Events that are not
        objects are dropped. ``kind``, ``outcome_id`` and ``at`` are required (``TypeError`` without them).
        """
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        events = _items(values.get("events"))
        values["events"] = tuple(EventSummary.from_json(e) if isinstance(e, Mapping) else e for e in events)
        return cls(**values)


def principal_of(value: Any) -> Principal | None:
    """The principal an outcome carries: what ``Principal.to_json`` writes, from a ``Principal`` or its JSON.

    An outcome carries the principal as it travels, so a reader sees the same principal before and after
    the queue: ``user_name`` and ``access_key_id`` (not written) are left out. Text fields of another type
    become text, ``mfa`` is a bool or ``None``; a value that is neither a ``Principal`` nor a mapping is ``None``.
    """
    if isinstance(value, Principal):
        if value.user_name is None and value.access_key_id is None:
            return value
        return dataclasses.replace(value, user_name=None, access_key_id=None)
    if not isinstance(value, Mapping):
        return None
    texts = {name: optional_text(value.get(name)) for name in _PRINCIPAL_TEXT_FIELDS}
    mfa = value.get("mfa")
    mfa = mfa if isinstance(mfa, bool) else None
    return Principal(**texts, mfa=mfa, from_console=value.get("from_console") is True)


def _normalised(outcome: Outcome) -> dict[str, Any]:
    """Every field of ``outcome`` as the type it is declared with (see the module docstring)."""
    values: dict[str, Any] = {name: optional_text(getattr(outcome, name)) for name in _OUTCOME_TEXT_FIELDS}
    values["kind"] = _kind_of(outcome.kind)
    values["partition"] = outcome.partition if isinstance(outcome.partition, str) else "aws"
    values["principal"] = principal_of(outcome.principal)
    values["event_ids"] = tuple(optional_text(i) for i in _items(outcome.event_ids) if i is not None)
    values["events"] = tuple(e for e in _items(outcome.events) if isinstance(e, EventSummary))
    values["changed_properties"] = tuple(c for c in _items(outcome.changed_properties) if isinstance(c, Mapping))
    values["extra"] = _dict_of(outcome.extra)
    values["resource_tags"] = _tags_of(outcome.resource_tags)
    before = outcome.resource_tags_before
    values["resource_tags_before"] = _tags_of(before) if isinstance(before, Mapping) else None
    return values


def _kind_of(value: Any) -> Any:
    """A known kind as its ``Kind``; anything else as it was (an unknown kind is refused where it matters)."""
    if isinstance(value, Kind) or not isinstance(value, str):
        return value
    try:
        return Kind(value)
    except ValueError:
        return value


def _items(value: Any) -> tuple[Any, ...]:
    return tuple(value) if isinstance(value, (list, tuple)) else ()


def _dict_of(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    return dict(value) if isinstance(value, Mapping) else {}


def _tags_of(value: Any) -> dict[str, str]:
    """Tags as text keys and text values; anything else is left out."""
    if not isinstance(value, Mapping):
        return {}
    return {k: v for k, v in value.items() if isinstance(k, str) and isinstance(v, str)}


def _set_all(instance: object, values: Mapping[str, Any]) -> None:
    """Set fields of a frozen data class from its ``__post_init__``."""
    for name, value in values.items():
        object.__setattr__(instance, name, value)


def summary_of(event: TrailEvent) -> EventSummary:
    """What an alert shows of one CloudTrail record; an unreadable ``eventTime`` is shown as written."""
    return EventSummary(
        event_id=event.event_id,
        event_name=event.event_name,
        event_time=iso(event.event_time) or event.event_time_text,
        event_source=event.event_source,
        region=event.region,
        source_ip=event.source_ip,
        user_agent=event.user_agent,
        error_code=event.error_code,
        error_message=event.error_message,
        request_parameters=event.request_parameters,
    )
