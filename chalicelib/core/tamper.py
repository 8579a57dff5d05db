"""Tamper protection: the calls that blind the detector or what it watches (pure, stdlib only).

Part of the default sensitive-call rules (FORMAT.md), on unless ``direct_rules.tamper`` is ``false``;
``include``/``exclude``, ``event_sources`` and ``identity_types`` do not narrow it. A write call
tampers when

* its name is one of ``calls.WHAT_IT_DISABLES`` (CloudTrail, Config, GuardDuty, flow logs, KMS keys);
* its request names a resource of the detector's own deployment: a value, ARN segment or path segment
  that starts with ``mcd-``, or a path that starts with ``mcd/`` or ``/mcd/`` (functions, rules,
  queues, table, bucket, settings parameter, secret, subscription filter), unless the caller is one
  of the detector's own roles (a role name starting ``mcd-``, read from the role the session was
  issued from, never from the session name). Names compare case-insensitively: IAM names are;
* the account's root user made it.

Whether the call was read-only or failed is decided by the caller (``rules.is_sensitive_call``).
"""

from __future__ import annotations

import re
from typing import Any

from chalicelib.core.calls import WHAT_IT_DISABLES
from chalicelib.core.model import Principal, TrailEvent
from chalicelib.core.text import clip, one_line

OWN_NAME_PREFIX = "mcd-"
OWN_PATH_PREFIXES = ("mcd/", "/mcd/")
MAX_SCANNED_VALUES = 20_000  # beyond this a request is not read further and counts as naming one of ours
_SEGMENTS = re.compile(r"[:/]")


def tamper_reason(event: TrailEvent) -> str | None:
    """Why this call is covered by tamper protection; ``None`` when it is not."""
    return blinding_reason(event) or ("a write call by the root user" if event.identity_type == "Root" else None)


def blinding_reason(event: TrailEvent) -> str | None:
    """What this call disables or touches of the detector's sight: a protective call or one of its resources.

    Such an alert is never folded into a digest. A root write is covered by tamper protection too, but it
    is root activity like the rest of the session it belongs to, and may share that session's digest.
    """
    name = event.event_name or ""
    if name in WHAT_IT_DISABLES:
        return WHAT_IT_DISABLES[name]
    if not is_own_role(event.principal):
        named = own_resource_named(event)
        if named is not None:
            return f"changes the detector's own resource {clip(one_line(named), 120)}"
    return None


def own_resource_named(event: TrailEvent) -> str | None:
    """The first value of the request (or the record's ``resources``) naming one of the detector's resources."""
    for value in _strings([event.request_parameters, event.resources]):
        if value is None:
            return "a request too large to read whole"
        if names_own_resource(value):
            return value
    return None


def names_own_resource(value: str) -> bool:
    """``mcd-…`` as a whole value, an ARN segment or a path segment; or a path ``mcd/…`` / ``/mcd/…``."""
    text = value.strip().casefold()
    if text.startswith(OWN_PATH_PREFIXES):
        return True
    return any(segment.startswith(OWN_NAME_PREFIX) for segment in _SEGMENTS.split(text))


def is_own_role(principal: Principal) -> bool:
    """The session was issued from one of the detector's roles (``mcd-…``), never judged by a session name."""
    role = role_name(principal.issuer_arn) if principal.issuer_arn else role_name(principal.arn)
    return bool(role and role.casefold().startswith(OWN_NAME_PREFIX))


def role_name(arn: str | None) -> str | None:
    """The role of ``arn:…:iam::…:role/path/NAME`` or ``arn:…:sts::…:assumed-role/NAME/SESSION``."""
    parts = (arn or "").split(":", 5)
    resource = parts[5] if len(parts) == 6 else ""
    if resource.startswith("assumed-role/"):
        return resource.split("/")[1] or None
    if resource.startswith("role/"):
        return resource.rsplit("/", 1)[-1] or None
    return None


def _strings(root: Any) -> Any:
    """Every string inside ``root`` (dicts, lists), depth first; ``None`` once too many were read."""
    stack = [root]
    seen = 0
    while stack:
        node = stack.pop()
        seen += 1
        if seen > MAX_SCANNED_VALUES:
            yield None
            return
        if isinstance(node, str):
            yield node
        elif isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, (list, tuple)):
            stack.extend(node)
