"""chalicelib.bootstrap: the stage's names derived from stage, account and region; each run timed by its context."""

from __future__ import annotations

import os
from types import SimpleNamespace
from typing import Any

import pytest

from chalicelib import bootstrap
from chalicelib.bootstrap import Deps, Environment
from chalicelib.core.errors import ConfigurationError

ARN = "arn:aws:lambda:eu-west-1:111122223333:function:mcd-prod-lookup"
RESOURCE_VARIABLES = ("MCD_DISPATCH_QUEUE_URL", "MCD_DISPATCH_DLQ_URL", "MCD_LOOKUP_QUEUE_URL", "MCD_LOOKUP_DLQ_URL",
                      "MCD_SLACK_QUEUE_URL", "MCD_SLACK_DLQ_URL", "MCD_ARCHIVE_BUCKET", "MCD_STATE_TABLE")


def context(remaining_ms: float, arn: str = ARN) -> Any:
    return SimpleNamespace(invoked_function_arn=arn, get_remaining_time_in_millis=lambda: remaining_ms)


def test_a_function_derives_every_name_from_its_stage_and_context() -> None:
    env = Environment.from_env({"MCD_STAGE": "prod", "AWS_REGION": "eu-west-1"}, ARN)
    assert env == Environment(
        home_region="eu-west-1",
        dispatch_queue_url="https://sqs.eu-west-1.amazonaws.com/111122223333/mcd-prod-dispatch",
        dispatch_dlq_url="https://sqs.eu-west-1.amazonaws.com/111122223333/mcd-prod-dispatch-dlq",
        lookup_queue_url="https://sqs.eu-west-1.amazonaws.com/111122223333/mcd-prod-lookup",
        lookup_dlq_url="https://sqs.eu-west-1.amazonaws.com/111122223333/mcd-prod-lookup-dlq",
        slack_queue_url="https://sqs.eu-west-1.amazonaws.com/111122223333/mcd-prod-slack",
        slack_dlq_url="https://sqs.eu-west-1.amazonaws.com/111122223333/mcd-prod-slack-dlq",
        archive_bucket="mcd-prod-archive-111122223333-eu-west-1",
        state_table="mcd-prod-state",
        slack_secret="mcd/prod/slack-webhook",
        settings_ref="ssm:/mcd/prod/settings",
        budget_seconds=45,
        stage="prod",
        async_failed_queue_url="https://sqs.eu-west-1.amazonaws.com/111122223333/mcd-prod-async-failed",
        account="111122223333",
    )
    # The region of the ARN stands in for AWS_REGION; MCD_ACCOUNT_ID for the ARN (chalice local).
    assert Environment.from_env({"MCD_STAGE": "prod"}, ARN).home_region == "eu-west-1"
    local = Environment.from_env({"MCD_STAGE": "local", "MCD_ACCOUNT_ID": "123456789012",
                                  "AWS_DEFAULT_REGION": "us-east-1"})
    assert local.archive_bucket == "mcd-local-archive-123456789012-us-east-1"
    assert local.lookup_queue_url == "https://sqs.us-east-1.amazonaws.com/123456789012/mcd-local-lookup"


def test_explicit_variables_override_the_derived_names() -> None:
    given = {v: f"value-of-{v}" for v in (*RESOURCE_VARIABLES, "MCD_SLACK_SECRET", "MCD_SETTINGS")}
    env = Environment.from_env({**given, "MCD_STAGE": "prod", "AWS_REGION": "eu-west-1"}, ARN)
    assert env.dispatch_queue_url == "value-of-MCD_DISPATCH_QUEUE_URL"
    assert env.state_table == "value-of-MCD_STATE_TABLE" and env.settings_ref == "value-of-MCD_SETTINGS"
    partly = Environment.from_env({"MCD_STAGE": "prod", "MCD_ARCHIVE_BUCKET": "my-archive"}, ARN)
    assert partly.archive_bucket == "my-archive" and partly.state_table == "mcd-prod-state"


def test_without_a_stage_nothing_is_derived_as_before() -> None:
    given = {v: f"value-of-{v}" for v in RESOURCE_VARIABLES}
    env = Environment.from_env(given, ARN)
    assert (env.slack_secret, env.settings_ref, env.stage) == ("", "", "")  # default settings, no default secret
    assert env.async_failed_queue_url == "", "resources made by hand before the async-failed queue: none"
    with pytest.raises(ConfigurationError, match=r"no async_failed_queue .*MCD_ASYNC_FAILED_QUEUE_URL"):
        Deps(env, clients=SimpleNamespace()).queue("async_failed_queue")
    given["MCD_ASYNC_FAILED_QUEUE_URL"] = "value-of-async"
    assert Environment.from_env(given, ARN).async_failed_queue_url == "value-of-async"
    for missing in RESOURCE_VARIABLES:
        with pytest.raises(ConfigurationError, match=f"{missing} is not set, nor MCD_STAGE"):
            Environment.from_env({k: v for k, v in given.items() if k != missing})


