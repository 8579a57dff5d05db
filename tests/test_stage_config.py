"""chalicelib.stage_config: derived names, run budgets from the Lambda context, and config.json as data."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from chalicelib import stage_config
from chalicelib.stage_config import FunctionArn, StageNames, config_topic, invocation_budget, run_budget

ROOT = Path(__file__).resolve().parents[1]
CONFIG = json.loads((ROOT / ".chalice" / "config.json").read_text())
ARN = "arn:aws:lambda:eu-west-1:111122223333:function:mcd-prod-lookup"
BUDGETED = {"dispatch": 90, "lookup": 240, "slack_send": 90}  # the budgets the stages had before they were derived


def context(remaining_ms: float, arn: str = ARN) -> Any:
    return SimpleNamespace(invoked_function_arn=arn, get_remaining_time_in_millis=lambda: remaining_ms)


def _timeout(stage: str, function: str) -> int:
    from chalice.config import Config

    return int(Config(chalice_stage=stage, function_name=function, config_from_disk=CONFIG).lambda_timeout)


# ------------------------------------------------------------------------------------------------
# Budgets


@pytest.mark.parametrize(("remaining", "budget"), [(300, 240), (120, 90), (60, 30), (30, 15), (0, 0), (-5, 0)])
def test_the_margin_is_a_fifth_at_least_30_s_at_most_half(remaining: float, budget: float) -> None:
    assert run_budget(remaining) == budget


def test_a_real_context_times_the_run_and_anything_else_gets_the_default() -> None:
    assert invocation_budget(context(120_000)) == 90
    assert invocation_budget(context(299_400)) == pytest.approx(239.52)  # the handler starts a little late
    assert invocation_budget(None) == stage_config.DEFAULT_BUDGET_SECONDS == 45
    assert invocation_budget(context(120_000, arn=""), default=7) == 7
    assert invocation_budget(SimpleNamespace(invoked_function_arn=ARN), default=7) == 7  # no remaining time


def test_chalice_local_and_test_contexts_are_not_trusted_for_the_remaining_time() -> None:
    from chalice.local import LambdaContext

    fake = LambdaContext("lookup", memory_size=512)  # what chalice local and chalice.test pass: 3 s, no ARN
    assert invocation_budget(fake) == stage_config.DEFAULT_BUDGET_SECONDS


@pytest.mark.parametrize("stage", sorted(CONFIG["stages"]))
def test_every_stage_keeps_the_budgets_the_stages_had(stage: str) -> None:
    for function, budget in BUDGETED.items():
        assert run_budget(_timeout(stage, function)) == budget, (stage, function)


def test_the_configuration_doc_states_the_timeouts_and_budgets() -> None:
    rows = {}
    for line in (ROOT / "docs" / "configuration.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| `") and len(cells) == 3 and cells[0].strip("`") in CONFIG["lambda_functions"]:
            rows[cells[0].strip("`")] = cells[1:]
    assert set(rows) == set(CONFIG["lambda_functions"])
    for function, (timeout, budget) in rows.items():
        assert timeout == f"{_timeout('prod', function)} s", function
        assert budget == f"{run_budget(_timeout('prod', function)):g} s", function


# ------------------------------------------------------------------------------------------------
# .chalice/config.json


def test_per_function_settings_are_written_once_and_stages_hold_only_what_differs() -> None:
    import app

    functions = {e.name for e in app.app.event_sources} | {f.name for f in app.app.pure_lambda_functions}
    assert set(CONFIG["lambda_functions"]) == functions
    for stage, settings in CONFIG["stages"].items():
        # A stage's lambda_functions hold only each function's generated policy file (mcd_tools/iam_policy.py).
        assert {k for f in settings.get("lambda_functions", {}).values() for k in f} <= {"iam_policy_file"}, stage
        assert not {"lambda_timeout", "lambda_memory_size", "reserved_concurrency"} & set(settings), stage
        assert settings["environment_variables"]["MCD_STAGE"] == stage
        assert settings["tags"] == {"mcd-stage": stage}
    text = json.dumps(CONFIG)
    assert "MCD_BUDGET_SECONDS" not in text and "MCD_CONFIG_TOPIC" not in text  # derived, never written down
    # Chalice ignores top-level lambda_functions when it merges environment variables: none may live there.
    assert not [f for f, s in CONFIG["lambda_functions"].items() if "environment_variables" in s]


# ------------------------------------------------------------------------------------------------
# Names


def test_function_arns_name_partition_region_and_account() -> None:
    assert FunctionArn.parse(ARN) == FunctionArn("aws", "eu-west-1", "111122223333")
    assert FunctionArn.parse(ARN + ":live") == FunctionArn("aws", "eu-west-1", "111122223333")
    assert FunctionArn.parse("arn:aws-cn:lambda:cn-north-1:111122223333:function:f").partition == "aws-cn"
    for bad in ("", None, "arn:aws:sns:eu-west-1:111122223333:t", "arn:aws:lambda:eu-west-1:1234:function:f",
                "arn:aws:lambda::111122223333:function:f", "not an arn"):
        assert FunctionArn.parse(bad) is None, bad
    assert stage_config.invoked_function_arn(SimpleNamespace(invoked_function_arn=ARN)) == ARN
    assert stage_config.invoked_function_arn(None) == "" == stage_config.invoked_function_arn(object())


def test_stage_names_are_the_stacks() -> None:
    names = StageNames("prod", "111122223333", "eu-west-1")
    assert names.queue_url("slack_dlq") == "https://sqs.eu-west-1.amazonaws.com/111122223333/mcd-prod-slack-dlq"
    assert [names.queue_name(q) for q in stage_config.QUEUES] == [
        "mcd-prod-dispatch", "mcd-prod-dispatch-dlq", "mcd-prod-lookup", "mcd-prod-lookup-dlq", "mcd-prod-slack",
        "mcd-prod-slack-dlq", "mcd-prod-async-failed"]
    assert names.queue_arn("async_failed_queue") == "arn:aws:sqs:eu-west-1:111122223333:mcd-prod-async-failed"
    assert names.archive_bucket == "mcd-prod-archive-111122223333-eu-west-1"
    assert (names.state_table, names.slack_secret, names.settings_ref) == (
        "mcd-prod-state", "mcd/prod/slack-webhook", "ssm:/mcd/prod/settings")
    assert names.config_topic_arn == "arn:aws:sns:eu-west-1:111122223333:config-changes-prod"
    china = StageNames("prod", "111122223333", "cn-north-1", "aws-cn")
    assert china.queue_url("lookup_queue").startswith("https://sqs.cn-north-1.amazonaws.com.cn/111122223333/")
    assert china.config_topic_arn.startswith("arn:aws-cn:sns:cn-north-1:")


def test_the_config_topic_is_the_stages_unless_one_is_given() -> None:
    assert config_topic({"MCD_STAGE": "dev"}) == "config-changes-dev"
    assert config_topic({}) == "config-changes-local"  # outside a stage: tests, the replay
    given = "arn:aws:sns:eu-west-1:111122223333:aws-config"
    assert config_topic({"MCD_STAGE": "dev", "MCD_CONFIG_TOPIC": f" {given} "}) == given
    assert config_topic({"MCD_STAGE": "dev", "MCD_CONFIG_TOPIC": ""}) == "config-changes-dev"


def test_function_names_are_chalices_app_stage_function() -> None:
    names = StageNames("prod", "111122223333", "eu-west-1", "aws-cn")
    assert names.function_name("lookup") == "mcd-prod-lookup"
    assert names.function_arn("lookup") == "arn:aws-cn:lambda:eu-west-1:111122223333:function:mcd-prod-lookup"
    assert CONFIG["app_name"] == "mcd"


def test_local_routes_exist_for_chalice_local_and_tests_but_never_in_a_package_or_deploy() -> None:
    from chalicelib.stage_config import local_routes_wanted

    local = {"MCD_LOCAL_ROUTES": "1", "AWS_CHALICE_CLI_MODE": "true"}
    assert local_routes_wanted(local, ["chalice", "local", "--stage", "local"])
    assert local_routes_wanted({"MCD_LOCAL_ROUTES": "1"}, ["pytest"])
    assert not local_routes_wanted(local, ["chalice", "package", "--stage", "local", "out"])
    assert not local_routes_wanted(local, ["chalice", "--project-dir", ".", "deploy", "--stage", "local"])
    assert not local_routes_wanted({"AWS_CHALICE_CLI_MODE": "true"}, ["chalice", "local"])


def test_the_local_stage_is_never_packaged_or_deployed() -> None:
    from chalicelib.stage_config import building_the_local_stage

    local = {"MCD_LOCAL_ROUTES": "1", "AWS_CHALICE_CLI_MODE": "true"}
    assert building_the_local_stage(local, ["chalice", "package", "--stage", "local", "out"])
    assert building_the_local_stage(local, ["chalice", "deploy", "--stage", "local"])
    assert not building_the_local_stage(local, ["chalice", "local", "--stage", "local"])
    assert not building_the_local_stage({"AWS_CHALICE_CLI_MODE": "true"}, ["chalice", "deploy", "--stage", "prod"])


def test_every_function_of_every_stage_expires_its_logs() -> None:
    """The stack creates each function's log group with a retention (infra/stack.yaml, LogRetentionDays); no
    stage leaves it to Chalice's log_retention_in_days, which `chalice package --pkg-format terraform` refuses."""
    from mcd_tools.stack_template import load_template, of_type, stack_resource

    template = load_template()
    for stage in CONFIG["stages"]:
        groups = [stack_resource(template, group, stage, "eu-west-1", "111122223333")
                  for group in of_type(template, "AWS::Logs::LogGroup")]
        retention = {group["LogGroupName"]: int(group["RetentionInDays"]) for group in groups}
        for function in CONFIG["lambda_functions"]:
            assert retention.get(f"/aws/lambda/mcd-{stage}-{function}", 0) > 0, (stage, function)
        assert "log_retention_in_days" not in CONFIG["stages"][stage]
