"""Slack rendering of operational alerts (``dead_letter`` outcomes): pure, no I/O.

``render_operational`` turns one or many dead-letter alerts into ONE message: a count per queue and
reason, then one line per dead letter (reason, what it still reported, a link to the stored object).
Reasons and queue names may quote the input that failed, so every piece of text, the fallback ``text``
included, goes through ``chalicelib.slack.text`` (escaped, one line, no links, no broadcasts, clipped,
cut only between entities); mrkdwn objects are ``verbatim`` (Slack links nothing by itself) and links
are built only by ``chalicelib.slack.links``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from chalicelib.core.outcomes import DEAD_LETTER, DETECTOR_HEALTH, OPERATIONAL_KINDS, Outcome
from chalicelib.slack.limits import LIMITS, check_limits
from chalicelib.slack.links import ConsoleBase, s3_object_url
from chalicelib.slack.text import cut, esc, escape_mrkdwn

QUEUE_LABELS = {
    "dispatch_queue": "Config notification (dispatch)",
    "lookup_queue": "attribution job (lookup)",
    "slack_queue": "Slack alert not delivered",
    "async_failed_queue": "event a function failed on (async-failed)",
}
"""Source queue (``stages.shared.queues``: ``dead_letter`` alerts' ``extra["queue"]``) → what a person reads."""
MAX_LINES = 15
_REASON_CHARS = 160


def is_operational(outcomes: Sequence[Any]) -> bool:
    """``True`` when every outcome is an operational alert (what ``render_operational`` takes)."""
    return bool(outcomes) and all(getattr(o, "kind", None) in OPERATIONAL_KINDS for o in outcomes)


# What to look at first when the dead-man's switch opens an outage (core.watchdog's keys).
HEALTH_ADVICE = {
    "silence": "Check that AWS Config is recording and delivering to the stage's topic, that a CloudTrail "
               "trail is logging, and the EventBridge rules (`mcd doctor --stage <stage>` checks each).",
    "stalled": "Check the function's errors and throttles in CloudWatch (the stage's health alarms) and its "
               "reserved concurrency: 0 stops it.",
}


def render_operational(outcomes: Sequence[Outcome], *, console_base: ConsoleBase = None) -> dict[str, Any]:
    """One Slack payload (``text`` + ``blocks``) for one or many operational alerts of one kind."""
    health = [o for o in outcomes if getattr(o, "kind", None) == DETECTOR_HEALTH]
    if health:
        return _render_health(health)
    alerts = [o for o in outcomes if getattr(o, "kind", None) == DEAD_LETTER]
    if not alerts:
        raise ValueError("no operational alerts to render")
    queues = Counter(_queue(o) for o in alerts)
    noun = "dead letter" if len(alerts) == 1 else "dead letters"
    title = f":rotating_light: mcd: {len(alerts)} {noun} kept for a person"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title[: LIMITS["header"]], "emoji": True}},
        _section(_summary(alerts, queues), LIMITS["section_text"]),
        _section(f"*Reasons*\n{_reasons(alerts)}", LIMITS["section_text"]),
        _section(_listing(alerts, console_base), LIMITS["section_text"]),
        {"type": "context", "elements": [{"type": "mrkdwn", "verbatim": True, "text": (
            "Operational alert from the detector itself, not a change in your estate. Fix the cause, then "
            "inspect or replay the stored messages.")}]},
    ]
    per_queue = ", ".join(f"{n} {_safe(q, 60)}" for q, n in queues.items())
    fallback = cut(f"mcd: {len(alerts)} {noun} kept for a person ({per_queue})", LIMITS["fallback_text"])
    payload = {"text": fallback, "blocks": blocks,
               "unfurl_links": False, "unfurl_media": False}
    if check_limits(payload):  # never expected: every piece is clipped
        payload["blocks"] = blocks[:2]
    return payload


