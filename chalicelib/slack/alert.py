"""One outcome as a full alert: header, fields, what changed (or the request), links and a severity footer."""

from __future__ import annotations

from collections import Counter
from typing import Any

from chalicelib.core.outcomes import API_CALL, CONSOLE_SIGNIN, MANUAL_CHANGE, UNATTRIBUTED_CHANGE, Outcome
from chalicelib.core.rules import is_early
from chalicelib.core.severity import severity_reason
from chalicelib.core.text import compact_json, nonblank
from chalicelib.slack import blocks
from chalicelib.slack.blocks import SEVERITY_EMOJI
from chalicelib.slack.clients import clients
from chalicelib.slack.diffs import diff_lines
from chalicelib.slack.labels import person, times, when, who
from chalicelib.slack.limits import LIMITS, total_text
from chalicelib.slack.links import ConsoleBase, alert_links, archive_url, link, resource_console_url
from chalicelib.slack.text import code, cut, esc, fit_lines, join_within, plain
from chalicelib.slack.titles import error_text, fallback, title

# Per-piece budgets (escaped characters) that keep a single alert well inside LIMITS even when
# every field is hostile and huge: 10 fields x 450 + links 1500 + diff <= 2900 + header + footer.
FIELD_BUDGET = 450
NAME_BUDGET = 120
ARN_BUDGET = 220
_ID_BUDGET = 160
_LINE_BUDGET = 240
_LINKS_BUDGET = 1500
_MFA = {True: "yes", False: "no"}

Fields = list[tuple[str, str]]


# --------------------------------------------------------------------------------------------
# Field values (mrkdwn)


def _person_value(outcome: Outcome) -> str:
    principal = person(outcome)
    name = who(outcome)
    kind = nonblank(principal.type)
    shown_kind = kind and kind.lower() != name.lower()
    lines = [esc(name, NAME_BUDGET) + (f" ({esc(kind, 40)})" if shown_kind else "")]
    if outcome.principal_arn:
        lines.append(code(outcome.principal_arn, ARN_BUDGET))
    source_identity = nonblank(principal.source_identity)
    if source_identity and source_identity != name:
        lines.append("source identity: " + esc(source_identity, 60))
    caller_account = nonblank(principal.account)
    if caller_account and outcome.account and caller_account != outcome.account:
        lines.append("from account " + esc(caller_account, 40))
    return cut("\n".join(lines), FIELD_BUDGET)


def _resource_value(outcome: Outcome, console_base: ConsoleBase) -> str:
    rid, name = nonblank(outcome.resource_id), nonblank(outcome.resource_name)
    label = esc(name or rid or "(unknown)", NAME_BUDGET)
    lines = [link(resource_console_url(outcome, console_base=console_base), label)]
    if rid and name and rid != name:
        lines.append(code(rid, _ID_BUDGET))
    if outcome.resource_type:
        lines.append(esc(outcome.resource_type, 80))
    return "\n".join(lines)


def _action_value(outcome: Outcome) -> str:
    names = outcome.event_names
    if not names:
        return "unknown"
    counts = Counter(e.event_name for e in outcome.events)
    shown = [esc(n, 80) + (f" ×{counts[n]}" if counts[n] > 1 else "") for n in names[:5]]
    more = f"\n+{len(names) - 5} more" if len(names) > 5 else ""
    return cut(_service_prefix(outcome) + ", ".join(shown), FIELD_BUDGET - 20) + more


def _service_prefix(outcome: Outcome) -> str:
    """``ec2: `` for calls to ``ec2.amazonaws.com`` (the first event that names its service)."""
    source = next((e.event_source for e in outcome.events if e.event_source), None)
    return f"{esc(source.removesuffix('.amazonaws.com'), 40)}: " if source else ""


def _how_value(outcome: Outcome) -> str:
    lines = [", ".join(esc(c, 80) for c in (clients(outcome) or ["unknown"])[:3])]
    agent = next((e.user_agent for e in outcome.events if e.user_agent), None)
    if agent:
        lines.append(code(agent, 160))
    return "\n".join(lines)


def _ip_value(outcome: Outcome) -> str:
    ips = list(dict.fromkeys(e.source_ip for e in outcome.events if e.source_ip))
    if not ips:
        return "unknown"
    return ", ".join(esc(ip, 60) for ip in ips[:3]) + (f" +{len(ips) - 3}" if len(ips) > 3 else "")


def _place_value(outcome: Outcome) -> tuple[str, str]:
    account = esc(outcome.account or "unknown", 40)
    alias = outcome.extra.get("account_alias")
    if isinstance(alias, str) and alias:
        account = f"{esc(alias, 60)} ({account})"
    return account, esc(outcome.region or "unknown", 40)


# --------------------------------------------------------------------------------------------
# Fields per kind


def _common_fields(outcome: Outcome, console_base: ConsoleBase) -> Fields:
    account, region = _place_value(outcome)
    return [("Account", account), ("Region", region), ("Resource", _resource_value(outcome, console_base))]


def _unattributed_fields(outcome: Outcome, console_base: ConsoleBase) -> Fields:
    unverified = nonblank(outcome.extra.get("unverified"))
    who_field = f"unknown, unverified: {esc(unverified, 400)}" if unverified else "unknown (no CloudTrail event found)"
    return [
        *_common_fields(outcome, console_base),
        ("Change", esc(outcome.change_type or "UPDATE", 40)),
        ("Person", who_field),
        ("Recorded", when(times(outcome))),
    ]


