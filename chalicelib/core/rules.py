"""Rules for direct CloudTrail alerts: console sign-ins and sensitive API calls (pure).

A CloudTrail record delivered directly (EventBridge or a CloudWatch Logs subscription) becomes at
most one outcome: ``console_signin`` when the sign-in rule says it needs attention, or ``api_call``
when it matches the sensitive-call rules and was not made by a trusted principal or an AWS service.

The sensitive-call rules are the user's ``direct_rules`` settings (see ``DirectRules.from_mapping``
and ``docs/direct-alerts.md``); ``chalicelib.core.patterns`` turns the same rules into the EventBridge
and CloudWatch Logs patterns that deliver at least the records these functions select.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from chalicelib.core import trust
from chalicelib.core.calls import AUDIT_CALLS, COMMON_READ_PREFIXES, can_change, is_access_denied
from chalicelib.core.errors import ConfigurationError
from chalicelib.core.model import TrailEvent
from chalicelib.core.outcomes import API_CALL, CONSOLE_SIGNIN, MANUAL_CHANGE, Outcome, summary_of
from chalicelib.core.partitions import partition_of
from chalicelib.core.settings import Settings
from chalicelib.core.stream import OVERFLOW, index_keys
from chalicelib.core.tamper import blinding_reason, tamper_reason
from chalicelib.core.timeutil import iso

# FORMAT.md "Default sensitive-call rules".
DEFAULT_INCLUDE = (
    "*SecurityGroup*",
    "ApplySecurityGroupsToLoadBalancer",
    "*Policy*",
    "*Gateway*",
    "*User",
    "*Vpc*",
    "*NetworkAcl*",
    "CreateRoute",
    "DeleteRoute",
    "ReplaceRoute",
    *AUDIT_CALLS,
)


SIGNIN_ROOT = "root"
SIGNIN_FAILURE = "failure"
SIGNIN_NO_MFA = "no_mfa"
SIGNIN_KINDS = (SIGNIN_ROOT, SIGNIN_FAILURE, SIGNIN_NO_MFA)  # priority order: root wins

CONSOLE_LOGIN = "ConsoleLogin"
SIGNIN_SOURCE = "signin.amazonaws.com"
SIGNIN_EVENT_TYPE = "awsconsolesignin"  # compared lower-cased: the docs also spell it AwsConsoleSignin

# Steps of one console sign-in that CloudTrail records next to that sign-in's ConsoleLogin record:
# a root sign-in is reported once, on its ConsoleLogin, not once per step.
SIGNIN_STEPS = frozenset({"CheckMfa", "CredentialChallenge", "CredentialVerification"})

IDENTITY_TYPES = frozenset({
    "Root", "IAMUser", "AssumedRole", "Role", "FederatedUser", "AWSAccount", "AWSService",
    "IdentityCenterUser", "SAMLUser", "WebIdentityUser", "Unknown",
})

_GLOB = re.compile(r"^[A-Za-z0-9_*-]+$")
_EVENT_SOURCE = re.compile(r"^[a-z0-9][a-z0-9-]*(\.[a-z0-9-]+)*\.amazonaws\.com$")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_RULE_KEYS = frozenset({"include", "exclude", "event_sources", "identity_types", "include_errors", "signin",
                        "tamper", "$comment"})


@dataclass(frozen=True)
class DirectRules:
    """Which directly delivered CloudTrail records alert.

    ``include``/``exclude`` are event-name globs where ``*`` matches any run of characters (and
    nothing else is special); matching is case-sensitive, like CloudTrail's names. ``None`` for
    ``event_sources`` or ``identity_types`` means all. Read-only calls never match, whatever the
    globs say, and ``ConsoleLogin`` is judged by the sign-in rule only. ``tamper`` (on by default) adds
    ``chalicelib.core.tamper``'s calls, which the globs and filters do not narrow.
    """

    include: tuple[str, ...] = DEFAULT_INCLUDE
    exclude: tuple[str, ...] = ()
    event_sources: tuple[str, ...] | None = None
    identity_types: tuple[str, ...] | None = None
    include_errors: bool = True
    signin_root: bool = True
    signin_failure: bool = True
    signin_no_mfa: bool = True
    tamper: bool = True

    @property
    def signin_enabled(self) -> tuple[str, ...]:
        """The enabled sign-in kinds, in priority order."""
        flags = (self.signin_root, self.signin_failure, self.signin_no_mfa)
        return tuple(kind for kind, on in zip(SIGNIN_KINDS, flags) if on)

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any] | None) -> DirectRules:
        """Validate the ``direct_rules`` settings object; raises ``ConfigurationError`` naming the key."""
        if raw is None:
            return cls()
        if not isinstance(raw, Mapping):
            raise ConfigurationError("settings key 'direct_rules' must be an object")
        unknown = set(raw) - _RULE_KEYS
        if unknown:
            raise ConfigurationError(f"unknown direct_rules key(s): {', '.join(sorted(unknown))}")
        include = _globs(raw, "include", DEFAULT_INCLUDE)
        for glob in include:
            _check_include(glob)
        sources = _optional_strings(raw, "event_sources")
        for source in sources or ():
            if not _EVENT_SOURCE.match(source):
                raise ConfigurationError(
                    f"direct_rules.event_sources: {source!r} is not a CloudTrail eventSource "
                    "(e.g. ec2.amazonaws.com)"
                )
        types = _optional_strings(raw, "identity_types")
        for kind in types or ():
            if kind not in IDENTITY_TYPES:
                raise ConfigurationError(
                    f"direct_rules.identity_types: {kind!r} is not a userIdentity type "
                    f"(one of {', '.join(sorted(IDENTITY_TYPES))})"
                )
        include_errors = raw.get("include_errors", True)
        if not isinstance(include_errors, bool):
            raise ConfigurationError("direct_rules.include_errors must be true or false")
        tamper = raw.get("tamper", True)
        if not isinstance(tamper, bool):
            raise ConfigurationError("direct_rules.tamper must be true or false")
        root, failure, no_mfa = _signin(raw.get("signin", True))
        return cls(
            include=include,
            exclude=_globs(raw, "exclude", ()),
            event_sources=sources,
            identity_types=types,
            include_errors=include_errors,
            signin_root=root,
            signin_failure=failure,
            signin_no_mfa=no_mfa,
            tamper=tamper,
        )


def _globs(raw: Mapping[str, Any], key: str, default: tuple[str, ...]) -> tuple[str, ...]:
    value = raw.get(key)
    if value is None:
        return default
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigurationError(f"direct_rules.{key} must be a list of event-name globs")
    globs = []
    for glob in value:
        if not _GLOB.match(glob):
            raise ConfigurationError(
                f"direct_rules.{key}: {glob!r} is not an event-name glob (letters, digits, '_', '-' and '*')"
            )
        glob = re.sub(r"\*+", "*", glob)
        if glob not in globs:
            globs.append(glob)
    return tuple(globs)


def _check_include(glob: str) -> None:
    literal_head = glob.split("*", 1)[0]
    if literal_head.startswith(COMMON_READ_PREFIXES):
        raise ConfigurationError(
            f"direct_rules.include: {glob!r} can only match read-only calls "
            f"(names starting {', '.join(COMMON_READ_PREFIXES)}), which never alert"
        )
    if glob == CONSOLE_LOGIN:
        raise ConfigurationError(
            "direct_rules.include: ConsoleLogin is judged by the sign-in rule; use direct_rules.signin"
        )


def _optional_strings(raw: Mapping[str, Any], key: str) -> tuple[str, ...] | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise ConfigurationError(
            f"direct_rules.{key} must be a non-empty list of strings (leave it out to mean all)"
        )
    return tuple(dict.fromkeys(value))


def _signin(value: Any) -> tuple[bool, bool, bool]:
    if isinstance(value, bool):
        return value, value, value
    if not isinstance(value, Mapping):
        raise ConfigurationError(
            "direct_rules.signin must be true, false or an object {root, failure, no_mfa}"
        )
    unknown = set(value) - set(SIGNIN_KINDS)
    if unknown:
        raise ConfigurationError(f"unknown direct_rules.signin key(s): {', '.join(sorted(unknown))}")
    flags = []
    for kind in SIGNIN_KINDS:
        flag = value.get(kind, True)
        if not isinstance(flag, bool):
            raise ConfigurationError(f"direct_rules.signin.{kind} must be true or false")
        flags.append(flag)
    return flags[0], flags[1], flags[2]


# --- matching ----------------------------------------------------------------------------------


@lru_cache(maxsize=512)
def _glob_regex(glob: str) -> re.Pattern[str]:
    return re.compile("^" + ".*".join(re.escape(part) for part in glob.split("*")) + "$")


def glob_matches(glob: str, name: str) -> bool:
    """``*`` matches any run of characters (including none); everything else is literal."""
    return _glob_regex(glob).match(name) is not None


def is_read_only_name(name: str) -> bool:
    """Read-only for the direct rules (FORMAT.md's ``api_call``): the five common prefixes. A person
    simulating a policy is worth an ``api_call``; it is only never the *cause* of a change (``calls``)."""
    return name.startswith(COMMON_READ_PREFIXES)


def is_signin_event(event: TrailEvent) -> bool:
    """A console sign-in record (``ConsoleLogin``, ``CheckMfa``, ``SwitchRole``, ...)."""
    if event.event_name == CONSOLE_LOGIN:
        return True
    return (event.event_type or "").lower() == SIGNIN_EVENT_TYPE


def classify_signin(event: TrailEvent) -> str | None:
    """``root``, ``failure``, ``no_mfa`` or ``None``: why a sign-in needs attention (root wins)."""
    kinds = _signin_kinds(event)
    return kinds[0] if kinds else None


def signin_alert(event: TrailEvent, rules: DirectRules) -> str | None:
    """The highest-priority sign-in kind that applies and that the rules enable."""
    enabled = rules.signin_enabled
    return next((kind for kind in _signin_kinds(event) if kind in enabled), None)


def _signin_kinds(event: TrailEvent) -> tuple[str, ...]:
    if not is_signin_event(event):
        return ()
    is_root = event.identity_type == "Root"
    if event.event_name != CONSOLE_LOGIN:
        # Other sign-in events (CheckMfa, SwitchRole, ExitRole, password recovery, ...) only
        # matter when the root user is behind them, and not for the steps of a root ConsoleLogin.
        return (SIGNIN_ROOT,) if is_root and event.event_name not in SIGNIN_STEPS else ()
    kinds = []
    if is_root:
        kinds.append(SIGNIN_ROOT)
    if _signin_failed(event):
        kinds.append(SIGNIN_FAILURE)
    elif event.identity_type == "IAMUser" and event.mfa_used is False:
        # Federated, SSO (AssumedRole) and Identity Center sign-ins do MFA at their identity provider.
        kinds.append(SIGNIN_NO_MFA)
    return tuple(kinds)


def _signin_failed(event: TrailEvent) -> bool:
    return (event.console_login or "").strip().lower() == "failure" or event.failed


def is_sensitive_call(event: TrailEvent, rules: DirectRules) -> bool:
    """Does this record match the sensitive-call rules? Sign-in records never do."""
    name = event.event_name
    if not name or is_signin_event(event) or _is_read_only(event):
        return False
    if event.failed and (not rules.include_errors or not is_access_denied(event.error_code)):
        return False  # a denied attempt is worth knowing; a validation error or a typo is not
    if rules.tamper and tamper_reason(event) is not None:
        return True
    if rules.event_sources is not None and event.event_source not in rules.event_sources:
        return False
    if rules.identity_types is not None and event.identity_type not in rules.identity_types:
        return False
    if not any(glob_matches(glob, name) for glob in rules.include):
        return False
    return not any(glob_matches(glob, name) for glob in rules.exclude)


def _is_read_only(event: TrailEvent) -> bool:
    return event.read_only is True or is_read_only_name(event.event_name or "")


# --- outcomes ----------------------------------------------------------------------------------


def direct_outcome(
    event: TrailEvent, settings: Settings, rules: DirectRules, now: datetime
) -> Outcome | None:
    """The ``console_signin`` or ``api_call`` outcome of one directly delivered record, or ``None``.

    Sign-ins are reported whoever signs in (a trusted role's console session is still a person);
    API calls by trusted principals or by AWS services are not reported.
    """
    signin = signin_alert(event, rules)
    if signin is not None:
        return _outcome(event, CONSOLE_SIGNIN, now, signin=signin, event_name=event.event_name,
                        extra=_signin_extra(event))
    if not is_sensitive_call(event, rules):
        return None
    if trust.verdict(event.principal, settings.trusted_principals, settings.trust_aws_services) is not None:
        return None
    tampering = blinding_reason(event) if rules.tamper else None
    extra = {"tamper": tampering} if tampering else {}
    return _outcome(event, API_CALL, now, event_name=event.event_name, extra=extra, **_resource(event))


def outcome_id(event: TrailEvent) -> str:
    """Deterministic from the record, so EventBridge, CloudWatch Logs and redeliveries agree.

    A real eventID (a GUID) is unique on its own. Without one, or with a placeholder such as
    "redacted" or "...EXAMPLE", a digest of the fields that identify the call is used (with the id).
    """
    event_id = (event.event_id or "").strip()
    if _GUID.match(event_id):
        return f"ct:{event_id.lower()}"
    digest = event.fingerprint or _parsed_digest(event)
    return f"ct:{event_id}:{digest}" if event_id else f"ct:{digest}"


def _parsed_digest(event: TrailEvent) -> str:
    """For a ``TrailEvent`` built without the parser (which sets ``fingerprint``): its parsed fields."""
    fields = {k: v for k, v in event.to_json().items() if k != "source"}  # the same call by either path
    text = json.dumps(fields, sort_keys=True, default=str, ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _outcome(event: TrailEvent, kind: str, now: datetime, **fields: Any) -> Outcome:
    return Outcome(
        kind=kind,
        outcome_id=outcome_id(event),
        at=iso(now) or "",
        account=event.account,
        region=event.region,
        principal_arn=event.principal.arn,
        principal=event.principal,
        event_ids=(event.event_id,) if event.event_id else (),
        events=(summary_of(event),),
        partition=partition_of(event.principal.arn, event.region),
        **fields,
    )


_MFA_ANSWER = {True: "yes", False: "no", None: None}


def _signin_extra(event: TrailEvent) -> dict[str, Any]:
    extra = {"result": event.console_login, "mfa_used": _MFA_ANSWER[event.mfa_used],
             "user_name": event.principal.user_name}
    return {k: v for k, v in extra.items() if v is not None}


# (eventSource, key in requestParameters/responseElements, resource type, how the value is used)
_RESOURCE_KEYS = (
    ("ec2.amazonaws.com", "groupId", "AWS::EC2::SecurityGroup", "id"),
    ("ec2.amazonaws.com", "routeTableId", "AWS::EC2::RouteTable", "id"),
    ("ec2.amazonaws.com", "networkAclId", "AWS::EC2::NetworkAcl", "id"),
    ("ec2.amazonaws.com", "internetGatewayId", "AWS::EC2::InternetGateway", "id"),
    ("ec2.amazonaws.com", "natGatewayId", "AWS::EC2::NatGateway", "id"),
    ("ec2.amazonaws.com", "vpcId", "AWS::EC2::VPC", "id"),
    ("s3.amazonaws.com", "bucketName", "AWS::S3::Bucket", "id"),
    ("iam.amazonaws.com", "roleName", "AWS::IAM::Role", "name"),
    ("iam.amazonaws.com", "userName", "AWS::IAM::User", "name"),
    ("iam.amazonaws.com", "groupName", "AWS::IAM::Group", "name"),
    ("iam.amazonaws.com", "policyArn", "AWS::IAM::Policy", "arn"),
    ("cloudtrail.amazonaws.com", "name", "AWS::CloudTrail::Trail", "name"),
    ("cloudtrail.amazonaws.com", "trailName", "AWS::CloudTrail::Trail", "name"),
    ("config.amazonaws.com", "configurationRecorderName", "AWS::Config::ConfigurationRecorder", "name"),
    ("config.amazonaws.com", "deliveryChannelName", "AWS::Config::DeliveryChannel", "name"),
)


# More of them for early alerts, whose "which resource" matters more (api_call alerts keep the list above).
_EARLY_RESOURCE_KEYS = (
    *_RESOURCE_KEYS,
    ("ec2.amazonaws.com", "instanceId", "AWS::EC2::Instance", "id"),
    ("ec2.amazonaws.com", "volumeId", "AWS::EC2::Volume", "id"),
    ("ec2.amazonaws.com", "networkInterfaceId", "AWS::EC2::NetworkInterface", "id"),
    ("ec2.amazonaws.com", "subnetId", "AWS::EC2::Subnet", "id"),
    ("lambda.amazonaws.com", "functionName", "AWS::Lambda::Function", "name"),
    ("rds.amazonaws.com", "dBInstanceIdentifier", "AWS::RDS::DBInstance", "name"),
    ("rds.amazonaws.com", "dBClusterIdentifier", "AWS::RDS::DBCluster", "name"),
    ("dynamodb.amazonaws.com", "tableName", "AWS::DynamoDB::Table", "name"),
    ("sns.amazonaws.com", "topicArn", "AWS::SNS::Topic", "arn"),
    ("autoscaling.amazonaws.com", "autoScalingGroupName", "AWS::AutoScaling::AutoScalingGroup", "name"),
    ("elasticloadbalancing.amazonaws.com", "loadBalancerArn", "AWS::ElasticLoadBalancingV2::LoadBalancer", "arn"),
    ("elasticloadbalancing.amazonaws.com", "targetGroupArn", "AWS::ElasticLoadBalancingV2::TargetGroup", "arn"),
    ("elasticloadbalancing.amazonaws.com", "loadBalancerName", "AWS::ElasticLoadBalancing::LoadBalancer", "name"),
)


def _resource(event: TrailEvent, known: tuple[tuple[str, str, str, str], ...] = _RESOURCE_KEYS) -> dict[str, Any]:
    """The resource a call evidently acts on, from its request (or response) parameters."""
    sections = [event.request_parameters, event.response_elements]
    sections = [s for s in sections if isinstance(s, Mapping)]
    for source, key, resource_type, use in known:
        if event.event_source != source:
            continue
        value = next((s[key] for s in sections if isinstance(s.get(key), str) and s.get(key)), None)
        if value is None:
            continue
        if use == "arn" or value.startswith("arn:"):
            name = value.rsplit("/", 1)[-1] if "/" in value else None
            return {"resource_type": resource_type, "resource_arn": value, "resource_name": name}
        if use == "id":
            return {"resource_type": resource_type, "resource_id": value}
        return {"resource_type": resource_type, "resource_name": value}
    return {}


# --- early alerts ------------------------------------------------------------------------------

# Services whose resources AWS Config records (its resource-type namespaces), and the writes to them that
# change no configuration item: data-plane calls (objects, items, messages, invocations) and credentials or
# images Config does not record. Conservative: a service missing here gets no early alert (its change is still
# reported from its Config item, if Config records it).
CONFIG_RECORDED_CALLS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "ec2.amazonaws.com": (("AWS::EC2::",), (
        "*Snapshot*", "*Image*", "*KeyPair*", "*Spot*", "SendDiagnosticInterrupt", "ReportInstanceStatus",
        "*ExportTask*", "*ImportTask*")),
    "s3.amazonaws.com": (("AWS::S3::",), ("*Object*", "*MultipartUpload*", "UploadPart*")),
    "iam.amazonaws.com": (("AWS::IAM::",), (
        "*AccessKey*", "*LoginProfile*", "*MFADevice*", "ChangePassword", "*SSHPublicKey*",
        "*ServiceSpecificCredential*", "*SigningCertificate*", "*ServerCertificate*", "*AccountPasswordPolicy*",
        "*AccountAlias*", "SetSecurityTokenServicePreferences", "*OpenIDConnectProvider*", "*SAMLProvider*")),
    "lambda.amazonaws.com": (("AWS::Lambda::",), ("Invoke*",)),
    "rds.amazonaws.com": (("AWS::RDS::",), ("Download*",)),
    "elasticloadbalancing.amazonaws.com": (("AWS::ElasticLoadBalancing::", "AWS::ElasticLoadBalancingV2::"), ()),
    "autoscaling.amazonaws.com": (("AWS::AutoScaling::",), (
        "RecordLifecycleActionHeartbeat", "CompleteLifecycleAction")),
    "cloudtrail.amazonaws.com": (("AWS::CloudTrail::",), ()),
    "sns.amazonaws.com": (("AWS::SNS::",), ("Publish*", "Subscribe", "Unsubscribe", "*Subscription*")),
    "sqs.amazonaws.com": (("AWS::SQS::",), (
        "SendMessage*", "DeleteMessage*", "ChangeMessageVisibility*", "PurgeQueue", "*MessageMoveTask")),
    "dynamodb.amazonaws.com": (("AWS::DynamoDB::",), (
        "*Item", "BatchWrite*", "Transact*", "*Statement", "ExecuteTransaction", "*Backup*", "Export*", "Import*")),
}
API_CALL_EVENT = "AwsApiCall"
EARLY_NAMES_SHOWN = 3


def config_namespaces(event: TrailEvent) -> tuple[str, ...]:
    """The Config resource-type namespaces a call can change (``AWS::EC2::``), or ``()`` when it changes none
    that Config records: another service, or a write of ``CONFIG_RECORDED_CALLS``' exceptions."""
    recorded = CONFIG_RECORDED_CALLS.get((event.event_source or "").lower())
    name = event.event_name or ""
    if recorded is None or any(glob_matches(glob, name) for glob in recorded[1]):
        return ()
    return recorded[0]


def early_outcome(event: TrailEvent, settings: Settings, now: datetime) -> Outcome | None:
    """The early alert of a streamed call, or ``None``: a successful write (``calls.can_change``), by a principal
    neither trusted nor an AWS service (``trust.verdict``, decided on the issuing role), to a service AWS Config
    records (``config_namespaces``).

    It is not one of FORMAT.md's outcomes: its id is the call's (``ct:<eventID>``, as an ``api_call``'s would
    be), its kind the ``manual_change`` it announces (so routing and severity judge it as that change), and
    ``extra["early"]`` marks it; ``extra["names"]``, the identifiers the call names (the recent-calls index's
    keys), say which resource when the request names none of ``_EARLY_RESOURCE_KEYS``.
    """
    if not event.event_id or not can_change(event.event_name, event.read_only, event.error_code):
        return None
    if (event.event_type or API_CALL_EVENT) != API_CALL_EVENT or is_signin_event(event):
        return None
    namespaces = config_namespaces(event)
    if not namespaces:
        return None
    # AWS services never get one, whatever trust_aws_services says: early alerts are about people.
    if trust.verdict(event.principal, settings.trusted_principals, True) is not None:
        return None
    extra = {"early": True, "config_types": [f"{n}*" for n in namespaces],
             "names": _early_names(event)}
    return _outcome(event, MANUAL_CHANGE, now, extra=extra, **_resource(event, _EARLY_RESOURCE_KEYS))


def _early_names(event: TrailEvent) -> list[str]:
    """Up to ``EARLY_NAMES_SHOWN`` identifiers the call names, ids (``sg-0…``) before words (``env``)."""
    names = [n for n in index_keys(event) if n != OVERFLOW and not n.startswith("arn:")]
    return sorted(names, key=lambda n: not any(c.isdigit() for c in n))[:EARLY_NAMES_SHOWN]


def is_early(outcome: Outcome) -> bool:
    """An early alert (``early_outcome``), not a finding of FORMAT.md's."""
    return outcome.extra.get("early") is True
