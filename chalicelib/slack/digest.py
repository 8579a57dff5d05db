"""Several outcomes as ONE digest: a summary, one compact entry per outcome, and a line for what did not fit.

A digest never drops what matters: entries earn their place most severe and newest first (see
``_priority``); what is left out is counted per severity and, when one place lists it all, linked.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from chalicelib.core.outcomes import API_CALL, CONSOLE_SIGNIN, MANUAL_CHANGE, UNATTRIBUTED_CHANGE, Outcome
from chalicelib.core.rules import is_early
from chalicelib.core.severity import HIGH, LOW, MEDIUM, SEVERITY_RANK, Severity, max_severity, severity
from chalicelib.core.text import clip, nonblank, one_line
from chalicelib.core.timeutil import parse_time
from chalicelib.slack import blocks
from chalicelib.slack.alert import ARN_BUDGET, FIELD_BUDGET, NAME_BUDGET
from chalicelib.slack.blocks import SEVERITY_EMOJI
from chalicelib.slack.clients import clients
from chalicelib.slack.diffs import diff_lines
from chalicelib.slack.labels import distinct, resource_label, times, trail_username, when, who
from chalicelib.slack.limits import LIMITS, total_text
from chalicelib.slack.links import (
    ConsoleBase,
    alert_links,
    cloudtrail_history_url,
    link,
    resource_console_url,
    s3_folder_url,
)
from chalicelib.slack.text import code, cut, esc, join_within, plain
from chalicelib.slack.titles import error_text, fallback, title

_ITEM_BUDGET = 1000
_RESERVE = 1800  # room kept for the "… and N more" line and the footer

Fields = list[tuple[str, str]]


# --------------------------------------------------------------------------------------------
# Headline and summary fields


def _manual_title(count: int, name: str | None, names: list[str]) -> str:
    if name:
        return f"{name} changed {count} resources by hand"
    return f"{count} resources changed by hand ({', '.join(names[:3])}{', …' if len(names) > 3 else ''})"


def _calls_title(count: int, name: str | None, _names: list[str]) -> str:
    return f"{name} made {count} sensitive API calls" if name else f"{count} sensitive API calls"


_TITLES: dict[str, Callable[[int, str | None, list[str]], str]] = {
    MANUAL_CHANGE: _manual_title,
    UNATTRIBUTED_CHANGE: lambda count, _name, _names: f"{count} unattributed changes — no CloudTrail author found",
    API_CALL: _calls_title,
    CONSOLE_SIGNIN: lambda count, _name, _names: f"{count} console sign-ins need attention",
}


def _digest_title(outcomes: Sequence[Outcome]) -> str:
    count = len(outcomes)
    kinds = {o.kind for o in outcomes}
    names = list(dict.fromkeys(clip(one_line(who(o)), 40) for o in outcomes))
    name = names[0] if len(names) == 1 else None
    if all(is_early(o) for o in outcomes):
        pending = f"{count} changes by hand (AWS Config diffs pending)"
        return f"{name} made {pending}" if name else pending
    if len(kinds) == 1 and next(iter(kinds)) in _TITLES:
        return _TITLES[next(iter(kinds))](count, name, names)
    return f"{count} alerts" + (f" for {name}" if name else "")


def _list_value(values: Sequence[str], limit: int = 5) -> str:
    if not values:
        return "unknown"
    shown = ", ".join(esc(v, 80) for v in values[:limit])
    return shown + (f" +{len(values) - limit} more" if len(values) > limit else "")


def _counted_field(singular: str, plural: str, values: list[str]) -> tuple[str, str]:
    return (plural if len(values) > 1 else singular), _list_value(values)


def _people_value(outcomes: Sequence[Outcome]) -> str:
    people = _list_value(distinct(who(o) for o in outcomes if o.kind != UNATTRIBUTED_CHANGE), 3)
    arns = distinct(o.principal_arn for o in outcomes)
    if arns:
        people += "\n" + "\n".join(code(a, ARN_BUDGET) for a in arns[:2])
        people += f"\n+{len(arns) - 2} more" if len(arns) > 2 else ""
    return cut(people, FIELD_BUDGET)


def _digest_fields(outcomes: Sequence[Outcome]) -> Fields:
    return [*_place_fields(outcomes), ("Person", _people_value(outcomes)), *_activity_fields(outcomes)]


def _place_fields(outcomes: Sequence[Outcome]) -> Fields:
    return [
        _counted_field("Account", "Accounts", distinct(o.account for o in outcomes)),
        _counted_field("Region", "Regions", distinct(o.region for o in outcomes)),
    ]


def _activity_fields(outcomes: Sequence[Outcome]) -> Fields:
    events = [e for o in outcomes for e in o.events]
    return [
        ("How", _list_value(distinct(c for o in outcomes for c in clients(o)), 3)),
        ("Actions", _list_value(distinct(n for o in outcomes for n in o.event_names), 6)),
        ("Source IP", _list_value(distinct(e.source_ip for e in events), 3)),
        ("Time", _time_span(outcomes)),
    ]


def _time_span(outcomes: Sequence[Outcome]) -> str:
    moments = sorted(t for o in outcomes for t in times(o))
    return when([moments[0], moments[-1]] if moments else [])


# --------------------------------------------------------------------------------------------
# One entry


def _item_label(outcome: Outcome, console_base: ConsoleBase, *, with_link: bool) -> list[str]:
    if outcome.kind == CONSOLE_SIGNIN:
        return [f"*{esc(title(outcome), 140)}*"]
    label = esc(outcome.resource_name or outcome.resource_id or title(outcome), NAME_BUDGET)
    url = resource_console_url(outcome, console_base=console_base) if with_link else None
    parts = ["*" + link(url, label) + "*"]
    if outcome.resource_id and outcome.resource_name and outcome.resource_id != outcome.resource_name:
        parts.append(code(outcome.resource_id, 90))
    return parts


def _item_details(outcome: Outcome, *, show_who: bool) -> list[str]:
    details = [esc(v, 80) for v in (outcome.resource_type, ", ".join(outcome.event_names[:3])) if v]
    if is_early(outcome):
        details.append("early alert: AWS Config diff pending")
    if outcome.kind == UNATTRIBUTED_CHANGE:
        details.append("no CloudTrail author")
    elif show_who and outcome.kind != CONSOLE_SIGNIN:
        details.append("by " + esc(who(outcome), 60))
    error = error_text(outcome, 100)
    if error:
        details.append("failed: " + error)
    return details


def _item_head(outcome: Outcome, level: Severity, console_base: ConsoleBase, *, show_who: bool, with_link: bool) -> str:
    head = [SEVERITY_EMOJI[level], *_item_label(outcome, console_base, with_link=with_link)]
    details = _item_details(outcome, show_who=show_who)
    return " ".join(head) + (" · " + " · ".join(details) if details else "")


def _item_text(outcome: Outcome, level: Severity, console_base: ConsoleBase, *, show_who: bool) -> str:
    """One compact digest entry: headline, up to three diff lines, links."""
    head = _item_head(outcome, level, console_base, show_who=show_who, with_link=True)
    if len(head) > _ITEM_BUDGET // 2:
        head = _item_head(outcome, level, console_base, show_who=show_who, with_link=False)
    diff = diff_lines(outcome, limit=20)
    lines = [head, *(code(line, 160) for line in diff[:3])]
    tail = [f"… and {len(diff) - 3} more changes"] if len(diff) > 3 else []
    tail.append(join_within(alert_links(outcome, console_base, console=outcome.kind == CONSOLE_SIGNIN), 400))
    lines.append(" · ".join(t for t in tail if t))
    return join_within([line for line in lines if line], _ITEM_BUDGET, sep="\n")


# --------------------------------------------------------------------------------------------
# Which entries fit


def _priority(outcomes: Sequence[Outcome], levels: Sequence[Severity]) -> list[int]:
    """Indexes of the outcomes in the order they earn a place in a digest.

    First the newest of the most severe, then the newest of all, then the rest by severity and, within
    a severity, newest first: whatever does not fit is old and mild, never the alert that made the
    digest worth reading nor the latest one.
    """

    def recency(index: int) -> tuple[float, int]:
        moment = parse_time(outcomes[index].at)
        return (moment.timestamp() if moment else float("-inf"), index)

    ranked = sorted(range(len(outcomes)), key=lambda i: (SEVERITY_RANK[levels[i]], recency(i)), reverse=True)
    newest = max(range(len(outcomes)), key=recency)
    return list(dict.fromkeys([ranked[0], newest, *ranked]))


def _entries(outcomes: Sequence[Outcome], levels: Sequence[Severity], order: list[int], console_base: ConsoleBase,
             used: int) -> dict[int, str]:
    """The entries that fit (index -> text), taken in ``order`` while blocks and text allow."""
    show_who = len(distinct(who(o) for o in outcomes)) > 1
    texts: dict[int, str] = {}
    for index in order:
        if len(texts) >= LIMITS["blocks"] - 6:
            break
        text = _item_text(outcomes[index], levels[index], console_base, show_who=show_who)
        if used + len(text) > LIMITS["total_text"] - _RESERVE:
            continue  # a smaller entry further down may still fit
        texts[index] = text
        used += len(text)
    return texts


def _history_link(rest: Sequence[Outcome], console_base: ConsoleBase) -> str | None:
    """One principal in one account and region: its calls in CloudTrail's event history."""
    places = {(o.partition, o.account, o.region) for o in rest}
    names = {trail_username(o) for o in rest}
    if len(places) != 1 or len(names) != 1 or None in names:
        return None
    (partition, account, region), (name,) = next(iter(places)), names
    url = cloudtrail_history_url(name or "", region, partition, console_base=console_base, account=account)
    return link(url, f"all calls by {esc(name, 60)} in CloudTrail") if url else None


