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


@dataclass(frozen=True)
class Destination:
    """A Slack destination: an incoming webhook, or a bot token posting to a channel.

    ``secret`` names where the URL or token lives: a Secrets Manager secret id/ARN, or
    ``ssm:/parameter/name`` for an SSM SecureString. The value itself is never in settings.
    """

    name: str
    type: str  # "webhook" or "bot"
    secret: str
    channel: str | None = None


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
        destinations = tuple(_destination(d) for d in _list(data, "destinations"))
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
        )


_KNOWN_KEYS = {
    "trusted_principals", "trust_aws_services", "ignored_resource_types", "lookback_minutes",
    "give_up_minutes", "burst_window_seconds", "destinations", "routes", "direct_rules", "account_aliases",
    "config_buckets", "silence_alert_hours", "$comment",
}


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


def _destination(raw: Any) -> Destination:
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
    return Destination(name=name, type=kind, secret=secret, channel=channel)


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
