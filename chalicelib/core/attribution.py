"""Attribution: which CloudTrail calls caused a configuration item, and who made them.

Pure functions over parsed items. The lookup stage fetches candidate events (by resource name, by
event id, or by a sweep of all write calls in a window) and asks ``attribute`` to choose:

* only successful calls that can change something count (no ``errorCode``, not read-like: ``calls``),
  recorded in the item's own account;
* they must reference the resource (its id, name, ARN, or an id inside its configuration), or, when
  nothing references it directly, a resource whose relationship to it the item's diff changed (an
  instance's security-group swap changes the group it left without naming it);
* they must fall in the item's window: after the previous item of the same resource (or
  ``lookback`` before capture) and no later than the capture time.

Among the calls that fit, an untrusted principal wins over trusted ones (a human's edit inside an
IaC run is still a manual change); otherwise the latest call decides the suppression reason.

``attribute`` filters every call it is given. A stage that decides many items over the same calls (a
sweep of a burst) adds them once to a ``CallIndex`` and asks ``attribute_indexed``: the same rules over
only the calls that name the item, so the work grows with items plus calls, not items times calls.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from chalicelib.core import trust
from chalicelib.core.calls import can_change
from chalicelib.core.model import ConfigChange, Principal, TrailEvent
from chalicelib.core.partitions import global_region, partition_of, partition_of_region

_NAMING_KEY = re.compile(r"(?:[Nn]ame|[Ii]d|Identifier|A[Rr][Nn]|[Bb]ucket|[Kk]ey)$")
CAPTURE_TOLERANCE = timedelta(seconds=2)
# Resource-type namespaces whose calls come from a differently named service.
SERVICE_OF_NAMESPACE = {"elasticloadbalancingv2": "elasticloadbalancing", "certificatemanager": "acm",
                        "opensearchservice": "es", "elasticsearch": "es", "stepfunctions": "states",
                        "cognito": "cognito-idp", "apigatewayv2": "apigateway"}
ID_KEYS = ("groupId", "networkAclId", "routeTableId", "instanceId", "vpcId", "subnetId", "roleName",
            "userName", "groupName", "policyName", "bucketName", "functionName", "dBInstanceIdentifier",
            "name", "id", "arn", "policyArn", "trailARN")


@dataclass(frozen=True)
class Attribution:
    """The chosen cause of one configuration item."""

    verdict: str | None  # None: manual; else trust.TRUSTED / trust.AWS_SERVICE
    principal: Principal
    events: tuple[TrailEvent, ...]
    via: str  # "resource", "related-resource" or "related-events"


def lookup_region(change: ConfigChange, home_region: str) -> str:
    """Where CloudTrail records the calls that changed this item (IAM and other globals: us-east-1)."""
    region = change.region
    if region == "global" or (change.resource_type or "").upper().startswith("AWS::IAM::"):
        partition = partition_of(change.arn) if change.arn else partition_of_region(home_region)
        return global_region(partition)
    return region or home_region


def resource_keys(change: ConfigChange) -> tuple[str, ...]:
    """Every string under which a call may name this resource, most specific first."""
    keys: list[str] = []
    for value in (change.resource_id, change.resource_name, change.arn, _arn_tail(change.arn)):
        _add(keys, value)
    config = change.configuration
    resource_id = change.resource_id or ""
    if isinstance(config, dict) and "-" in resource_id:
        # Ids inside the configuration that name this resource (a NACL whose resourceId differs
        # from its networkAclId), not the ids of its parents such as vpcId.
        prefix = resource_id.split("-", 1)[0] + "-"
        for key in ID_KEYS:
            value = config.get(key)
            if isinstance(value, str) and value.startswith(prefix):
                _add(keys, value)
    return tuple(keys)


def lookup_names(change: ConfigChange) -> tuple[str, ...]:
    """Values to pass as ``ResourceName`` to LookupEvents (ARNs last: event history rarely uses them)."""
    return _lookup_order(resource_keys(change))


def _lookup_order(keys: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(k for k in keys if not k.startswith("arn:")) + tuple(k for k in keys if k.startswith("arn:"))


def related_keys(change: ConfigChange, own: tuple[str, ...] | None = None) -> tuple[str, ...]:
    """Resource ids whose relationship to this item the diff created or deleted (``own``: its ``resource_keys``,
    when known)."""
    keys: list[str] = []
    for prop in change.changed_properties:
        if not prop.path.startswith("Relationships"):
            continue
        for value in (prop.previous, prop.updated):
            if isinstance(value, dict):
                _add(keys, value.get("resourceId"))
                _add(keys, value.get("resourceName"))
    if not keys:
        return ()
    mine = set(resource_keys(change) if own is None else own)
    return tuple(k for k in keys if k not in mine)


def window(change: ConfigChange, previous_capture: datetime | None, lookback: timedelta) -> tuple[datetime, datetime]:
    """The event-time window (exclusive start, inclusive end) in which this item's causes lie."""
    assert change.capture_time is not None
    start = change.capture_time - lookback
    if previous_capture and start < previous_capture < change.capture_time:
        # The previous item's window ends CAPTURE_TOLERANCE after its capture: do not count a call twice.
        start = min(previous_capture + CAPTURE_TOLERANCE, change.capture_time)
    return start, change.capture_time + CAPTURE_TOLERANCE


