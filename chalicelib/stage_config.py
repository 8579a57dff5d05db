"""Stage configuration as data: the names of a stage's resources, and how long one run may work.

``infra/stack.yaml`` names every resource after the stage (the archive bucket also after the account
and region), so the code derives the names rather than reading them from variables that a deploy
would have to write into ``.chalice/config.json``. One derivation serves ``app.py`` (the Config
topic, read when Chalice packages the app), ``bootstrap`` (queues, bucket, table, secret and settings
at run time) and ``scripts/deploy.py`` (which checks a deployed stack's outputs against it).

A run's time budget comes from its Lambda context: the invocation's remaining time minus a margin
(``run_budget``), so the function's timeout in ``.chalice/config.json`` is the only number to change.

Standard library only (and the queue names of ``stages.shared.queues``): ``app.py`` and
``scripts/deploy.py`` import it without AWS.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chalicelib.core.partitions import DNS_SUFFIX
from chalicelib.stages.shared import queues

STAGE_VARIABLE = "MCD_STAGE"
ACCOUNT_VARIABLE = "MCD_ACCOUNT_ID"
TOPIC_VARIABLE = "MCD_CONFIG_TOPIC"
DEFAULT_STAGE = "local"  # outside a Chalice stage (tests, the replay), only the topic name needs one

DEFAULT_BUDGET_SECONDS = 45.0
"""A run's budget without a Lambda context: tests, the replay, ``chalice local``."""
MARGIN_FRACTION = 0.2
MIN_MARGIN_SECONDS = 30.0
"""The margin left before the timeout: a fifth of the remaining time, at least 30 s, at most half of it.

Timeouts 120 s and 300 s (dispatch, slack_send; lookup) give budgets of 90 s and 240 s.
"""

QUEUES: dict[str, str] = {
    queues.DISPATCH_QUEUE: "dispatch",
    queues.DISPATCH_DLQ: "dispatch-dlq",
    queues.LOOKUP_QUEUE: "lookup",
    queues.LOOKUP_DLQ: "lookup-dlq",
    queues.SLACK_QUEUE: "slack",
    queues.SLACK_DLQ: "slack-dlq",
    queues.ASYNC_FAILED_QUEUE: "async-failed",
}
"""``Deps.queue`` names → the stack's queue names (after ``mcd-<stage>-``)."""

ASYNC_FUNCTIONS = ("ingest", "config_event", "console_signin", "api_call", "cloudwatch_logs")
"""The functions AWS invokes asynchronously (SNS, EventBridge rules, a CloudWatch Logs subscription). An event that
fails all of Lambda's tries goes to the async-failed queue (their on-failure destination), which ``dl_retry``
drains; the schedules are left out: their next tick does the work of a failed one."""
ASYNC_RETRY_ATTEMPTS = 2
"""Lambda's retries of a failed asynchronous event before the on-failure destination (its default, and maximum)."""
ASYNC_MAX_EVENT_AGE_SECONDS = 21_600
"""How long Lambda keeps retrying an event that could not run (throttled): 6 hours, its default and maximum."""


def config_topic_name(stage: str) -> str:
    """The SNS topic the stack creates for AWS Config when no existing topic is given."""
    return f"config-changes-{stage}"


def config_topic(environ: Mapping[str, str]) -> str:
    """The topic ``ingest`` subscribes to: ``MCD_CONFIG_TOPIC`` (an existing topic's ARN) or the stage's own.

    Chalice reads it when it packages or deploys the app; ``scripts/deploy.py`` puts the stack's topic
    in ``chalice deploy``'s environment, which is how an existing topic (``ConfigTopicArn``) gets there.
    """
    given = environ.get(TOPIC_VARIABLE, "").strip()
    return given or config_topic_name(environ.get(STAGE_VARIABLE, "").strip() or DEFAULT_STAGE)


@dataclass(frozen=True)
class FunctionArn:
    """Where a Lambda function runs, read from its ARN (``context.invoked_function_arn``)."""

    partition: str
    region: str
    account: str

    @classmethod
    def parse(cls, arn: str | None) -> FunctionArn | None:
        parts = (arn or "").split(":")
        if len(parts) < 7 or parts[0] != "arn" or parts[2] != "lambda":
            return None
        partition, region, account = parts[1], parts[3], parts[4]
        if not (partition and region and len(account) == 12 and account.isdigit()):
            return None
        return cls(partition, region, account)


