"""Any value as one line of display text (pure, stdlib only).

Outcomes carry event-sourced values of any type and content; whoever shows one (the Slack room, the
severity reasons) reads it through these functions, so an odd value becomes text instead of a crash and
text that reads differently than it looks (control, bidi and zero-width characters) loses those characters.
Mrkdwn escaping and link defusing stay in ``chalicelib.slack.text``: they are Slack's rules, not the text's.
"""

from __future__ import annotations

import json
import re
from typing import Any

# Removed from event text: C0/C1 controls; every Unicode format character (category Cf: soft hyphen,
# Arabic letter mark, zero-width space/joiners, LRM/RLM, bidi embeddings, overrides and isolates, word
# joiner and invisible operators, BOM, interlinear annotations, tag characters, ...); characters that
# render as nothing (combining grapheme joiner, Hangul and Khmer fillers, Mongolian variation
# selectors); lone surrogates and noncharacters (they would make a JSON payload unacceptable).
DROP_CHARS = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\xad\u034f\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2"
    "\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f\u3164\ud800-\udfff"
    "\ufeff\uffa0\ufff9-\ufffb\ufffe\uffff\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3"
    "\U0001d173-\U0001d17a\U000e0000-\U000e007f]"
)
_LINE_BREAKS = re.compile("[\r\n\t\u2028\u2029\x85]+")


def compact_json(value: Any) -> str:
    """``value`` as compact JSON; ``<type>`` for what JSON cannot hold (cycles, too deep)."""
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    except (TypeError, ValueError, RecursionError):
        return f"<{type(value).__name__}>"


def text_of(value: Any) -> str:
    """Any value as display text: strings as they are, ``None`` as ``""``, others as compact JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return compact_json(value)


def optional_text(value: Any) -> str | None:
    """``None`` stays ``None``; anything else is text (``text_of``)."""
    return None if value is None else text_of(value)


def nonblank(value: Any) -> str | None:
    """The value as text when it has more than whitespace, else ``None``."""
    if value is None:
        return None
    text = text_of(value)
    return text if text.strip() else None


def one_line(value: Any) -> str:
    """One line of display text without control, format (bidi, zero-width, soft hyphen …) or invisible characters."""
    return DROP_CHARS.sub("", _LINE_BREAKS.sub(" ", text_of(value)))


def clip(text: str, limit: int) -> str:
    """``text`` shortened to ``limit`` characters, marked with an ellipsis."""
    if len(text) <= limit:
        return text
    return text[: max(limit - 1, 0)] + "…"