def _signin_fields(outcome: Outcome, _console_base: ConsoleBase) -> Fields:
    return [
        ("Account", _place_value(outcome)[0]),
        ("Person", _person_value(outcome)),
        ("Result", error_text(outcome) or "success"),
        ("MFA", _MFA.get(person(outcome).mfa, "unknown")),
        ("How", _how_value(outcome)),
        ("Source IP", _ip_value(outcome)),
        ("Time", when(times(outcome))),
    ]


def _call_fields(outcome: Outcome, console_base: ConsoleBase) -> Fields:
    """A manual change or an API call: where, what, who, how, when (and the change or the result)."""
    if outcome.resource_id or outcome.resource_name:
        pairs = _common_fields(outcome, console_base)
    else:
        account, region = _place_value(outcome)
        pairs = [("Account", account), ("Region", region)]
    pairs += [
        ("Action", _action_value(outcome)),
        ("Person", _person_value(outcome)),
        ("How", _how_value(outcome)),
        ("Source IP", _ip_value(outcome)),
        ("Time", when(times(outcome))),
    ]
    if outcome.kind == MANUAL_CHANGE and outcome.change_type:
        pairs.append(("Change", esc(outcome.change_type, 40)))
    if outcome.kind == API_CALL:
        pairs.append(("Result", error_text(outcome) or "succeeded"))
    return pairs


def _fields_for(outcome: Outcome, console_base: ConsoleBase) -> Fields:
    if outcome.kind == UNATTRIBUTED_CHANGE:
        return _unattributed_fields(outcome, console_base)
    if outcome.kind == CONSOLE_SIGNIN:
        return _signin_fields(outcome, console_base)
    return _call_fields(outcome, console_base)


# --------------------------------------------------------------------------------------------
# Body and footer


def _diff_section(outcome: Outcome, budget: int, console_base: ConsoleBase) -> str | None:
    lines = diff_lines(outcome)
    archive = archive_url(outcome, console_base)
    tail = f"\nFull notification: {link(archive, 'archived in S3')}" if archive else ""
    if not lines:
        note = {"CREATE": "Resource created.", "DELETE": "Resource deleted."}.get((outcome.change_type or "").upper())
        if note is None and not tail:
            return None
        return f"*What changed*\n{note or 'No property diff in the notification.'}{tail}"
    count = len(outcome.changed_properties)
    heading = f"*What changed* ({count} {'property' if count == 1 else 'properties'})\n"
    room = max(budget - len(heading) - len(tail) - 8, 200)
    shown = fit_lines(lines, room, lambda line: esc(line, _LINE_BUDGET * 2), noun="more changes")
    return heading + "```" + "\n".join(shown) + "```" + tail


def _request_section(outcome: Outcome, budget: int) -> str | None:
    params = next((e.request_parameters for e in outcome.events if e.request_parameters), None)
    if params is None:
        return None
    text = esc(compact_json(params), max(min(budget, 1500) - 40, 100))
    return f"*Request parameters*\n```{text}```"


def early_note(outcome: Outcome) -> str:
    """What an early alert is, and what will follow (mrkdwn; the Config types and names are escaped)."""
    types = outcome.extra.get("config_types")
    shown = ", ".join(code(t, 60) for t in types[:3]) if isinstance(types, list) and types else "this resource type"
    note = (":hourglass_flowing_sand: *Early alert* from the live CloudTrail stream: AWS Config records "
            f"{shown}. The before → after diff follows when AWS Config records the change; until then, or if it "
            "never does, this is what is known.")
    names = outcome.extra.get("names")
    if not (outcome.resource_id or outcome.resource_name) and isinstance(names, list) and names:
        note += " Names: " + ", ".join(code(n, 80) for n in names[:3])
    return note


def _body_section(outcome: Outcome, budget: int, console_base: ConsoleBase) -> str | None:
    if is_early(outcome):
        return _request_section(outcome, budget)
    if outcome.kind in (MANUAL_CHANGE, UNATTRIBUTED_CHANGE):
        return _diff_section(outcome, budget, console_base)
    if outcome.kind == API_CALL:
        return _request_section(outcome, budget)
    return None


def _footer(outcome: Outcome, level: str, reason: str) -> str:
    parts = [f"{SEVERITY_EMOJI[level]} Severity *{level}*: {esc(reason, 120)}"]
    if outcome.reason:
        parts.append("reason: " + esc(outcome.reason, 120))
    parts.append("outcome " + code(outcome.outcome_id, 80))
    return " · ".join(parts)


def render_alert(outcome: Outcome, console_base: ConsoleBase) -> dict[str, Any]:
    """The message (``text`` + ``blocks``) of one alert outcome."""
    level, reason = severity_reason(outcome)
    headline = title(outcome)
    message: list[dict[str, Any]] = [
        blocks.header(f"{SEVERITY_EMOJI[level]} {plain(headline, LIMITS['header'])}"),
        blocks.fields(_fields_for(outcome, console_base)),
    ]
    if is_early(outcome):
        message.append(blocks.context(early_note(outcome)))
    links = join_within(alert_links(outcome, console_base), _LINKS_BUDGET)
    footer = _footer(outcome, level, reason)
    room = LIMITS["total_text"] - total_text(message) - len(links) - len(footer) - 100
    body = _body_section(outcome, min(LIMITS["section_text"] - 100, room), console_base)
    if body:
        message.append(blocks.section(body))
    message.append(blocks.context(links, footer) if links else blocks.context(footer))
    return {"text": fallback(level, headline, outcome), "blocks": message}