def _render_health(alerts: Sequence[Outcome]) -> dict[str, Any]:
    """The dead-man's switch: an outage started (what is silent, what to check) or ended."""
    opened = [o for o in alerts if o.extra.get("state") != "closed"]
    if opened:
        title = ":rotating_light: mcd itself is hurt: alerts may be missing"
    else:
        title = ":white_check_mark: mcd recovered"
    lines = []
    for alert in sorted(alerts, key=lambda o: str(o.at))[:MAX_LINES]:
        key = str(alert.extra.get("outage") or "")
        advice = "" if alert.extra.get("state") == "closed" else HEALTH_ADVICE.get(key.split(":", 1)[0], "")
        since = _safe(alert.extra.get("since"), 40)
        lines.append(f"• {_safe(alert.reason, 300)} (last sign of life {since}). {advice}".rstrip())
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title[: LIMITS["header"]], "emoji": True}},
        _section("\n".join(lines), LIMITS["section_text"]),
        {"type": "context", "elements": [{"type": "mrkdwn", "verbatim": True, "text": (
            "Operational alert from the detector's dead-man's switch, not a change in your estate. Until it "
            "recovers, no alert does not mean no change.")}]},
    ]
    fallback = cut(f"{title.split(' ', 1)[1]}: {'; '.join(_safe(o.reason, 200) for o in alerts)}",
                   LIMITS["fallback_text"])
    return {"text": fallback, "blocks": blocks, "unfurl_links": False, "unfurl_media": False}


def _summary(alerts: Sequence[Outcome], queues: Counter[str]) -> str:
    """How many per queue, and how many changes inside them are still reported."""
    counts = ", ".join(f"*{n}* {_safe(QUEUE_LABELS.get(q, q), 60)}" for q, n in queues.most_common())
    summary = [f"{counts}. Each is stored with its reason in the archive bucket; nothing was dropped."]
    reported = sum(len(_list(o.extra.get("still_reported"))) for o in alerts)
    if reported:
        summary.append(f"{reported} change(s) inside them are still reported, without an author.")
    return " ".join(summary)


def _reasons(alerts: Sequence[Outcome]) -> str:
    """The five most frequent reasons (without the quoted input), with their counts."""
    by_reason = Counter(_safe(_short_reason(o.reason), _REASON_CHARS) for o in alerts)
    return "\n".join(f"• {n} × {reason}" for reason, n in by_reason.most_common(5))


def _listing(alerts: Sequence[Outcome], console_base: ConsoleBase) -> str:
    """One line per dead letter, oldest first, whole lines only (a cut could break a link)."""
    lines: list[str] = []
    used = 0
    for alert in sorted(alerts, key=lambda o: str(o.at))[:MAX_LINES]:
        line = _line(alert, console_base)
        if used + len(line) + 1 > LIMITS["section_text"] - 120:
            break
        lines.append(line)
        used += len(line) + 1
    if len(lines) < len(alerts):
        lines.append(f"… and {len(alerts) - len(lines)} more under `dead-letter/` in the archive bucket")
    return "\n".join(lines)


def _line(alert: Outcome, console_base: ConsoleBase) -> str:
    parts = [f"• *{_safe(QUEUE_LABELS.get(_queue(alert), _queue(alert)), 60)}*: {_safe(alert.reason, _REASON_CHARS)}"]
    undelivered = alert.extra.get("undelivered")
    if isinstance(undelivered, str) and undelivered:
        parts.append(f"alert: {_safe(undelivered, 120)}")
    still = [_safe(s, 80) for s in _list(alert.extra.get("still_reported")) if isinstance(s, str)][:3]
    if still:
        parts.append("still reported: " + ", ".join(still))
    parts.append(_stored_at(alert, console_base))
    return " — ".join(parts)


def _stored_at(alert: Outcome, console_base: ConsoleBase) -> str:
    """A link to the stored message, or its key when no link can be built."""
    bucket, key = alert.archive_bucket, alert.archive_key
    url = None
    if bucket is not None and key is not None:
        url = s3_object_url(bucket, key, alert.partition or "aws", console_base=console_base)
    return f"<{escape_mrkdwn(url)}|stored message>" if url else f"stored at {_safe(alert.archive_key, 160)}"


def _section(text: str, limit: int) -> dict[str, Any]:
    text = cut(text, limit)
    return {"type": "section", "text": {"type": "mrkdwn", "text": text or " ", "verbatim": True}}  # no auto-links


def _short_reason(reason: Any) -> str:
    """The reason without the quoted input, so equal causes count together."""
    text = str(reason or "no reason recorded")
    return text.split(" (", 1)[0].split(": the text", 1)[0][:_REASON_CHARS]


def _safe(value: Any, limit: int) -> str:
    """Event text made safe for mrkdwn by the one rule every Slack message uses (``slack.text.esc``)."""
    return esc(value if value is not None else "", limit)


def _queue(alert: Outcome) -> str:
    queue = alert.extra.get("queue")
    return queue if isinstance(queue, str) and queue else "unknown queue"


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
