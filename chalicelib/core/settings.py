"""Detector settings: what the user decides (trusted principals, rules, Slack routing).

Settings are a JSON document validated on load (``Settings.from_dict``), so a typo fails loudly with
the key named. They are read at run time from an SSM parameter or an S3 object (see
``chalicelib.bootstrap``), falling back to ``chalicelib/default_settings.json``, so they can change
without redeploying code. Resource names (queues, bucket, table) are not settings: they come from
the stage's environment (``Environment``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from chalicelib.core import trust
from chalicelib.core.errors import ConfigurationError
from chalicelib.core.logs import log_json

log = logging.getLogger("mcd.settings")

DEFAULT_IGNORED_RESOURCE_TYPES = (
    "AWS::SSM::ManagedInstanceInventory",
    "AWS::Config::ResourceCompliance",
    "AWS::SSM::PatchCompliance",
    "AWS::SSM::AssociationCompliance",
)

_ARN_PATTERN = re.compile(r"^arn:(aws|aws-us-gov|aws-cn|aws-iso|aws-iso-b|\*):iam::[0-9*]+:(root|user/.+|role/.+)$")


DEFAULT_LOOKUP_ROLE = "mcd-lookup"  # FORMAT.md: settings.lookup_role

@dataclass(frozen=True)
class Destination:
    """A Slack destination: an incoming webhook, or a bot token posting to a channel.

    ``secret`` names where the URL or token lives: a Secrets Manager secret id/ARN, or
    ``ssm:/parameter/name`` for an SSM SecureString. The value itself is never in settings.
    ``early_alerts`` (off by default) also sends it early alerts: an untrusted person's write, from the
    live CloudTrail stream, completed with the AWS Config diff when the item arrives (docs/slack.md).
    """

    name: str
    type: str  # "webhook" or "bot"
    secret: str
    channel: str | None = None
    early_alerts: bool = False


@dataclass(frozen=True)
class Route:
    """Send alerts matching all given conditions to ``destinations`` (first matching route wins)."""

    destinations: tuple[str, ...]
    accounts: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    min_severity: str | None = None


@dataclass(frozen=True)
class Settings:
    trusted_principals: tuple[str, ...] = ()
    trust_aws_services: bool = True
    ignored_resource_types: frozenset[str] = frozenset(t.lower() for t in DEFAULT_IGNORED_RESOURCE_TYPES)
    lookback_minutes: int = 20
    give_up_minutes: int = 85
    burst_window_seconds: int = 300
    destinations: tuple[Destination, ...] = ()
    routes: tuple[Route, ...] = ()
    direct_rules: Mapping[str, Any] = field(default_factory=dict)
    account_aliases: Mapping[str, str] = field(default_factory=dict)
    config_buckets: tuple[str, ...] | None = None  # None: Config's own key layout only (see docs/configuration.md)
    silence_alert_hours: int = 24  # the dead-man's switch (core.watchdog): alert after this long without input
    accounts: tuple[str, ...] = ()  # the organisation's other accounts the detector watches (FORMAT.md, Accounts)
    lookup_role: str = DEFAULT_LOOKUP_ROLE  # assumed in those accounts to read their CloudTrail history

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, *, lenient: bool = False) -> Settings:
        """Validate a settings document; raises ``ConfigurationError`` naming the bad key.

        ``lenient`` drops unknown keys and unusable principal patterns instead of refusing the whole
        document (the loader logs the strict error first): a typo must not silence every alert.
        Each pattern dropped is logged (``trusted_principal_skipped``), including patterns refused
        because anyone could borrow their trust (``trust.refusal``: a whole account, root, Identity
        Center roles).
        """
        data = dict(data or {})
        unknown = set(data) - _KNOWN_KEYS
        if unknown and not lenient:
            raise ConfigurationError(f"unknown settings key(s): {', '.join(sorted(unknown))}")
        trusted = tuple(_string_list(data, "trusted_principals"))
        usable = []
        for pattern in trusted:
            try:
                _check_principal_pattern(pattern)
            except ConfigurationError as error:
                if not lenient:
                    raise
                # One line per pattern left out: changes by that principal alert until it is fixed.
                log_json(log, logging.ERROR, "trusted_principal_skipped", pattern=pattern[:300],
                         reason=str(error)[:500], action="not trusted: its changes are reported")
                continue
            usable.append(pattern)
        trusted = tuple(usable)
        ignored = data.get("ignored_resource_types", list(DEFAULT_IGNORED_RESOURCE_TYPES))
        destinations = tuple(_destination(d, lenient) for d in _list(data, "destinations"))
        names = {d.name for d in destinations}
        routes = tuple(_route(r, names) for r in _list(data, "routes"))
        return cls(
            trusted_principals=trusted,
            trust_aws_services=_bool(data, "trust_aws_services", True),
            ignored_resource_types=frozenset(t.lower() for t in _as_strings(ignored, "ignored_resource_types")),
            lookback_minutes=_int(data, "lookback_minutes", 20, 1, 24 * 60),
            give_up_minutes=_int(data, "give_up_minutes", 85, 5, 90),
            burst_window_seconds=_int(data, "burst_window_seconds", 300, 0, 3600),
            destinations=destinations,
            routes=routes,
            direct_rules=_mapping(data, "direct_rules"),
            account_aliases={str(k): str(v) for k, v in _mapping(data, "account_aliases").items()},
            config_buckets=(tuple(_as_strings(data["config_buckets"], "config_buckets"))
                            if data.get("config_buckets") is not None else None),
            silence_alert_hours=_int(data, "silence_alert_hours", 24, 1, 30 * 24),
            accounts=tuple(_account(a) for a in _string_list(data, "accounts")),
            lookup_role=_role_name(data.get("lookup_role", DEFAULT_LOOKUP_ROLE)),
        )


_KNOWN_KEYS = {
    "trusted_principals", "trust_aws_services", "ignored_resource_types", "lookback_minutes",
    "give_up_minutes", "burst_window_seconds", "destinations", "routes", "direct_rules", "account_aliases",
    "config_buckets", "silence_alert_hours", "accounts", "lookup_role", "$comment",
}
_ACCOUNT_ID = re.compile(r"\d{12}")
_ROLE_NAME = re.compile(r"[\w+=,.@-]{1,64}")


def _account(value: str) -> str:
    if not _ACCOUNT_ID.fullmatch(value):
        raise ConfigurationError(f"accounts: {value[:40]!r} is not a 12-digit account id")
    return value


def _role_name(value: Any) -> str:
    """A role name (``mcd-lookup``), not an ARN: the account is the item's, the partition the item's too."""
    if not isinstance(value, str) or not _ROLE_NAME.fullmatch(value):
        raise ConfigurationError(f"lookup_role must be a role name such as {DEFAULT_LOOKUP_ROLE!r}")
    return value


def _check_principal_pattern(pattern: str) -> None:
    if ":assumed-role/" in pattern or pattern.startswith("arn:aws:sts"):
        raise ConfigurationError(
            f"trusted principal {pattern!r} is a session ARN: name the role "
            "(arn:aws:iam::ACCOUNT:role/NAME); session names are chosen by the caller and never trusted"
        )
    refused = trust.refusal(pattern)  # trust that anyone could borrow (D17)
    if refused:
        raise ConfigurationError(refused)
    if not _ARN_PATTERN.match(pattern):
        raise ConfigurationError(
            f"trusted principal {pattern!r} is not an IAM role or user ARN pattern "
            "(e.g. arn:aws:iam::123456789012:role/terraform-*)"
        )


_DESTINATION_KEYS = frozenset({"name", "type", "secret", "channel", "early_alerts", "$comment"})


def _destination(raw: Any, lenient: bool = False) -> Destination:
    """One destination, validated; ``lenient`` logs and skips unknown keys and an unusable ``early_alerts``
    (early alerts then stay off: every other alert is still sent)."""
    if not isinstance(raw, Mapping):
        raise ConfigurationError("each destination must be an object")
    kind = raw.get("type", "webhook")
    if kind not in ("webhook", "bot"):
        raise ConfigurationError(f"destination type must be 'webhook' or 'bot', not {kind!r}")
    name, secret = raw.get("name"), raw.get("secret")
    if not isinstance(name, str) or not name:
        raise ConfigurationError("destination needs a 'name'")
    if not isinstance(secret, str) or not secret:
        raise ConfigurationError(f"destination {name!r} needs 'secret' (a Secrets Manager id or ssm:/name)")
    if secret.startswith(("https://", "http://", "xox")):
        raise ConfigurationError(f"destination {name!r}: put the webhook URL or token in a secret, not here")
    channel = raw.get("channel")
    if kind == "bot" and not channel:
        raise ConfigurationError(f"bot destination {name!r} needs a 'channel'")
    return Destination(name=name, type=kind, secret=secret, channel=channel,
                       early_alerts=_early_alerts(raw, name, lenient))


def _early_alerts(raw: Mapping[str, Any], name: str, lenient: bool) -> bool:
    problems = [f"unknown key {k!r}" for k in sorted(set(raw) - _DESTINATION_KEYS, key=str)]
    early = raw.get("early_alerts", False)
    if not isinstance(early, bool):
        problems.append("'early_alerts' must be true or false")
        early = False
    for problem in problems:
        if not lenient:
            raise ConfigurationError(f"destination {name!r}: {problem}")
        log_json(log, logging.ERROR, "destination_key_skipped", destination=name[:100], reason=problem[:200],
                 action="skipped: its alerts are still sent, early alerts only where early_alerts is true")
    return early


def _route(raw: Any, names: set[str]) -> Route:
    if not isinstance(raw, Mapping):
        raise ConfigurationError("each route must be an object")
    dests = tuple(_as_strings(raw.get("destinations", []), "routes[].destinations"))
    missing = [d for d in dests if d not in names]
    if not dests or missing:
        raise ConfigurationError(f"route names unknown destination(s): {missing or 'none given'}")
    severity = raw.get("min_severity")
    if severity not in (None, "low", "medium", "high"):
        raise ConfigurationError("routes[].min_severity must be low, medium or high")
    return Route(
        destinations=dests,
        accounts=tuple(_as_strings(raw.get("accounts", []), "routes[].accounts")),
        kinds=tuple(_as_strings(raw.get("kinds", []), "routes[].kinds")),
        min_severity=severity,
    )


def _list(data: Mapping[str, Any], key: str) -> list[Any]:
    value = data.get(key, [])
    if not isinstance(value, list):
        raise ConfigurationError(f"settings key {key!r} must be a list")
    return value


def _string_list(data: Mapping[str, Any], key: str) -> list[str]:
    return _as_strings(_list(data, key), key)


def _as_strings(value: Any, key: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigurationError(f"settings key {key!r} must be a list of non-empty strings")
    return list(value)


def _mapping(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, Mapping):
        raise ConfigurationError(f"settings key {key!r} must be an object")
    return value


def _bool(data: Mapping[str, Any], key: str, default: bool) -> bool:
    value = data.get(key, default)
    if not isinstance(value, bool):
        raise ConfigurationError(f"settings key {key!r} must be true or false")
    return value


def _int(data: Mapping[str, Any], key: str, default: int, low: int, high: int) -> int:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigurationError(f"settings key {key!r} must be a whole number from {low} to {high}")
    return value
