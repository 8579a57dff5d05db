"""The recent-calls index: CloudTrail write calls from the live stream, findable by the resources they name.

A record reaches ``api_call`` or ``cloudwatch_logs`` seconds after the call; ``LookupEvents`` shows it
3 to 25 minutes later. Each successful write is kept under every identifier it names
(``attribution.event_keys``), in its account and the region CloudTrail records it in, for
``INDEX_TTL``; a Config item finds its candidate causes with one query per identifier it can be
named by. The rows are keyed by call, so a record delivered twice is stored once.

Every delivered record, read or write, also marks its account and region as flowing at its event time
(one row per second). The stream is complete evidence for an item (FORMAT.md, "Stream before
history") ``COMPLETE_AFTER`` its capture time, or as soon as a record of the same account and region
with a later event time was delivered, provided records of that account and region were delivered in
the ``FLOWING_WITHIN`` before the capture. Everything else (no stream, a gap, an item older than the
index) is left to ``LookupEvents``.

Pure: keys and decisions only; ``stages.shared.recent_calls`` reads and writes the rows.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from chalicelib.core.attribution import event_keys, is_write
from chalicelib.core.model import TrailEvent
from chalicelib.core.timeutil import iso

INDEX_TTL = timedelta(hours=6)
COMPLETE_AFTER = timedelta(minutes=2)
FLOWING_WITHIN = timedelta(hours=1)
MAX_KEYS = 32
"""Identifiers a call is kept under. A call naming more (a request stuffed with ids to push the real one
out) is kept under ``OVERFLOW`` too, which every query of its account and region also reads."""
OVERFLOW = "*overflow*"
MAX_OVERFLOW_KEYS = 2_000
"""Identifiers the ``OVERFLOW`` row of a call carries (a call naming more is left to the history)."""
MAX_RECORD_CHARS = 4_000
"""A record is kept without its request and response (the identifiers it named travel beside it), and at most
this long: what attribution and the alert read of a call is who, what, where and when."""
SLIM_FIELDS = ("eventVersion", "userIdentity", "eventTime", "eventSource", "eventName", "awsRegion", "eventID",
               "readOnly", "eventType", "recipientAccountId", "sessionCredentialFromConsole", "errorCode",
               "sourceIPAddress", "userAgent")
MAX_ID_CHARS = 128
_ACCOUNT = re.compile(r"\d{12}")
_REGION = re.compile(r"[a-z]{2}(-[a-z]{1,12}){1,3}-\d{1,2}")  # bounded: a partition key has at most 2 KB
CALL_PREFIX = "ix#"
FLOW_PREFIX = "flow#"


@dataclass(frozen=True)
class IndexRow:
    """One row to write: ``pk``, ``sk`` and text attributes."""

    pk: str
    sk: str
    attrs: dict[str, str]


def call_partition(account: str, region: str, key: str) -> str:
    return f"{CALL_PREFIX}{account}#{region}#{key}"


def flow_partition(account: str, region: str) -> str:
    return f"{FLOW_PREFIX}{account}#{region}"


def time_key(moment: datetime) -> str:
    """A sort key that orders by time (``YYYY-MM-DDTHH:MM:SS``, UTC)."""
    return (iso(moment) or "")[:19]


def indexable(event: TrailEvent) -> bool:
    """A successful write with what the index needs: an id, a time, an account and a region, all well formed."""
    return bool(is_write(event) and event.event_id and len(event.event_id) <= MAX_ID_CHARS and event.event_time
                and _located(event))


def _located(event: TrailEvent) -> bool:
    """An account of 12 digits and a region name: a record from a log group anyone can write to may say anything,
    and DynamoDB refuses keys over 1 KB (the whole delivery's rows with them)."""
    return bool(event.account and _ACCOUNT.fullmatch(event.account) and event.region
                and _REGION.fullmatch(event.region))


def index_keys(event: TrailEvent) -> tuple[str, ...]:
    """The identifiers ``event`` is kept under: ARNs and ids first, at most ``MAX_KEYS``, plus ``OVERFLOW``
    when it named more."""
    keys = sorted(event_keys(event), key=lambda k: (not k.startswith("arn:"), len(k), k))
    if len(keys) > MAX_KEYS:
        return (*keys[:MAX_KEYS], OVERFLOW)
    return tuple(keys)


def call_rows(event: TrailEvent) -> list[IndexRow]:
    """The rows that keep one streamed call findable (none for a call that cannot change anything).

    The sort key ends with a fingerprint of the record kept, so a redelivery writes the same rows while a
    different record claiming the same ``eventID`` (anyone who can write to a CloudWatch Logs group can write
    one) is kept beside the genuine one, never over it: ``recall`` then leaves that call to the history. The
    ``OVERFLOW`` row carries every identifier the call named (up to ``MAX_OVERFLOW_KEYS``), so a call stuffed
    with identifiers is still matched on the one that counts.
    """
    if not indexable(event):
        return []
    assert event.event_time is not None and event.account and event.region
    keys = index_keys(event)
    record = stored_record(event.raw)
    fingerprint = hashlib.sha256(record.encode()).hexdigest()[:12]
    sk = f"{time_key(event.event_time)}#{event.event_id}#{fingerprint}"
    attrs = {"record": record, "keys": json.dumps([k for k in keys if k != OVERFLOW])}
    rows = [IndexRow(call_partition(event.account, event.region, key), sk, attrs) for key in keys if key != OVERFLOW]
    if OVERFLOW in keys:
        every = sorted(event_keys(event))
        overflow = {"record": record, "keys": json.dumps(every[:MAX_OVERFLOW_KEYS])}
        if len(every) > MAX_OVERFLOW_KEYS:
            overflow["truncated"] = "1"
        rows.append(IndexRow(call_partition(event.account, event.region, OVERFLOW), sk, overflow))
    return rows


def flow_row(event: TrailEvent) -> IndexRow | None:
    """The row that says the stream delivered a record of this account and region at its event time."""
    if not (event.event_time and _located(event)):
        return None
    assert event.account and event.region
    return IndexRow(flow_partition(event.account, event.region), time_key(event.event_time), {})


def stored_record(record: Any) -> str:
    """The record as kept: who, what, where and when; a record too large even so keeps less of who."""
    slim = {k: v for k, v in record.items() if k in SLIM_FIELDS} if isinstance(record, dict) else {}
    text = json.dumps(slim, default=str)
    if len(text) > MAX_RECORD_CHARS:
        identity = _mapping(slim.get("userIdentity"))
        issuer = _mapping(_mapping(identity.get("sessionContext")).get("sessionIssuer"))
        slim["userIdentity"] = {k: identity[k] for k in ("type", "arn", "accountId", "principalId", "invokedBy")
                                if k in identity} | {"sessionContext": {"sessionIssuer": issuer}}
        slim["userAgent"] = str(slim.get("userAgent", ""))[:200]
        text = json.dumps(slim, default=str)
    return text


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def window_keys(start: datetime, end: datetime) -> tuple[str, str]:
    """The sort-key range of calls made in ``[start, end]`` (event ids sort after ``#``)."""
    return time_key(start), time_key(end) + "#~"


@dataclass(frozen=True)
class Flow:
    """What the stream delivered of one account and region around an item's capture time."""

    before: bool  # a record with an event time in the hour before the capture
    after: bool  # a record with an event time after the capture


def stream_complete(capture: datetime, now: datetime, flow: Flow) -> bool:
    """Whether the stream holds every call that could have caused an item captured at ``capture``."""
    return flow.before and (flow.after or now >= capture + COMPLETE_AFTER)


def within_index(capture: datetime, now: datetime) -> bool:
    """Whether calls made before ``capture`` can still be in the index (its rows expire)."""
    return now - capture < INDEX_TTL - timedelta(minutes=30)