def is_write(event: TrailEvent) -> bool:
    """A successful call that can change state (``calls.can_change``)."""
    return can_change(event.event_name, event.read_only, event.error_code)


def in_account(event: TrailEvent, change: ConfigChange) -> bool:
    """A call recorded in the item's own account: the same role name or resource name in another account
    of the organisation is another resource, and its author is nobody to blame here."""
    return not change.account or not event.account or event.account == change.account


def event_keys(event: TrailEvent) -> frozenset[str]:
    """Every identifier an event names: its indexed resources and the ids and names in its request/response.

    Distinctive strings (ARNs, ids such as ``sg-0abc…`` or ``AROA…``) count wherever they appear;
    plain words count only under a key that names something (``groupName``, ``bucketName``, ``roleName``),
    so a resource called ``default`` is not referenced by every call with ``"tenancy": "default"``.
    """
    keys: set[str] = set()
    for res in event.indexed_resources:
        if res.name:
            keys.add(res.name)
            tail = _arn_tail(res.name)
            if tail:
                keys.add(tail)
    for part in (event.request_parameters, event.response_elements, event.resources):
        _collect_strings(part, keys, naming=False, depth=0)
    return frozenset(keys)


@dataclass(frozen=True)
class ItemKeys:
    """The identifiers calls may name an item by: its own (``resource``, as ``resource_keys`` orders them) and
    those of the resources whose relationship to it the diff changed (``linked``: ``related_keys``). Computed
    once per item, read by every decision about it."""

    resource: tuple[str, ...]
    linked: tuple[str, ...]
    own: frozenset[str] = field(init=False, repr=False)
    related: frozenset[str] = field(init=False, repr=False)
    names: tuple[str, ...] = field(init=False, repr=False)
    """``lookup_names``: the ``ResourceName`` values to look up, ARNs last."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "own", frozenset(self.resource))
        object.__setattr__(self, "related", frozenset(self.linked))
        object.__setattr__(self, "names", _lookup_order(self.resource))


def item_keys(change: ConfigChange) -> ItemKeys:
    own = resource_keys(change)
    return ItemKeys(own, related_keys(change, own))


def attribute(
    change: ConfigChange,
    events: Iterable[TrailEvent],
    *,
    previous_capture: datetime | None,
    lookback: timedelta,
    trusted_patterns: tuple[str, ...],
    trust_aws_services: bool,
    keys_of: dict[str, frozenset[str]] | None = None,
) -> Attribution | None:
    """Choose the cause of ``change`` among ``events``; ``None`` while nothing fits yet."""
    return _choose(change, events, item_keys(change), previous_capture, lookback, trusted_patterns,
                   trust_aws_services, keys_of if keys_of is not None else {})


def attribute_indexed(
    change: ConfigChange,
    index: CallIndex,
    *,
    previous_capture: datetime | None,
    lookback: timedelta,
    trusted_patterns: tuple[str, ...],
    trust_aws_services: bool,
    keys: ItemKeys | None = None,
) -> Attribution | None:
    """``attribute`` over every call in ``index``, reading only the calls that name the item or that Config
    named (``relatedEvents``): no other call can fit, so the answer is the same."""
    keys = keys if keys is not None else item_keys(change)
    return _choose(change, index.candidates(change, keys), keys, previous_capture, lookback, trusted_patterns,
                   trust_aws_services, index.keys)


def _choose(change: ConfigChange, events: Iterable[TrailEvent], keys: ItemKeys, previous_capture: datetime | None,
            lookback: timedelta, trusted_patterns: tuple[str, ...], trust_aws_services: bool,
            keys_of: dict[str, frozenset[str]]) -> Attribution | None:
    if change.capture_time is None:
        return None
    start, end = window(change, previous_capture, lookback)
    writes = _unique(e for e in events if is_write(e) and in_account(e, change))
    in_window = [e for e in writes if e.event_time and start < e.event_time <= end]
    own = keys.own
    direct = _own_service(change, [e for e in in_window if own & _keys(e, keys_of)])
    by_id = [e for e in writes if e.event_id and e.event_id in change.related_events]
    if by_id:  # Config named the causing calls; others on the resource in the window still count
        return _decide(_unique([*by_id, *direct]), "related-events", trusted_patterns, trust_aws_services)
    if direct:
        return _decide(direct, "resource", trusted_patterns, trust_aws_services)
    related = keys.related
    linked = [e for e in in_window if related & _keys(e, keys_of)] if related else []
    if linked:
        return _decide(linked, "related-resource", trusted_patterns, trust_aws_services)
    return None


class CallIndex:
    """Calls that can change something, each under every identifier it names, in the order they were added.

    Whether a call is a write and which identifiers it names are worked out once, when it is added; an item's
    candidates are then the calls filed under its identifiers. ``keys`` maps each call to its identifiers
    (the cache ``attribute`` reads): what the call names, plus any identifiers it was found by elsewhere (the
    stream's index, a job's carried calls).
    """

    def __init__(self) -> None:
        self.keys: dict[str, frozenset[str]] = {}
        self.version = 0  # changes whenever a call or an identifier is added: decisions made before may differ
        self._events: dict[str, TrailEvent] = {}
        self._rank: dict[str, int] = {}
        self._by_key: dict[str, list[str]] = {}

    def __len__(self) -> int:
        return len(self._events)

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._events

    def add(self, event: TrailEvent, keys: Iterable[str] = ()) -> None:
        """File ``event`` (a call seen before keeps its first copy and gains ``keys``); reads and failed calls
        are left out, as ``attribute`` leaves them out.

        CloudTrail's own copy (``LookupEvents``) stands for a call over one the stream delivered or a job
        carried, and adds the identifiers it names: a streamed record may have been cut, stuffed or written by
        someone else into a log group, and must not speak for the call once the history has it.
        """
        marker = _marker(event)
        known = self.keys.get(marker)
        if known is not None and _from_history(event) and not _from_history(self._events[marker]):
            self._events[marker] = event
            self.version += 1
            keys = (*keys, *event_keys(event))
        if known is None:
            if not is_write(event):
                return
            self._events[marker] = event
            self._rank[marker] = len(self._rank)
            merged = frozenset(keys) | event_keys(event)
            added: Iterable[str] = merged
        else:
            merged = known | frozenset(keys)
            added = merged - known
        if merged == known:
            return
        self.keys[marker] = merged
        self.version += 1
        for key in added:
            self._by_key.setdefault(key, []).append(marker)

    def events(self) -> list[TrailEvent]:
        return list(self._events.values())

    def in_history(self, event_id: str) -> bool:
        """Whether CloudTrail's own copy of the call was read (``LookupEvents``)."""
        found = self._events.get(event_id)
        return found is not None and _from_history(found)

    def candidates(self, change: ConfigChange, keys: ItemKeys) -> list[TrailEvent]:
        """The calls that name one of the item's identifiers or that Config named, in the order they were added."""
        markers: set[str] = set()
        for key in keys.own | keys.related:
            markers.update(self._by_key.get(key, ()))
        markers.update(event_id for event_id in change.related_events if event_id in self._events)
        return [self._events[m] for m in sorted(markers, key=self._rank.__getitem__)]


