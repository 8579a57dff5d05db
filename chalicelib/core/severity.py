"""How severe an alert is, and why: the one severity policy and the one ranking (pure, stdlib only).

Routing (``min_severity`` of a destination, escalating a threaded alert) and the Slack room (emoji, the
order of a digest, the footer's reason) both read it here.

high: tampering (``extra["tamper"]``, what the call disables, from ``core.tamper``; and the calls of
``calls.WHAT_IT_DISABLES`` behind a change: StopLogging, DeleteTrail, UpdateTrail, the Config recorder
and delivery channel calls, event and insight selectors, DeleteFlowLogs, DeleteDetector, DisableKey,
ScheduleKeyDeletion); a role that a trusted pattern names, created or edited by someone untrusted
(``extra["trusted_pattern"]``, named in the reason); root activity (any kind, and root sign-ins);
removal of an S3 public access block; IAM policy calls (Put/Attach User|Role|Group Policy,
Create/SetDefault PolicyVersion, CreatePolicy, UpdateAssumeRolePolicy, permissions boundaries) and any
change to an ``AWS::IAM::*`` resource; ingress newly opened to 0.0.0.0/0 or ::/0 (added in the diff or
asked for in the request); a bucket policy allowing ``Principal: *`` without conditions, or an ACL
granting AllUsers. Failed and denied attempts count as much as successful ones.
low: a failed non-root console sign-in; an unattributed deletion; an unattributed change touching only
relationships (typically AWS-side side effects).
medium: everything else.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from enum import Enum
from typing import Any

from chalicelib.core import policies
from chalicelib.core.calls import WHAT_IT_DISABLES
from chalicelib.core.outcomes import API_CALL, CONSOLE_SIGNIN, MANUAL_CHANGE, UNATTRIBUTED_CHANGE, EventSummary, Outcome
from chalicelib.core.text import clip, nonblank, one_line, text_of


class Severity(str, Enum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"

    def __str__(self) -> str:  # the value, as a plain ``str`` would show (f-strings, ``str()``)
        return str.__str__(self)


HIGH, MEDIUM, LOW = Severity.HIGH, Severity.MEDIUM, Severity.LOW
SEVERITY_RANK: dict[str, int] = {LOW: 0, MEDIUM: 1, HIGH: 2}
"""Severity (a ``Severity`` or its text, e.g. read back from state) -> rank; higher is more severe."""

_PUBLIC_CALLS = frozenset({"DeleteBucketPublicAccessBlock", "DeletePublicAccessBlock"})
_IAM_POLICY_CALL = re.compile(
    r"^(?:(?:Put|Attach)(?:User|Role|Group)Policy|(?:Create|SetDefault)PolicyVersion|CreatePolicy"
    r"|UpdateAssumeRolePolicy|(?:Put|Delete)(?:User|Role)PermissionsBoundary)$"
)
_IAM_ANY_POLICY_CALL = re.compile(r"^(?:Put|Attach)\w*Policy$")
_IAM = "iam.amazonaws.com"
_WORLD_INGRESS = "world-open ingress (0.0.0.0/0 or ::/0)"
_DEFAULT_REASONS = {
    MANUAL_CHANGE: "change made by hand",
    UNATTRIBUTED_CHANGE: "change with no CloudTrail author",
    API_CALL: "sensitive API call",
}


def severity(outcome: Outcome) -> Severity:
    """``high``, ``medium`` or ``low`` (the rules are in the module docstring)."""
    return severity_reason(outcome)[0]


def severity_reason(outcome: Outcome) -> tuple[Severity, str]:
    """(severity, why) of one outcome; ``why`` is raw text (escape it before showing it)."""
    reason = _high_reason(outcome)
    if reason:
        return HIGH, reason
    reason = _low_reason(outcome)
    if reason:
        return LOW, reason
    if outcome.kind == CONSOLE_SIGNIN:
        return MEDIUM, "sign-in without MFA" if outcome.signin == "no_mfa" else "console sign-in"
    return MEDIUM, _DEFAULT_REASONS.get(outcome.kind, "alert")


def max_severity(levels: Iterable[Severity]) -> Severity:
    """The most severe of ``levels`` (``medium`` for none)."""
    return max(levels, key=SEVERITY_RANK.__getitem__, default=MEDIUM)


# --------------------------------------------------------------------------------------------
# high


def _high_reason(outcome: Outcome) -> str | None:
    return (
        _tamper_reason(outcome)
        or _trusted_role_reason(outcome)
        or _root_reason(outcome)
        or _call_name_reason(outcome)
        or next(filter(None, map(_event_reason, outcome.events)), None)
        or _iam_reason(outcome)
        or next(filter(None, map(change_reason, outcome.changed_properties)), None)
    )


def _tamper_reason(outcome: Outcome) -> str | None:
    what = nonblank(outcome.extra.get("tamper"))
    return f"tampering: {clip(one_line(what), 140)}" if what else None


def _trusted_role_reason(outcome: Outcome) -> str | None:
    pattern = nonblank(outcome.extra.get("trusted_pattern"))
    if pattern:
        return f"trusted role changed by an untrusted principal (trusted as {clip(one_line(pattern), 70)})"
    return None


def _root_reason(outcome: Outcome) -> str | None:
    return "root user activity" if outcome.signin == "root" or outcome.by_root else None


def _call_name_reason(outcome: Outcome) -> str | None:
    for name in outcome.event_names:
        if name in WHAT_IT_DISABLES:
            return f"tampering: {WHAT_IT_DISABLES[name]} ({name})"
        if name in _PUBLIC_CALLS:
            return f"public access block removed ({name})"
    return None


def _event_reason(event: EventSummary) -> str | None:
    name = event.event_name or ""
    if _is_iam_policy_call(name, event.event_source):
        return f"IAM policy change ({name})"
    if policies.request_opens_world(event.event_name, event.request_parameters):
        return _WORLD_INGRESS
    if policies.request_makes_public(event.event_name, event.request_parameters):
        return "public bucket policy"
    return None


def _is_iam_policy_call(name: str, event_source: str | None) -> bool:
    if event_source in (None, _IAM) and _IAM_POLICY_CALL.match(name):
        return True
    return event_source == _IAM and bool(_IAM_ANY_POLICY_CALL.match(name))


def _iam_reason(outcome: Outcome) -> str | None:
    if outcome.event_name and _IAM_POLICY_CALL.match(outcome.event_name):
        return f"IAM policy change ({outcome.event_name})"
    is_iam = (outcome.resource_type or "").lower().startswith("aws::iam::")
    if is_iam and outcome.kind in (MANUAL_CHANGE, UNATTRIBUTED_CHANGE):
        return "IAM resource change"
    return None


def change_reason(change: Mapping[str, Any]) -> str | None:
    """Why one changed property (``path``, ``previous``, ``updated``) is of high severity, if it is."""
    path = str(change.get("path") or "").lower()
    previous, updated = change.get("previous"), change.get("updated")
    return (_ingress_reason(path, previous, updated) or _bucket_policy_reason(path, updated)
            or _acl_reason(path, previous, updated))


def _ingress_reason(path: str, previous: Any, updated: Any) -> str | None:
    ingress = policies.PERMISSION_PATH.search(path) and "egress" not in path
    return _WORLD_INGRESS if ingress and policies.world_ingress_added(previous, updated) else None


def _bucket_policy_reason(path: str, updated: Any) -> str | None:
    if "policy" not in path or "bucket" not in path:
        return None
    held = policies.policy_of(updated)
    return "public bucket policy" if held and policies.is_public_policy(held.policy) else None


def _acl_reason(path: str, previous: Any, updated: Any) -> str | None:
    if "acl" in path and _grants_all_users(updated) and not _grants_all_users(previous):
        return "public bucket ACL"
    return None


def _grants_all_users(acl: Any) -> bool:
    return policies.ALL_USERS in text_of(acl)


# --------------------------------------------------------------------------------------------
# low


def _low_reason(outcome: Outcome) -> str | None:
    if outcome.kind == CONSOLE_SIGNIN and outcome.signin == "failure":
        return "failed sign-in (nothing changed)"
    if outcome.kind != UNATTRIBUTED_CHANGE or outcome.extra.get("unverified"):
        return None  # an unverified change (CloudTrail held more than could be read) is never played down
    return _authorless_reason(outcome)


def _authorless_reason(outcome: Outcome) -> str | None:
    """A change with no author that is typically AWS's own doing."""
    if (outcome.change_type or "").upper() == "DELETE":
        return "deletion with no CloudTrail author (often AWS-side cleanup)"
    paths = [str(c.get("path") or "").lower() for c in outcome.changed_properties]
    if paths and all(p.startswith("relationships") for p in paths):
        return "relationship change with no CloudTrail author"
    return None
