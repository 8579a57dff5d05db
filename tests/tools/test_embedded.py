"""`make demo`'s embedded AWS: a moto server, the real stack, and the story through deployed resources."""

from __future__ import annotations

import os
import socket
from urllib.parse import urlparse

import boto3
from scenario_check import differences

from mcd_tools.demo import blocks_to_text
from mcd_tools.embedded import deploy_stack, embedded_aws, env_name, environment_from, put_missing_alarms
from mcd_tools.replay import run
from mcd_tools.stack_template import alarm_requests, load_template
from mcd_tools.story import MEMBER_ACCOUNT, demo_org_story

MOTO_ACCOUNT = "123456789012"


def test_output_names_map_to_the_environment_variables() -> None:
    assert env_name("McdDispatchDlqUrl") == "MCD_DISPATCH_DLQ_URL"
    assert env_name("McdSlackSecret") == "MCD_SLACK_SECRET"


def test_the_demo_story_runs_through_a_deployed_stack_and_leaves_nothing_running() -> None:
    story = demo_org_story()
    region = story["home_region"]
    with embedded_aws(region) as endpoint:
        variables = deploy_stack(region)
        assert variables["MCD_DISPATCH_QUEUE_URL"].endswith("/mcd-local-dispatch"), variables
        # The stack's alarms (put by deploy_stack where moto's CloudFormation skips them) and its dashboard.
        cloudwatch = boto3.client("cloudwatch", region_name=region)
        alarms = cloudwatch.describe_alarms(AlarmNamePrefix="mcd-local-", MaxRecords=100)["MetricAlarms"]
        wanted = alarm_requests(load_template(), "local", region, MOTO_ACCOUNT)
        assert {a["AlarmName"] for a in alarms} == set(wanted) and len(alarms) == len(wanted) == 29
        assert all(a["AlarmActions"] == a["OKActions"] == [variables["MCD_HEALTH_TOPIC"]] for a in alarms)
        assert put_missing_alarms(region) == []  # a second call finds nothing missing
        cloudwatch.get_dashboard(DashboardName="mcd-local")
        result = run(story, environment=environment_from(variables, region))
        broken = _break_and_diagnose(region, variables)
    before = {row.check: row.status for row in broken["before"]}
    assert {k: before.get(k) for k in ("settings", "queue mcd-local-dispatch-dlq", "alarms")} == {
        "settings": "ok", "queue mcd-local-dispatch-dlq": "ok", "alarms": "ok"}, broken["before"]
    after = {row.check: row for row in broken["after"]}
    assert after["settings"].status == "FAIL" and "put-parameter" in after["settings"].fix
    assert after["queue mcd-local-dispatch-dlq"].status == "FAIL" and after["queue mcd-local-dispatch-dlq"].fix
    assert differences(story["expect"]["outcomes"], result.outcomes) == []
    assert len(result.slack) <= story["expect"]["max_slack_messages"]
    member = [o for o in result.outcomes if o["account"] == MEMBER_ACCOUNT and o["kind"] == "manual_change"]
    assert [o["principal_arn"].split(":")[4] for o in member] == [MEMBER_ACCOUNT], "found in the member's CloudTrail"
    assert any(f"*Account* {MEMBER_ACCOUNT}" in blocks_to_text(m["payload"]) for m in result.slack)
    assert "AWS_ENDPOINT_URL" not in os.environ
    port = urlparse(endpoint).port
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0, "the embedded AWS must be stopped"


def _break_and_diagnose(region: str, variables: dict[str, str]) -> dict[str, list]:
    """``mcd doctor`` on the demo stack, then on the same stack deliberately broken: a message left in a
    dead-letter queue and settings that do not validate."""
    from mcd_tools.doctor import diagnose

    before = diagnose("local", region)
    boto3.client("sqs", region_name=region).send_message(QueueUrl=variables["MCD_DISPATCH_DLQ_URL"], MessageBody="{}")
    boto3.client("ssm", region_name=region).put_parameter(Name="/mcd/local/settings", Type="String", Overwrite=True,
                                                           Value='{"trusted_principals": "not a list"}')
    return {"before": before, "after": diagnose("local", region)}
