"""Where the archive bucket keeps things: the one key layout, and the one rule for text inside a key.

Text that reaches a key (an account or region read from a notification, an SQS message id, a job's
name) may come from an attacker: ``key_part`` keeps ASCII letters, digits, ``-``, ``_`` and ``.`` and
replaces everything else, so a value can neither add a folder nor hide one.
"""

from __future__ import annotations

import re
from datetime import datetime

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def key_part(text: str, limit: int = 200) -> str:
    """``text`` made safe as one segment of an S3 key (never empty, never ``.`` or ``..``)."""
    safe = _UNSAFE.sub("_", text)[:limit]
    return safe if safe.strip(".") else "unknown"


def notification_key(account: str, region: str, when: datetime, message_id: str) -> str:
    """``AWSLogs/<account>/Config/<region>/<yyyy>/<m>/<d>/ConfigNotifications/<id>.json``, Config's own layout."""
    return (f"AWSLogs/{key_part(account, 64)}/Config/{key_part(region, 64)}/{when.year}/{when.month}/{when.day}/"
            f"ConfigNotifications/{key_part(message_id)}.json")


def dead_letter_key(queue: str, when: datetime, name: str) -> str:
    """``dead-letter/<queue>/<yyyy>/<m>/<d>/<name>.json``."""
    return f"dead-letter/{key_part(queue, 64)}/{when.year}/{when.month}/{when.day}/{key_part(name)}.json"


def split_s3_location(location: str) -> tuple[str, str] | None:
    """``bucket/key`` or ``s3://bucket/key`` (Config's ``s3BucketLocation``) → (bucket, key)."""
    text = location.strip()
    if text.startswith("s3://"):
        text = text[5:]
    if text.startswith("arn:aws") and ":::" in text:
        text = text.split(":::", 1)[1]
    bucket, _, key = text.partition("/")
    return (bucket, key) if bucket and key else None
