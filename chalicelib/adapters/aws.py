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
            found = self._clients[key] = self._new(service, key[1], {})
        return found

    def with_credentials(self, service: str, region: str, credentials: dict[str, Any]) -> Any:
        """A new client acting with ``credentials`` (an assumed role's); the caller caches it."""
        return self._new(service, region, {"aws_access_key_id": credentials["AccessKeyId"],
                                           "aws_secret_access_key": credentials["SecretAccessKey"],
                                           "aws_session_token": credentials["SessionToken"]})

    def _new(self, service: str, region: str | None, credentials: dict[str, str]) -> Any:
        import boto3
        from botocore.config import Config

        retries = {"max_attempts": 1, "mode": "standard"} if service == "cloudtrail" else {
            "max_attempts": 4, "mode": "standard"}
        found = boto3.client(service, region_name=region, config=Config(retries=retries, **_TIMEOUTS), **credentials)
        if self._on_create:
            self._on_create(service, region, found)
        return found
