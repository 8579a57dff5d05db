"""Trust decisions: is a CloudTrail call by a trusted principal or by an AWS service?

Trust is decided on the role a session was issued from (``sessionContext.sessionIssuer.arn``) or on
an IAM user's own ARN, never on a session name, user agent or source IP: the caller chooses those.
One module serves both the Config path and the direct CloudTrail alerts.

Trust cannot be borrowed (decision D17):

* ``*`` in a pattern matches within one ARN segment: never ``/`` nor ``:``. ``role/terraform-*``
  trusts ``role/terraform-ci``, not ``role/terraform-x/mallory-admin``.
* A console session (``sessionCredentialFromConsole``) is a person, whatever role it belongs to.
* Patterns that would trust a whole account, its root user, or Identity Center's reserved roles are
  refused (``refusal``); ``chalicelib.core.settings`` drops them with a log line, and this module ignores
  them too.
* A person who creates or edits a role that a pattern trusts is reported
  (``trusted_pattern_for_role``, ``trusted_role_edit``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from chalicelib.core.model import ConfigChange, Principal, TrailEvent
from chalicelib.core.partitions import partition_of_arn, partition_of_region

TRUSTED = "trusted"
AWS_SERVICE = "aws_service"

# Services a person acts through: calls "invoked by" them still have a human author.
HUMAN_FRONT_DOORS = frozenset({"signin.amazonaws.com", "console.amazonaws.com"})

# Successful IAM calls that create a role or change who may assume it, what it may do, or its tags
# (tags can gate trust through ABAC conditions). CreateServiceLinkedRole is AWS's own path.
ROLE_WRITE_CALLS = frozenset({
    "CreateRole", "UpdateAssumeRolePolicy", "AttachRolePolicy", "PutRolePolicy", "DetachRolePolicy",
    "DeleteRolePolicy", "UpdateRole", "PutRolePermissionsBoundary", "DeleteRolePermissionsBoundary", "TagRole",
})

_ASSUMED_ROLE = re.compile(r"^arn:([^:]+):sts::([^:]*):assumed-role/([^/]+)/")
_IAM_ARN = re.compile(r"^(arn:[^:]*:iam::[^:]*:)(.*)$")
_SEGMENT_STAR = "[^/:]*"  # what one "*" matches: any run of characters within one ARN segment

# Identity Center's permission-set roles: people, always (role/aws-reserved/sso.amazonaws.com/...).
_RESERVED_PATH = "aws-reserved"
_RESERVED_NAME = "AWSReservedSSO_*"


def verdict(principal: Principal, trusted_patterns: tuple[str, ...], trust_aws_services: bool) -> str | None:
    """``aws_service``, ``trusted`` or ``None`` (a change someone must hear about).

    A call that is both by a service and by a trusted principal is ``aws_service``. A console
    session of a role is never ``trusted``: a person is driving it (a trusted IAM user is trusted
    wherever it signs in, FORMAT.md).
    """
    if trust_aws_services and is_aws_service(principal):
        return AWS_SERVICE
    if principal.from_console and principal.type != "IAMUser":
        return None
    if is_trusted(principal, trusted_patterns):
        return TRUSTED
    return None


def is_aws_service(principal: Principal) -> bool:
    """AWSService identities, service-linked roles, and calls a service made on someone's behalf."""
    if principal.type == "AWSService":
        return True
    invoked_by = (principal.invoked_by or "").strip().lower()
    if invoked_by and invoked_by not in HUMAN_FRONT_DOORS:
        return True
    role_name = _role_name(principal)
    if not role_name or not role_name.startswith("AWSServiceRoleFor"):
        return False
    # IAM reserves the /aws-service-role/ path for service-linked roles; the session ARN hides the path.
    return not principal.issuer_arn or ":role/aws-service-role/" in principal.issuer_arn


def is_trusted(principal: Principal, patterns: tuple[str, ...]) -> bool:
    """Does a usable pattern name the principal's issuer (role or IAM user)? Console or not is not asked."""
    return trusting_pattern(principal, patterns) is not None


def trusting_pattern(principal: Principal, patterns: tuple[str, ...]) -> str | None:
    """The first usable pattern that names the principal's issuer, if one does."""
    if not patterns:
        return None
    candidates = _issuer_candidates(principal)
    return next((p for p in usable(patterns) if any(_compile(p).match(c) for c in candidates)), None)


