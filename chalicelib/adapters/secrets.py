"""Read the Slack webhook URL or bot token at run time, cached per container for a short TTL.

``ref`` is a Secrets Manager secret id/ARN, or ``ssm:/parameter/name`` for an SSM SecureString. A
secret may hold the bare value or JSON with ``url``/``webhook_url``/``webhook``/``token``/``bot_token``.
The value is re-read once ``TTL_SECONDS`` have passed, so a rotated secret is used without a
redeploy; when that re-read fails, the previous value is used for at most ``STALE_SECONDS`` more.

The value is wrapped in ``Secret`` whose repr and str never show it, so it cannot leak into logs or
exceptions by accident. While a value is fetched, botocore's DEBUG logging (which prints whole
response bodies) is held back, and errors name the reference, never the value.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

TTL_SECONDS = 300
STALE_SECONDS = 3600
VALUE_KEYS = ("url", "webhook_url", "webhook", "token", "bot_token")
# Loggers that, at DEBUG, print request or response bodies of AWS calls.
QUIET_LOGGERS = ("botocore.parsers", "botocore.endpoint", "botocore.hooks", "botocore.retryhandler",
                 "botocore.retries.standard", "botocore.httpsession", "botocore.awsrequest",
                 "urllib3.connectionpool")

log = logging.getLogger("mcd.secrets")


class Secret:
    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret(***)"

    __str__ = __repr__


class SecretError(RuntimeError):
    """A secret that cannot be used; the message names the reference, never the value."""


class SecretReader:
    def __init__(self, client: Callable[[str], Any], clock: Callable[[], float]) -> None:
        self._client = client
        self._clock = clock
        self._cache: dict[str, tuple[float, Secret]] = {}

    def read(self, ref: str) -> Secret:
        cached = self._cache.get(ref)
        now = self._clock()
        if cached and now - cached[0] < TTL_SECONDS:
            return cached[1]
        try:
            secret = Secret(_unwrap(self._fetch(ref), ref))
        except Exception as error:
            if cached and now - cached[0] < TTL_SECONDS + STALE_SECONDS:
                log.warning(json.dumps({"event": "secret_reread_failed", "ref": ref,
                                        "error": type(error).__name__, "using_previous_value": True}))
                return cached[1]
            raise
        self._cache[ref] = (now, secret)
        return secret

    def _fetch(self, ref: str) -> str:
        with _quiet_aws_logging():
            if ref.startswith("ssm:"):
                raw = self._client("ssm").get_parameter(Name=ref[4:], WithDecryption=True)["Parameter"]["Value"]
            else:
                raw = self._client("secretsmanager").get_secret_value(SecretId=ref).get("SecretString")
        if not isinstance(raw, str) or not raw.strip():
            raise SecretError(f"secret {ref} holds no text value")
        return raw


def _unwrap(raw: str, ref: str) -> str:
    text = raw.strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            raise SecretError(f"secret {ref} starts with '{{' but is not valid JSON") from None
        for key in VALUE_KEYS:
            if isinstance(data, dict) and isinstance(data.get(key), str) and data[key].strip():
                return data[key].strip()
        raise SecretError(f"secret {ref} is JSON without any of the keys {', '.join(VALUE_KEYS)}")
    return text


class _HoldBack(logging.Filter):
    """Drops records while this thread reads a secret."""

    def __init__(self) -> None:
        super().__init__()
        self.local = threading.local()

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(self.local, "depth", 0)


_HOLD_BACK = _HoldBack()


@contextmanager
def _quiet_aws_logging() -> Iterator[None]:
    for name in QUIET_LOGGERS:
        logger = logging.getLogger(name)
        if _HOLD_BACK not in logger.filters:
            logger.addFilter(_HOLD_BACK)
    _HOLD_BACK.local.depth = getattr(_HOLD_BACK.local, "depth", 0) + 1
    try:
        yield
    finally:
        _HOLD_BACK.local.depth -= 1
