"""The I/O the stages depend on, as structural types: what a stage may call, and nothing more.

The adapters in ``chalicelib.adapters`` (boto3, slack_sdk) and the in-memory fakes in
``chalicelib.adapters.memory`` both satisfy these protocols without inheriting from them, so a stage
typed against a port runs unchanged on AWS, on moto, or in memory in a few milliseconds. Each
protocol lists only the members the stages use; ``tests/adapters/test_ports.py`` checks that every
adapter and its fake offer them with the same parameters.

This module imports only the core: the value types crossing a port are protocols (a received message, a
secret) or plain data defined here (Slack's classified answer, ``Delivery``), so ports never depend on an
adapter.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from chalicelib.core.model import TrailEvent
from chalicelib.core.organization import Directory
from chalicelib.core.settings import Settings

Clock = Callable[[], float]
"""Epoch seconds now (``time.time`` in Lambda; a simulated clock in tests and the replay)."""
Sleep = Callable[[float], None]
"""Wait this many seconds (``time.sleep``; a simulated clock moves instead)."""


class ReceivedMessage(Protocol):
    """One message as received from a queue (``adapters.queues.Message``)."""

    @property
    def body(self) -> str: ...
    @property
    def receipt(self) -> str: ...
    @property
    def message_id(self) -> str: ...
    @property
    def receive_count(self) -> int: ...
    @property
    def attributes(self) -> dict[str, str]: ...

    def json(self) -> Any: ...


class MessageQueue(Protocol):
    """An SQS queue between stages (``adapters.queues.Queue``): at-least-once, delayed, redriven."""

    def send(self, body: Any, *, delay_seconds: float = 0, attributes: dict[str, str] | None = None) -> None: ...

    def send_many(self, bodies: list[Any], *, delay_seconds: float = 0,
                  attributes: dict[str, str] | None = None) -> None: ...

    def receive(self, max_messages: int = 10, visibility_timeout: int | None = None) -> Sequence[ReceivedMessage]:
        ...

    def delete(self, messages: list[Any]) -> None:
        """Delete ``messages`` as ``receive`` returned them (a stale receipt deletes nothing)."""


class ObjectArchive(Protocol):
    """The S3 archive bucket (``adapters.archive.Archive``); ``get_text`` also reads Config's bucket."""

    bucket: str

    def put(self, key: str, body: str | bytes, *, metadata: dict[str, str] | None = None) -> None: ...

    def get_text(self, key: str, bucket: str | None = None) -> str: ...


class StateStore(Protocol):
    """The DynamoDB state table (``adapters.state.StateTable``): markers and capture history.

    ``put`` overwrites (last writer wins); ``get`` returns every attribute as text, keys and
    ``expires_at`` included; ``latest_before`` is a strongly consistent range read.
    """

    def put(self, pk: str, sk: str, now: float, ttl_days: int = 14, **attrs: str) -> None: ...

    def get(self, pk: str, sk: str) -> dict[str, str] | None: ...

    def latest_before(self, pk: str, prefix: str, before_sk: str) -> str | None: ...

    def put_many(self, rows: Sequence[tuple[str, str, dict[str, str]]], now: float, ttl_seconds: int) -> None:
        """Write ``(pk, sk, attributes)`` rows in batches (the recent-calls index); all or raise."""
        ...

    def between(self, pk: str, low: str, high: str, *, limit: int = 1000) -> list[dict[str, str]]:
        """The rows of ``pk`` whose sort key is in ``[low, high]``, in order, at most ``limit`` (consistent read)."""
        ...


class LookupCounters(Protocol):
    """How many ``LookupEvents`` pages were requested, and how many were throttled."""

    calls: int
    throttled: int