def _folder_link(rest: Sequence[Outcome], console_base: ConsoleBase) -> str | None:
    """Config changes archived in one folder: that folder of archived notifications."""
    folders = {(o.partition, nonblank(o.archive_bucket), (nonblank(o.archive_key) or "").rpartition("/")[0])
               for o in rest}
    if len(folders) != 1:
        return None
    partition, bucket, folder = next(iter(folders))
    url = s3_folder_url(bucket, folder, partition, console_base=console_base) if bucket else None
    return link(url, "all archived notifications") if url else None


def _counts(levels: Sequence[Severity]) -> str:
    """``2 high, 5 low``: how many of each severity (most severe first, none left out or shown as 0)."""
    return ", ".join(f"{n} {lvl}" for lvl in (HIGH, MEDIUM, LOW) if (n := levels.count(lvl)))


def _rest_line(outcomes: Sequence[Outcome], levels: Sequence[Severity], rest: list[int],
               console_base: ConsoleBase) -> str:
    """``… and N more: counts · link`` and the ids of what is left out, as far as they fit."""
    left_out = [outcomes[i] for i in rest]
    line = f"… and {len(rest)} more: {_counts([levels[i] for i in rest])}"
    full_list = _history_link(left_out, console_base) or _folder_link(left_out, console_base)
    if full_list:
        line += f" · {full_list}"
    names = [code(o.resource_id or title(o), 60) for o in left_out]
    listing = join_within(names, 1200 - len(line), sep=", ")  # within _RESERVE with the footer
    return f"{line}\n{listing}" if listing else line