def invoked_function_arn(context: Any) -> str:
    """The ARN of a real Lambda context; Chalice's local and test contexts have none (``""``)."""
    arn = getattr(context, "invoked_function_arn", "")
    return arn if isinstance(arn, str) else ""


@dataclass(frozen=True)
class StageNames:
    """The names ``infra/stack.yaml`` gives one stage's resources in one account and region."""

    stage: str
    account: str
    region: str
    partition: str = "aws"

    def queue_name(self, queue: str) -> str:
        return f"mcd-{self.stage}-{QUEUES[queue]}"

    def function_name(self, function: str) -> str:
        """The Lambda function Chalice deploys for ``function`` (``app_name-stage-function``)."""
        return f"mcd-{self.stage}-{function}"

    def function_arn(self, function: str) -> str:
        return f"arn:{self.partition}:lambda:{self.region}:{self.account}:function:{self.function_name(function)}"

    def queue_arn(self, queue: str) -> str:
        return f"arn:{self.partition}:sqs:{self.region}:{self.account}:{self.queue_name(queue)}"

    def queue_url(self, queue: str) -> str:
        suffix = DNS_SUFFIX.get(self.partition, "amazonaws.com")
        return f"https://sqs.{self.region}.{suffix}/{self.account}/{self.queue_name(queue)}"

    @property
    def archive_bucket(self) -> str:
        return f"mcd-{self.stage}-archive-{self.account}-{self.region}"

    @property
    def state_table(self) -> str:
        return f"mcd-{self.stage}-state"

    @property
    def slack_secret(self) -> str:
        return f"mcd/{self.stage}/slack-webhook"

    @property
    def settings_ref(self) -> str:
        return f"ssm:/mcd/{self.stage}/settings"

    @property
    def config_topic_arn(self) -> str:
        return f"arn:{self.partition}:sns:{self.region}:{self.account}:{config_topic_name(self.stage)}"


def run_budget(remaining_seconds: float) -> float:
    """Seconds a run may keep taking new work when ``remaining_seconds`` are left before its timeout.

    The margin covers finishing the item in hand and deleting its messages: a fifth of the remaining
    time, at least ``MIN_MARGIN_SECONDS``, and never more than half of it.
    """
    remaining = max(remaining_seconds, 0.0)
    margin = min(max(remaining * MARGIN_FRACTION, MIN_MARGIN_SECONDS), remaining / 2)
    return remaining - margin


def invocation_budget(context: Any, default: float = DEFAULT_BUDGET_SECONDS) -> float:
    """The budget of the invocation ``context`` belongs to; ``default`` without a real Lambda context.

    Chalice's test client and ``chalice local`` pass contexts with no function ARN and a made-up
    limit (3 s in the test client), so only a context with an ARN is trusted for the remaining time.
    """
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if not invoked_function_arn(context) or not callable(remaining):
        return default
    return run_budget(float(remaining()) / 1000)


LOCAL_ROUTES_VARIABLE = "MCD_LOCAL_ROUTES"
_BUILDING_COMMANDS = frozenset({"package", "deploy"})


def local_routes_wanted(environ: Mapping[str, str], argv: Sequence[str]) -> bool:
    """Whether ``app.py`` registers the ``/local/...`` routes: ``MCD_LOCAL_ROUTES=1`` (the local stage), and
    not while the Chalice CLI packages or deploys the app (``chalice package --stage local`` must not yield
    an API with unauthenticated routes). ``chalice local`` and the tests get them."""
    return environ.get(LOCAL_ROUTES_VARIABLE) == "1" and not _building(environ, argv)


def building_the_local_stage(environ: Mapping[str, str], argv: Sequence[str]) -> bool:
    """Whether the Chalice CLI is packaging or deploying a stage with ``MCD_LOCAL_ROUTES=1``: the local stage,
    which exists for ``chalice local`` and must never reach an AWS account (``app.py`` refuses)."""
    return environ.get(LOCAL_ROUTES_VARIABLE) == "1" and _building(environ, argv)


def _building(environ: Mapping[str, str], argv: Sequence[str]) -> bool:
    return environ.get("AWS_CHALICE_CLI_MODE") == "true" and bool(_BUILDING_COMMANDS & set(argv[1:]))
