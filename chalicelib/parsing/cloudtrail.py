"""CloudTrail records (and LookupEvents ``Events[]`` entries) into complete ``TrailEvent``s (pure).

Every field any later stage needs is read here, once, tolerating each variation CloudTrail and its
samples show (missing, ``null``, ``"true"`` for ``true``, a number for a string, an object where text
belongs): a value of the wrong type counts as absent, and bad input never raises.
``resolve_principal`` turns every ``userIdentity`` shape into one ``Principal``; trust is later
decided on ``Principal.issuer_arn``, never on a session name.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

from chalicelib.core.model import IndexedResource, Principal, TrailEvent, Unparseable
from chalicelib.core.timeutil import iso, parse_time
from chalicelib.parsing.envelopes import as_mapping, text_of

_SELF_ISSUED = frozenset({"IAMUser", "Root"})
_NAMED_BY_USER_NAME = frozenset({"IAMUser", "SAMLUser", "WebIdentityUser"})


def parse_record(record: Any, source: str,
                 indexed: tuple[IndexedResource, ...] = ()) -> TrailEvent | Unparseable:
    """One CloudTrail record; absent fields are ``None``. ``raw`` keeps the record itself (no copy)."""
    if not isinstance(record, dict):
        return Unparseable(source, f"a CloudTrail record must be a JSON object, got {type(record).__name__}")
    return _fingerprinted(_trail_event(record, source, indexed))


def _trail_event(record: dict[str, Any], source: str, indexed: tuple[IndexedResource, ...]) -> TrailEvent:
    principal = resolve_principal(record.get("userIdentity"), record.get("additionalEventData"),
                                  record.get("sessionCredentialFromConsole"))
    recipient = text_of(record.get("recipientAccountId"))
    return TrailEvent(
        source=source,
        event_id=text_of(record.get("eventID")),
        event_name=text_of(record.get("eventName")),
        event_source=text_of(record.get("eventSource")),
        event_time=parse_time(record.get("eventTime")),
        account=recipient or principal.account,
        region=text_of(record.get("awsRegion")),
        read_only=_flag(record.get("readOnly")),
        error_code=text_of(record.get("errorCode")),
        principal=principal,
        error_message=text_of(record.get("errorMessage")),
        event_type=text_of(record.get("eventType")),
        source_ip=text_of(record.get("sourceIPAddress")),
        user_agent=text_of(record.get("userAgent")),
        indexed_resources=indexed,
        recipient_account=recipient,
        console_login=text_of(as_mapping(record.get("responseElements")).get("ConsoleLogin")),
        mfa_used=mfa_used(record.get("additionalEventData")),
        event_time_text=text_of(record.get("eventTime")),
        request_parameters=record.get("requestParameters"),
        response_elements=record.get("responseElements"),
        resources=record.get("resources"),
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
    parsed = _trail_event(inner if inner is not None else {}, source, indexed)
    if inner is None:
        parsed = dataclasses.replace(parsed, raw=event)
    return _fingerprinted(_fill_from_outer(parsed, event))


def with_location(event: TrailEvent, account: str | None, region: str | None) -> TrailEvent:
    """``event`` with ``account``/``region`` where it names none (an EventBridge envelope's, say)."""
    filled = dataclasses.replace(event, account=event.account or account, region=event.region or region)
    return _fingerprinted(filled)


def _fingerprinted(event: TrailEvent) -> TrailEvent:
    return dataclasses.replace(event, fingerprint=fingerprint(event))


def fingerprint(event: TrailEvent) -> str | None:
    """A digest of the fields that identify the call, as delivered (raw values first, parsed ones where absent).

    Two deliveries of one record (EventBridge and CloudWatch Logs, or a redelivery) give the same digest,
    so a record without a real ``eventID`` still gets one outcome id (``rules.outcome_id``). ``None`` for a
    record that cannot be written as JSON (built in Python with odd keys, or nested beyond the recursion
    limit): the outcome id then digests the parsed fields.
    """
    raw = event.raw
    identity = as_mapping(raw.get("userIdentity"))
    key = {
        "eventTime": raw.get("eventTime", iso(event.event_time)),
        "eventSource": raw.get("eventSource", event.event_source),
        "eventName": raw.get("eventName", event.event_name),
        "awsRegion": raw.get("awsRegion", event.region),
        "requestID": raw.get("requestID"),
        "sourceIPAddress": raw.get("sourceIPAddress"),
        "identity": [identity.get(k) for k in ("type", "arn", "principalId", "accessKeyId", "userName")],
        "requestParameters": raw.get("requestParameters"),
    }
    try:
        text = json.dumps(key, sort_keys=True, default=str, ensure_ascii=True)
    except (TypeError, ValueError, RecursionError):
        return None
    return hashlib.sha256(text.encode()).hexdigest()[:24]


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
    used = mfa_used(extra)
    if used is not None:
        return used
    attributes = as_mapping(context.get("attributes")) or as_mapping(context.get("Attributes"))
    return _flag(attributes.get("mfaAuthenticated"))


def mfa_used(additional_event_data: Any) -> bool | None:
    """A console sign-in's ``additionalEventData.MFAUsed``: ``Yes``/``No`` in any casing; else ``None``.

    CloudTrail writes only ``Yes`` and ``No``. Anything else (``true``, a boolean, a number) is not an
    answer, and a sign-in is never reported as "without MFA" on a guess.
    """
    used = as_mapping(additional_event_data).get("MFAUsed")
    if isinstance(used, str) and used.strip().lower() in ("yes", "no"):
        return used.strip().lower() == "yes"
    return None


def _flag(value: Any) -> bool | None:
    """A bool, or the strings ``true``/``false`` in any casing; anything else is ``None``."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "false"):
            return lowered == "true"
    return None
