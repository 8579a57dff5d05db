"""Text safety for Slack: event-sourced text made harmless for mrkdwn and plain_text (pure).

Event-sourced text (names, tags, session names, user agents, policy text, values, error messages)
reaches mrkdwn only through ``esc`` (``&`` ``<`` ``>`` escaped, backticks replaced, control/bidi
characters removed, ``@channel``-style words defused, nothing left that Slack would turn into a link)
and plain_text only through ``plain`` (``<`` ``>`` replaced by look-alikes). ``cut`` shortens text
that is already mrkdwn without breaking an entity, a link or a code span.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from chalicelib.core.text import clip, compact_json, nonblank, one_line, text_of

__all__ = [
    "clip", "code", "compact_json", "cut", "esc", "escape_mrkdwn", "fit_lines", "join_within", "nonblank",
    "one_line", "plain", "text_of",
]  # fmt: skip

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
_LINK_CHARS = frozenset("./\uff0e\u3002\uff61")


def escape_mrkdwn(text: str) -> str:
    """Escape the three characters Slack mrkdwn treats as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _no_links(text: str) -> str:
    """``text`` with nothing Slack would turn into a link: URL schemes and domain dots become look-alikes."""
    if _LINK_CHARS.isdisjoint(text):
        return text
    return _LINK_DOT.sub(_DOT_STANDIN, _SCHEME_SLASHES.sub(_SLASH_STANDIN * 2, text))


def _defuse(text: str) -> str:
    """``@channel``, ``@here`` and ``@everyone`` with an invisible word joiner: no broadcast."""
    return _BROADCAST.sub("@\u2060\\1", text)


def cut(text: str, limit: int) -> str:
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


def esc(value: Any, limit: int) -> str:
    """Event text made safe for mrkdwn, at most ``limit`` characters *after* escaping.

    Besides ``&`` ``<`` ``>``, backticks are replaced (event text can then neither open nor close a
    code span or block) and ``@channel``/``@here``/``@everyone`` get an invisible word joiner.
    """
    text = _defuse(_no_links(one_line(value).replace("`", _BACKTICK_STANDIN)))
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


def code(value: Any, limit: int) -> str:
    """Event text as an inline code span (safe, never empty)."""
    inner = esc(value, max(limit - 2, 1)) or " "
    return f"`{inner}`"


def plain(value: Any, limit: int) -> str:
    """Event text made harmless for a plain_text object (no ``<`` ``>`` at all)."""
    text = _no_links(one_line(value)).replace("<", "‹").replace(">", "›")
    return clip(_defuse(text), limit)


def join_within(parts: Sequence[str], budget: int, sep: str = " · ") -> str:
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


def fit_lines(lines: Sequence[str], budget: int, render_line: Callable[[str], str], *, noun: str = "more") -> list[str]:
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
