"""Slack rendering (Block Kit) of outcomes: pure functions, no I/O, no environment reads.

``render`` turns one alert outcome into a full message, or several (one CloudTrail event that changed
many items, a burst by one principal) into ONE digest. The payload works both for incoming webhooks
and for ``chat.postMessage`` (``text`` fallback + ``blocks``).

Safety rules kept by every function here:

* Event-sourced text (names, tags, session names, user agents, policy text, values, error messages)
  reaches mrkdwn only through ``_esc`` (``&`` ``<`` ``>`` escaped, backticks replaced, control/bidi
  characters removed, ``@channel``-style words defused) and plain_text only through ``_plain``
  (``<`` ``>`` replaced by look-alikes). Outcomes are first normalised by ``_coerce``, so a field of
  an unexpected type is shown as text instead of crashing the renderer.
* Links are built only from fixed templates and URL-quoted components; a component that is too long
  or a region that is not a plain region name yields no link rather than a wrong one.
* Sizes stay within ``LIMITS`` (below Slack's own); ``check_limits`` reports any violation.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote, unquote

from chalicelib.core.outcomes import (
    API_CALL,
    CONSOLE_SIGNIN,
    MANUAL_CHANGE,
    SUPPRESSED,
    UNATTRIBUTED_CHANGE,
    EventSummary,
    Outcome,
)
from chalicelib.core.timeutil import parse_time

__all__ = [
    "LIMITS",
    "check_limits",
    "cloudtrail_event_url",
    "cloudtrail_history_url",
    "config_timeline_url",
    "describe_client",
    "escape_mrkdwn",
    "format_property_change",
    "render",
    "resource_console_url",
    "s3_object_url",
    "severity",
    "severity_reason",
]

LIMITS: dict[str, int] = {
    "header": 150,
    "section_text": 3000,
    "section_fields": 10,
    "field_text": 2000,
    "context_elements": 10,
    "context_text": 2000,
    "blocks": 50,
    "total_text": 10000,
    "fallback_text": 3000,
}

HIGH, MEDIUM, LOW = "high", "medium", "low"
_SEVERITY_RANK = {LOW: 0, MEDIUM: 1, HIGH: 2}
_SEVERITY_EMOJI = {HIGH: ":rotating_light:", MEDIUM: ":warning:", LOW: ":information_source:"}

# Per-piece budgets (escaped characters) that keep a single alert well inside LIMITS even when
# every field is hostile and huge: 10 fields x 450 + links 1500 + diff <= 2900 + header + footer.
_FIELD_BUDGET = 450
_NAME_BUDGET = 120
_ID_BUDGET = 160
_ARN_BUDGET = 220
_LINE_BUDGET = 240
_VALUE_CHARS = 120
_LINKS_BUDGET = 1500
_URL_PART_MAX = 200
_DIGEST_ITEM_BUDGET = 1000
_DIGEST_RESERVE = 1800


# --------------------------------------------------------------------------------------------
# Text safety


# Removed from event text: C0/C1 controls; every Unicode format character (category Cf: soft hyphen,
# Arabic letter mark, zero-width space/joiners, LRM/RLM, bidi embeddings, overrides and isolates, word
# joiner and invisible operators, BOM, interlinear annotations, tag characters, ...); characters that
# render as nothing (combining grapheme joiner, Hangul and Khmer fillers, Mongolian variation
# selectors); lone surrogates and noncharacters (they would make the JSON payload unacceptable).
_DROP_CHARS = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\xad\u034f\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2"
    "\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f\u3164\ud800-\udfff"
    "\ufeff\uffa0\ufff9-\ufffb\ufffe\uffff\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3"
    "\U0001d173-\U0001d17a\U000e0000-\U000e007f]"
)
_LINE_BREAKS = re.compile("[\r\n\t\u2028\u2029\x85]+")
_BROADCAST = re.compile(r"@(channel|here|everyone)", re.IGNORECASE)
_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_BACKTICK_STANDIN = "ˋ"  # U+02CB MODIFIER LETTER GRAVE ACCENT
# Slack turns URLs, domain names and e-mail addresses in message text into links. In event text a dot
# (or a full-width/ideographic one) between a letter or digit and a letter is shown as U+2024 ONE DOT
# LEADER, and the slashes of ``scheme://`` as U+2044 FRACTION SLASH: ``https:⁄⁄evil․example/x`` reads
# the same, has the same length, and is no link (``1.2.3.4`` and ``2.15.0`` keep their dots).
_LINK_DOT = re.compile(r"(?<=[\w-])[.\uff0e\u3002\uff61](?=[^\W\d_])")
_SCHEME_SLASHES = re.compile(r"(?<=:)//")
_DOT_STANDIN = "\u2024"  # ONE DOT LEADER
_SLASH_STANDIN = "\u2044"  # FRACTION SLASH


def escape_mrkdwn(text: str) -> str:
    """Escape the three characters Slack mrkdwn treats as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _text_of(value: Any) -> str:
    """Any value as display text: strings as they are, others as compact JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return _compact_json(value)


def _clean(value: Any) -> str:
    """One line of display text without control, format (bidi, zero-width, soft hyphen …) or invisible characters."""
    text = _LINE_BREAKS.sub(" ", _text_of(value))
    return _DROP_CHARS.sub("", text)


def _no_links(text: str) -> str:
    """``text`` with nothing Slack would turn into a link: URL schemes and domain dots become look-alikes."""
    if "." not in text and "/" not in text and "\uff0e" not in text and "\u3002" not in text and "\uff61" not in text:
        return text
    return _LINK_DOT.sub(_DOT_STANDIN, _SCHEME_SLASHES.sub(_SLASH_STANDIN * 2, text))


def _cut(text: str, limit: int) -> str:
    """Already-escaped mrkdwn shortened to ``limit`` characters without leaving half of a construct.

    The cut never falls inside an entity (``&amp;`` ``&lt;`` ``&gt;``: no stray ``&am``), a renderer link
    or date token (``<…>``), or an open inline code span; the text is marked with ``…``.
    """
    if len(text) <= limit:
        return text
    head = text[: max(limit - 1, 0)]
    amp = head.rfind("&")
    if amp != -1 and ";" not in head[amp:]:
        head = head[:amp]
    opened = head.rfind("<")
    if opened != -1 and ">" not in head[opened:]:
        head = head[:opened]
    if "```" not in head and head.count("`") % 2:
        head = head[: head.rfind("`")]
    if head.count("```") % 2:
        head = head[: head.rfind("```")]
    return head + "…"


def _clip(text: str, limit: int) -> str:
    """``text`` shortened to ``limit`` characters, marked with an ellipsis."""
    if len(text) <= limit:
        return text
    return text[: max(limit - 1, 0)] + "…"


def _esc(value: Any, limit: int) -> str:
    """Event text made safe for mrkdwn, at most ``limit`` characters *after* escaping.

    Besides ``&`` ``<`` ``>``, backticks are replaced (event text can then neither open nor close a
    code span or block) and ``@channel``/``@here``/``@everyone`` get an invisible word joiner.
    """
    text = _BROADCAST.sub("@\u2060\\1", _no_links(_clean(value).replace("`", _BACKTICK_STANDIN)))
    head = escape_mrkdwn(text[:limit])
    if len(text) <= limit and len(head) <= limit:
        return head
    pieces: list[str] = []
    used = 0
    for char in text:
        piece = _ESCAPES.get(char, char)
        if used + len(piece) > limit - 1:
            break
        pieces.append(piece)
        used += len(piece)
    return "".join(pieces) + "…"


def _code(value: Any, limit: int) -> str:
    """Event text as an inline code span (safe, never empty)."""
    inner = _esc(value, max(limit - 2, 1)) or " "
    return f"`{inner}`"


def _plain(value: Any, limit: int) -> str:
    """Event text made harmless for a plain_text object (no ``<`` ``>`` at all)."""
    text = _no_links(_clean(value)).replace("<", "‹").replace(">", "›")
    return _clip(_BROADCAST.sub("@\u2060\\1", text), limit)


def _compact_json(value: Any) -> str:
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    except (TypeError, ValueError, RecursionError):
        return f"<{type(value).__name__}>"


# --------------------------------------------------------------------------------------------
# Small accessors


_TEXT_FIELDS = (
    "outcome_id", "at", "account", "region", "resource_type", "resource_id", "resource_name", "resource_arn",
    "change_type", "capture_time", "principal_arn", "event_name", "reason", "signin", "archive_bucket",
    "archive_key",
)  # fmt: skip
_EVENT_TEXT_FIELDS = (
    "event_id", "event_name", "event_time", "event_source", "region", "source_ip", "user_agent", "error_code",
    "error_message",
)  # fmt: skip


def _opt_text(value: Any) -> str | None:
    return None if value is None else value if isinstance(value, str) else _text_of(value)


def _items(value: Any) -> tuple[Any, ...]:
    return tuple(value) if isinstance(value, (list, tuple)) else ()


def _coerce_event(event: Any) -> EventSummary | None:
    if not isinstance(event, EventSummary):
        return None
    return dataclasses.replace(event, **{name: _opt_text(getattr(event, name)) for name in _EVENT_TEXT_FIELDS})


def _coerce(outcome: Outcome) -> Outcome:
    """The outcome with every field of the type it is declared with (odd values become text or empty)."""
    values: dict[str, Any] = {name: _opt_text(getattr(outcome, name)) for name in _TEXT_FIELDS}
    values["partition"] = outcome.partition if isinstance(outcome.partition, str) else "aws"
    values["principal"] = outcome.principal if isinstance(outcome.principal, Mapping) else None
    values["event_ids"] = tuple(t for t in map(_opt_text, _items(outcome.event_ids)) if t)
    values["events"] = tuple(e for e in map(_coerce_event, _items(outcome.events)) if e is not None)
    values["changed_properties"] = tuple(c for c in _items(outcome.changed_properties) if isinstance(c, Mapping))
    return dataclasses.replace(outcome, **values)


def _principal(outcome: Outcome, key: str) -> Any:
    principal = outcome.principal if isinstance(outcome.principal, Mapping) else {}
    return principal.get(key)


def _str(value: Any) -> str | None:
    """A non-empty string, or ``None``."""
    if value is None:
        return None
    text = value if isinstance(value, str) else _text_of(value)
    return text if text.strip() else None


def _who(outcome: Outcome) -> str:
    """Short display name of the principal (raw text; escape before use).

    A bare session name is shown with its role (``NetworkAdmin/terraform``): the caller picks session
    names, so "terraform" alone could pass for the IaC pipeline. SSO sessions show the person only.
    """
    for value in (
        _principal(outcome, "display_name"),
        _principal(outcome, "session_name"),
        _principal(outcome, "user_name"),
    ):
        text = _str(value)
        if text:
            role = _session_role(outcome)
            if role and text == _str(_principal(outcome, "session_name")) and not role.startswith("AWSReservedSSO_"):
                return f"{role}/{text}"
            return text
    if _is_root(outcome):
        return "root"
    arn = _str(outcome.principal_arn)
    if arn:
        return arn.rsplit("/", 1)[-1] if "/" in arn else arn
    return "Someone"


def _session_role(outcome: Outcome) -> str | None:
    arn = _str(outcome.principal_arn) or _str(_principal(outcome, "arn"))
    if arn and ":assumed-role/" in arn:
        parts = arn.split(":assumed-role/", 1)[1].split("/")
        return parts[0] if len(parts) >= 2 and parts[0] else None
    return None


def _is_root(outcome: Outcome) -> bool:
    if str(_principal(outcome, "type") or "").lower() == "root":
        return True
    return bool(outcome.principal_arn and str(outcome.principal_arn).endswith(":root"))


def _event_names(outcome: Outcome) -> list[str]:
    """Distinct event names, in order of first appearance."""
    names: list[str] = []
    for name in [outcome.event_name, *(e.event_name for e in outcome.events)]:
        text = _str(name)
        if text and text not in names:
            names.append(text)
    return names


def _events(outcome: Outcome) -> list[EventSummary]:
    return [e for e in outcome.events if isinstance(e, EventSummary)]


def _event_ids(outcome: Outcome) -> list[str]:
    ids: list[str] = []
    for value in [*outcome.event_ids, *(e.event_id for e in _events(outcome))]:
        text = _str(value)
        if text and text not in ids:
            ids.append(text)
    return ids


def _resource_label(outcome: Outcome) -> str:
    """``id (name)`` of the resource (raw text), or its type, or ``a resource``."""
    rid, name = _str(outcome.resource_id), _str(outcome.resource_name)
    if rid and name and name != rid:
        return f"{_clip(_clean(rid), 60)} ({_clip(_clean(name), 50)})"
    if rid or name:
        return _clip(_clean(rid or name), 90)
    return _str(outcome.resource_type) or "a resource"


def _times(outcome: Outcome) -> list[datetime]:
    times = [parse_time(e.event_time) for e in _events(outcome)]
    found = sorted(t for t in times if t is not None)
    if found:
        return found
    for value in (outcome.capture_time, outcome.at):
        parsed = parse_time(value)
        if parsed is not None:
            return [parsed]
    return []


def _slack_date(moment: datetime) -> str:
    """Slack date token (shown in the reader's time zone) with a UTC fallback."""
    fallback = moment.strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"<!date^{int(moment.timestamp())}^{{date_short_pretty}} {{time_secs}}|{fallback}>"


def _when(times: Sequence[datetime]) -> str:
    if not times:
        return "unknown"
    first, last = times[0], times[-1]
    if last == first:
        return _slack_date(first)
    return f"{_slack_date(first)} → {_slack_date(last)}"


# --------------------------------------------------------------------------------------------
# How the call was made


_VERSION = r"([0-9][0-9A-Za-z.+-]{0,19})"
_SDKS = (
    ("aws-sdk-go-v2", "Go"),
    ("aws-sdk-go", "Go"),
    ("aws-sdk-java", "Java"),
    ("aws-sdk-nodejs", "JavaScript"),
    ("aws-sdk-js", "JavaScript"),
    ("aws-sdk-dotnet", ".NET"),
    ("aws-sdk-net", ".NET"),
    ("aws-sdk-ruby", "Ruby"),
    ("aws-sdk-php", "PHP"),
    ("aws-sdk-rust", "Rust"),
    ("aws-sdk-cpp", "C++"),
    ("aws-sdk-swift", "Swift"),
    ("aws-sdk-kotlin", "Kotlin"),
)
_BROWSERS = (("edg/", "Edge"), ("firefox/", "Firefox"), ("chrome/", "Chrome"), ("safari/", "Safari"))
_SERVICE_NAMES = {
    "cloudformation.amazonaws.com": "CloudFormation",
    "autoscaling.amazonaws.com": "AWS Auto Scaling",
    "signin.amazonaws.com": "AWS console sign-in",
    "console.amazonaws.com": "AWS console",
}
_CONSOLE_UA = re.compile(
    r"^\[?(console(\.[a-z0-9-]+)?\.amazonaws\.com|signin\.amazonaws\.com|awsconsole|[a-z0-9]*console/)",
    re.IGNORECASE,
)


def _version(pattern: str, text: str) -> str | None:
    match = re.search(pattern + "/" + _VERSION, text, re.IGNORECASE)
    return match.group(1) if match else None


def describe_client(user_agent: str | None, invoked_by: str | None) -> str:
    """Human description of the client behind a call, from its user agent and ``invokedBy``.

    One of: ``AWS console``, ``AWS CLI x`` (``… in CloudShell``), ``SDK (Lang)``, ``Terraform x``,
    ``Pulumi``, ``AWS CDK``, ``CloudFormation``, ``Browser (Chrome)``, ``AWS service (name)``,
    ``Other client (…)`` or ``unknown``. The result is raw text: escape it before showing it.
    A user agent is client-controlled, so this describes what the caller *claims*.
    """
    service = (invoked_by or "").strip().lower()
    if service:
        if service in _SERVICE_NAMES:
            return _SERVICE_NAMES[service]
        return f"AWS service ({_clip(_clean(invoked_by), 60)})"
    ua = _clean(user_agent).strip()
    low = ua.lower()
    if not ua:
        return "unknown"
    if "terraform" in low:
        version, provider = _version("terraform", ua), _version("terraform-provider-aws", ua)
        text = "Terraform" + (f" {version}" if version else "")
        return text + (f" (aws provider {provider})" if provider else "")
    if "pulumi" in low:
        return "Pulumi"
    if "aws-cdk" in low:
        return "AWS CDK"
    if low.startswith("cloudformation.amazonaws.com"):
        return "CloudFormation"
    if _CONSOLE_UA.match(ua):
        return "AWS console"
    if "aws-cli/" in low:
        version = _version("aws-cli", ua)
        text = "AWS CLI" + (f" {version}" if version else "")
        return text + (" in CloudShell" if "cloudshell" in low else "")
    if "awspowershell" in low or "aws-powershell" in low:
        return "AWS Tools for PowerShell"
    if "boto3/" in low:
        version = _version("boto3", ua)
        return "SDK (Python boto3" + (f" {version})" if version else ")")
    if "botocore/" in low:
        return "SDK (Python botocore)"
    for marker, language in _SDKS:
        if marker + "/" in low:
            return f"SDK ({language})"
    if "mozilla/" in low:
        browser = next((name for key, name in _BROWSERS if key in low), None)
        return f"Browser ({browser})" if browser else "Browser"
    if low.endswith(".amazonaws.com") and " " not in low:
        return f"AWS service ({_clip(ua, 60)})"
    if low == "aws internal":
        return "AWS internal"
    return f"Other client ({_clip(ua.split(' ', 1)[0], 40)})"


def _clients(outcome: Outcome) -> list[str]:
    invoked_by = _str(_principal(outcome, "invoked_by"))
    found: list[str] = []
    for event in _events(outcome) or [None]:
        agent = event.user_agent if event else None
        if agent is None and invoked_by is None:
            continue
        text = describe_client(agent, invoked_by)
        if text not in found:
            found.append(text)
    return found


# --------------------------------------------------------------------------------------------
# Security-group permissions, policies and property diffs


_WORLD = frozenset({"0.0.0.0/0", "::/0"})
_PROTOCOLS = {"-1": "all traffic", "6": "tcp", "17": "udp", "1": "icmp", "58": "icmpv6"}
_SOURCE_KEYS = ("cidrip", "cidripv6", "cidripv4", "cidr", "groupid", "prefixlistid", "groupname")
_RANGE_KEYS = ("ipv4ranges", "ipranges", "ipv6ranges", "useridgrouppairs", "prefixlistids", "groups")
_PERMISSION_PATH = re.compile(r"ippermissions", re.IGNORECASE)

Rule = tuple[str, str, str]  # (protocol and ports, source, description)


def _lower_keys(value: Mapping[str, Any]) -> dict[str, Any]:
    return {str(k).lower(): v for k, v in value.items()}


def _maybe_json(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _is_permission(value: Any) -> bool:
    value = _maybe_json(value)
    items = value if isinstance(value, list) else [value]
    return bool(items) and all(isinstance(v, Mapping) and "ipprotocol" in _lower_keys(v) for v in items[:5])


def _port_text(perm: Mapping[str, Any]) -> str:
    protocol = str(perm.get("ipprotocol", "?")).lower()
    protocol = _PROTOCOLS.get(protocol, protocol)
    if protocol == "all traffic":
        return protocol
    low, high = perm.get("fromport"), perm.get("toport")
    if low in (None, -1, "-1") and high in (None, -1, "-1"):
        return protocol
    if protocol.startswith("icmp"):
        return f"{protocol} type {low}" + ("" if high in (None, -1, "-1") else f" code {high}")
    if str(low) == "0" and str(high) == "65535":
        return f"{protocol} all ports"
    if high is None or str(low) == str(high):
        return f"{protocol} {low}"
    return f"{protocol} {low}-{high}"


def _sources(perm: Mapping[str, Any]) -> dict[str, str]:
    """Source (or destination) of one permission -> its description ('' when none)."""
    found: dict[str, str] = {}
    for key in _RANGE_KEYS:
        items = perm.get(key)
        if isinstance(items, Mapping):  # CloudTrail request shape: {"items": [...]}
            items = items.get("items")
        if not isinstance(items, list):
            continue
        for item in items[:500]:
            if isinstance(item, str):
                found.setdefault(item, "")
            elif isinstance(item, Mapping):
                low = _lower_keys(item)
                source = next((low[k] for k in _SOURCE_KEYS if low.get(k)), None)
                if source is not None:
                    description = _text_of(low.get("description"))
                    if description or _text_of(source) not in found:
                        found[_text_of(source)] = description
    return found


def _rules(value: Any) -> list[Rule]:
    """Flatten a permission (or a list of them) into (ports, source, description) rules."""
    value = _maybe_json(value)
    perms = value if isinstance(value, list) else [value]
    rules: list[Rule] = []
    for perm in perms[:500]:
        if not isinstance(perm, Mapping):
            continue
        low = _lower_keys(perm)
        ports = _port_text(low)
        sources = _sources(low) or {"(no source)": ""}
        rules.extend((ports, source, description) for source, description in sources.items())
    return rules


def _rule_diff(previous: Any, updated: Any) -> tuple[list[Rule], list[Rule], list[tuple[Rule, Rule]]]:
    """Added rules, removed rules, and (old, new) pairs whose description changed."""
    old = {(r[0], r[1]): r for r in _rules(previous)}
    new = {(r[0], r[1]): r for r in _rules(updated)}
    added = [r for key, r in new.items() if key not in old]
    removed = [r for key, r in old.items() if key not in new]
    renamed = [(old[key], r) for key, r in new.items() if key in old and old[key][2] != r[2]]
    return added, removed, renamed


def _rule_lines(sign: str, rules: list[Rule], direction: str) -> list[str]:
    grouped: dict[str, list[str]] = {}
    for ports, source, description in rules:
        shown = _clip(_clean(source), 60) + (f" ({_clip(_clean(description), 40)})" if description else "")
        grouped.setdefault(ports, []).append(shown)
    lines = []
    for ports, sources in grouped.items():
        more = f" and {len(sources) - 5} more" if len(sources) > 5 else ""
        lines.append(f"{sign} {_clip(_clean(ports), 40)} {direction} {', '.join(sources[:5])}{more}")
    return lines


def _permission_lines(path: str, previous: Any, updated: Any) -> list[str]:
    direction = "to" if "egress" in path.lower() else "from"
    added, removed, renamed = _rule_diff(previous, updated)
    lines = _rule_lines("+", added, direction) + _rule_lines("−", removed, direction)
    for old, new in renamed[:5]:
        lines.append(
            f"~ {old[0]} {_clip(_clean(old[1]), 60)} description "
            f"{_value_text(old[2] or None)} → {_value_text(new[2] or None)}"
        )
    return lines or ["updated (no rule change)"]


def _world_ingress_added(previous: Any, updated: Any) -> bool:
    added, _removed, _renamed = _rule_diff(previous, updated)
    return any(source in _WORLD for _ports, source, _description in added)


_POLICY_KEYS = ("policytext", "policydocument", "document", "policy", "bucketpolicy")


def _parse_policy(value: Any) -> Mapping[str, Any] | None:
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


def _policy_of(value: Any) -> tuple[str, Mapping[str, Any] | None] | None:
    """(label, policy) when ``value`` is or holds a policy; policy ``None`` for an empty holder."""
    policy = _parse_policy(value)
    if policy is not None:
        return "", policy
    if not isinstance(value, Mapping):
        return None
    low = _lower_keys(value)
    for key in _POLICY_KEYS:
        if key in low:
            name = _str(low.get("policyname"))
            label = f"{_clip(_clean(name), 60)}: " if name else ""
            inner = low[key]
            if inner is None:
                return label, None
            parsed = _parse_policy(inner)
            return (label, parsed) if parsed is not None else None
    return None


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _statements(policy: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    low = _lower_keys(policy)
    return [s for s in _as_list(low.get("statement")) if isinstance(s, Mapping)]


def _principal_text(principal: Any) -> str:
    if principal == "*":
        return "everyone (*)"
    if isinstance(principal, Mapping):
        values = [v for vs in principal.values() for v in _as_list(vs)]
        if "*" in values:
            return "everyone (*)"
        return ", ".join(_clip(_text_of(v), 60) for v in values[:2]) + (" …" if len(values) > 2 else "")
    return _clip(_text_of(principal), 60)


def _statement_text(statement: Mapping[str, Any]) -> str:
    low = _lower_keys(statement)
    parts = [_text_of(low.get("effect")) or "?"]
    if "principal" in low:
        parts.append(_principal_text(low["principal"]))
    for key, prefix in (
        ("action", ""),
        ("notaction", "not "),
        ("resource", "on "),
        ("notresource", "not on "),
    ):
        if key in low:
            values = [_text_of(v) for v in _as_list(low[key])]
            more = f" +{len(values) - 3}" if len(values) > 3 else ""
            parts.append(prefix + ",".join(values[:3]) + more)
    if low.get("condition"):
        parts.append("(conditional)")
    return _clip(_clean(" ".join(parts)), 160)


def _policy_summary(policy: Mapping[str, Any], budget: int = 160) -> str:
    """Statements as ``Effect principal actions on resources`` within ``budget``, then ``+N more``."""
    statements = _statements(policy)
    if not statements:
        return "(no statements)"
    texts = [_statement_text(s) for s in statements[:20]]
    shown = [_clip(texts[0], budget - 25)]
    for text in texts[1:]:
        if sum(len(t) + 2 for t in shown) + len(text) > budget - 25:
            break
        shown.append(text)
    rest = len(statements) - len(shown)
    return "; ".join(shown) + (f"; +{rest} more statements" if rest else "")


def _policy_lines(previous: Any, updated: Any) -> list[str]:
    old, new = _policy_of(previous), _policy_of(updated)
    label = (new or old or ("", None))[0]
    if new and new[1] is not None:
        verb = "updated" if old and old[1] is not None else "+"
        return [f"{verb} {label}{_policy_summary(new[1])}"]
    if old and old[1] is not None:
        return [f"− {label}{_policy_summary(old[1])}"]
    return [f"{label}policy changed"]


def _is_public_policy(policy: Mapping[str, Any] | None) -> bool:
    """Allows everyone (``Principal: "*"``) without any condition."""
    for statement in _statements(policy or {}):
        low = _lower_keys(statement)
        if str(low.get("effect", "")).lower() != "allow" or low.get("condition"):
            continue
        if _principal_text(low.get("principal")) == "everyone (*)" and "principal" in low:
            return True
    return False


def _relationship_text(value: Any) -> str:
    if not isinstance(value, Mapping):
        return _value_text(value)
    low = _lower_keys(value)
    name = _text_of(low.get("name") or low.get("relationshipname")).strip()
    rid, rname = _str(low.get("resourceid")), _str(low.get("resourcename"))
    target = rid or rname or _text_of(low.get("resourcetype")) or "?"
    if rid and rname and rid != rname:
        target = f"{rid} ({rname})"
    return _clean(f"{name} {target}".strip())


def _value_text(value: Any, limit: int = _VALUE_CHARS) -> str:
    """A property value, compact and shortened (raw text)."""
    if value is None:
        return "null"
    if isinstance(value, str):
        return _clip(_clean(value), limit) if value else '""'
    if isinstance(value, Mapping):
        low = _lower_keys(value)
        if set(low) == {"key", "value"}:
            return _clip(_clean(f"{_text_of(low['key'])}={_text_of(low['value'])}"), limit)
        if "policyarn" in low:
            name = _text_of(low.get("policyname"))
            arn = _text_of(low["policyarn"])
            return _clip(_clean(f"{name} ({arn})" if name else arn), limit)
    return _clip(_clean(_compact_json(value)), limit)


def _flatten(value: Any, prefix: str, out: dict[str, Any], depth: int = 0) -> None:
    """Leaf values of nested dicts/lists keyed by dotted sub-path (at most 200 leaves, depth 8)."""
    if len(out) >= 200:
        return
    if isinstance(value, Mapping) and value and depth < 8:
        for key, inner in value.items():
            _flatten(inner, f"{prefix}.{key}" if prefix else str(key), out, depth + 1)
    elif isinstance(value, list) and value and depth < 8:
        for index, inner in enumerate(value):
            _flatten(inner, f"{prefix}.{index}" if prefix else str(index), out, depth + 1)
    else:
        out[prefix] = value


def _same(left: Any, right: Any) -> bool:
    try:
        return bool(left == right)
    except RecursionError:
        return _compact_json(left) == _compact_json(right)


def _container_diff_lines(previous: Any, updated: Any) -> list[str]:
    """Sub-path diff of two containers: ``.key: a → b``, ``.key: + v``, ``.key: − v``."""
    old: dict[str, Any] = {}
    new: dict[str, Any] = {}
    _flatten(previous, "", old)
    _flatten(updated, "", new)
    lines = []
    for key in [*new, *(k for k in old if k not in new)]:
        if key not in old:
            lines.append(f".{key}: + {_value_text(new[key], 80)}")
        elif key not in new:
            lines.append(f".{key}: − {_value_text(old[key], 80)}")
        elif not _same(old[key], new[key]):
            lines.append(f".{key}: {_value_text(old[key], 60)} → {_value_text(new[key], 60)}")
    return lines or ["updated"]


def _generic_lines(previous: Any, updated: Any) -> list[str]:
    if previous is None and updated is not None:
        return [f"+ {_value_text(updated)}"]
    if updated is None and previous is not None:
        return [f"− {_value_text(previous)}"]
    if isinstance(previous, (Mapping, list)) and isinstance(updated, (Mapping, list)):
        return _container_diff_lines(previous, updated)
    return [f"{_value_text(previous, 70)} → {_value_text(updated, 70)}"]


def format_property_change(change: Mapping[str, Any]) -> list[str]:
    """Compact raw-text lines for one changed property (``path``, ``change_type``, ``previous``, ``updated``).

    Examples: ``Configuration.IpPermissions.0: + tcp 22 from 0.0.0.0/0``, ``Tags.env: prod → dev``,
    ``Relationships.0: − Is associated with Instance i-0f0d…``,
    ``SupplementaryConfiguration.BucketPolicy: updated Allow everyone (*) s3:GetObject on …``.
    Sub-path lines of a container diff are written ``Path.sub.key: a → b``.
    """
    path = _clip(_clean(change.get("path")), 100) or "(property)"
    previous, updated = change.get("previous"), change.get("updated")
    if _PERMISSION_PATH.search(path) or _is_permission(previous) or _is_permission(updated):
        body = _permission_lines(path, previous, updated)
    elif _policy_of(previous) is not None or _policy_of(updated) is not None:
        body = _policy_lines(previous, updated)
    elif path.lower().startswith("relationships"):
        body = _relationship_lines(previous, updated)
    else:
        body = _generic_lines(previous, updated)
    lines = []
    for line in body:
        joined = f"{path}{line}" if line.startswith(".") else f"{path}: {line}"
        lines.append(_clip(joined, _LINE_BUDGET))
    return lines


def _relationship_lines(previous: Any, updated: Any) -> list[str]:
    if previous is None and updated is not None:
        return [f"+ {_relationship_text(updated)}"]
    if updated is None and previous is not None:
        return [f"− {_relationship_text(previous)}"]
    return [f"{_relationship_text(previous)} → {_relationship_text(updated)}"]


def _diff_lines(outcome: Outcome, limit: int = 1000) -> list[str]:
    """All diff lines of an outcome (at most ``limit`` lines are produced)."""
    lines: list[str] = []
    for change in outcome.changed_properties:
        if len(lines) >= limit:
            break
        if isinstance(change, Mapping):
            lines.extend(format_property_change(change))
    return lines


def _fit_lines(
    lines: Sequence[str], budget: int, render_line: Callable[[str], str], *, noun: str = "more"
) -> list[str]:
    """Rendered lines that fit ``budget`` characters (joined by newlines), plus ``… and N more``."""
    out: list[str] = []
    used = 0
    reserve = 40
    for index, line in enumerate(lines):
        shown = render_line(line)
        remaining = len(lines) - index - 1
        need = len(shown) + 1 + (reserve if remaining else 0)
        if used + need > budget:
            out.append(f"… and {len(lines) - index} {noun}")
            return out
        out.append(shown)
        used += len(shown) + 1
    return out


# --------------------------------------------------------------------------------------------
# Severity


_AUDIT_CALLS = frozenset(
    {
        "StopLogging",
        "DeleteTrail",
        "UpdateTrail",
        "StopConfigurationRecorder",
        "DeleteConfigurationRecorder",
        "DeleteDeliveryChannel",
    }
)
_PUBLIC_CALLS = frozenset({"DeleteBucketPublicAccessBlock", "DeletePublicAccessBlock"})
_IAM_POLICY_CALL = re.compile(
    r"^(?:(?:Put|Attach)(?:User|Role|Group)Policy|(?:Create|SetDefault)PolicyVersion|CreatePolicy"
    r"|UpdateAssumeRolePolicy|(?:Put|Delete)(?:User|Role)PermissionsBoundary)$"
)
_IAM_ANY_POLICY_CALL = re.compile(r"^(?:Put|Attach)\w*Policy$")
_INGRESS_CALL = re.compile(r"Ingress|ModifySecurityGroupRules", re.IGNORECASE)
_CIDR_KEYS = frozenset({"cidrip", "cidripv6", "cidripv4", "cidrblock", "ipv6cidrblock"})
_ALL_USERS = "acs.amazonaws.com/groups/global/AllUsers"


def _walk(value: Any, depth: int = 0) -> Iterator[tuple[str, Any]]:
    """(lower-cased key, value) pairs of a nested structure, bounded in depth and breadth."""
    if depth > 12:
        return
    if isinstance(value, Mapping):
        for index, (key, inner) in enumerate(value.items()):
            if index >= 200:
                return
            yield str(key).lower(), inner
            yield from _walk(inner, depth + 1)
    elif isinstance(value, list):
        for inner in value[:200]:
            yield from _walk(inner, depth + 1)


def _request_opens_world(event: EventSummary) -> bool:
    if not _INGRESS_CALL.search(event.event_name or "") or "egress" in (event.event_name or "").lower():
        return False
    return any(k in _CIDR_KEYS and isinstance(v, str) and v in _WORLD for k, v in _walk(event.request_parameters))


def _request_public_policy(event: EventSummary) -> bool:
    name = event.event_name or ""
    if name == "PutBucketAcl":
        return any(isinstance(v, str) and _ALL_USERS in v for _k, v in _walk(event.request_parameters))
    if name != "PutBucketPolicy":
        return False
    for key, value in _walk(event.request_parameters):
        if key in ("bucketpolicy", "policy") and _is_public_policy(_parse_policy(value)):
            return True
    return False


def _change_reason(change: Mapping[str, Any]) -> str | None:
    path = str(change.get("path") or "")
    previous, updated = change.get("previous"), change.get("updated")
    ingress = _PERMISSION_PATH.search(path) and "egress" not in path.lower()
    if ingress and _world_ingress_added(previous, updated):
        return "world-open ingress (0.0.0.0/0 or ::/0)"
    if "policy" in path.lower():
        new = _policy_of(updated)
        if new and _is_public_policy(new[1]) and "bucket" in path.lower():
            return "public bucket policy"
    if "acl" in path.lower() and _ALL_USERS in _text_of(updated) and _ALL_USERS not in _text_of(previous):
        return "public bucket ACL"
    return None


def _high_reason(outcome: Outcome) -> str | None:
    extra = outcome.extra if isinstance(outcome.extra, Mapping) else {}
    pattern = _str(extra.get("trusted_pattern"))
    if pattern:
        return f"trusted role changed by an untrusted principal (trusted as {_clip(_clean(pattern), 70)})"
    if outcome.signin == "root" or _is_root(outcome):
        return "root user activity"
    for name in _event_names(outcome):
        if name in _AUDIT_CALLS:
            return f"audit trail tampering ({name})"
        if name in _PUBLIC_CALLS:
            return f"public access block removed ({name})"
    for event in _events(outcome):
        name = event.event_name or ""
        iam = event.event_source in (None, "iam.amazonaws.com")
        if (iam and _IAM_POLICY_CALL.match(name)) or (
            event.event_source == "iam.amazonaws.com" and _IAM_ANY_POLICY_CALL.match(name)
        ):
            return f"IAM policy change ({name})"
        if _request_opens_world(event):
            return "world-open ingress (0.0.0.0/0 or ::/0)"
        if _request_public_policy(event):
            return "public bucket policy"
    if outcome.event_name and _IAM_POLICY_CALL.match(outcome.event_name):
        return f"IAM policy change ({outcome.event_name})"
    is_iam = str(outcome.resource_type or "").lower().startswith("aws::iam::")
    if is_iam and outcome.kind in (MANUAL_CHANGE, UNATTRIBUTED_CHANGE):
        return "IAM resource change"
    for change in outcome.changed_properties:
        if isinstance(change, Mapping):
            reason = _change_reason(change)
            if reason:
                return reason
    return None


def _low_reason(outcome: Outcome) -> str | None:
    if outcome.kind == CONSOLE_SIGNIN and outcome.signin == "failure":
        return "failed sign-in (nothing changed)"
    if outcome.kind != UNATTRIBUTED_CHANGE:
        return None
    if isinstance(outcome.extra, Mapping) and outcome.extra.get("unverified"):
        return None  # CloudTrail held more than could be read: never played down
    if str(outcome.change_type or "").upper() == "DELETE":
        return "deletion with no CloudTrail author (often AWS-side cleanup)"
    paths = [str(c.get("path") or "") for c in outcome.changed_properties if isinstance(c, Mapping)]
    if paths and all(p.lower().startswith("relationships") for p in paths):
        return "relationship change with no CloudTrail author"
    return None


def severity_reason(outcome: Outcome) -> tuple[str, str]:
    """(severity, why) of one outcome; see ``severity`` for the rules."""
    outcome = _coerce(outcome)
    reason = _high_reason(outcome)
    if reason:
        return HIGH, reason
    reason = _low_reason(outcome)
    if reason:
        return LOW, reason
    default = {
        MANUAL_CHANGE: "change made by hand",
        UNATTRIBUTED_CHANGE: "change with no CloudTrail author",
        CONSOLE_SIGNIN: "sign-in without MFA" if outcome.signin == "no_mfa" else "console sign-in",
        API_CALL: "sensitive API call",
    }
    return MEDIUM, default.get(outcome.kind, "alert")


def severity(outcome: Outcome) -> str:
    """``high``, ``medium`` or ``low``.

    high: a role that a trusted pattern names, created or edited by someone untrusted
    (``extra["trusted_pattern"]``, named in the reason); root activity (any kind, and root sign-ins);
    StopLogging, DeleteTrail, UpdateTrail,
    StopConfigurationRecorder, DeleteConfigurationRecorder, DeleteDeliveryChannel; removal of an S3
    public access block; IAM policy calls (Put/Attach User|Role|Group Policy, Create/SetDefault
    PolicyVersion, CreatePolicy, UpdateAssumeRolePolicy, permissions boundaries) and any change to an
    ``AWS::IAM::*`` resource; ingress newly opened to 0.0.0.0/0 or ::/0 (added in the diff or asked for
    in the request); a bucket policy allowing ``Principal: *`` without conditions, or an ACL granting
    AllUsers. Failed and denied attempts count as much as successful ones.
    low: a failed non-root console sign-in; an unattributed deletion; an unattributed change touching
    only relationships (typically AWS-side side effects).
    medium: everything else.
    """
    return severity_reason(outcome)[0]


def _max_severity(levels: Iterable[str]) -> str:
    return max(levels, key=lambda level: _SEVERITY_RANK.get(level, 0), default=MEDIUM)


# --------------------------------------------------------------------------------------------
# Links


_CONSOLE_HOSTS = {
    "aws": "console.aws.amazon.com",
    "aws-us-gov": "console.amazonaws-us-gov.com",
    "aws-cn": "console.amazonaws.cn",
}
_HOME_REGIONS = {"aws": "us-east-1", "aws-us-gov": "us-gov-west-1", "aws-cn": "cn-north-1"}
_REGION = re.compile(r"^[a-z]{2,6}(?:-[a-z0-9]{1,12}){1,4}$")
_CONSOLE_BASE = re.compile(r"^https://[A-Za-z0-9.-]+(?::[0-9]{1,5})?(?:/[A-Za-z0-9._~/-]*)?$")
_EC2 = "/ec2/home?region={r}#"
_VPC = "/vpcconsole/home?region={r}#"
_IAM = "/iam/home#/"
# resource type (lower case) -> (path template, identifier: id | name | arn, global?)
_RESOURCE_PATHS: dict[str, tuple[str, str, bool]] = {
    "aws::ec2::securitygroup": (_EC2 + "SecurityGroup:groupId={v}", "id", False),
    "aws::ec2::instance": (_EC2 + "InstanceDetails:instanceId={v}", "id", False),
    "aws::ec2::volume": (_EC2 + "VolumeDetails:volumeId={v}", "id", False),
    "aws::ec2::networkinterface": (_EC2 + "NetworkInterface:networkInterfaceId={v}", "id", False),
    "aws::ec2::routetable": (_VPC + "RouteTableDetails:RouteTableId={v}", "id", False),
    "aws::ec2::networkacl": (_VPC + "NetworkAclDetails:networkAclId={v}", "id", False),
    "aws::ec2::vpc": (_VPC + "VpcDetails:VpcId={v}", "id", False),
    "aws::ec2::subnet": (_VPC + "SubnetDetails:subnetId={v}", "id", False),
    "aws::ec2::internetgateway": (_VPC + "InternetGateway:internetGatewayId={v}", "id", False),
    "aws::ec2::natgateway": (_VPC + "NatGatewayDetails:natGatewayId={v}", "id", False),
    "aws::s3::bucket": ("/s3/buckets/{v}?region={r}", "name", False),
    "aws::iam::role": (_IAM + "roles/details/{v}", "name", True),
    "aws::iam::user": (_IAM + "users/details/{v}", "name", True),
    "aws::iam::group": (_IAM + "groups/details/{v}", "name", True),
    "aws::iam::policy": (_IAM + "policies/details/{v}", "arn", True),
    "aws::lambda::function": ("/lambda/home?region={r}#/functions/{v}", "name", False),
    "aws::rds::dbinstance": ("/rds/home?region={r}#database:id={v};is-cluster=false", "name", False),
    "aws::rds::dbcluster": ("/rds/home?region={r}#database:id={v};is-cluster=true", "name", False),
    "aws::cloudtrail::trail": ("/cloudtrail/home?region={r}#/trails/{v}", "arn", False),
    "aws::dynamodb::table": ("/dynamodbv2/home?region={r}#table?name={v}", "name", False),
    "aws::kms::key": ("/kms/home?region={r}#/kms/keys/{v}", "id", False),
    "aws::sns::topic": ("/sns/v3/home?region={r}#/topic/{v}", "arn", False),
}


def _q(value: str) -> str:
    return quote(value, safe="", errors="replace")  # a lone surrogate from an event must not crash the alert


def _region_or_home(region: str | None, partition: str) -> str:
    """A plain region name, or the partition's home region for ``global``/missing/odd values."""
    if region and _REGION.match(region):
        return region
    return _HOME_REGIONS.get(partition, "us-east-1")


def _origin(partition: str, region: str | None, console_base: str | None, *, service: str = "") -> str | None:
    """``https://host`` of the console for a partition (regional host in ``aws`` when known)."""
    if console_base:
        return console_base
    host = _CONSOLE_HOSTS.get(partition)
    if host is None:
        return None
    if partition == "aws" and service == "s3":
        return "https://s3.console.aws.amazon.com"
    if partition == "aws" and region and _REGION.match(region):
        return f"https://{region}.{host}"
    return f"https://{host}"


def _check_base(console_base: str | None) -> str | None:
    if console_base is None:
        return None
    if not _CONSOLE_BASE.match(console_base):
        raise ValueError("console_base must be a plain https://host[/path] URL")
    return console_base.rstrip("/")


def _ok_part(value: str | None) -> bool:
    return bool(value) and len(value or "") <= _URL_PART_MAX


def _identifier(outcome: Outcome, kind: str) -> str | None:
    rid, name, arn = _str(outcome.resource_id), _str(outcome.resource_name), _str(outcome.resource_arn)
    if kind == "id":
        return rid
    if kind == "arn":
        return arn or (rid if rid and rid.startswith("arn:") else None)
    if name:
        return name
    if arn and "/" in arn:
        return arn.rsplit("/", 1)[-1]
    if arn and arn.startswith("arn:") and ":::" in arn:
        return arn.split(":::", 1)[1]
    return rid


def resource_console_url(outcome: Outcome, *, console_base: str | None = None) -> str | None:
    """Console page of the changed resource, when its type has a known page."""
    outcome = _coerce(outcome)
    entry = _RESOURCE_PATHS.get(str(outcome.resource_type or "").lower())
    if entry is None:
        return None
    template, kind, is_global = entry
    value = _identifier(outcome, kind)
    if not _ok_part(value):
        return None
    region = _region_or_home(outcome.region, outcome.partition)
    service = template.split("/", 2)[1]
    origin = _origin(outcome.partition, None if is_global else region, console_base, service=service)
    if origin is None:
        return None
    return origin + template.format(r=_q(region), v=_q(value or ""))


def config_timeline_url(outcome: Outcome, *, console_base: str | None = None) -> str | None:
    """AWS Config resource timeline (in the recorder's region; partition home region for global items)."""
    outcome = _coerce(outcome)
    rid, rtype = _str(outcome.resource_id), _str(outcome.resource_type)
    if not (_ok_part(rid) and _ok_part(rtype)):
        return None
    region = _region_or_home(outcome.region, outcome.partition)
    origin = _origin(outcome.partition, region, console_base)
    if origin is None:
        return None
    return (
        f"{origin}/config/home?region={_q(region)}#/resources/details"
        f"?resourceId={_q(rid or '')}&resourceType={_q(rtype or '')}"
    )


def cloudtrail_event_url(
    event_id: str, region: str | None, partition: str = "aws", *, console_base: str | None = None
) -> str | None:
    """CloudTrail event history page of one event, in the event's region."""
    if not _ok_part(event_id):
        return None
    return _event_history_url(f"/{_q(event_id)}", region, partition, console_base)


def _event_history_url(fragment: str, region: str | None, partition: str, console_base: str | None) -> str | None:
    region = _region_or_home(region, partition)
    origin = _origin(partition, region, console_base)
    if origin is None:
        return None
    return f"{origin}/cloudtrail/home?region={_q(region)}#/events{fragment}"


def s3_object_url(bucket: str, key: str, partition: str = "aws", *, console_base: str | None = None) -> str | None:
    """S3 console page of one object (the archived notification)."""
    if not (_ok_part(bucket) and _ok_part(key)):
        return None
    origin = _origin(partition, None, console_base, service="s3")
    if origin is None:
        return None
    return f"{origin}/s3/object/{_q(bucket)}?prefix={_q(key)}"


def _link(url: str | None, label: str) -> str:
    """mrkdwn link to a URL this module built (``label`` is already-safe mrkdwn; ``|`` is replaced)."""
    if not url:
        return label
    return f"<{escape_mrkdwn(url)}|{label.replace('|', '∣')}>"


def _event_region(outcome: Outcome, event_id: str) -> str | None:
    for event in _events(outcome):
        if event.event_id == event_id and event.region:
            return event.region
    return outcome.region


def _event_links(outcome: Outcome, console_base: str | None, *, limit: int = 5) -> list[str]:
    ids = _event_ids(outcome)
    links = []
    for event_id in ids[:limit]:
        url = cloudtrail_event_url(
            event_id, _event_region(outcome, event_id), outcome.partition, console_base=console_base
        )
        label = "CloudTrail event" if len(ids) == 1 else f"event {_esc(event_id[:8], 20)}"
        if url:
            links.append(_link(url, label))
    if len(ids) > limit:
        links.append(f"+{len(ids) - limit} more events")
    return links


def _archive_url(outcome: Outcome, console_base: str | None) -> str | None:
    bucket, key = _str(outcome.archive_bucket), _str(outcome.archive_key)
    if not (bucket and key):
        return None
    return s3_object_url(bucket, key, outcome.partition, console_base=console_base)


def _links(outcome: Outcome, console_base: str | None, *, console: bool = True) -> list[str]:
    links = []
    console_url = resource_console_url(outcome, console_base=console_base) if console else None
    if console_url:
        links.append(_link(console_url, "Open in console"))
    timeline = config_timeline_url(outcome, console_base=console_base)
    if timeline and outcome.kind in (MANUAL_CHANGE, UNATTRIBUTED_CHANGE):
        links.append(_link(timeline, "Config timeline"))
    links.extend(_event_links(outcome, console_base))
    archive = _archive_url(outcome, console_base)
    if archive:
        links.append(_link(archive, "Archived notification"))
    return links


def _join_within(parts: Sequence[str], budget: int, sep: str = " · ") -> str:
    """Parts joined while they fit ``budget`` (a part is never cut: links stay whole)."""
    out: list[str] = []
    used = 0
    for part in parts:
        need = len(part) + (len(sep) if out else 0)
        if used + need > budget:
            break
        out.append(part)
        used += need
    return sep.join(out)


# --------------------------------------------------------------------------------------------
# Blocks


def _header(text: str) -> dict[str, Any]:
    return {
        "type": "header",
        "text": {"type": "plain_text", "text": _clip(text, LIMITS["header"]), "emoji": True},
    }


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _cut(text, LIMITS["section_text"]), "verbatim": True}}


def _fields(pairs: Sequence[tuple[str, str]]) -> dict[str, Any]:
    fields = [
        {"type": "mrkdwn", "text": _cut(f"*{label}*\n{value}", LIMITS["field_text"]), "verbatim": True}
        for label, value in pairs[: LIMITS["section_fields"]]
    ]
    return {"type": "section", "fields": fields}


def _context(*texts: str) -> dict[str, Any]:
    elements = [{"type": "mrkdwn", "text": _cut(t, LIMITS["context_text"]), "verbatim": True}
                for t in texts if t][: LIMITS["context_elements"]]
    return {"type": "context", "elements": elements}


def _divider() -> dict[str, Any]:
    return {"type": "divider"}


def _person_value(outcome: Outcome) -> str:
    who = _esc(_who(outcome), _NAME_BUDGET)
    kind = _str(_principal(outcome, "type"))
    shown_kind = kind and kind.lower() != _who(outcome).lower()
    lines = [who + (f" ({_esc(kind, 40)})" if shown_kind else "")]
    if outcome.principal_arn:
        lines.append(_code(outcome.principal_arn, _ARN_BUDGET))
    source_identity = _str(_principal(outcome, "source_identity"))
    if source_identity and source_identity != _who(outcome):
        lines.append("source identity: " + _esc(source_identity, 60))
    caller_account = _str(_principal(outcome, "account"))
    if caller_account and outcome.account and caller_account != outcome.account:
        lines.append("from account " + _esc(caller_account, 40))
    return _cut("\n".join(lines), _FIELD_BUDGET)


def _resource_value(outcome: Outcome, console_base: str | None) -> str:
    rid, name = _str(outcome.resource_id), _str(outcome.resource_name)
    label = _esc(name or rid or "(unknown)", _NAME_BUDGET)
    lines = [_link(resource_console_url(outcome, console_base=console_base), label)]
    if rid and name and rid != name:
        lines.append(_code(rid, _ID_BUDGET))
    if outcome.resource_type:
        lines.append(_esc(outcome.resource_type, 80))
    return "\n".join(lines)


def _action_value(outcome: Outcome) -> str:
    events = _events(outcome)
    names = _event_names(outcome)
    if not names:
        return "unknown"
    counts = {n: sum(1 for e in events if e.event_name == n) for n in names}
    shown = [_esc(n, 80) + (f" ×{counts[n]}" if counts[n] > 1 else "") for n in names[:5]]
    more = f"\n+{len(names) - 5} more" if len(names) > 5 else ""
    source = next((_text_of(e.event_source) for e in events if e.event_source), None)
    prefix = f"{_esc(source.removesuffix('.amazonaws.com'), 40)}: " if source else ""
    return _cut(prefix + ", ".join(shown), _FIELD_BUDGET - 20) + more


def _how_value(outcome: Outcome) -> str:
    clients = _clients(outcome) or ["unknown"]
    lines = [", ".join(_esc(c, 80) for c in clients[:3])]
    agent = next((e.user_agent for e in _events(outcome) if e.user_agent), None)
    if agent:
        lines.append(_code(agent, 160))
    return "\n".join(lines)


def _ip_value(outcome: Outcome) -> str:
    ips: list[str] = []
    for event in _events(outcome):
        if event.source_ip and event.source_ip not in ips:
            ips.append(event.source_ip)
    if not ips:
        return "unknown"
    return ", ".join(_esc(ip, 60) for ip in ips[:3]) + (f" +{len(ips) - 3}" if len(ips) > 3 else "")


def _place_value(outcome: Outcome) -> tuple[str, str]:
    account = _esc(outcome.account or "unknown", 40)
    alias = outcome.extra.get("account_alias") if isinstance(outcome.extra, dict) else None
    if isinstance(alias, str) and alias:
        account = f"{_esc(alias, 60)} ({account})"
    return account, _esc(outcome.region or "unknown", 40)


def _error_text(outcome: Outcome, limit: int = 300) -> str | None:
    for event in _events(outcome):
        if event.error_code or event.error_message:
            code = _esc(event.error_code or "failed", 80)
            message = f": {_esc(event.error_message, limit)}" if event.error_message else ""
            return code + message
    return None


# --------------------------------------------------------------------------------------------
# Headers and fallback text (raw text; plain_text/fallback escaping happens at the edges)


def _title(outcome: Outcome) -> str:
    who = _clip(_clean(_who(outcome)), 50)
    resource = _resource_label(outcome)
    change = str(outcome.change_type or "").upper()
    if outcome.kind == MANUAL_CHANGE:
        verb = {"CREATE": "created", "DELETE": "deleted"}.get(change, "changed")
        return f"{who} {verb} {resource} by hand"
    if outcome.kind == UNATTRIBUTED_CHANGE:
        noun = {"CREATE": "creation of", "DELETE": "deletion of"}.get(change, "change to")
        return f"Unattributed {noun} {resource} — no CloudTrail author found"
    if outcome.kind == CONSOLE_SIGNIN:
        failed = bool(_error_text(outcome))
        if outcome.signin == "root" or _is_root(outcome):
            return "Failed root console sign-in" if failed else "Root console sign-in"
        if outcome.signin == "failure" or failed:
            return f"Failed console sign-in by {who}"
        return f"{who} signed in to the console without MFA"
    name = _clip(_clean((_event_names(outcome) or ["an API"])[0]), 60)
    error = next((e.error_code for e in _events(outcome) if e.error_code), None)
    if error:
        return f"{who} tried to call {name} ({_clip(_clean(error), 30)})"
    return f"{who} called {name}"


def _fallback(level: str, title: str, outcome: Outcome | None = None) -> str:
    where = ""
    if outcome is not None and (outcome.account or outcome.region):
        where = f" (account {_clean(outcome.account or '?')}, {_clean(outcome.region or '?')})"
    text = f"[{level}] {_clean(title)}{_clip(where, 120)}"
    return _esc(text, LIMITS["fallback_text"])


# --------------------------------------------------------------------------------------------
# One outcome: full alert


def _common_fields(outcome: Outcome, console_base: str | None) -> list[tuple[str, str]]:
    account, region = _place_value(outcome)
    return [("Account", account), ("Region", region), ("Resource", _resource_value(outcome, console_base))]


def _fields_for(outcome: Outcome, console_base: str | None) -> list[tuple[str, str]]:
    times = _times(outcome)
    if outcome.kind == UNATTRIBUTED_CHANGE:
        unverified = _str((outcome.extra or {}).get("unverified")) if isinstance(outcome.extra, Mapping) else None
        person = "unknown (no CloudTrail event found)"
        if unverified:
            person = f"unknown, unverified: {_esc(unverified, 400)}"
        return [
            *_common_fields(outcome, console_base),
            ("Change", _esc(outcome.change_type or "UPDATE", 40)),
            ("Person", person),
            ("Recorded", _when(times)),
        ]
    if outcome.kind == CONSOLE_SIGNIN:
        account, _region = _place_value(outcome)
        mfa = _principal(outcome, "mfa")
        return [
            ("Account", account),
            ("Person", _person_value(outcome)),
            ("Result", _error_text(outcome) or "success"),
            ("MFA", {True: "yes", False: "no"}.get(mfa, "unknown") if isinstance(mfa, bool) else "unknown"),
            ("How", _how_value(outcome)),
            ("Source IP", _ip_value(outcome)),
            ("Time", _when(times)),
        ]
    pairs = (
        _common_fields(outcome, console_base)
        if outcome.resource_id or outcome.resource_name
        else [
            ("Account", _place_value(outcome)[0]),
            ("Region", _place_value(outcome)[1]),
        ]
    )
    pairs += [
        ("Action", _action_value(outcome)),
        ("Person", _person_value(outcome)),
        ("How", _how_value(outcome)),
        ("Source IP", _ip_value(outcome)),
        ("Time", _when(times)),
    ]
    if outcome.kind == MANUAL_CHANGE and outcome.change_type:
        pairs.append(("Change", _esc(outcome.change_type, 40)))
    if outcome.kind == API_CALL:
        pairs.append(("Result", _error_text(outcome) or "succeeded"))
    return pairs


def _diff_section(outcome: Outcome, budget: int, console_base: str | None) -> str | None:
    lines = _diff_lines(outcome)
    archive = _archive_url(outcome, console_base)
    tail = f"\nFull notification: {_link(archive, 'archived in S3')}" if archive else ""
    if not lines:
        change = str(outcome.change_type or "").upper()
        note = {"CREATE": "Resource created.", "DELETE": "Resource deleted."}.get(change)
        if note is None and not tail:
            return None
        return f"*What changed*\n{note or 'No property diff in the notification.'}{tail}"
    count = len(outcome.changed_properties)
    title = f"*What changed* ({count} {'property' if count == 1 else 'properties'})\n"
    room = max(budget - len(title) - len(tail) - 8, 200)
    shown = _fit_lines(lines, room, lambda line: _esc(line, _LINE_BUDGET * 2), noun="more changes")
    return title + "```" + "\n".join(shown) + "```" + tail


def _request_section(outcome: Outcome, budget: int) -> str | None:
    params = next((e.request_parameters for e in _events(outcome) if e.request_parameters), None)
    if params is None:
        return None
    text = _esc(_compact_json(params), max(min(budget, 1500) - 40, 100))
    return f"*Request parameters*\n```{text}```"


def _body_section(outcome: Outcome, budget: int, console_base: str | None) -> str | None:
    if outcome.kind in (MANUAL_CHANGE, UNATTRIBUTED_CHANGE):
        return _diff_section(outcome, budget, console_base)
    if outcome.kind == API_CALL:
        return _request_section(outcome, budget)
    return None


def _footer(outcome: Outcome, level: str, reason: str) -> str:
    parts = [f"{_SEVERITY_EMOJI[level]} Severity *{level}*: {_esc(reason, 120)}"]
    if outcome.reason:
        parts.append("reason: " + _esc(outcome.reason, 120))
    parts.append("outcome " + _code(outcome.outcome_id, 80))
    return " · ".join(parts)


def _render_one(outcome: Outcome, console_base: str | None) -> dict[str, Any]:
    level, reason = severity_reason(outcome)
    title = _title(outcome)
    blocks: list[dict[str, Any]] = [
        _header(f"{_SEVERITY_EMOJI[level]} {_plain(title, LIMITS['header'])}"),
        _fields(_fields_for(outcome, console_base)),
    ]
    links = _join_within(_links(outcome, console_base), _LINKS_BUDGET)
    footer = _footer(outcome, level, reason)
    room = LIMITS["total_text"] - _total_text(blocks) - len(links) - len(footer) - 100
    budget = min(LIMITS["section_text"] - 100, room)
    body = _body_section(outcome, budget, console_base)
    if body:
        blocks.append(_section(body))
    blocks.append(_context(links, footer) if links else _context(footer))
    return {"text": _fallback(level, title, outcome), "blocks": blocks}


# --------------------------------------------------------------------------------------------
# Several outcomes: one digest


def _digest_title(outcomes: Sequence[Outcome]) -> str:
    count = len(outcomes)
    kinds = {o.kind for o in outcomes}
    whos = list(dict.fromkeys(_clip(_clean(_who(o)), 40) for o in outcomes))
    who = whos[0] if len(whos) == 1 else None
    if kinds == {MANUAL_CHANGE}:
        if who:
            return f"{who} changed {count} resources by hand"
        return f"{count} resources changed by hand ({', '.join(whos[:3])}{', …' if len(whos) > 3 else ''})"
    if kinds == {UNATTRIBUTED_CHANGE}:
        return f"{count} unattributed changes — no CloudTrail author found"
    if kinds == {API_CALL}:
        return f"{who} made {count} sensitive API calls" if who else f"{count} sensitive API calls"
    if kinds == {CONSOLE_SIGNIN}:
        return f"{count} console sign-ins need attention"
    return f"{count} alerts" + (f" for {who}" if who else "")


def _distinct(values: Iterable[str | None]) -> list[str]:
    return [v for v in dict.fromkeys(_clean(v) for v in values if v) if v]


def _list_value(values: Sequence[str], limit: int = 5) -> str:
    if not values:
        return "unknown"
    shown = ", ".join(_esc(v, 80) for v in values[:limit])
    return shown + (f" +{len(values) - limit} more" if len(values) > limit else "")


def _digest_fields(outcomes: Sequence[Outcome]) -> list[tuple[str, str]]:
    times = sorted(t for o in outcomes for t in _times(o))
    names = _distinct(n for o in outcomes for n in _event_names(o))
    arns = _distinct(o.principal_arn for o in outcomes)
    people = _distinct(_who(o) for o in outcomes if o.kind != UNATTRIBUTED_CHANGE)
    person = _list_value(people, 3)
    if arns:
        person += "\n" + "\n".join(_code(a, _ARN_BUDGET) for a in arns[:2])
        person += f"\n+{len(arns) - 2} more" if len(arns) > 2 else ""
    return [
        (
            "Accounts" if len(_distinct(o.account for o in outcomes)) > 1 else "Account",
            _list_value(_distinct(o.account for o in outcomes)),
        ),
        (
            "Regions" if len(_distinct(o.region for o in outcomes)) > 1 else "Region",
            _list_value(_distinct(o.region for o in outcomes)),
        ),
        ("Person", _cut(person, _FIELD_BUDGET)),
        ("How", _list_value(_distinct(c for o in outcomes for c in _clients(o)), 3)),
        ("Actions", _list_value(names, 6)),
        ("Source IP", _list_value(_distinct(e.source_ip for o in outcomes for e in _events(o)), 3)),
        ("Time", _when([times[0], times[-1]] if times else [])),
    ]


def _item_head(outcome: Outcome, console_base: str | None, *, show_who: bool, link: bool) -> str:
    head = [_SEVERITY_EMOJI[severity(outcome)]]
    if outcome.kind == CONSOLE_SIGNIN:
        head.append(f"*{_esc(_title(outcome), 140)}*")
    else:
        label = _esc(outcome.resource_name or outcome.resource_id or _title(outcome), _NAME_BUDGET)
        url = resource_console_url(outcome, console_base=console_base) if link else None
        head.append("*" + _link(url, label) + "*")
        if outcome.resource_id and outcome.resource_name and outcome.resource_id != outcome.resource_name:
            head.append(_code(outcome.resource_id, 90))
    details = [_esc(v, 80) for v in (outcome.resource_type, ", ".join(_event_names(outcome)[:3])) if v]
    if outcome.kind == UNATTRIBUTED_CHANGE:
        details.append("no CloudTrail author")
    elif show_who and outcome.kind != CONSOLE_SIGNIN:
        details.append("by " + _esc(_who(outcome), 60))
    error = _error_text(outcome, 100)
    if error:
        details.append("failed: " + error)
    return " ".join(head) + (" · " + " · ".join(details) if details else "")


def _item_text(outcome: Outcome, console_base: str | None, *, show_who: bool) -> str:
    """One compact digest entry: headline, up to three diff lines, links."""
    head = _item_head(outcome, console_base, show_who=show_who, link=True)
    if len(head) > _DIGEST_ITEM_BUDGET // 2:
        head = _item_head(outcome, console_base, show_who=show_who, link=False)
    diff = _diff_lines(outcome, limit=20)
    lines = [head, *(_code(line, 160) for line in diff[:3])]
    tail = [f"… and {len(diff) - 3} more changes"] if len(diff) > 3 else []
    tail.append(_join_within(_links(outcome, console_base, console=outcome.kind == CONSOLE_SIGNIN), 400))
    lines.append(" · ".join(t for t in tail if t))
    return _join_within([line for line in lines if line], _DIGEST_ITEM_BUDGET, sep="\n")


def _digest_priority(assessed: Sequence[tuple[str, int, Outcome]]) -> list[int]:
    """Indexes of the outcomes in the order they earn a place in a digest.

    First the newest of the most severe, then the newest of all, then the rest by severity and, within
    a severity, newest first: whatever does not fit is old and mild, never the alert that made the
    digest worth reading nor the latest one.
    """

    def recency(index: int) -> tuple[float, int]:
        moment = parse_time(assessed[index][2].at)
        return (moment.timestamp() if moment else float("-inf"), index)

    ranked = sorted(range(len(assessed)), key=lambda i: (_SEVERITY_RANK[assessed[i][0]], recency(i)), reverse=True)
    newest = max(range(len(assessed)), key=recency)
    return list(dict.fromkeys([ranked[0], newest, *ranked]))


def _trail_username(outcome: Outcome) -> str | None:
    """The name CloudTrail's event history files the principal's calls under (``Username``), when known."""
    arn = _str(outcome.principal_arn) or ""
    if arn.endswith(":root"):
        return "root"
    if ":assumed-role/" in arn:
        parts = arn.split(":assumed-role/", 1)[1].split("/")
        return parts[-1] if len(parts) >= 2 and parts[-1] else None
    if ":user/" in arn:
        return arn.rsplit("/", 1)[-1] or None
    return _str(_principal(outcome, "user_name"))


def cloudtrail_history_url(
    username: str, region: str | None, partition: str = "aws", *, console_base: str | None = None
) -> str | None:
    """CloudTrail event history of one region, filtered to the calls of one user name."""
    if not _ok_part(username):
        return None
    return _event_history_url(f"?Username={_q(username)}", region, partition, console_base)


def _full_list_link(rest: Sequence[Outcome], console_base: str | None) -> str | None:
    """A link to where the entries a digest had no room for can all be seen, when one place has them all.

    One principal in one account and region: its calls in CloudTrail's event history. Otherwise, Config
    changes archived in one folder: that folder of archived notifications. Else nothing.
    """
    places = {(o.partition, o.account, o.region) for o in rest}
    names = {_trail_username(o) for o in rest}
    if len(places) == 1 and len(names) == 1 and None not in names:
        (partition, _account, region), (name,) = next(iter(places)), names
        url = cloudtrail_history_url(name or "", region, partition, console_base=console_base)
        if url:
            return _link(url, f"all calls by {_esc(name, 60)} in CloudTrail")
    folders = {(o.partition, _str(o.archive_bucket), (_str(o.archive_key) or "").rpartition("/")[0]) for o in rest}
    if len(folders) == 1:
        partition, bucket, folder = next(iter(folders))
        if bucket and folder and _ok_part(folder) and _ok_part(bucket):
            origin = _origin(partition, None, console_base, service="s3")
            if origin:
                url = f"{origin}/s3/buckets/{_q(bucket)}?prefix={_q(folder + '/')}"
                return _link(url, "all archived notifications")
    return None


def _render_digest(outcomes: Sequence[Outcome], console_base: str | None) -> dict[str, Any]:
    assessed = [(severity(o), i, o) for i, o in enumerate(outcomes)]
    level = _max_severity(lvl for lvl, _i, _o in assessed)
    title = _digest_title(outcomes)
    blocks: list[dict[str, Any]] = [
        _header(f"{_SEVERITY_EMOJI[level]} {_plain(title, LIMITS['header'])}"),
        _fields(_digest_fields(outcomes)),
        _divider(),
    ]
    show_who = len(_distinct(_who(o) for o in outcomes)) > 1
    used = _total_text(blocks)
    priority = _digest_priority(assessed)
    texts: dict[int, str] = {}
    for index in priority:
        if len(texts) >= LIMITS["blocks"] - 6:
            break
        text = _item_text(outcomes[index], console_base, show_who=show_who)
        if used + len(text) > LIMITS["total_text"] - _DIGEST_RESERVE:
            continue  # a smaller entry further down may still fit
        texts[index] = text
        used += len(text)
    # Shown most severe first, in the order they came within a severity.
    for index in sorted(texts, key=lambda i: (-_SEVERITY_RANK[assessed[i][0]], i)):
        blocks.append(_section(texts[index]))
    rest = [i for i in priority if i not in texts]
    if rest:
        by_level = {lvl: sum(1 for i in rest if assessed[i][0] == lvl) for lvl in (HIGH, MEDIUM, LOW)}
        counts = ", ".join(f"{n} {lvl}" for lvl, n in by_level.items() if n)
        line = f"… and {len(rest)} more: {counts}"
        link = _full_list_link([outcomes[i] for i in rest], console_base)
        if link:
            line += f" · {link}"
        names = [_code(outcomes[i].resource_id or _title(outcomes[i]), 60) for i in rest]
        listing = _join_within(names, 1200 - len(line), sep=", ")  # within _DIGEST_RESERVE with the footer
        blocks.append(_context(f"{line}\n{listing}" if listing else line))
    counts_all = {lvl: sum(1 for a, _i, _o in assessed if a == lvl) for lvl in (HIGH, MEDIUM, LOW)}
    summary = ", ".join(f"{n} {lvl}" for lvl, n in counts_all.items() if n)
    blocks.append(_context(f"{_SEVERITY_EMOJI[level]} Severity *{level}* ({summary}) · {len(outcomes)} outcomes"))
    ordered = [outcomes[i] for i in priority]
    labels = ", ".join(_resource_label(o) if o.kind != CONSOLE_SIGNIN else _who(o) for o in ordered[:10])
    more = f" and {len(ordered) - 10} more" if len(ordered) > 10 else ""
    places = {(o.account, o.region) for o in outcomes}
    where = ordered[0] if len(places) == 1 else None
    return {"text": _fallback(level, f"{title}: {_clip(labels, 2000)}{more}", where), "blocks": blocks}


# --------------------------------------------------------------------------------------------
# Entry point and limits


_RENDERED_KINDS = frozenset({MANUAL_CHANGE, UNATTRIBUTED_CHANGE, CONSOLE_SIGNIN, API_CALL})


def render(outcomes: Sequence[Outcome], *, console_base: str | None = None) -> dict[str, Any]:
    """Slack message payload (``text``, ``blocks``) for one alert, or one digest of several.

    Suppressed outcomes are skipped; an unknown kind, or nothing left to show, raises ``ValueError``.
    ``console_base`` (``https://host[/path]``) replaces the partition's console origin in every link,
    e.g. for a console proxy; by default links follow each outcome's partition and region.
    """
    base = _check_base(console_base)
    from chalicelib.slack.operational import is_operational, render_operational

    if is_operational(outcomes):
        return render_operational(outcomes, console_base=base)
    alerts = [_coerce(o) for o in outcomes if o.kind != SUPPRESSED]
    unknown = sorted({str(o.kind) for o in alerts if not isinstance(o.kind, str) or o.kind not in _RENDERED_KINDS})
    if unknown:
        raise ValueError(f"cannot render outcome kind(s): {', '.join(map(repr, unknown))}")
    if not alerts:
        raise ValueError("no alert outcomes to render")
    payload = _render_one(alerts[0], base) if len(alerts) == 1 else _render_digest(alerts, base)
    payload["unfurl_links"] = False
    payload["unfurl_media"] = False
    if check_limits(payload):
        payload["blocks"] = _minimal_blocks(payload)
    return payload


def _minimal_blocks(payload: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Safety net: the header and the fallback text only (never expected to be needed)."""
    header = next((b for b in payload.get("blocks", []) if b.get("type") == "header"), None)
    blocks = [header] if header else []
    return [*blocks, _section(_cut(str(payload.get("text", "")), LIMITS["fallback_text"]))]


def _block_texts(block: Mapping[str, Any]) -> list[str]:
    texts = []
    text = block.get("text")
    if isinstance(text, Mapping):
        texts.append(str(text.get("text", "")))
    for item in [*(block.get("fields") or []), *(block.get("elements") or [])]:
        if isinstance(item, Mapping) and "text" in item:
            inner = item["text"]
            texts.append(str(inner.get("text", "")) if isinstance(inner, Mapping) else str(inner))
    return texts


def _total_text(blocks: Iterable[Mapping[str, Any]]) -> int:
    return sum(len(t) for b in blocks for t in _block_texts(b))


def _block_problems(index: int, block: Mapping[str, Any]) -> list[str]:
    kind = block.get("type")
    where = f"block {index} ({kind})"
    problems = []
    if kind == "header":
        text = str((block.get("text") or {}).get("text", ""))
        if not text or len(text) > LIMITS["header"]:
            problems.append(f"{where}: header text length {len(text)} not in 1..{LIMITS['header']}")
        if (block.get("text") or {}).get("type") != "plain_text":
            problems.append(f"{where}: header text must be plain_text")
    elif kind == "section":
        text = block.get("text")
        fields = block.get("fields") or []
        if not text and not fields:
            problems.append(f"{where}: section needs text or fields")
        if text and not 0 < len(str(text.get("text", ""))) <= LIMITS["section_text"]:
            problems.append(f"{where}: section text length {len(str(text.get('text', '')))}")
        if len(fields) > LIMITS["section_fields"]:
            problems.append(f"{where}: {len(fields)} fields > {LIMITS['section_fields']}")
        for number, field in enumerate(fields):
            if not 0 < len(str(field.get("text", ""))) <= LIMITS["field_text"]:
                problems.append(f"{where}: field {number} length {len(str(field.get('text', '')))}")
    elif kind == "context":
        elements = block.get("elements") or []
        if not 0 < len(elements) <= LIMITS["context_elements"]:
            problems.append(f"{where}: {len(elements)} context elements")
        for number, element in enumerate(elements):
            if not 0 < len(str(element.get("text", ""))) <= LIMITS["context_text"]:
                problems.append(f"{where}: context element {number} length {len(str(element.get('text', '')))}")
    elif kind != "divider":
        problems.append(f"{where}: unexpected block type")
    return problems


def check_limits(payload: Mapping[str, Any]) -> list[str]:
    """Violations of ``LIMITS`` in a payload (empty when it is fine to send)."""
    problems = []
    text = payload.get("text")
    if not isinstance(text, str) or not text.strip():
        problems.append("text fallback missing or empty")
    elif len(text) > LIMITS["fallback_text"]:
        problems.append(f"text fallback length {len(text)} > {LIMITS['fallback_text']}")
    blocks = list(payload.get("blocks") or [])
    for attachment in payload.get("attachments") or []:
        blocks.extend(attachment.get("blocks") or [])
    if not blocks:
        problems.append("no blocks")
    if len(blocks) > LIMITS["blocks"]:
        problems.append(f"{len(blocks)} blocks > {LIMITS['blocks']}")
    for index, block in enumerate(blocks):
        problems.extend(_block_problems(index, block))
    total = _total_text(blocks)
    if total > LIMITS["total_text"]:
        problems.append(f"total block text {total} > {LIMITS['total_text']}")
    return problems
