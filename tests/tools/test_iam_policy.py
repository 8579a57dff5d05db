"""Each function's IAM policy is generated from what its code calls, on this stage's resources only.

``mcd_tools.iam_policy`` writes ``.chalice/policies/<stage>/<function>.json``; these tests keep the files
equal to what the code calls (statically here; at the end of every whole-suite session against the calls
the suite made, per handler: conftest), and check what the policies may and may not grant.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from policy_coverage import (
    ROOT,
    generated_actions,
    handler_problems,
    needed_actions,
    problems,
    runtime_problems,
    scan,
    static_calls,
)

from mcd_tools import iam_policy

HANDLERS = iam_policy.handlers()
SETTINGS_IN_S3 = "arn:*:s3:::mcd-prod-archive-${aws:PrincipalAccount}-*/settings/*"


def _policy(function: str, stage: str = "prod") -> dict:
    return iam_policy.policy(HANDLERS[function], stage)


def _grants(function: str, stage: str = "prod") -> dict[str, set[str]]:
    """action → the resources it is granted on."""
    found: dict[str, set[str]] = {}
    for statement in _policy(function, stage)["Statement"]:
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        for action in statement["Action"]:
            found.setdefault(action, set()).update(resources)
    return found


def test_the_policy_files_and_config_are_what_the_code_calls() -> None:
    assert iam_policy.stale() == [], "run: python -m mcd_tools.iam_policy"


def test_the_policies_together_grant_exactly_what_the_code_calls() -> None:
    calls, unclear = static_calls()
    assert unclear == []
    assert problems(calls, "anywhere in app.py or chalicelib") == []


def test_every_function_of_app_py_has_a_policy() -> None:
    assert set(HANDLERS) == {"ingest", "config_event", "dispatch", "lookup", "dl_retry", "slack_send", "watchdog",
                             "console_signin", "api_call", "cloudwatch_logs"}
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    assert config["autogen_policy"] is False
    for stage, settings in config["stages"].items():
        for function in HANDLERS:
            path = ROOT / ".chalice" / settings["lambda_functions"][function]["iam_policy_file"]
            assert json.loads(path.read_text()) == _policy(function, stage)


@pytest.mark.parametrize("function", sorted(HANDLERS))
def test_nothing_is_granted_on_every_resource_but_what_aws_cannot_scope(function: str) -> None:
    for action, resources in _grants(function).items():
        if "*" in resources:
            assert action in iam_policy.WILDCARD_REASONS, f"{function}: {action} on *"
        if action == "sts:AssumeRole":  # another account's lookup role; its trust policy admits only ours
            assert (function, resources) == ("lookup", {"arn:*:iam::*:role/*"})
            continue
        for arn in resources - {"*"}:
            assert "mcd-prod-" in arn or "/mcd/prod/" in arn or "mcd/prod/" in arn or "/AWSLogs/" in arn, arn
            assert "mcd-dev-" not in arn


def test_only_the_slack_sender_reads_secrets_and_only_the_lookup_reads_cloudtrail() -> None:
    readers = {f for f in HANDLERS if "secretsmanager:GetSecretValue" in _grants(f)}
    assert readers == {"slack_send"}
    assert {f for f in HANDLERS if "cloudtrail:LookupEvents" in _grants(f)} == {"lookup"}
    assert _grants("slack_send")["secretsmanager:GetSecretValue"] == {
        "arn:*:secretsmanager:*:${aws:PrincipalAccount}:secret:mcd/prod/*"}


@pytest.mark.parametrize("function", ["console_signin", "api_call", "cloudwatch_logs"])
def test_functions_that_parse_cloudtrail_text_can_only_emit(function: str) -> None:
    grants = _grants(function)
    assert grants["sqs:SendMessage"] >= {"arn:*:sqs:*:${aws:PrincipalAccount}:mcd-prod-slack"}
    assert not {"sqs:ReceiveMessage", "sqs:DeleteMessage", "secretsmanager:GetSecretValue",
                "cloudtrail:LookupEvents"} & set(grants)
    assert grants["ssm:GetParameter"] == {"arn:*:ssm:*:${aws:PrincipalAccount}:parameter/mcd/prod/settings"}
    assert grants["s3:GetObject"] == {SETTINGS_IN_S3}  # the settings, when kept in S3 rather than SSM


def test_each_schedule_consumes_only_its_own_queue() -> None:
    consumers = {f: {arn.rsplit(":", 1)[1] for arn in _grants(f).get("sqs:ReceiveMessage", ())} for f in HANDLERS}
    assert consumers["dispatch"] == {"mcd-prod-dispatch"}
    assert consumers["lookup"] == {"mcd-prod-lookup"}
    assert consumers["slack_send"] == {"mcd-prod-slack"}
    assert {"mcd-prod-dispatch-dlq", "mcd-prod-lookup-dlq", "mcd-prod-slack-dlq"} <= consumers["dl_retry"]
    assert not consumers["ingest"] and not consumers["watchdog"]


def test_every_function_writes_only_its_own_log_group() -> None:
    for function in HANDLERS:
        assert _grants(function)["logs:PutLogEvents"] == {
            f"arn:*:logs:*:${{aws:PrincipalAccount}}:log-group:/aws/lambda/mcd-prod-{function}:*"}
        assert "logs:CreateLogGroup" not in _grants(function)


def test_oversized_items_are_read_from_configs_delivery_path_only() -> None:
    assert _grants("dispatch")["s3:GetObject"] == {"arn:*:s3:::*/AWSLogs/*/Config/*", SETTINGS_IN_S3,
                                                   "arn:*:s3:::mcd-prod-archive-${aws:PrincipalAccount}-*/*"}
    assert "s3:GetObject" not in _grants("ingest")


def parsed(source: str) -> list[tuple[Path, ast.Module]]:
    return [(ROOT / "example.py", ast.parse(source))]


def test_the_scan_tells_the_service_by_the_client_literal_or_the_operation_name() -> None:
    calls, unclear = scan(parsed(
        "s3 = factory.client('s3')\n"
        "sqs = self.clients.client('sqs', region)\n"
        "self._client('ssm').get_parameter(Name='x')\n"
        "something.get_object(Bucket='b', Key='k')\n"
        "queue.receive_message(QueueUrl='u')\n"
        "deps.state.get('pk', 'sk')\n"
        "client('s3').get_paginator('list_objects_v2')\n"))
    assert calls == {("ssm", "get_parameter"), ("s3", "get_object"), ("sqs", "receive_message")}
    assert unclear == []


def test_an_operation_several_services_have_must_name_its_client() -> None:
    calls, unclear = scan(parsed("client('dynamodb'); client('secretsmanager')\nthing.tag_resource()\n"
                                 "client('secretsmanager').tag_resource()\n"))
    assert calls == {("secretsmanager", "tag_resource")}
    (why,) = unclear
    assert why.startswith("example.py:2: .tag_resource() is an operation of dynamodb, secretsmanager")


def test_the_handlers_and_the_stage_modules_they_reach_are_read_from_app_py() -> None:
    source = ("from chalicelib.stages.shared.health import alive\n"
              "@app.schedule(Rate(1))\ndef tick(event):\n    from chalicelib.stages.lookup import lookup\n"
              "    return alive(deps, 'x', lookup(deps))\n"
              "@app.on_sns_message(topic='t')\ndef hear(event):\n    from chalicelib.stages.ingest import ingest\n"
              "def helper():\n    pass\n")
    found = iam_policy.handlers(source)
    assert set(found) == {"tick", "hear"}
    assert found["tick"].modules == {"chalicelib.stages.lookup", "chalicelib.stages.shared.health"}
    assert not found["tick"].asynchronous and found["hear"].asynchronous
    assert "chalicelib.stages.shared.queues" in iam_policy.closure(found["hear"].modules)


def test_a_call_no_policy_grants_or_granted_in_vain_is_named() -> None:
    calls, _ = static_calls()
    missing = problems(calls | {("sqs", "purge_queue")})
    assert missing == ["no function's policy grants these calls (see mcd_tools/iam_policy.py): ['sqs:PurgeQueue']"]
    extra = problems(calls - {("cloudtrail", "lookup_events")})
    assert extra == ["the policies grant actions no code performed in the suite: ['cloudtrail:LookupEvents']"]


def test_a_handler_calling_what_its_own_policy_lacks_is_named() -> None:
    assert handler_problems({"api_call": {("sqs", "SendMessageBatch")}}) == []
    (why,) = handler_problems({"api_call": {("secretsmanager", "GetSecretValue")}})
    assert why.startswith("api_call called ['secretsmanager:GetSecretValue'], which its policy does not grant")
    assert handler_problems({"": {("secretsmanager", "GetSecretValue")}}) == []


@pytest.mark.parametrize(("call", "action"), [(("dynamodb", "PutItem"), "dynamodb:PutItem"),
                                              (("s3", "get_object"), "s3:GetObject")])
def test_operation_names_map_to_iam_actions_either_way(call: tuple[str, str], action: str) -> None:
    assert needed_actions([call]) == {action} and action in generated_actions()


def test_the_session_end_check_reads_recorded_operation_names() -> None:
    from botocore import xform_name

    calls, _ = static_calls()
    recorded = {("", s, "".join(part.title() for part in o.split("_"))) for s, o in calls}
    assert {(s, xform_name(o)) for _, s, o in recorded} == calls
    assert runtime_problems(recorded) == []
    assert runtime_problems({r for r in recorded if r[1:] != ("cloudtrail", "LookupEvents")}) == [
        "the policies grant actions no code performed in the suite: ['cloudtrail:LookupEvents']"]
    *_, unseen = runtime_problems(recorded | {("", "s3", "PutObjectTagging")})
    assert unseen.startswith("calls made at run time that the static scan") and "s3:put_object_tagging" in unseen
    assert runtime_problems(recorded | {("watchdog", "cloudtrail", "LookupEvents")}) == [
        "watchdog called ['cloudtrail:LookupEvents'], which its policy does not grant "
        "(mcd_tools/iam_policy.py cannot see how its code reaches them)"]
