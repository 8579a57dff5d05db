"""A composition root on the in-memory fakes: ``MemoryDeps`` is a ``Deps`` whose every port is a fake.

Stage tests build one, run a stage on it and read what it did, with no AWS, no HTTP and no real time:
the clock is a ``ManualClock`` (the stage's own waits move it). It lives beside ``bootstrap`` rather than
in ``adapters`` because it builds a ``Deps`` (adapters never import the composition root).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from chalicelib.adapters.memory import (
    DEFAULT_START,
    MAX_RECEIVE_COUNT,
    ManualClock,
    MemoryArchive,
    MemoryLookups,
    MemoryMetrics,
    MemoryOrganization,
    MemoryQueue,
    MemorySecrets,
    MemoryState,
    RecordingSlack,
)
from chalicelib.adapters.state import DAY
from chalicelib.bootstrap import Deps, Environment
from chalicelib.core.organization import Directory

# As infra/stack.yaml and mcd_tools.sandbox (checked by tests/test_memory_deps.py).
VISIBILITY_TIMEOUTS = {"dispatch": 180, "lookup": 360, "slack": 180}
DLQ_VISIBILITY_TIMEOUT = 30
ASYNC_FAILED_VISIBILITY_TIMEOUT = 180
RETENTION_SECONDS = 14 * DAY


class _NoAws:
    """``MemoryDeps`` makes no AWS call: asking for a boto3 client is a bug in the test or the code."""

    def client(self, service: str, region: str | None = None) -> Any:
        raise AssertionError(f"MemoryDeps creates no AWS client (asked for {service} in {region or 'home'})")


def memory_environment(home_region: str = "us-east-1", *, slack_secret: str = "memory/slack-webhook",
                       budget_seconds: float | None = None, prefix: str = "mcd-memory") -> Environment:
    """An environment naming in-memory resources; ``budget_seconds`` defaults to ``Environment``'s own."""
    names: dict[str, Any] = {f"{name}_url": f"memory://{prefix}-{name}".replace("_", "-") for name in _QUEUE_NAMES}
    if budget_seconds is not None:
        names["budget_seconds"] = budget_seconds
    return Environment(home_region=home_region, archive_bucket=f"{prefix}-archive", state_table=f"{prefix}-state",
                       slack_secret=slack_secret, settings_ref="", **names)


_QUEUE_NAMES = ("dispatch_queue", "dispatch_dlq", "lookup_queue", "lookup_dlq", "slack_queue", "slack_dlq",
                "async_failed_queue")


class MemoryDeps(Deps):
    """``Deps`` on the in-memory fakes, with a ``ManualClock`` (``sleep`` moves it).

    ``settings`` is the settings document (``None``: the packaged defaults), read through ``Deps``'s own
    validation. ``organization`` is the AWS Organization's directory (``None``: an account outside any
    organisation). ``fresh()`` is a cold start: a new container over the same queues, table, archive and
    clock, with nothing cached.
    """

    def __init__(self, *, settings: dict[str, Any] | None = None, start: datetime | float = DEFAULT_START,
                 home_region: str = "us-east-1", slack_secret: str = "memory/slack-webhook",
                 budget_seconds: float | None = None, lookups: MemoryLookups | None = None,
                 secrets: dict[str, str] | None = None, clock: ManualClock | None = None,
                 organization: Directory | None = None) -> None:
        manual = clock or ManualClock(start)
        env = memory_environment(home_region, slack_secret=slack_secret, budget_seconds=budget_seconds)
        super().__init__(env, _NoAws(), clock=manual, sleep=manual.sleep)  # type: ignore[arg-type]
        self.manual_clock = manual
        self.settings_document = settings
        self.queues = _queues(manual)
        self._memory_archive = MemoryArchive(env.archive_bucket)
        self._memory_state = MemoryState()
        self._memory_lookups = lookups or MemoryLookups()
        self._memory_secrets = MemorySecrets(secrets)
        self._memory_slack = RecordingSlack(clock=manual)
        self._memory_metrics = MemoryMetrics()
        self._memory_organization = MemoryOrganization(organization)

    def queue(self, name: str) -> MemoryQueue:  # type: ignore[override]
        getattr(self.env, f"{name}_url")  # an unknown name fails as it does on AWS
        return self.queues[name]

    @property
    def archive(self) -> MemoryArchive:  # type: ignore[override]
        return self._memory_archive

    @property
    def state(self) -> MemoryState:  # type: ignore[override]
        return self._memory_state

    @property
    def lookups(self) -> MemoryLookups:  # type: ignore[override]
        return self._memory_lookups

    @property
    def secrets(self) -> MemorySecrets:  # type: ignore[override]
        return self._memory_secrets

    @property
    def slack(self) -> RecordingSlack:  # type: ignore[override]
        return self._memory_slack

    @property
    def metrics(self) -> MemoryMetrics:  # type: ignore[override]
        return self._memory_metrics

    @property
    def organization(self) -> MemoryOrganization:  # type: ignore[override]
        return self._memory_organization

    def _read_settings_document(self) -> dict[str, Any]:
        if self.settings_document is None:
            return super()._read_settings_document()
        return json.loads(json.dumps(self.settings_document))  # a copy, as if read anew

    def fresh(self) -> MemoryDeps:
        """A cold start over the same world: queues, table, archive, CloudTrail, secrets, Slack and clock."""
        other = MemoryDeps(settings=self.settings_document, home_region=self.env.home_region,
                           slack_secret=self.env.slack_secret, budget_seconds=self.env.budget_seconds,
                           lookups=self._memory_lookups.for_new_container(), clock=self.manual_clock)
        other.queues = self.queues
        other._memory_archive = self._memory_archive
        other._memory_state = self._memory_state
        other._memory_secrets = self._memory_secrets
        other._memory_slack = self._memory_slack
        other._memory_metrics = self._memory_metrics
        other._memory_organization = self._memory_organization
        return other


def _queues(clock: ManualClock) -> dict[str, MemoryQueue]:
    queues: dict[str, MemoryQueue] = {}
    for stage, hidden_for in VISIBILITY_TIMEOUTS.items():
        dlq = MemoryQueue(f"{stage}_dlq", clock, visibility_timeout=DLQ_VISIBILITY_TIMEOUT)
        queues[f"{stage}_dlq"] = dlq
        queues[f"{stage}_queue"] = MemoryQueue(f"{stage}_queue", clock, visibility_timeout=hidden_for,
                                               dead_letter=dlq, max_receive_count=MAX_RECEIVE_COUNT,
                                               retention_seconds=RETENTION_SECONDS)
    # Lambda's on-failure destination: no redrive of its own (dl_retry bounds its tries by the receive count).
    queues["async_failed_queue"] = MemoryQueue("async_failed_queue", clock,
                                               visibility_timeout=ASYNC_FAILED_VISIBILITY_TIMEOUT,
                                               retention_seconds=RETENTION_SECONDS)
    return queues