def usable(patterns: Iterable[str]) -> tuple[str, ...]:
    """The patterns ``refusal`` does not refuse (settings have already dropped the others)."""
    return tuple(p for p in patterns if refusal(p) is None)


def _issuer_candidates(principal: Principal) -> tuple[str, ...]:
    if principal.issuer_arn:
        return (principal.issuer_arn,)
    match = _ASSUMED_ROLE.match(principal.arn or "")
    if match:
        # No sessionIssuer recorded: the role name in the session ARN is authoritative; its path is
        # unknown. The role is taken to be at the root path, and patterns naming one role exactly
        # (no "*" after "role/") are also tried without their path: role names are unique in an
        # account, whatever the path. A pattern with "*" never matches a path it cannot see.
        partition, account, role = match.groups()
        return (f"arn:{partition}:iam::{account}:role/{role}", f"pathless:arn:{partition}:iam::{account}:role/{role}")
    return ()


def _role_name(principal: Principal) -> str | None:
    for arn in (principal.issuer_arn, principal.arn):
        if not arn:
            continue
        match = _ASSUMED_ROLE.match(arn)
        if match:
            return match.group(3)
        if ":role/" in arn:
            return arn.rsplit("/", 1)[-1]
    return None


def _glob(text: str) -> str:
    return _SEGMENT_STAR.join(re.escape(part) for part in text.split("*"))


@lru_cache(maxsize=512)
def _compile(pattern: str) -> re.Pattern[str]:
    """``*`` matches any run of characters within one ARN segment (never ``/`` or ``:``); the rest is literal."""
    exact = _glob(pattern)
    role_part = pattern.split(":role/", 1)[1] if ":role/" in pattern else None
    pathless = None
    if role_part and "*" not in role_part and "/" in role_part:
        pathless = pattern.split(":role/", 1)[0] + ":role/" + role_part.rsplit("/", 1)[1]
    alternatives = [exact]
    if pathless:
        alternatives.append("pathless:" + _glob(pathless))
    return re.compile("^(?:" + "|".join(alternatives) + ")$")


# --- patterns that would lend trust to anyone -----------------------------------------------------


@lru_cache(maxsize=512)
def refusal(pattern: str) -> str | None:
    """Why ``pattern`` may never be trusted (a sentence for the log), or ``None`` when it may be.

    Refused: ``*`` as the whole resource (every principal of an account); a role or user part made of
    ``*`` only (``role/*``, ``user/*``, ``role/*/*``: every role or user, of one account or of all);
    the root user; and anything that can match Identity Center's reserved roles
    (``role/aws-reserved/...``, ``AWSReservedSSO_*``), which are people signing in.
    """
    match = _IAM_ARN.match(pattern)
    if not match:
        return None  # not an IAM ARN at all: the shape check says why
    resource = match.group(2)
    if resource and not resource.replace("*", ""):
        return f"trusted principal {pattern!r} would trust every principal of the account"
    if resource == "root":
        return (f"trusted principal {pattern!r} is the root user: the account owner is a person, "
                "and root activity always alerts")
    kind, _, rest = resource.partition("/")
    if kind in ("role", "user") and rest and not rest.replace("*", "").replace("/", ""):
        return (f"trusted principal {pattern!r} would trust every {kind} of the account (name the "
                f"{kind}s, or a path of their own such as {kind}/ci/*)")
    if kind == "role" and _may_be_identity_center(rest):
        return (f"trusted principal {pattern!r} can match IAM Identity Center roles "
                "(role/aws-reserved/..., AWSReservedSSO_*): their sessions are people")
    return None


def _may_be_identity_center(role_part: str) -> bool:
    segments = role_part.split("/")
    name = segments[-1]
    if "awsreservedsso" in name.replace("*", "").lower():
        return True
    if len(segments) < 2:
        return False  # reserved roles always live under a path
    if segments[0].lower() == _RESERVED_PATH:
        return True
    return _globs_meet(segments[0], _RESERVED_PATH) and _globs_meet(name, _RESERVED_NAME)


def _globs_meet(left: str, right: str) -> bool:
    """Is there a text (without ``/``) that both one-segment globs match? Letters compare case-blind."""
    a, b = left.lower(), right.lower()
    seen = {(0, 0)}
    todo = [(0, 0)]
    while todo:
        i, j = todo.pop()
        if i == len(a) and j == len(b):
            return True
        steps = []
        if i < len(a) and a[i] == "*":
            steps.append((i + 1, j))  # a's star ends
            if j < len(b) and b[j] != "*":
                steps.append((i, j + 1))  # a's star takes b's letter
        if j < len(b) and b[j] == "*":
            steps.append((i, j + 1))
            if i < len(a) and a[i] != "*":
                steps.append((i + 1, j))
        if i < len(a) and j < len(b) and a[i] == b[j] != "*":
            steps.append((i + 1, j + 1))
        for step in steps:
            if step not in seen:
                seen.add(step)
                todo.append(step)
    return False