def _own_service(change: ConfigChange, events: list[TrailEvent]) -> list[TrailEvent]:
    """Prefer calls to the resource's own service: an SSM session or an SSM command that names an
    instance does not change it, the EC2 call next to it does. Without such calls, keep them all."""
    parts = (change.resource_type or "").split("::")
    if len(parts) < 2 or not events:
        return events
    namespace = parts[1].lower()
    service = SERVICE_OF_NAMESPACE.get(namespace, namespace)
    own = [e for e in events if (e.event_source or "").split(".", 1)[0].lower() == service]
    return own or events


def _decide(events: list[TrailEvent], via: str, patterns: tuple[str, ...], services: bool) -> Attribution:
    ordered = sorted(events, key=lambda e: (e.event_time or datetime.min, e.event_id or ""))
    verdicts = [(e, trust.verdict(e.principal, patterns, services)) for e in ordered]
    untrusted = [e for e, v in verdicts if v is None]
    if untrusted:
        return Attribution(verdict=None, principal=untrusted[-1].principal, events=tuple(untrusted), via=via)
    latest, latest_verdict = verdicts[-1]
    return Attribution(verdict=latest_verdict, principal=latest.principal, events=tuple(ordered), via=via)


def _from_history(event: TrailEvent) -> bool:
    return event.source.startswith("lookup:")


