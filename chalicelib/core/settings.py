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
from dataclasses import dataclass, field, replace
from typing import Any

from chalicelib.core import trust
from chalicelib.core.errors import ConfigurationError
from chalicelib.core.logs import log_json
from chalicelib.core.organization import Directory, DirectorySource, is_scope_id, resolve

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
class ConsoleAccess:
    """How an alert's console links open the account that holds what they show (settings ``console_access``).

    ``direct`` links straight to the console (the reader must already be in that account); ``switch_role``
    goes through the console's switch-role page into ``role``; ``identity_center`` through the AWS access
    portal ``start_url`` with ``permission_set`` (docs/slack.md, "Links from a central account").
    """

    mode: str = "direct"  # direct | switch_role | identity_center
    role: str = ""  # switch_role: the role name in every account
    start_url: str = ""  # identity_center: https://host[/path] of the access portal, no trailing slash
    permission_set: str = ""  # identity_center: the permission set name


@dataclass(frozen=True)
class Route:
    """Send alerts matching all given conditions to ``destinations`` (first matching route wins).

    ``accounts`` and ``ous`` together are one condition: the alert's account is one of ``accounts`` or in
    one of ``ous`` (or below). ``tags`` are ``(key, value)`` pairs the resource must carry, before or after
    the change (``core.routing``).
    """

    destinations: tuple[str, ...]
    accounts: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    min_severity: str | None = None
    ous: tuple[str, ...] = ()
    tags: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class ScopedTrust:
    """A trusted pattern that applies only to items and calls in ``accounts`` or under ``ous``."""

    arn: str
    accounts: tuple[str, ...] = ()
    ous: tuple[str, ...] = ()


@dataclass(frozen=True)
class Settings:
    trusted_principals: tuple[str, ...] = ()  # the plain patterns: trusted in every account
    scoped_trust: tuple[ScopedTrust, ...] = ()  # patterns trusted in some accounts or OUs only (trusted_for)
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
    console_access: ConsoleAccess = ConsoleAccess()  # how alert links reach a member account's console

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
        usable: list[str] = []
        scoped: list[ScopedTrust] = []
        for entry in _list(data, "trusted_principals"):
            try:
                found = _trusted_entry(entry)
            except ConfigurationError as error:
                if not lenient:
                    raise
                # One line per pattern left out: changes by that principal alert until it is fixed.
                log_json(log, logging.ERROR, "trusted_principal_skipped", pattern=_entry_text(entry)[:300],
                         reason=str(error)[:500], action="not trusted: its changes are reported")
                continue
            if isinstance(found, ScopedTrust):
                scoped.append(found)
            else:
                usable.append(found)
        trusted = tuple(usable)
        ignored = data.get("ignored_resource_types", list(DEFAULT_IGNORED_RESOURCE_TYPES))
        destinations = tuple(_destination(d, lenient) for d in _list(data, "destinations"))
        names = {d.name for d in destinations}
        routes = tuple(_route(r, names) for r in _list(data, "routes"))
        return cls(
            trusted_principals=trusted,
            scoped_trust=tuple(scoped),
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
            console_access=_console_access(data.get("console_access"), lenient),
        )

    def trusted_for(self, account: str | None, directory: DirectorySource = None) -> tuple[str, ...]:
        """The patterns that decide trust for an item or a call in ``account``: every plain pattern, and each
        scoped one whose ``accounts`` hold it or whose ``ous`` hold it at any depth.

        ``directory`` (a ``Directory`` or the function that reads it) is read only when a scope names an OU;
        without it, or for an account it does not know, OU scopes trust nothing.
        """
        if not self.scoped_trust:
            return self.trusted_principals
        found = list(self.trusted_principals)
        known: Directory | None = None
        for scoped in self.scoped_trust:
            if not account:
                break
            if account in scoped.accounts:
                found += _pinned(scoped.arn, account)
            elif scoped.ous:
                known = resolve(directory) if known is None else known
                if known.in_scope(account, ous=scoped.ous):
                    found += _pinned(scoped.arn, account)
        return tuple(dict.fromkeys(found))

    def for_account(self, account: str | None, directory: DirectorySource = None) -> Settings:
        """These settings as they apply in ``account``: ``trusted_principals`` is ``trusted_for(account)``, for
        code that reads it directly (``rules.direct_outcome``, ``rules.early_outcome``)."""
        if not self.scoped_trust:
            return self
        return replace(self, trusted_principals=self.trusted_for(account, directory), scoped_trust=())

    @property
    def routes_need_directory(self) -> bool:
        """A route names an OU: routing needs the organisation's directory."""
        return any(route.ous for route in self.routes)


