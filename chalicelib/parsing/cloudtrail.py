"""CloudTrail records (and LookupEvents ``Events[]`` entries) into ``TrailEvent`` (pure).

``resolve_principal`` turns every ``userIdentity`` shape into one ``Principal``; trust is later
decided on ``Principal.issuer_arn``, never on a session name.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from chalicelib.core.model import IndexedResource, Principal, TrailEvent, Unparseable
from chalicelib.core.timeutil import parse_time
from chalicelib.parsing.envelopes import as_mapping, text_of

_SELF_ISSUED = frozenset({"IAMUser", "Root"})
_NAMED_BY_USER_NAME = frozenset({"IAMUser", "SAMLUser", "WebIdentityUser"})


def parse_record(record: Any, source: str,
                 indexed: tuple[IndexedResource, ...] = ()) -> TrailEvent | Unparseable:
    """One CloudTrail record; absent fields are ``None``. ``raw`` keeps the record itself (no copy)."""
    if not isinstance(record, dict):
        return Unparseable(source, f"a CloudTrail record must be a JSON object, got {type(record).__name__}")
    principal = resolve_principal(record.get("userIdentity"), record.get("additionalEventData"),
                                  record.get("sessionCredentialFromConsole"))
    return TrailEvent(
        source=source,
        event_id=text_of(record.get("eventID")),
        event_name=text_of(record.get("eventName")),
        event_source=text_of(record.get("eventSource")),
        event_time=parse_time(record.get("eventTime")),
        account=text_of(record.get("recipientAccountId")) or principal.account,
        region=text_of(record.get("awsRegion")),
        read_only=_flag(record.get("readOnly")),
        error_code=text_of(record.get("errorCode")),
        principal=principal,
        error_message=text_of(record.get("errorMessage")),
        event_type=text_of(record.get("eventType")),
        source_ip=text_of(record.get("sourceIPAddress")),
        user_agent=text_of(record.get("userAgent")),
        indexed_resources=indexed,
        raw=record,
    )


def parse_lookup_event(event: Any, source: str) -> TrailEvent | Unparseable:
    """One ``LookupEvents`` ``Events[]`` entry: the inner ``CloudTrailEvent`` wins, outer fields fill gaps."""
    if not isinstance(event, dict):
        return Unparseable(source, f"a LookupEvents entry must be a JSON object, got {type(event).__name__}")
    inner = _inner_record(event.get("CloudTrailEvent"))
    indexed = indexed_resources(event.get("Resources"))
    if inner is None and not (event.get("EventId") or event.get("EventName")):
        return Unparseable(source, "LookupEvents entry has no readable CloudTrailEvent "
                                   "and no EventId/EventName")
    parsed = parse_record(inner if inner is not None else {}, source, indexed)
    if isinstance(parsed, Unparseable):
        return parsed
    if inner is None:
        parsed = dataclasses.replace(parsed, raw=event)
    return _fill_from_outer(parsed, event)


def _inner_record(value: Any) -> dict[str, Any] | None:
    if isinstance(value, dict):
        return value
    if isinstance(value, (str, bytes)):
        try:
            decoded = json.loads(value)
        except (ValueError, RecursionError):
            return None
        return decoded if isinstance(decoded, dict) else None
    return None


def _fill_from_outer(parsed: TrailEvent, event: dict[str, Any]) -> TrailEvent:
    outer = {
        "event_id": text_of(event.get("EventId")),
        "event_name": text_of(event.get("EventName")),
        "event_source": text_of(event.get("EventSource")),
        "event_time": parse_time(event.get("EventTime")),
        "read_only": _flag(event.get("ReadOnly")),
    }
    gaps = {name: value for name, value in outer.items()
            if value is not None and getattr(parsed, name) is None}
    principal = _fill_principal(parsed.principal, event)
    if principal is not parsed.principal:
        gaps["principal"] = principal
    return dataclasses.replace(parsed, **gaps) if gaps else parsed


def _fill_principal(principal: Principal, event: dict[str, Any]) -> Principal:
    """``AccessKeyId`` and ``Username`` (CloudTrail's own display name) where the record has none."""
    gaps = {}
    access_key = text_of(event.get("AccessKeyId"))
    if access_key and principal.access_key_id is None:
        gaps["access_key_id"] = access_key
    username = text_of(event.get("Username"))
    if username and principal.display_name is None:
        gaps["display_name"] = username
    return dataclasses.replace(principal, **gaps) if gaps else principal


def indexed_resources(resources: Any) -> tuple[IndexedResource, ...]:
    """LookupEvents ``Resources[]`` (``ResourceType``/``ResourceName``) as ``IndexedResource``s."""
    if not isinstance(resources, list):
        return ()
    return tuple(
        IndexedResource(type=text_of(r.get("ResourceType")), name=text_of(r.get("ResourceName")))
        for r in resources if isinstance(r, dict)
    )


def resolve_principal(user_identity: Any, additional_event_data: Any = None,
                      session_from_console: Any = None) -> Principal:
    """Who made the call, for every ``userIdentity`` type (missing, ``{}``, unknown types included).

    ``session_from_console`` is the record's top-level ``sessionCredentialFromConsole`` (where
    CloudTrail writes it); the same flag inside ``sessionContext`` counts too.
    """
    identity = user_identity if isinstance(user_identity, dict) else {}
    extra = additional_event_data if isinstance(additional_event_data, dict) else {}
    context = as_mapping(identity.get("sessionContext"))
    kind = text_of(identity.get("type"))
    arn = text_of(identity.get("arn"))
    source_identity = text_of(context.get("sourceIdentity")) or text_of(identity.get("sourceIdentity"))
    session_name = _after(arn, ":assumed-role/", role_part=True) if kind == "AssumedRole" else None
    issuer_arn = text_of(as_mapping(context.get("sessionIssuer")).get("arn"))
    return Principal(
        type=kind,
        arn=arn,
        account=text_of(identity.get("accountId")),
        issuer_arn=issuer_arn or (arn if kind in _SELF_ISSUED else None),
        display_name=_display_name(kind, identity, extra, arn, source_identity or session_name),
        session_name=session_name,
        source_identity=source_identity,
        mfa=_mfa(context, extra),
        invoked_by=text_of(identity.get("invokedBy")),
        user_name=text_of(identity.get("userName")),
        access_key_id=text_of(identity.get("accessKeyId")),
        from_console=_flag(session_from_console) is True
        or _flag(context.get("sessionCredentialFromConsole")) is True,
    )


def _display_name(kind: str | None, identity: dict[str, Any], extra: dict[str, Any], arn: str | None,
                  assumed_role_name: str | None) -> str | None:
    if kind == "Root":
        return "root"
    if kind in _NAMED_BY_USER_NAME:
        return text_of(identity.get("userName"))
    if kind == "AssumedRole":
        return assumed_role_name
    if kind == "FederatedUser":
        return _after(arn, ":federated-user/")
    if kind == "IdentityCenterUser":
        return text_of(extra.get("UserName")) or text_of(as_mapping(identity.get("onBehalfOf")).get("userId"))
    if kind == "AWSService":
        return text_of(identity.get("invokedBy"))
    if kind == "AWSAccount":
        return text_of(identity.get("accountId"))
    return None


def _after(arn: str | None, marker: str, *, role_part: bool = False) -> str | None:
    """The name after ``marker`` in an ARN; with ``role_part`` skip the role (``ROLE/SESSION``)."""
    if not arn or marker not in arn:
        return None
    rest = arn.split(marker, 1)[1]
    if role_part:
        rest = rest.split("/", 1)[1] if "/" in rest else ""
    return rest or None


def _mfa(context: dict[str, Any], extra: dict[str, Any]) -> bool | None:
    """``MFAUsed`` (sign-ins say it about this sign-in) first, then the session's ``mfaAuthenticated``."""
    used = extra.get("MFAUsed")
    if isinstance(used, str) and used.strip().lower() in ("yes", "no"):
        return used.strip().lower() == "yes"
    attributes = as_mapping(context.get("attributes")) or as_mapping(context.get("Attributes"))
    return _flag(attributes.get("mfaAuthenticated"))


def _flag(value: Any) -> bool | None:
    """A bool, or the strings ``true``/``false`` in any casing; anything else is ``None``."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "false"):
            return lowered == "true"
    return None
