"""The normalised items every AWS input shape is parsed into.

Parsers (``chalicelib.parsing``) turn raw AWS payloads into these frozen data classes, once; nothing after
the parsers reads raw AWS dicts. Absent values are ``None``, never a guessed default; a field of the
wrong type counts as absent. Free-form parts whose shape depends on the API called
(``requestParameters``, ``responseElements``, ``resources``) are kept as delivered.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Union

from chalicelib.core.timeutil import iso


@dataclass(frozen=True)
class Principal:
    """Who made a CloudTrail call, resolved from any ``userIdentity`` shape.

    ``issuer_arn`` is what trust is decided on: the role a session was issued from
    (``sessionContext.sessionIssuer.arn``), or the IAM user's / root's own ARN. ``from_console`` is
    ``True`` when CloudTrail says the session's credentials came from the AWS console
    (``sessionCredentialFromConsole``): a person is driving it, whatever role it belongs to.
    """

    type: str | None = None
    arn: str | None = None
    account: str | None = None
    issuer_arn: str | None = None
    display_name: str | None = None
    session_name: str | None = None
    source_identity: str | None = None
    mfa: bool | None = None
    invoked_by: str | None = None
    user_name: str | None = None
    access_key_id: str | None = None
    from_console: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "arn": self.arn,
            "account": self.account,
            "issuer_arn": self.issuer_arn,
            "display_name": self.display_name,
            "session_name": self.session_name,
            "source_identity": self.source_identity,
            "mfa": self.mfa,
            "invoked_by": self.invoked_by,
            "from_console": self.from_console,
        }


@dataclass(frozen=True)
class IndexedResource:
    """A resource as CloudTrail event history indexes it (``Resources[]`` of LookupEvents)."""

    type: str | None
    name: str | None


@dataclass(frozen=True)
class TrailEvent:
    """One CloudTrail record (API call, console sign-in, service event), complete and typed.

    Who made the call is ``principal`` (its ``type``, ``invoked_by``, session issuer ``issuer_arn``, ...).
    ``account`` is the account the call was recorded in: ``recipient_account`` (``recipientAccountId``)
    when the record names one, else the caller's own. ``console_login`` (``responseElements.ConsoleLogin``,
    ``Success``/``Failure``) and ``mfa_used`` (``additionalEventData.MFAUsed``) are a console sign-in's.
    ``event_time_text`` is ``eventTime`` as written, for showing when it could not be read as a time.
    ``fingerprint`` identifies the record as delivered, so that two deliveries of a record without a real
    ``eventID`` agree (the parser sets it).

    ``raw`` is the record itself, kept only to travel on: the lookup stage carries candidate records to
    its next run in the job (``LookupJob.carried``), where they are parsed again. Read the typed fields.
    """

    source: str
    event_id: str | None
    event_name: str | None
    event_source: str | None
    event_time: datetime | None
    account: str | None
    region: str | None
    read_only: bool | None
    error_code: str | None
    principal: Principal
    error_message: str | None = None
    event_type: str | None = None
    source_ip: str | None = None
    user_agent: str | None = None
    indexed_resources: tuple[IndexedResource, ...] = ()
    recipient_account: str | None = None
    console_login: str | None = None
    mfa_used: bool | None = None
    event_time_text: str | None = None
    request_parameters: Any = field(default=None, compare=False, repr=False)
    response_elements: Any = field(default=None, compare=False, repr=False)
    resources: Any = field(default=None, compare=False, repr=False)
    fingerprint: str | None = field(default=None, compare=False, repr=False)
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    kind = "cloudtrail_event"

    @property
    def identity_type(self) -> str | None:
        """``userIdentity.type`` (``Root``, ``IAMUser``, ``AssumedRole``, ...)."""
        return self.principal.type

    @property
    def failed(self) -> bool:
        """CloudTrail recorded an error (failed console sign-ins carry an ``errorMessage`` only)."""
        return bool(self.error_code or self.error_message)

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "kind": self.kind,
            "event_id": self.event_id,
            "event_name": self.event_name,
            "event_source": self.event_source,
            "event_time": iso(self.event_time),
            "account": self.account,
            "region": self.region,
            "read_only": self.read_only,
            "error_code": self.error_code,
            "principal": self.principal.to_json(),
        }


@dataclass(frozen=True)
class PropertyChange:
    """One entry of ``configurationItemDiff.changedProperties``."""

    path: str
    change_type: str | None
    previous: Any = None
    updated: Any = None

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "change_type": self.change_type,
                "previous": self.previous, "updated": self.updated}


@dataclass(frozen=True)
class Relationship:
    resource_type: str | None
    resource_id: str | None
    resource_name: str | None
    name: str | None


@dataclass(frozen=True)
class ConfigChange:
    """One configuration item from an AWS Config change notification (or its oversized summary)."""

    source: str
    message_type: str | None
    account: str | None
    region: str | None
    resource_type: str | None
    resource_id: str | None
    resource_name: str | None
    arn: str | None
    capture_time: datetime | None
    change_type: str | None
    status: str | None
    changed_properties: tuple[PropertyChange, ...] = ()
    oversized: bool = False
    s3_location: str | None = None
    related_events: tuple[str, ...] = ()
    relationships: tuple[Relationship, ...] = ()
    configuration: Any = field(default=None, compare=False, repr=False)
    tags: dict[str, str] = field(default_factory=dict, compare=False)
    state_id: str | None = None
    notification_time: datetime | None = None

    kind = "config_change"

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "kind": self.kind,
            "message_type": self.message_type,
            "account": self.account,
            "region": self.region,
            "resource_type": self.resource_type,
            "resource_id": self.resource_id,
            "resource_name": self.resource_name,
            "arn": self.arn,
            "capture_time": iso(self.capture_time),
            "change_type": self.change_type,
            "status": self.status,
            "changed_properties": [p.path for p in self.changed_properties],
            "oversized": self.oversized,
        }


@dataclass(frozen=True)
class Ignored:
    """Valid input that carries nothing to act on (snapshot delivered, control message, ...)."""

    source: str
    reason: str
    kind = "ignored"

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "kind": self.kind, "reason": self.reason}


@dataclass(frozen=True)
class Unparseable:
    """Input that cannot be read; ``reason`` says what a person can do about it."""

    source: str
    reason: str
    kind = "unparseable"

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "kind": self.kind, "reason": self.reason}


Item = Union[ConfigChange, TrailEvent, Ignored, Unparseable]  # noqa: UP007 (a runtime alias on 3.10)
