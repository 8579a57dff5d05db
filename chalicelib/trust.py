"""Trust decisions: is a CloudTrail call by a trusted principal or by an AWS service?

Trust is decided on the role a session was issued from (``sessionContext.sessionIssuer.arn``) or on
an IAM user's own ARN, never on a session name, user agent or source IP: the caller chooses those.
One module serves both the Config path and the direct CloudTrail alerts.
"""

from __future__ import annotations

import re
from functools import lru_cache

from chalicelib.model import Principal

TRUSTED = "trusted"
AWS_SERVICE = "aws_service"

# Services a person acts through: calls "invoked by" them still have a human author.
HUMAN_FRONT_DOORS = frozenset({"signin.amazonaws.com", "console.amazonaws.com"})

_ASSUMED_ROLE = re.compile(r"^arn:([^:]+):sts::([^:]*):assumed-role/([^/]+)/")


def verdict(principal: Principal, trusted_patterns: tuple[str, ...], trust_aws_services: bool) -> str | None:
    """``aws_service``, ``trusted`` or ``None`` (a change someone must hear about).

    A call that is both by a service and by a trusted principal is ``aws_service``.
    """
    if trust_aws_services and is_aws_service(principal):
        return AWS_SERVICE
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
    if not patterns:
        return False
    candidates = _issuer_candidates(principal)
    return any(_compile(p).match(c) for p in patterns for c in candidates)


def _issuer_candidates(principal: Principal) -> tuple[str, ...]:
    if principal.issuer_arn:
        return (principal.issuer_arn,)
    match = _ASSUMED_ROLE.match(principal.arn or "")
    if match:
        # No sessionIssuer recorded: the role name in the session ARN is authoritative (the path is
        # unknown, so patterns are also tried without their path; see _compile).
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


@lru_cache(maxsize=512)
def _compile(pattern: str) -> re.Pattern[str]:
    """``*`` matches any run of characters within one ARN; everything else is literal."""
    exact = ".*".join(re.escape(part) for part in pattern.split("*"))
    role_part = pattern.split(":role/", 1)[1] if ":role/" in pattern else None
    pathless = None
    if role_part and "*" not in role_part and "/" in role_part:
        pathless = pattern.split(":role/", 1)[0] + ":role/" + role_part.rsplit("/", 1)[1]
    alternatives = [exact]
    if pathless:
        alternatives.append("pathless:" + ".*".join(re.escape(p) for p in pathless.split("*")))
    return re.compile("^(?:" + "|".join(alternatives) + ")$")
