"""Lazily created, cached boto3 clients with short timeouts.

Nothing is created at import time, so ``chalice package`` works offline and moto intercepts every
call in tests. ``on_create`` lets the replay attach its simulated CloudTrail to a client.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_TIMEOUTS = {"connect_timeout": 3, "read_timeout": 10}


class ClientFactory:
    def __init__(self, default_region: str | None = None,
                 on_create: Callable[[str, str | None, Any], None] | None = None) -> None:
        self._default_region = default_region
        self._on_create = on_create
        self._clients: dict[tuple[str, str | None], Any] = {}

    def client(self, service: str, region: str | None = None) -> Any:
        key = (service, region or self._default_region)
        found = self._clients.get(key)
        if found is None:
            import boto3
            from botocore.config import Config

            retries = {"max_attempts": 1, "mode": "standard"} if service == "cloudtrail" else {
                "max_attempts": 4, "mode": "standard"}
            found = boto3.client(service, region_name=key[1], config=Config(retries=retries, **_TIMEOUTS))
            if self._on_create:
                self._on_create(service, key[1], found)
            self._clients[key] = found
        return found
