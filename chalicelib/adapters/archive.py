"""The S3 archive of received notifications, and reads of Config's oversized-item objects."""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import Any

from chalicelib.core.errors import MalformedInput
from chalicelib.parsing.envelopes import inflate_chunks

_GZIP_MAGIC = b"\x1f\x8b"


class Archive:
    def __init__(self, client: Any, bucket: str) -> None:
        self._s3 = client
        self.bucket = bucket

    def put(self, key: str, body: str | bytes, *, metadata: dict[str, str] | None = None) -> None:
        data = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body  # kept exactly as received
        safe = {k: "".join(c if " " <= c <= "~" else "_" for c in v[:512]) for k, v in (metadata or {}).items()}
        # A checksum, always: a bucket with Object Lock refuses uploads without one, and the Lambda runtime's
        # boto3 may predate the versions that send one by default.
        self._s3.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType="application/json", Metadata=safe,
                            ChecksumAlgorithm="SHA256")

    def get_text(self, key: str, bucket: str | None = None) -> str:
        return read_object(self._s3, bucket or self.bucket, key)


MAX_OBJECT_BYTES = 8 * 2**20
"""At most this much of an S3 object is read (Config's oversized items: a few MB compressed at most)."""
MAX_OBJECT_TEXT = 16 * 2**20
"""At most this much text is inflated from a gzip object (a 0.6 MB gzip bomb would otherwise be 600 MB)."""
_CHUNK = 2**20


def read_object(s3: Any, bucket: str, key: str, *, max_bytes: int | None = None,
                max_text: int | None = None) -> str:
    """An object's text, gunzipped when it is gzip (Config writes oversized items as .json.gz).

    Never reads more than ``max_bytes`` of the object nor inflates more than ``max_text``: an object
    over either limit raises ``MalformedInput`` naming the limit (unreadable input, not a crash).
    """
    max_bytes = MAX_OBJECT_BYTES if max_bytes is None else max_bytes
    max_text = MAX_OBJECT_TEXT if max_text is None else max_text
    response = s3.get_object(Bucket=bucket, Key=key)
    body = response["Body"]
    try:
        size = response.get("ContentLength")
        if isinstance(size, int) and size > max_bytes:
            raise MalformedInput(f"s3://{bucket}/{key} is {size} bytes, over the {max_bytes} byte limit: not read")
        first = body.read(min(_CHUNK, max_bytes + 1))
        if first[:2] == _GZIP_MAGIC:
            data = inflate_chunks(_chunks(body, first, bucket, key, max_bytes), limit=max_text)
        else:
            data = b"".join(_chunks(body, first, bucket, key, min(max_bytes, max_text)))
    except zlib.error as error:
        raise MalformedInput(f"s3://{bucket}/{key}: gzip data is truncated or corrupt ({error})") from None
    except MalformedInput as error:
        raise MalformedInput(f"s3://{bucket}/{key}: {error}" if "s3://" not in str(error) else str(error)) from None
    finally:
        body.close()
    return data.decode("utf-8", errors="replace")


def _chunks(body: Any, first: bytes, bucket: str, key: str, limit: int) -> Iterator[bytes]:
    """The object's bytes in chunks; ``MalformedInput`` once more than ``limit`` bytes arrived."""
    total = len(first)
    chunk = first
    while chunk:
        if total > limit:
            raise MalformedInput(f"s3://{bucket}/{key} is over the {limit} byte limit: not read further")
        yield chunk
        chunk = body.read(min(_CHUNK, limit + 1 - total))
        total += len(chunk)