def _marker(event: TrailEvent) -> str:
    return event.event_id or str(id(event))


def _keys(event: TrailEvent, cache: dict[str, frozenset[str]]) -> frozenset[str]:
    key = _marker(event)
    found = cache.get(key)
    if found is None:
        found = cache[key] = event_keys(event)
    return found


def _unique(events: Iterable[TrailEvent]) -> list[TrailEvent]:
    seen: set[str] = set()
    out = []
    for event in events:
        marker = _marker(event)
        if marker not in seen:
            seen.add(marker)
            out.append(event)
    return out


def _collect_strings(value: Any, into: set[str], naming: bool, depth: int) -> None:
    if depth > 12:
        return
    if isinstance(value, str):
        if 2 < len(value) < 300 and (naming or _distinctive(value)):
            into.add(value)
            tail = _arn_tail(value)
            if tail:
                into.add(tail)
    elif isinstance(value, dict):
        for key, item in value.items():
            _collect_strings(item, into, isinstance(key, str) and _NAMING_KEY.search(key) is not None, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _collect_strings(item, into, naming, depth + 1)


def _distinctive(value: str) -> bool:
    """ARNs and id-like strings, which name one resource wherever they appear."""
    return value.startswith("arn:") or (len(value) >= 8 and any(c.isdigit() for c in value) and " " not in value)


def _arn_tail(arn: str | None) -> str | None:
    """The resource id at the end of an ARN (``.../sg-123`` or ``...:bucket-name``)."""
    if not arn or not arn.startswith("arn:"):
        return None
    resource = arn.split(":", 5)[-1]
    tail = resource.rsplit("/", 1)[-1].rsplit(":", 1)[-1]
    return tail or None


def _add(keys: list[str], value: Any) -> None:
    if isinstance(value, str):
        value = value.strip()
        if value and value not in keys:
            keys.append(value)
