"""The S3 archive of received notifications, and reads of Config's oversized-item objects."""

from __future__ import annotations

import gzip
from datetime import datetime
from typing import Any


def notification_key(account: str, region: str, when: datetime, message_id: str) -> str:
    """``AWSLogs/<account>/Config/<region>/<yyyy>/<m>/<d>/ConfigNotifications/<id>.json``, Config's own layout."""
    safe_id = "".join(c if c.isalnum() or c in "-_." else "_" for c in message_id)[:200] or "unknown"
    return (f"AWSLogs/{account}/Config/{region}/{when.year}/{when.month}/{when.day}/"
            f"ConfigNotifications/{safe_id}.json")


def dead_letter_key(queue: str, when: datetime, message_id: str) -> str:
    return f"dead-letter/{queue}/{when.year}/{when.month}/{when.day}/{message_id}.json"


class Archive:
    def __init__(self, client: Any, bucket: str) -> None:
        self._s3 = client
        self.bucket = bucket

    def put(self, key: str, body: str | bytes, *, metadata: dict[str, str] | None = None) -> None:
        data = body.encode() if isinstance(body, str) else body
        self._s3.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType="application/json",
                            Metadata=metadata or {})

    def get_text(self, key: str, bucket: str | None = None) -> str:
        return read_object(self._s3, bucket or self.bucket, key)


def read_object(s3: Any, bucket: str, key: str) -> str:
    """An object's text, gunzipped when it is gzip (Config writes oversized items as .json.gz)."""
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    if body[:2] == b"\x1f\x8b":
        body = gzip.decompress(body)
    return body.decode("utf-8", errors="replace")


def split_s3_location(location: str) -> tuple[str, str] | None:
    """``bucket/key`` or ``s3://bucket/key`` (Config's ``s3BucketLocation``) → (bucket, key)."""
    text = location.strip()
    if text.startswith("s3://"):
        text = text[5:]
    if text.startswith("arn:aws") and ":::" in text:
        text = text.split(":::", 1)[1]
    bucket, _, key = text.partition("/")
    return (bucket, key) if bucket and key else None