class TrailLookups(Protocol):
    """CloudTrail event history (``adapters.cloudtrail.LookupClient``): newest first, paged, windowed."""

    @property
    def stats(self) -> LookupCounters: ...

    def lookup(self, region: str, attribute: str, value: str, start: datetime | None = None,
               end: datetime | None = None, max_pages: int = 20,
               account: str | None = None) -> tuple[list[TrailEvent], bool]:
        """``account``: another account's history, through its lookup role (raises ``AccountUnreachable``)."""
        ...


class OrganizationDirectory(Protocol):
    """AWS Organizations' accounts, names and OUs (``adapters.organizations.OrganizationReader``), cached.

    ``directory`` never raises: an organisation that cannot be read is an empty ``Directory``. Call it only
    when something needs it (an OU scope, an account name not in ``account_aliases``).
    """

    def directory(self) -> Directory: ...


class SecretValue(Protocol):
    """A secret that shows its value only when asked (``adapters.secrets.Secret``)."""

    def reveal(self) -> str: ...


class SecretSource(Protocol):
    """Secrets Manager / SSM SecureString reads (``adapters.secrets.SecretReader``)."""

    def read(self, ref: str) -> SecretValue: ...


# chat.update refusals after which a new message is the way to go (Slack's error codes).
UPDATE_GONE_ERRORS = ("message_not_found", "cant_update_message", "edit_window_closed")


@dataclass(frozen=True)
class Delivery:
    """Slack's answer to one call, classified by the adapter: what the stage does next depends on it alone."""

    status: str  # "ok", "retry" or "permanent"
    detail: str = ""
    retry_after: float | None = None
    ts: str | None = None
    channel: str | None = None
    code: str | None = None  # Slack's error code or the HTTP status, when Slack gave one
    whole_destination: bool = False  # a permanent refusal of the webhook/token/channel, not of this message
    unavailable: bool = False  # "retry" because Slack was unreachable, failing or rate limiting: wait, never give up

    @property
    def message_gone(self) -> bool:
        """A refused ``chat.update`` of a message that can no longer be edited: post a new one instead."""
        return self.status == "permanent" and self.code in UPDATE_GONE_ERRORS


class SlackPoster(Protocol):
    """Posting to Slack: the module ``adapters.slack`` itself satisfies this, as does a recording fake."""

    def post_webhook(self, url: Any, payload: dict[str, Any]) -> Delivery: ...

    def post_bot(self, token: Any, channel: str, payload: dict[str, Any], update_ts: str | None = None,
                 base_url: str | None = None) -> Delivery: ...


class MetricSink(Protocol):
    """Metrics people graph (``adapters.metrics.EmfMetrics``: EMF lines on standard output, no API call)."""

    def record(self, name: str, value: float, unit: str = "Count", **dimensions: str) -> None: ...


class StageEnvironment(Protocol):
    """The parts of ``bootstrap.Environment`` the stages read."""

    @property
    def home_region(self) -> str: ...
    @property
    def slack_secret(self) -> str: ...
    @property
    def budget_seconds(self) -> float: ...
    @property
    def account(self) -> str:
        """The detector's own account id ("" when unknown)."""
        ...


class StageDeps(Protocol):
    """What a stage receives (``bootstrap.Deps``, or ``adapters.memory.MemoryDeps`` in tests)."""

    @property
    def env(self) -> StageEnvironment: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def sleep(self) -> Sleep: ...
    @property
    def memory(self) -> dict[str, Any]: ...
    @property
    def archive(self) -> ObjectArchive: ...
    @property
    def state(self) -> StateStore: ...
    @property
    def lookups(self) -> TrailLookups: ...
    @property
    def secrets(self) -> SecretSource: ...
    @property
    def organization(self) -> OrganizationDirectory: ...

    @property
    def slack(self) -> SlackPoster: ...
    @property
    def metrics(self) -> MetricSink: ...

    def now(self) -> datetime: ...

    def deadline(self, budget: float | None = None) -> float: ...

    def queue(self, name: str) -> MessageQueue: ...

    def settings(self) -> Settings: ...
