"""Read the Slack webhook URL or bot token at run time, cached per container for a short TTL.

``ref`` is a Secrets Manager secret id/ARN, or ``ssm:/parameter/name`` for an SSM SecureString. A
secret may hold the bare value or JSON with ``url``/``webhook_url``/``token``. The value is wrapped
in ``Secret`` whose repr never shows it, so it cannot leak into logs or exceptions by accident.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

TTL_SECONDS = 300


class Secret:
    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret(***)"

    __str__ = __repr__


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
        if ref.startswith("ssm:"):
            raw = self._client("ssm").get_parameter(Name=ref[4:], WithDecryption=True)["Parameter"]["Value"]
        else:
            raw = self._client("secretsmanager").get_secret_value(SecretId=ref).get("SecretString") or ""
        secret = Secret(_unwrap(raw))
        self._cache[ref] = (now, secret)
        return secret


def _unwrap(raw: str) -> str:
    text = raw.strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            return text
        for key in ("url", "webhook_url", "webhook", "token", "bot_token"):
            if isinstance(data.get(key), str):
                return data[key]
    return text
