"""Block Kit blocks, each cut to its limit; mrkdwn is always ``verbatim`` (Slack links nothing by itself)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from chalicelib.core.severity import HIGH, LOW, MEDIUM
from chalicelib.core.text import clip
from chalicelib.slack.limits import LIMITS
from chalicelib.slack.text import cut

SEVERITY_EMOJI = {HIGH: ":rotating_light:", MEDIUM: ":warning:", LOW: ":information_source:"}


def header(text: str) -> dict[str, Any]:
    return {
        "type": "header",
        "text": {"type": "plain_text", "text": clip(text, LIMITS["header"]), "emoji": True},
    }


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": cut(text, LIMITS["section_text"]), "verbatim": True}}


def fields(pairs: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """A section of ``*label*`` + value fields (already-safe mrkdwn)."""
    items = [
        {"type": "mrkdwn", "text": cut(f"*{label}*\n{value}", LIMITS["field_text"]), "verbatim": True}
        for label, value in pairs[: LIMITS["section_fields"]]
    ]
    return {"type": "section", "fields": items}


def context(*texts: str) -> dict[str, Any]:
    elements = [{"type": "mrkdwn", "text": cut(t, LIMITS["context_text"]), "verbatim": True}
                for t in texts if t][: LIMITS["context_elements"]]
    return {"type": "context", "elements": elements}


def divider() -> dict[str, Any]:
    return {"type": "divider"}


def minimal_blocks(payload: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Safety net: the header and the fallback text only (never expected to be needed)."""
    first = next((b for b in payload.get("blocks", []) if b.get("type") == "header"), None)
    blocks = [first] if first else []
    return [*blocks, section(cut(str(payload.get("text", "")), LIMITS["fallback_text"]))]
