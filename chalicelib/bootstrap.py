"""Composition root: the stage's environment, settings, clock and adapters, built lazily and cached.

``deps()`` is what the handlers in ``app.py`` use. Nothing here runs at import time. Tests and the
replay build their own ``Deps`` with a simulated clock and hooks on the boto3 clients.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chalicelib.adapters.aws import ClientFactory
from chalicelib.core.errors import ConfigurationError

if TYPE_CHECKING:
    from chalicelib.adapters.archive import Archive
    from chalicelib.adapters.cloudtrail import LookupClient
    from chalicelib.adapters.queues import Queue
    from chalicelib.adapters.secrets import SecretReader
    from chalicelib.adapters.state import StateTable
    from chalicelib.core.settings import Settings

log = logging.getLogger("mcd.bootstrap")

DEFAULT_SETTINGS_FILE = Path(__file__).with_name("default_settings.json")
SETTINGS_TTL_SECONDS = 60


@dataclass(frozen=True)
class Environment:
    """Resource names and knobs from the stage's environment variables (set by ``.chalice/config.json``)."""

    home_region: str
    dispatch_queue_url: str
    dispatch_dlq_url: str
    lookup_queue_url: str
    lookup_dlq_url: str
    slack_queue_url: str
    slack_dlq_url: str
    archive_bucket: str
    state_table: str
    slack_secret: str
    settings_ref: str
    budget_seconds: float

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Environment:
        def need(key: str) -> str:
            value = environ.get(key, "").strip()
            if not value:
                raise ConfigurationError(f"environment variable {key} is not set (see docs/configuration.md)")
            return value

        return cls(
            home_region=environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or "us-east-1",
            dispatch_queue_url=need("MCD_DISPATCH_QUEUE_URL"),
            dispatch_dlq_url=need("MCD_DISPATCH_DLQ_URL"),
            lookup_queue_url=need("MCD_LOOKUP_QUEUE_URL"),
            lookup_dlq_url=need("MCD_LOOKUP_DLQ_URL"),
            slack_queue_url=need("MCD_SLACK_QUEUE_URL"),
            slack_dlq_url=need("MCD_SLACK_DLQ_URL"),
            archive_bucket=need("MCD_ARCHIVE_BUCKET"),
            state_table=need("MCD_STATE_TABLE"),
            slack_secret=environ.get("MCD_SLACK_SECRET", "").strip(),
            settings_ref=environ.get("MCD_SETTINGS", "").strip(),
            budget_seconds=float(environ.get("MCD_BUDGET_SECONDS", "45")),
        )


class Deps:
    """Everything a stage needs; adapters are created on first use."""

    def __init__(self, env: Environment, clients: ClientFactory | None = None,
                 clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep) -> None:
        self.env = env
        self.clients = clients or ClientFactory(env.home_region)
        self.clock = clock
        self.sleep = sleep
        self._cache: dict[str, Any] = {}
        self.memory: dict[str, Any] = {}  # what a warm container remembers between invocations
        self._settings: tuple[float, Settings] | None = None

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), tz=timezone.utc)

    def deadline(self, budget: float | None = None) -> float:
        return self.clock() + (budget if budget is not None else self.env.budget_seconds)

    def _memo(self, key: str, build: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]

    def queue(self, name: str) -> Queue:
        from chalicelib.adapters.queues import Queue

        url = getattr(self.env, f"{name}_url")
        return self._memo(f"queue:{name}", lambda: Queue(self.clients.client("sqs"), url))

    @property
    def archive(self) -> Archive:
        from chalicelib.adapters.archive import Archive

        return self._memo("archive", lambda: Archive(self.clients.client("s3"), self.env.archive_bucket))

    @property
    def state(self) -> StateTable:
        from chalicelib.adapters.state import StateTable

        return self._memo("state", lambda: StateTable(self.clients.client("dynamodb"), self.env.state_table))

    @property
    def lookups(self) -> LookupClient:
        from chalicelib.adapters.cloudtrail import LookupClient

        return self._memo("lookups", lambda: LookupClient(
            lambda region: self.clients.client("cloudtrail", region), self.clock, self.sleep))

    @property
    def secrets(self) -> SecretReader:
        from chalicelib.adapters.secrets import SecretReader

        return self._memo("secrets", lambda: SecretReader(self.clients.client, self.clock))

    def settings(self) -> Settings:
        """The current settings, re-read at most once a minute; the last good copy survives a bad edit."""
        from chalicelib.core.settings import Settings

        now = self.clock()
        if self._settings and now - self._settings[0] < SETTINGS_TTL_SECONDS:
            return self._settings[1]
        try:
            document = self._read_settings_document()
            try:
                loaded = Settings.from_dict(document)
            except ConfigurationError as error:
                # Keep alerting: use what is valid, say loudly what was not.
                log.error(json.dumps({"event": "settings_invalid", "reason": str(error)[:500],
                                      "action": "unknown keys and unusable trusted principals are ignored"}))
                loaded = Settings.from_dict(document, lenient=True)
        except Exception as error:
            if self._settings is None:
                raise
            log.error(json.dumps({"event": "settings_rejected", "reason": str(error)[:500]}))
            loaded = self._settings[1]
        self._settings = (now, loaded)
        return loaded

    def _read_settings_document(self) -> dict[str, Any]:
        from chalicelib.adapters.archive import read_object

        ref = self.env.settings_ref
        if not ref:
            return json.loads(DEFAULT_SETTINGS_FILE.read_text())
        if ref.startswith("ssm:"):
            value = self.clients.client("ssm").get_parameter(Name=ref[4:], WithDecryption=True)["Parameter"]["Value"]
        elif ref.startswith("s3://"):
            bucket, _, key = ref[5:].partition("/")
            value = read_object(self.clients.client("s3"), bucket, key)
        else:
            raise ConfigurationError(f"MCD_SETTINGS must start with ssm: or s3://, not {ref[:20]!r}")
        try:
            return json.loads(value)
        except ValueError as error:
            raise ConfigurationError(f"settings at {ref} are not valid JSON: {error}") from error


_deps: Deps | None = None


def deps() -> Deps:
    global _deps
    if _deps is None:
        logging.getLogger("mcd").setLevel(logging.INFO)
        _deps = Deps(Environment.from_env(os.environ))
    return _deps


def install(custom: Deps) -> None:
    """Use ``custom`` for every handler from now on (tests, replay, demo)."""
    global _deps
    _deps = custom


def reset() -> None:
    global _deps
    _deps = None
