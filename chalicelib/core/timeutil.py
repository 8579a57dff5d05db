"""Time parsing and formatting: every time inside mcd is an aware UTC ``datetime``."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

_COMPACT = re.compile(r"^(\d{8})T(\d{6})Z$")
_OFFSET = re.compile(r"T?[0-9:.]+[+-]\d{2}:?\d{2}$")
_HUMAN_FORMATS = ("%b %d, %Y %I:%M:%S %p", "%b %d, %Y, %I:%M:%S %p")


def parse_time(value: Any) -> datetime | None:
    """Parse the time spellings AWS uses; ``None`` for anything unreadable.

    Accepts ISO-8601 with ``Z``, fractions or an offset, a trailing ``UTC`` or ``GMT`` (with or
    without a space: ``2017-01-09T22:50:14.328UTC``, ``2014-11-12 10:02:58 UTC``), the compact
    ``20131102T010628Z`` form, epoch seconds or milliseconds, and ``datetime`` objects.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, (int, float)):
        seconds = value / 1000 if value > 1e11 else value
        try:
            return datetime.fromtimestamp(seconds, tz=timezone.utc)
        except (OverflowError, OSError, ValueError):
            return None
    if not isinstance(value, str):
        return None
    try:  # the common spelling, fast (Python 3.11+ reads "Z"); odd ones take the slow path below
        parsed = datetime.fromisoformat(value)
    except ValueError:
        pass
    else:
        return parsed.astimezone(timezone.utc) if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    text = value.strip()
    if not text:
        return None
    match = _COMPACT.match(text)
    if match:
        text = f"{match[1][:4]}-{match[1][4:6]}-{match[1][6:]}T{match[2][:2]}:{match[2][2:4]}:{match[2][4:]}Z"
    text = _without_zone_name(text)
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        parsed = _parse_human(text)
        if parsed is None:
            return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def _without_zone_name(text: str) -> str:
    """``2017-01-09T22:50:14.328UTC``, ``... 22:50:14 UTC``, ``...Z UTC`` or ``GMT``: the name means UTC.

    The zone name is dropped and ``Z`` written unless the text already carries ``Z`` or an offset.
    """
    if text[-3:].upper() not in ("UTC", "GMT"):
        return text
    text = text[:-3].rstrip()
    if text.endswith(("Z", "z")) or _OFFSET.search(text):
        return text
    return text + "Z"


def _parse_human(text: str) -> datetime | None:
    text = text.removesuffix("+00:00").rstrip()  # "Mar 24, 2014 9:11:59 PM UTC" arrives as "...PM+00:00"
    for fmt in _HUMAN_FORMATS:
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    return None


def iso(value: datetime | None) -> str | None:
    """ISO-8601 UTC with ``Z``; milliseconds only when present."""
    if value is None:
        return None
    if value.utcoffset():
        value = value.astimezone(timezone.utc)
    text = value.isoformat()  # 2024-03-12T14:02:11[.123456]+00:00
    return (text[:23] if value.microsecond else text[:19]) + "Z"