def _pinned(pattern: str, account: str) -> list[str]:
    """A scoped pattern as it applies in ``account``: a ``*`` in its account field stands for that account only,
    so the same role name in an account outside the scope (acting cross-account on a resource in scope) is not
    trusted; a pattern that names its account (a central deployment account) stays as it is."""
    parts = pattern.split(":", 5)
    if len(parts) < 6 or "*" not in parts[4]:
        return [pattern]
    if not re.fullmatch(".*".join(re.escape(piece) for piece in parts[4].split("*")), account):
        return []
    return [":".join([*parts[:4], account, parts[5]])]


_KNOWN_KEYS = {
    "trusted_principals", "trust_aws_services", "ignored_resource_types", "lookback_minutes",
    "give_up_minutes", "burst_window_seconds", "destinations", "routes", "direct_rules", "account_aliases",
    "config_buckets", "silence_alert_hours", "accounts", "lookup_role", "console_access", "$comment",
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


_ACCESS_KEYS = {"direct": {"mode"}, "switch_role": {"mode", "role"},
                "identity_center": {"mode", "start_url", "permission_set"}}
_ACCESS_NAME = re.compile(r"[\w+=,.@-]+", re.ASCII)  # IAM role (no path) and permission set names
_START_URL = re.compile(r"https://[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})+(?:/[A-Za-z0-9._~-]+)*/?")


def _console_access(raw: Any, lenient: bool = False) -> ConsoleAccess:
    """``console_access``, validated (absent is ``direct``); ``lenient`` logs a bad one and links directly."""
    try:
        return _checked_access(raw)
    except ConfigurationError as error:
        if not lenient:
            raise
        log_json(log, logging.ERROR, "console_access_skipped", reason=str(error)[:500],
                 action="alert links go straight to the console until it is fixed")
        return ConsoleAccess()


def _checked_access(raw: Any) -> ConsoleAccess:
    if raw is None:
        return ConsoleAccess()
    if not isinstance(raw, Mapping):
        raise ConfigurationError('settings key \'console_access\' must be an object such as {"mode": "direct"}')
    mode = raw.get("mode")
    if not isinstance(mode, str) or mode not in _ACCESS_KEYS:
        raise ConfigurationError("console_access.mode must be 'direct', 'switch_role' or 'identity_center'")
    unknown = sorted(map(str, set(raw) - _ACCESS_KEYS[mode] - {"$comment"}))
    if unknown:
        raise ConfigurationError(f"console_access ({mode}): unknown key(s): {', '.join(unknown)}")
    if mode == "switch_role":
        return ConsoleAccess(mode, role=_access_name(raw.get("role"), "role", 64, "ReadOnly"))
    if mode == "identity_center":
        start_url = raw.get("start_url")
        if not isinstance(start_url, str) or len(start_url) > 200 or not _START_URL.fullmatch(start_url):
            raise ConfigurationError("console_access.start_url must be the AWS access portal URL, a plain "
                                     "https://host[/path] such as https://d-1234567890.awsapps.com/start")
        permission_set = _access_name(raw.get("permission_set"), "permission_set", 32, "ReadOnlyAccess")
        return ConsoleAccess(mode, start_url=start_url.rstrip("/"), permission_set=permission_set)
    return ConsoleAccess()


def _access_name(value: Any, key: str, longest: int, example: str) -> str:
    if not isinstance(value, str) or len(value) > longest or not _ACCESS_NAME.fullmatch(value):
        raise ConfigurationError(f"console_access.{key} must be a name such as {example!r} (letters, digits and "
                                 f"+=,.@_-, at most {longest} characters; not an ARN)")
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


_SCOPED_TRUST_KEYS = frozenset({"arn", "accounts", "ous", "$comment"})
_SCOPED_EXAMPLE = '{"arn": "arn:aws:iam::*:role/ci/terraform", "ous": ["ou-ab12-cdef3456"]}'


def _trusted_entry(entry: Any) -> str | ScopedTrust:
    """One ``trusted_principals`` entry: a pattern (trusted in every account), or a pattern scoped to
    ``accounts`` and/or ``ous``; the refusals of ``_check_principal_pattern`` apply to both."""
    if isinstance(entry, str) and entry:
        _check_principal_pattern(entry)
        return entry
    if not isinstance(entry, Mapping):
        raise ConfigurationError("each trusted_principals entry must be an IAM ARN pattern, or an object "
                                 f"scoping one such as {_SCOPED_EXAMPLE}")
    arn = entry.get("arn")
    if not isinstance(arn, str) or not arn:
        raise ConfigurationError(f"a scoped trusted principal needs 'arn', an IAM ARN pattern: {_SCOPED_EXAMPLE}")
    unknown = sorted(map(str, set(entry) - _SCOPED_TRUST_KEYS))
    if unknown:
        raise ConfigurationError(f"trusted principal {arn[:200]!r}: unknown key(s) {', '.join(unknown)} "
                                 "(a scoped entry has arn, accounts and ous)")
    _check_principal_pattern(arn)
    accounts = tuple(_account(a) for a in _as_strings(entry.get("accounts", []), "trusted_principals[].accounts"))
    ous = _scope_ids(entry.get("ous", []), "trusted_principals[].ous")
    if not accounts and not ous:
        raise ConfigurationError(f"trusted principal {arn[:200]!r}: give 'accounts' or 'ous' to scope it, or write "
                                 "the pattern as a plain string to trust it in every account")
    return ScopedTrust(arn, accounts, ous)


def _entry_text(entry: Any) -> str:
    """How a skipped ``trusted_principals`` entry is named in the log."""
    if isinstance(entry, Mapping):
        return str(entry.get("arn"))
    return entry if isinstance(entry, str) else type(entry).__name__


def _scope_ids(value: Any, key: str) -> tuple[str, ...]:
    """OU ids (``ou-…``) and root ids (``r-…``), as AWS Organizations writes them."""
    ids = _as_strings(value, key)
    for found in ids:
        if not is_scope_id(found):
            raise ConfigurationError(f"{key}: {found[:60]!r} is not an OU id (ou-ab12-cdef3456) or a root id "
                                     "(r-ab12) of AWS Organizations")
    return tuple(ids)


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


_ROUTE_KEYS = frozenset({"destinations", "accounts", "ous", "kinds", "min_severity", "tags", "$comment"})
_TAG_KEY_CHARS, _TAG_VALUE_CHARS = 128, 256  # AWS's limits


def _route(raw: Any, names: set[str]) -> Route:
    if not isinstance(raw, Mapping):
        raise ConfigurationError("each route must be an object")
    unknown = sorted(map(str, set(raw) - _ROUTE_KEYS))
    if unknown:
        raise ConfigurationError(f"routes[]: unknown key(s) {', '.join(unknown)} (a route has destinations, "
                                 "accounts, ous, kinds, min_severity and tags)")
    dests = tuple(_as_strings(raw.get("destinations", []), "routes[].destinations"))
    missing = [d for d in dests if d not in names]
    if not dests or missing:
        raise ConfigurationError(f"route names unknown destination(s): {missing or 'none given'}")
    severity = raw.get("min_severity")
    if severity not in (None, "low", "medium", "high"):
        raise ConfigurationError("routes[].min_severity must be low, medium or high")
    return Route(
        destinations=dests,
        accounts=tuple(_account(a) for a in _as_strings(raw.get("accounts", []), "routes[].accounts")),
        kinds=tuple(_as_strings(raw.get("kinds", []), "routes[].kinds")),
        min_severity=severity,
        ous=_scope_ids(raw.get("ous", []), "routes[].ous"),
        tags=_route_tags(raw.get("tags", {})),
    )


def _route_tags(value: Any) -> tuple[tuple[str, str], ...]:
    """``{"key": "value", ...}``: tags the resource must carry (an empty value is a value, as in AWS)."""
    if not isinstance(value, Mapping):
        raise ConfigurationError('routes[].tags must be an object of tag keys and values, e.g. {"team": "payments"}')
    for key, tag in value.items():
        if not isinstance(key, str) or not key or len(key) > _TAG_KEY_CHARS:
            raise ConfigurationError(f"routes[].tags: {str(key)[:60]!r} is not a tag key (1 to 128 characters)")
        if not isinstance(tag, str) or len(tag) > _TAG_VALUE_CHARS:
            raise ConfigurationError(f"routes[].tags: the value of {key[:60]!r} must be text of at most 256 "
                                     "characters")
    return tuple(sorted(value.items()))


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
