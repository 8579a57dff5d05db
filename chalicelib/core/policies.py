"""What security-group permissions and resource policies allow (pure, stdlib only).

Severity asks whether a change opened ingress to the world or made a bucket public; the Slack room shows
the same permissions and policies as diff lines. Both read them here, from whatever shape they arrive in:
AWS Config's (``ipPermissions`` items, ``policyText`` JSON strings, URL-encoded policy documents) or a
CloudTrail request's (``{"items": [...]}`` wrappers). Values are event-sourced: anything of an unexpected
type is skipped, never trusted, and walks over nested values are bounded.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple
from urllib.parse import unquote

from chalicelib.core.text import clip, nonblank, text_of

WORLD = frozenset({"0.0.0.0/0", "::/0"})
PERMISSION_PATH = re.compile(r"ippermissions", re.IGNORECASE)
EVERYONE = "everyone (*)"
ALL_USERS = "acs.amazonaws.com/groups/global/AllUsers"

_PROTOCOLS = {"-1": "all traffic", "6": "tcp", "17": "udp", "1": "icmp", "58": "icmpv6"}
_SOURCE_KEYS = ("cidrip", "cidripv6", "cidripv4", "cidr", "groupid", "prefixlistid", "groupname")
_RANGE_KEYS = ("ipv4ranges", "ipranges", "ipv6ranges", "useridgrouppairs", "prefixlistids", "groups")
_POLICY_KEYS = ("policytext", "policydocument", "document", "policy", "bucketpolicy")
_INGRESS_CALL = re.compile(r"Ingress|ModifySecurityGroupRules", re.IGNORECASE)
_CIDR_KEYS = frozenset({"cidrip", "cidripv6", "cidripv4", "cidrblock", "ipv6cidrblock"})
_NO_PORT = (None, -1, "-1")


class Rule(NamedTuple):
    """One flattened permission: protocol and ports (as shown), source or destination, its description."""

    ports: str
    source: str
    description: str


class RuleDiff(NamedTuple):
    added: list[Rule]
    removed: list[Rule]
    renamed: list[tuple[Rule, Rule]]  # (old, new) pairs whose description changed


class HeldPolicy(NamedTuple):
    """A policy found in a value: its name when the holder names it, and the document (``None``: empty holder)."""

    name: str | None
    policy: Mapping[str, Any] | None


def lower_keys(value: Mapping[str, Any]) -> dict[str, Any]:
    return {str(k).lower(): v for k, v in value.items()}


def maybe_json(value: Any) -> Any:
    """A JSON object or array written as a string, parsed; anything else as it is."""
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


# --------------------------------------------------------------------------------------------
# Security-group permissions


def is_permission(value: Any) -> bool:
    """A permission (or a list of them): mappings with an ``ipProtocol``."""
    value = maybe_json(value)
    items = value if isinstance(value, list) else [value]
    return bool(items) and all(isinstance(v, Mapping) and "ipprotocol" in lower_keys(v) for v in items[:5])


def port_text(perm: Mapping[str, Any]) -> str:
    """Protocol and ports of one permission (lower-cased keys): ``tcp 22``, ``udp 1000-2000``, ``all traffic``."""
    protocol = str(perm.get("ipprotocol", "?")).lower()
    protocol = _PROTOCOLS.get(protocol, protocol)
    if protocol == "all traffic":
        return protocol
    low, high = perm.get("fromport"), perm.get("toport")
    if low in _NO_PORT and high in _NO_PORT:
        return protocol
    if protocol.startswith("icmp"):
        return f"{protocol} type {low}" + ("" if high in _NO_PORT else f" code {high}")
    if str(low) == "0" and str(high) == "65535":
        return f"{protocol} all ports"
    if high is None or str(low) == str(high):
        return f"{protocol} {low}"
    return f"{protocol} {low}-{high}"


def _range_items(perm: Mapping[str, Any], key: str) -> list[Any]:
    items = perm.get(key)
    if isinstance(items, Mapping):  # CloudTrail request shape: {"items": [...]}
        items = items.get("items")
    return items[:500] if isinstance(items, list) else []


def _add_source(found: dict[str, str], item: Any) -> None:
    if isinstance(item, str):
        found.setdefault(item, "")
        return
    if not isinstance(item, Mapping):
        return
    low = lower_keys(item)
    source = next((low[k] for k in _SOURCE_KEYS if low.get(k)), None)
    if source is not None:
        description = text_of(low.get("description"))
        if description or text_of(source) not in found:
            found[text_of(source)] = description


def sources(perm: Mapping[str, Any]) -> dict[str, str]:
    """Source (or destination) of one permission (lower-cased keys) -> its description ('' when none)."""
    found: dict[str, str] = {}
    for key in _RANGE_KEYS:
        for item in _range_items(perm, key):
            _add_source(found, item)
    return found


def rules(value: Any) -> list[Rule]:
    """Flatten a permission (or a list of them) into (ports, source, description) rules."""
    value = maybe_json(value)
    perms = value if isinstance(value, list) else [value]
    found: list[Rule] = []
    for perm in perms[:500]:
        if not isinstance(perm, Mapping):
            continue
        low = lower_keys(perm)
        ports = port_text(low)
        found.extend(Rule(ports, source, description)
                     for source, description in (sources(low) or {"(no source)": ""}).items())
    return found


def rule_diff(previous: Any, updated: Any) -> RuleDiff:
    """Added rules, removed rules, and (old, new) pairs whose description changed."""
    old = {(r.ports, r.source): r for r in rules(previous)}
    new = {(r.ports, r.source): r for r in rules(updated)}
    added = [r for key, r in new.items() if key not in old]
    removed = [r for key, r in old.items() if key not in new]
    renamed = [(old[key], r) for key, r in new.items() if key in old and old[key].description != r.description]
    return RuleDiff(added, removed, renamed)


def world_ingress_added(previous: Any, updated: Any) -> bool:
    """The update adds a rule open to 0.0.0.0/0 or ::/0."""
    return any(rule.source in WORLD for rule in rule_diff(previous, updated).added)


# --------------------------------------------------------------------------------------------
# Resource policies


def parse_policy(value: Any) -> Mapping[str, Any] | None:
    """A policy document from a dict, a JSON string, or a URL-encoded JSON string."""
    if isinstance(value, str):
        text = value.strip()
        if text[:3].upper() == "%7B":
            text = unquote(text)
        try:
            value = json.loads(text)
        except ValueError:
            return None
    if isinstance(value, Mapping) and any(str(k).lower() == "statement" for k in value):
        return value
    return None


def policy_of(value: Any) -> HeldPolicy | None:
    """The policy ``value`` is or holds (``policyText``, ``policyDocument``, ...), or ``None``."""
    policy = parse_policy(value)
    if policy is not None:
        return HeldPolicy(None, policy)
    if not isinstance(value, Mapping):
        return None
    low = lower_keys(value)
    key = next((k for k in _POLICY_KEYS if k in low), None)
    if key is None:
        return None
    name = nonblank(low.get("policyname"))
    if low[key] is None:
        return HeldPolicy(name, None)
    parsed = parse_policy(low[key])
    return HeldPolicy(name, parsed) if parsed is not None else None


def statements(policy: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    low = lower_keys(policy)
    return [s for s in as_list(low.get("statement")) if isinstance(s, Mapping)]


def principal_text(principal: Any) -> str:
    """A statement's ``Principal`` as shown: ``everyone (*)`` or up to two names (raw text)."""
    if principal == "*":
        return EVERYONE
    if isinstance(principal, Mapping):
        values = [v for vs in principal.values() for v in as_list(vs)]
        if "*" in values:
            return EVERYONE
        return ", ".join(clip(text_of(v), 60) for v in values[:2]) + (" …" if len(values) > 2 else "")
    return clip(text_of(principal), 60)