def _digest_fallback(outcomes: Sequence[Outcome], order: list[int], level: Severity, headline: str) -> str:
    ordered = [outcomes[i] for i in order]
    labels = ", ".join(resource_label(o) if o.kind != CONSOLE_SIGNIN else who(o) for o in ordered[:10])
    more = f" and {len(ordered) - 10} more" if len(ordered) > 10 else ""
    where = ordered[0] if len({(o.account, o.region) for o in outcomes}) == 1 else None
    return fallback(level, f"{headline}: {clip(labels, 2000)}{more}", where)


def render_digest(outcomes: Sequence[Outcome], console_base: ConsoleBase) -> dict[str, Any]:
    """The message (``text`` + ``blocks``) of one digest of several alert outcomes."""
    levels = [severity(o) for o in outcomes]
    level = max_severity(levels)
    headline = _digest_title(outcomes)
    message: list[dict[str, Any]] = [
        blocks.header(f"{SEVERITY_EMOJI[level]} {plain(headline, LIMITS['header'])}"),
        blocks.fields(_digest_fields(outcomes)),
        blocks.divider(),
    ]
    order = _priority(outcomes, levels)
    texts = _entries(outcomes, levels, order, console_base, total_text(message))
    # Shown most severe first, in the order they came within a severity.
    message.extend(blocks.section(texts[i]) for i in sorted(texts, key=lambda i: (-SEVERITY_RANK[levels[i]], i)))
    rest = [i for i in order if i not in texts]
    if rest:
        message.append(blocks.context(_rest_line(outcomes, levels, rest, console_base)))
    summary = f"{SEVERITY_EMOJI[level]} Severity *{level}* ({_counts(levels)}) · {len(outcomes)} outcomes"
    message.append(blocks.context(summary))
    return {"text": _digest_fallback(outcomes, order, level, headline), "blocks": message}
