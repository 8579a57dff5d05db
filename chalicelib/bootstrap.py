"""Composition root: the stage's environment, settings, clock and adapters, built lazily and cached.

``deps(context)`` is what the handlers in ``app.py`` use: the container's ``Deps``, timed for the
invocation ``context`` belongs to. Nothing here runs at import time. Tests and the replay build their
own ``Deps`` with a simulated clock and hooks on the boto3 clients.
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
from chalicelib.core.partitions import partition_of_region
from chalicelib.stage_config import (
    ACCOUNT_VARIABLE,
    DEFAULT_BUDGET_SECONDS,
    STAGE_VARIABLE,
    FunctionArn,
    StageNames,
    invocation_budget,
    invoked_function_arn,
)
from chalicelib.stages.shared.queues import ASYNC_FAILED_QUEUE

if TYPE_CHECKING:
    from chalicelib.adapters.archive import Archive
    from chalicelib.adapters.cloudtrail import LookupClient
    from chalicelib.adapters.metrics import EmfMetrics
    from chalicelib.adapters.organizations import OrganizationReader
    from chalicelib.adapters.queues import Queue
    from chalicelib.adapters.secrets import SecretReader
    from chalicelib.adapters.state import StateTable
    from chalicelib.core.settings import Settings
    from chalicelib.ports import SlackPoster

log = logging.getLogger("mcd.bootstrap")

DEFAULT_SETTINGS_FILE = Path(__file__).with_name("default_settings.json")
SETTINGS_TTL_SECONDS = 60
ASYNC_FAILED_VARIABLE = "MCD_ASYNC_FAILED_QUEUE_URL"


@dataclass(frozen=True)
class Environment:
    """Where the stage's resources are, and the run budget used without a Lambda context.

    ``from_env`` derives every name from the stage, account and region (``stage_config.StageNames``),
    as ``infra/stack.yaml`` creates them; an ``MCD_*`` variable, when set, overrides its name (the
    replay, the demo and the tests point the code at resources of their own that way).
    """

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
    budget_seconds: float = DEFAULT_BUDGET_SECONDS
    stage: str = ""
    async_failed_queue_url: str = ""
    account: str = ""  # the detector's own account, when known: other accounts are read through a role
    partition: str = "aws"
    """Lambda's on-failure destination, drained by ``dl_retry``. Derived with the stage; without a stage only
    ``MCD_ASYNC_FAILED_QUEUE_URL`` sets it, and empty means none (resources made by hand before it existed)."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str], function_arn: str = "") -> Environment:
        """The environment of a stage: ``MCD_STAGE``, the account and region, and any ``MCD_*`` overrides.

        The account and partition come from ``function_arn`` (the Lambda context's ARN) or
        ``MCD_ACCOUNT_ID`` (``chalice local``); the region from ``AWS_REGION``. Without ``MCD_STAGE``
        nothing is derived: every resource variable must be set, and the settings and secret default
        to none, as before names were derived.
        """
        arn = FunctionArn.parse(function_arn)
        home_region = (environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")
                       or (arn.region if arn else "") or "us-east-1")
        stage = environ.get(STAGE_VARIABLE, "").strip()
        account = environ.get(ACCOUNT_VARIABLE, "").strip() or (arn.account if arn else "")
        names = StageNames(stage, account, home_region, arn.partition if arn else "aws") if stage else None

        def pick(key: str, derive: Callable[[StageNames], str], needs_account: bool = True) -> str:
            value = environ.get(key, "").strip()
            if value:
                return value
            if names is None:
                raise ConfigurationError(f"environment variable {key} is not set, nor {STAGE_VARIABLE} to derive it "
                                         "(see docs/configuration.md)")
            if needs_account and not names.account:
                raise ConfigurationError(f"{key} is not set and the account to derive it from is unknown: run in "
                                         f"Lambda, or set {ACCOUNT_VARIABLE} (see docs/configuration.md)")
            return derive(names)

        def optional(key: str, derive: Callable[[StageNames], str]) -> str:
            value = environ.get(key, "").strip()
            return value or (derive(names) if names is not None else "")

        return cls(
            home_region=home_region,
            dispatch_queue_url=pick("MCD_DISPATCH_QUEUE_URL", lambda n: n.queue_url("dispatch_queue")),
            dispatch_dlq_url=pick("MCD_DISPATCH_DLQ_URL", lambda n: n.queue_url("dispatch_dlq")),
            lookup_queue_url=pick("MCD_LOOKUP_QUEUE_URL", lambda n: n.queue_url("lookup_queue")),
            lookup_dlq_url=pick("MCD_LOOKUP_DLQ_URL", lambda n: n.queue_url("lookup_dlq")),
            slack_queue_url=pick("MCD_SLACK_QUEUE_URL", lambda n: n.queue_url("slack_queue")),
            slack_dlq_url=pick("MCD_SLACK_DLQ_URL", lambda n: n.queue_url("slack_dlq")),
            archive_bucket=pick("MCD_ARCHIVE_BUCKET", lambda n: n.archive_bucket),
            state_table=pick("MCD_STATE_TABLE", lambda n: n.state_table, needs_account=False),
            slack_secret=optional("MCD_SLACK_SECRET", lambda n: n.slack_secret),
            settings_ref=optional("MCD_SETTINGS", lambda n: n.settings_ref),
            stage=stage,
            async_failed_queue_url=(pick(ASYNC_FAILED_VARIABLE, lambda n: n.queue_url(ASYNC_FAILED_QUEUE))
                                    if names is not None else environ.get(ASYNC_FAILED_VARIABLE, "").strip()),
            account=account,
            partition=arn.partition if arn else partition_of_region(home_region),
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
        self.budget_seconds = env.budget_seconds  # this invocation's; ``for_invocation`` sets it

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), tz=timezone.utc)

    def for_invocation(self, context: Any) -> Deps:
        """Time the coming run by ``context`` (see ``stage_config.invocation_budget``); returns ``self``.

        One Lambda container runs one invocation at a time, so the cached ``Deps`` carries the budget.
        """
        self.budget_seconds = invocation_budget(context, self.env.budget_seconds)
        return self

    def deadline(self, budget: float | None = None) -> float:
        """When a run stops taking new work: now plus ``budget``, or plus this invocation's budget."""
        return self.clock() + (budget if budget is not None else self.budget_seconds)

    def _memo(self, key: str, build: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]

    def queue(self, name: str) -> Queue:
        from chalicelib.adapters.queues import Queue

        url = getattr(self.env, f"{name}_url")
        if not url:
            raise ConfigurationError(f"this environment has no {name} (set MCD_{name.upper()}_URL or {STAGE_VARIABLE})")
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
        from chalicelib.adapters.cloudtrail import CrossAccount, LookupClient

        cross_account = CrossAccount(
            home_account=self.env.account, role_name=lambda: self.settings().lookup_role,
            sts=lambda: self.clients.client("sts"),
            client_with=lambda region, credentials: self.clients.with_credentials("cloudtrail", region, credentials),
            partition=self.env.partition)
        return self._memo("lookups", lambda: LookupClient(
            lambda region: self.clients.client("cloudtrail", region), self.clock, self.sleep, cross_account))

    @property
    def secrets(self) -> SecretReader:
        from chalicelib.adapters.secrets import SecretReader

        return self._memo("secrets", lambda: SecretReader(self.clients.client, self.clock))

    @property
    def organization(self) -> OrganizationReader:
        """AWS Organizations' directory, cached in the state table; no request until a stage asks for it."""
        from chalicelib.adapters.organizations import OrganizationReader

        return self._memo("organization", lambda: OrganizationReader(
            lambda: self.clients.client("organizations"), self.state, self.clock))

    @property
    def metrics(self) -> EmfMetrics:
        from chalicelib.adapters.metrics import EmfMetrics

        return self._memo("metrics", lambda: EmfMetrics(self.env.stage, self.clock))

    @property
    def slack(self) -> SlackPoster:
        """The Slack adapter: the module's two calls (importing slack_sdk waits until a stage posts)."""
        from chalicelib.adapters import slack

        return slack

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


def deps(context: Any = None) -> Deps:
    """The container's ``Deps``, timed for the invocation of ``context`` (the Lambda context, if any).

    The first call builds the environment; a real context's function ARN names the account the
    resource names are derived from.
    """
    global _deps
    if _deps is None:
        logging.getLogger("mcd").setLevel(logging.INFO)
        _deps = Deps(Environment.from_env(os.environ, invoked_function_arn(context)))
    return _deps.for_invocation(context)


def install(custom: Deps) -> None:
    """Use ``custom`` for every handler from now on (tests, replay, demo)."""
    global _deps
    _deps = custom


def reset() -> None:
    global _deps
    _deps = None
