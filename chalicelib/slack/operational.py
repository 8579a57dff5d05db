"""Slack rendering of operational alerts (``dead_letter`` outcomes): pure, no I/O.

``render_operational`` turns one or many dead-letter alerts into ONE message: a count per queue and
reason, then one line per dead letter (reason, what it still reported, a link to the stored object).
Reasons may quote the input that failed, so every piece of text is escaped for mrkdwn, stripped of
control characters, defused of ``@channel``-style broadcasts and clipped; mrkdwn objects are
``verbatim`` (Slack links nothing by itself) and links are built only by ``slack_render.s3_object_url``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from chalicelib.core.outcomes import OPERATIONAL_KINDS, Outcome

QUEUE_LABELS = {
    "dispatch_queue": "Config notification (dispatch)",
    "lookup_queue": "attribution job (lookup)",
    "slack_queue": "Slack alert not delivered",
}
MAX_LINES = 15
_REASON_CHARS = 160
_DROP = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")
_BROADCAST = re.compile(r"@(channel|here|everyone)\b", re.IGNORECASE)


def is_operational(outcomes: Sequence[Any]) -> bool:
    """``True`` when every outcome is an operational alert (what ``render_operational`` takes)."""
    return bool(outcomes) and all(getattr(o, "kind", None) in OPERATIONAL_KINDS for o in outcomes)


def render_operational(outcomes: Sequence[Outcome], *, console_base: str | None = None) -> dict[str, Any]:
    """One Slack payload (``text`` + ``blocks``) for one or many dead-letter alerts."""
    from chalicelib.slack.render import LIMITS, check_limits

    alerts = [o for o in outcomes if getattr(o, "kind", None) in OPERATIONAL_KINDS]
    if not alerts:
        raise ValueError("no operational alerts to render")
    queues = Counter(_queue(o) for o in alerts)
    reported = sum(len(_list(_extra(o).get("still_reported"))) for o in alerts)
    noun = "dead letter" if len(alerts) == 1 else "dead letters"
    title = f":rotating_light: mcd: {len(alerts)} {noun} kept for a person"
    counts = ", ".join(f"*{n}* {_safe(QUEUE_LABELS.get(q, q), 60)}" for q, n in queues.most_common())
    by_reason = Counter(_safe(_short_reason(o.reason), _REASON_CHARS) for o in alerts)
    summary = [f"{counts}. Each is stored with its reason in the archive bucket; nothing was dropped."]
    if reported:
        summary.append(f"{reported} change(s) inside them are still reported, without an author.")
    reasons = "\n".join(f"• {n} × {reason}" for reason, n in by_reason.most_common(5))
    lines: list[str] = []
    used = 0
    for alert in sorted(alerts, key=lambda o: str(o.at))[:MAX_LINES]:
        line = _line(alert, console_base)
        if used + len(line) + 1 > LIMITS["section_text"] - 120:  # whole lines only: a cut could break a link
            break
        lines.append(line)
        used += len(line) + 1
    if len(lines) < len(alerts):
        lines.append(f"… and {len(alerts) - len(lines)} more under `dead-letter/` in the archive bucket")
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title[: LIMITS["header"]], "emoji": True}},
        _section(" ".join(summary), LIMITS["section_text"]),
        _section(f"*Reasons*\n{reasons}", LIMITS["section_text"]),
        _section("\n".join(lines), LIMITS["section_text"]),
        {"type": "context", "elements": [{"type": "mrkdwn", "verbatim": True, "text": (
            "Operational alert from the detector itself, not a change in your estate. Fix the cause, then "
            "inspect or replay the stored messages.")}]},
    ]
    fallback = f"mcd: {len(alerts)} {noun} kept for a person ({', '.join(f'{n} {q}' for q, n in queues.items())})"
    payload = {"text": fallback[: LIMITS["fallback_text"]], "blocks": blocks,
               "unfurl_links": False, "unfurl_media": False}
    if check_limits(payload):  # never expected: every piece is clipped
        payload["blocks"] = blocks[:2]
    return payload


def _line(alert: Outcome, console_base: str | None) -> str:
    from chalicelib.slack.render import escape_mrkdwn, s3_object_url

    extra = _extra(alert)
    parts = [f"• *{_safe(QUEUE_LABELS.get(_queue(alert), _queue(alert)), 60)}*: {_safe(alert.reason, _REASON_CHARS)}"]
    undelivered = extra.get("undelivered")
    if isinstance(undelivered, str) and undelivered:
        parts.append(f"alert: {_safe(undelivered, 120)}")
    still = [_safe(s, 80) for s in _list(extra.get("still_reported")) if isinstance(s, str)][:3]
    if still:
        parts.append("still reported: " + ", ".join(still))
    url = None
    if isinstance(alert.archive_bucket, str) and isinstance(alert.archive_key, str):
        try:
            url = s3_object_url(alert.archive_bucket, alert.archive_key, str(alert.partition or "aws"),
                                console_base=console_base)
        except Exception:
            url = None
    label = "stored message"
    parts.append(f"<{escape_mrkdwn(url)}|{label}>" if url else f"stored at {_safe(alert.archive_key, 160)}")
    return " — ".join(parts)


def _section(text: str, limit: int) -> dict[str, Any]:
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return {"type": "section", "text": {"type": "mrkdwn", "text": text or " ", "verbatim": True}}  # no auto-links


def _short_reason(reason: Any) -> str:
    """The reason without the quoted input, so equal causes count together."""
    text = str(reason or "no reason recorded")
    return text.split(" (", 1)[0].split(": the text", 1)[0][:_REASON_CHARS]


def _safe(value: Any, limit: int) -> str:
    """Text made safe for mrkdwn (escaped, no control characters, no broadcasts, no code spans), clipped."""
    text = _DROP.sub(" ", str(value if value is not None else "")).replace("`", "ˋ")
    text = _BROADCAST.sub("@\u2060\\1", text)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _queue(alert: Outcome) -> str:
    queue = _extra(alert).get("queue")
    return queue if isinstance(queue, str) and queue else "unknown queue"


def _extra(alert: Outcome) -> Mapping[str, Any]:
    return alert.extra if isinstance(alert.extra, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
