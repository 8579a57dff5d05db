"""A file-backed CloudTrail ``LookupEvents`` with the real API's semantics (moto lacks it).

It answers through botocore's ``before-call`` hook, so the code under test uses a real boto3 client,
real parameter validation and real error classes. Semantics kept: one lookup attribute per call, a
``StartTime``/``EndTime`` window on event time (inclusive), newest first, at most 50 events a page
with an opaque ``NextToken``, at most 2 calls per second per region (more raise
``ThrottlingException``), events visible only from their ``visible_at`` on, and ``Events[]`` shaped
as the real API shapes them.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qs

from chalicelib.core.timeutil import parse_time

ATTRIBUTES = ("EventId", "EventName", "ReadOnly", "Username", "ResourceType", "ResourceName", "EventSource",
              "AccessKeyId")
READ_ONLY_PREFIXES = ("Get", "List", "Describe", "Head", "Lookup")
MAX_PER_SECOND = 2


@dataclass(frozen=True)
class TrailEntry:
    visible_at: datetime
    event_time: datetime
    region: str
    record: dict[str, Any]
    resources: tuple[tuple[str, str], ...]
    username: str | None

    @property
    def event_id(self) -> str:
        return str(self.record.get("eventID") or "")

    @property
    def account(self) -> str:
        """The account whose history holds the record (FORMAT.md, Accounts)."""
        record = self.record
        return str(record.get("recipientAccountId") or (record.get("userIdentity") or {}).get("accountId") or "")

    @property
    def read_only(self) -> str:
        value = self.record.get("readOnly")
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower()
        return "true" if str(self.record.get("eventName") or "").startswith(READ_ONLY_PREFIXES) else "false"

    def attribute(self, key: str) -> list[str]:
        record = self.record
        identity = record.get("userIdentity") or {}
        if key == "EventId":
            return [self.event_id]
        if key == "EventName":
            return [str(record.get("eventName") or "")]
        if key == "ReadOnly":
            return [self.read_only]
        if key == "Username":
            return [self.username or ""]
        if key == "ResourceType":
            return [t for t, _ in self.resources]
        if key == "ResourceName":
            return [n for _, n in self.resources]
        if key == "EventSource":
            return [str(record.get("eventSource") or "")]
        if key == "AccessKeyId":
            return [str(identity.get("accessKeyId") or "")]
        return []


def entries_from_scenario(items: list[dict[str, Any]]) -> list[TrailEntry]:
    entries = []
    for item in items:
        record = item.get("record") or {}
        visible = parse_time(item.get("visible_at"))
        when = parse_time(record.get("eventTime"))
        if visible is None or when is None:
            continue
        resources = tuple((str(r.get("ResourceType") or ""), str(r.get("ResourceName") or ""))
                          for r in item.get("resources") or [])
        entries.append(TrailEntry(visible, when, str(record.get("awsRegion") or ""), record, resources,
                                  item.get("username") or _default_username(record)))
    return entries


def _default_username(record: dict[str, Any]) -> str | None:
    identity = record.get("userIdentity") or {}
    if identity.get("userName"):
        return str(identity["userName"])
    arn = str(identity.get("arn") or "")
    if ":assumed-role/" in arn:
        return arn.rsplit("/", 1)[-1]
    issuer = ((identity.get("sessionContext") or {}).get("sessionIssuer") or {})
    return issuer.get("userName") or (identity.get("type") == "Root" and "root") or None


class _Reply:
    def __init__(self, status: int) -> None:
        self.status_code = status
        self.headers: dict[str, str] = {}
        self.raw = None
        self.content = b""
        self.text = ""


class FakeCloudTrail:
    """Serve ``LookupEvents`` for every region from one list of entries, on a (simulated) clock.

    With a ``home_account``, each account sees only its own history: a client attached for an account
    (``attach(client, account)``) reads that account's records, others the home account's; the rate limit
    is per account and region.
    """

    def __init__(self, entries: list[TrailEntry], clock: Callable[[], float], home_account: str = "") -> None:
        self._entries = entries
        self._clock = clock
        self._home = home_account
        self._calls: dict[tuple[str, str], deque[float]] = defaultdict(deque)
        self.calls = 0
        self.throttled = 0

    def attach(self, client: Any, account: str = "") -> None:
        region = client.meta.region_name
        client.meta.events.register("before-call.cloudtrail.LookupEvents",
                                    lambda params, **_: self._answer(region, params, account or self._home))

    def _answer(self, region: str, params: dict[str, Any], account: str = "") -> tuple[_Reply, dict[str, Any]]:
        self.calls += 1
        now = self._clock()
        window = self._calls[(account, region)]
        while window and now - window[0] >= 1.0:
            window.popleft()
        if len(window) >= MAX_PER_SECOND:
            self.throttled += 1
            return _error(400, "ThrottlingException", "Rate exceeded")
        window.append(now)
        body = params.get("body") or b"{}"
        request = json.loads(body if isinstance(body, str) else body.decode() or "{}")
        if account:
            request["Account"] = account
        try:
            return _Reply(200), self.lookup(region, request, now)
        except _ApiError as error:
            return _error(400, error.code, error.message)

    def lookup(self, region: str, request: dict[str, Any], now: float) -> dict[str, Any]:
        attributes = request.get("LookupAttributes") or []
        if len(attributes) > 1:
            raise _ApiError("InvalidLookupAttributesException", "Only one lookup attribute is allowed")
        key = value = None
        if attributes:
            key, value = attributes[0].get("AttributeKey"), attributes[0].get("AttributeValue")
            if key not in ATTRIBUTES:
                raise _ApiError("InvalidLookupAttributesException", f"Invalid attribute key {key}")
        start = _time(request.get("StartTime"))
        end = _time(request.get("EndTime"))
        if start and end and start > end:
            raise _ApiError("InvalidTimeRangeException", "StartTime must be before EndTime")
        max_results = int(request.get("MaxResults") or 50)
        if not 1 <= max_results <= 50:
            raise _ApiError("InvalidMaxResultsException", "MaxResults must be 1-50")
        visible_now = datetime.fromtimestamp(now, tz=timezone.utc)
        account = request.get("Account") or self._home
        matches = [
            e for e in self._entries
            if e.region == region and e.visible_at <= visible_now
            and (not account or not e.account or e.account == account)
            and (start is None or e.event_time >= start) and (end is None or e.event_time <= end)
            and (key is None or value in e.attribute(key))
        ]
        matches.sort(key=lambda e: (e.event_time, e.event_id), reverse=True)
        query = hashlib.sha256(json.dumps([region, key, value, str(start), str(end)]).encode()).hexdigest()[:16]
        offset = _offset(request.get("NextToken"), query)
        page = matches[offset:offset + max_results]
        reply: dict[str, Any] = {"Events": [_shape(e) for e in page], "ResponseMetadata": {"HTTPStatusCode": 200}}
        if offset + max_results < len(matches):
            reply["NextToken"] = base64.b64encode(f"{query}:{offset + max_results}".encode()).decode()
        return reply


class _ApiError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _error(status: int, code: str, message: str) -> tuple[_Reply, dict[str, Any]]:
    return _Reply(status), {"Error": {"Code": code, "Message": message},
                            "ResponseMetadata": {"HTTPStatusCode": status}}


def _offset(token: Any, query: str) -> int:
    if not token:
        return 0
    try:
        got_query, offset = base64.b64decode(token).decode().split(":")
        if got_query != query:
            raise ValueError
        return int(offset)
    except (ValueError, UnicodeDecodeError) as error:
        raise _ApiError("InvalidNextTokenException", "Invalid NextToken") from error


def _time(value: Any) -> datetime | None:
    return parse_time(value) if value is not None else None


def _shape(entry: TrailEntry) -> dict[str, Any]:
    identity = entry.record.get("userIdentity") or {}
    shaped: dict[str, Any] = {
        "EventId": entry.event_id,
        "EventName": entry.record.get("eventName"),
        "ReadOnly": entry.read_only,
        "EventTime": entry.event_time,
        "EventSource": entry.record.get("eventSource"),
        "Resources": [{"ResourceType": t, "ResourceName": n} for t, n in entry.resources],
        "CloudTrailEvent": json.dumps(entry.record),
    }
    if identity.get("accessKeyId"):
        shaped["AccessKeyId"] = identity["accessKeyId"]
    if entry.username:
        shaped["Username"] = entry.username
    return shaped


class LookupRoles:
    """STS ``AssumeRole`` as the replay allows it (FORMAT.md, Accounts): ``role_name`` in each account of
    ``accounts``, nothing else. Credentials it hands out name their account, so a CloudTrail client made
    with them reads that account's history (``account_of``)."""

    def __init__(self, accounts: list[str], role_name: str, clock: Callable[[], float]) -> None:
        self._accounts = set(accounts)
        self._role_name = role_name
        self._clock = clock
        self._keys: dict[str, str] = {}
        self.refused: list[str] = []

    def attach(self, sts_client: Any) -> None:
        sts_client.meta.events.register("before-call.sts.AssumeRole", lambda params, **_: self._assume(params))

    def account_of(self, client: Any) -> str:
        """The account whose role ``client``'s credentials came from ("" for the detector's own)."""
        credentials = getattr(getattr(client, "_request_signer", None), "_credentials", None)
        return self._keys.get(getattr(credentials, "access_key", "") or "", "")

    def _assume(self, params: dict[str, Any]) -> tuple[_Reply, dict[str, Any]]:
        body = params.get("body") or {}
        if isinstance(body, (bytes, str)):
            body = {k: v[0] for k, v in parse_qs(body.decode() if isinstance(body, bytes) else body).items()}
        role_arn = str(body.get("RoleArn") or "")
        parts = role_arn.split(":")
        account, name = (parts[4], parts[5].rsplit("/", 1)[-1]) if len(parts) == 6 else ("", "")
        if account not in self._accounts or name != self._role_name:
            self.refused.append(role_arn)
            return _error(403, "AccessDenied", f"not authorized to perform: sts:AssumeRole on resource: {role_arn}")
        key = f"ASIA{account}{len(self._keys):04d}"
        self._keys[key] = account
        expires = datetime.fromtimestamp(self._clock() + 3600, tz=timezone.utc)
        return _Reply(200), {"Credentials": {"AccessKeyId": key, "SecretAccessKey": "replay", "SessionToken": "replay",
                                             "Expiration": expires},
                             "AssumedRoleUser": {"AssumedRoleId": f"AROAREPLAY:{name}", "Arn": role_arn},
                             "ResponseMetadata": {"HTTPStatusCode": 200}}