def test_an_unknown_account_is_a_configuration_error_naming_the_way_out() -> None:
    with pytest.raises(ConfigurationError, match=r"MCD_DISPATCH_QUEUE_URL .* unknown: .*MCD_ACCOUNT_ID"):
        Environment.from_env({"MCD_STAGE": "local", "AWS_REGION": "eu-west-1"})
    with pytest.raises(ConfigurationError, match="MCD_ACCOUNT_ID"):
        Environment.from_env({"MCD_STAGE": "local"}, "arn:aws:lambda:eu-west-1:not-an-account:function:f")


def _deps(clock: float = 1_000.0) -> Deps:
    env = Environment.from_env({"MCD_STAGE": "prod", "AWS_REGION": "eu-west-1"}, ARN)
    return Deps(env, clients=SimpleNamespace(), clock=lambda: clock)


def test_each_invocation_is_timed_by_its_own_context() -> None:
    deps = _deps()
    assert deps.deadline() == 1_045  # no invocation yet: the default budget
    assert deps.for_invocation(context(300_000)) is deps
    assert deps.deadline() == 1_240
    assert deps.deadline(5) == 1_005  # an explicit budget still wins
    deps.for_invocation(context(120_000))
    assert deps.deadline() == 1_090
    deps.for_invocation(None)  # the replay, chalice local, a test: back to the default
    assert deps.deadline() == 1_045


def test_deps_builds_the_environment_from_the_first_context(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in [k for k in os.environ if k.startswith("MCD_") and k != "MCD_LOCAL_ROUTES"]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("MCD_STAGE", "prod")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    bootstrap.reset()
    try:
        deps = bootstrap.deps(context(300_000))
        assert deps.env.state_table == "mcd-prod-state"
        assert deps.env.slack_queue_url.endswith("/111122223333/mcd-prod-slack")
        assert deps.budget_seconds == 240
        assert bootstrap.deps(context(120_000)) is deps and deps.budget_seconds == 90  # cached, timed anew
    finally:
        bootstrap.reset()


SCHEDULED = {"version": "0", "account": "111122223333", "region": "eu-west-1", "detail": {},
             "detail-type": "Scheduled Event", "source": "aws.events", "time": "2024-05-01T12:00:00Z",
             "id": "1", "resources": []}
HANDLERS = {  # handler → (module of its stage, stage function, event, the sign of life it records)
    "dispatch": ("chalicelib.stages.dispatch", "dispatch", SCHEDULED, "dispatch"),
    "lookup": ("chalicelib.stages.lookup", "lookup", SCHEDULED, "lookup"),
    "slack_send": ("chalicelib.stages.deliver", "slack_send", SCHEDULED, "slack_send"),
    "dl_retry": ("chalicelib.stages.dead_letters", "dl_retry", SCHEDULED, "dl_retry"),
    "watchdog": ("chalicelib.stages.watchdog", "watchdog", SCHEDULED, None),
    "ingest": ("chalicelib.stages.ingest", "ingest", {"Records": [{"Sns": {"Message": "{}", "Subject": None}}]},
               "config"),
    "config_event": ("chalicelib.stages.ingest", "ingest", SCHEDULED, "config"),  # registered: conftest opts in
    "console_signin": ("chalicelib.stages.direct", "direct", SCHEDULED, "cloudtrail"),
    "api_call": ("chalicelib.stages.direct", "direct", SCHEDULED, "cloudtrail"),
    "cloudwatch_logs": ("chalicelib.stages.direct", "direct", {"awslogs": {"data": ""}}, "cloudtrail"),
}


@pytest.mark.parametrize("handler", sorted(HANDLERS))
def test_every_handler_hands_its_lambda_context_to_the_run_and_records_its_sign_of_life(
        handler: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    import app

    module, function, event, signal = HANDLERS[handler]
    budgets: list[float] = []
    signals: list[str] = []
    monkeypatch.setattr(importlib.import_module(module), function,
                        lambda *args: budgets.append(next(a for a in args if isinstance(a, Deps)).budget_seconds))
    monkeypatch.setattr(app, "alive", lambda deps, name, result: signals.append(name) or result)
    bootstrap.install(_deps())
    try:
        app.app.handler_map[handler](event, context(120_000))
    finally:
        bootstrap.reset()
    assert budgets == [90]
    assert signals == ([signal] if signal else [])