def is_public_policy(policy: Mapping[str, Any] | None) -> bool:
    """Allows everyone (``Principal: "*"``) without any condition."""
    for statement in statements(policy or {}):
        low = lower_keys(statement)
        if str(low.get("effect", "")).lower() != "allow" or low.get("condition"):
            continue
        if principal_text(low.get("principal")) == EVERYONE and "principal" in low:
            return True
    return False


# --------------------------------------------------------------------------------------------
# What a request asks for


def walk(value: Any, depth: int = 0) -> Iterator[tuple[str, Any]]:
    """(lower-cased key, value) pairs of a nested structure, bounded in depth and breadth."""
    if depth > 12:
        return
    if isinstance(value, Mapping):
        for index, (key, inner) in enumerate(value.items()):
            if index >= 200:
                return
            yield str(key).lower(), inner
            yield from walk(inner, depth + 1)
    elif isinstance(value, list):
        for inner in value[:200]:
            yield from walk(inner, depth + 1)


def request_opens_world(event_name: str | None, request_parameters: Any) -> bool:
    """An ingress call whose request names 0.0.0.0/0 or ::/0 (denied or not)."""
    name = event_name or ""
    if not _INGRESS_CALL.search(name) or "egress" in name.lower():
        return False
    return any(k in _CIDR_KEYS and isinstance(v, str) and v in WORLD for k, v in walk(request_parameters))


def request_makes_public(event_name: str | None, request_parameters: Any) -> bool:
    """``PutBucketAcl`` granting AllUsers, or ``PutBucketPolicy`` with a public policy."""
    if event_name == "PutBucketAcl":
        return any(isinstance(v, str) and ALL_USERS in v for _k, v in walk(request_parameters))
    if event_name != "PutBucketPolicy":
        return False
    return any(key in ("bucketpolicy", "policy") and is_public_policy(parse_policy(value))
               for key, value in walk(request_parameters))