# --- a person editing a trusted role ----------------------------------------------------------------


def trusted_pattern_for_role(arn: str | None, patterns: Iterable[str]) -> str | None:
    """The first usable pattern that trusts the role ``arn`` (an IAM role ARN with its path), or ``None``.

    A person who creates or edits such a role can borrow the trust given to it: the Config path marks
    that change with the pattern (``Outcome.extra["trusted_pattern"]``).
    """
    if not arn or ":role/" not in arn or ":iam::" not in arn:
        return None
    return next((p for p in usable(patterns) if ":role/" in p and _compile(p).match(arn)), None)


def trusted_role_mark(kind: str, change: ConfigChange, patterns: Iterable[str]) -> dict[str, str]:
    """``{"trusted_pattern": PATTERN}`` for a ``manual_change`` of an ``AWS::IAM::Role`` a pattern trusts.

    For ``Outcome.extra`` on the Config path; ``{}`` otherwise. The role is the item's ARN, or, without
    one, ``arn:PARTITION:iam::ACCOUNT:role/PATH/NAME`` from its configuration.
    """
    if kind != "manual_change" or str(change.resource_type or "").lower() != "aws::iam::role":
        return {}
    arn = change.arn
    if not arn or ":role/" not in arn:
        config = change.configuration if isinstance(change.configuration, dict) else {}
        name = _text(config.get("roleName")) or change.resource_name
        path = _text(config.get("path"))
        partition = partition_of_region(change.region)
        if not name or not change.account:
            return {}
        pattern = trusted_pattern_for_role_name(partition, change.account, name, path, patterns)
    else:
        pattern = trusted_pattern_for_role(arn, patterns)
    return {"trusted_pattern": pattern} if pattern else {}


def trusted_pattern_for_role_name(partition: str, account: str | None, name: str, path: str | None,
                                  patterns: Iterable[str]) -> str | None:
    """Like ``trusted_pattern_for_role`` for a role known by name (and ``path`` when known).

    Without the path (every IAM call but CreateRole names the role only), a pattern counts when its
    last segment matches the name and says something about it (``role/ci/*`` would take every role
    name, so it is left to the Config path, which knows the role's path): role names are unique in
    an account, whatever their path.
    """
    if not name or "/" in name or ":" in name or not account:
        return None
    if path is not None:
        path = "/" + path.strip("/") + "/" if path.strip("/") else "/"
        return trusted_pattern_for_role(f"arn:{partition}:iam::{account}:role{path}{name}", patterns)
    for pattern in usable(patterns):
        if ":role/" not in pattern:
            continue
        head, role_part = pattern.split(":role/", 1)
        name_glob = role_part.rsplit("/", 1)[-1]
        if not name_glob.replace("*", ""):
            continue
        if re.match("^" + _glob(f"{head}:role/{name_glob}") + "$", f"arn:{partition}:iam::{account}:role/{name}"):
            return pattern
    return None


def trusted_role_edit(event: TrailEvent, patterns: tuple[str, ...], trust_aws_services: bool) -> str | None:
    """The trusted pattern a successful role write by an untrusted principal touches, or ``None``.

    ``CreateRole`` carries the role's path (``requestParameters.path``); the other calls only its name.
    """
    if event.event_name not in ROLE_WRITE_CALLS or event.event_source not in (None, "iam.amazonaws.com"):
        return None
    if event.error_code or not patterns:
        return None
    if verdict(event.principal, patterns, trust_aws_services) is not None:
        return None
    params = event.request_parameters
    if not isinstance(params, dict):
        return None
    name = _text(params.get("roleName"))
    if not name:
        return None
    path = _text(params.get("path")) if event.event_name == "CreateRole" else None
    if event.event_name == "CreateRole" and path is None:
        path = "/"  # IAM's default path
    account = event.account or event.principal.account
    return trusted_pattern_for_role_name(_partition(event), account, name, path, patterns)


def _partition(event: TrailEvent) -> str:
    return (partition_of_arn(event.principal.arn) or partition_of_arn(event.principal.issuer_arn)
            or partition_of_region(event.region))


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
