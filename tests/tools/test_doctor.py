"""``mcd doctor``: the row builders, and a healthy then a broken stage in the embedded AWS (a moto server)."""

from __future__ import annotations

import io
import json
import urllib.request
import zipfile
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from chalicelib.stage_config import ASYNC_FUNCTIONS, StageNames
from mcd_tools import cli, doctor
from mcd_tools.doctor import FAIL, OK, WARN, Row, Stage
from mcd_tools.embedded import embedded_aws

ACCOUNT, REGION = "123456789012", "eu-west-1"
NAMES = StageNames("dev", ACCOUNT, REGION)
STAGE = Stage(NAMES, NAMES.config_topic_arn)
WEBHOOK = "https://hooks.slack.com/services/T000/B000/not-a-real-hook"
INGEST = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:mcd-dev-ingest"
HOME_BUS = f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/default"
OTHER_REGIONS = ("eu-central-1", "us-east-1")  # the embedded checks look at these of moto's enabled regions
ASYNC_FAILED = f"arn:aws:sqs:{REGION}:{ACCOUNT}:mcd-dev-async-failed"


def statuses(rows: list[Row]) -> dict[str, str]:
    return {row.check: row.status for row in rows}


# --- row builders -------------------------------------------------------------------------------------------

def test_config_recorder_that_records_everything_and_notifies_the_stage_topic_is_ok() -> None:
    recorder = {"name": "default", "recordingGroup": {"allSupported": True, "includeGlobalResourceTypes": True}}
    channel = {"name": "default", "s3BucketName": "b", "snsTopicARN": NAMES.config_topic_arn}
    rows = doctor.config_rows([recorder], [{"name": "default", "recording": True}], [channel], STAGE)
    assert {r.status for r in rows} == {OK}


def test_config_faults_each_get_a_fix() -> None:
    assert doctor.config_rows([], [], [], STAGE)[0].status == FAIL
    recorder = {"name": "rec", "roleARN": "arn:aws:iam::1:role/r",
                "recordingGroup": {"resourceTypes": ["AWS::S3::Bucket"],
                                   "recordingStrategy": {"useOnly": "INCLUSION_BY_RESOURCE_TYPES"}}}
    channel = {"name": "ch", "s3BucketName": "b", "snsTopicARN": "arn:aws:sns:eu-west-1:1:other"}
    stopped, types, delivery = doctor.config_rows([recorder], [{"name": "rec", "recording": False}], [channel], STAGE)
    assert stopped.status == FAIL and "start-configuration-recorder --configuration-recorder-name rec" in stopped.fix
    assert types.status == WARN and "AWS::EC2::SecurityGroup" in types.detail and "AWS::S3::Bucket" not in types.detail
    assert delivery.status == FAIL and "other" in delivery.detail
    assert f"name=ch,s3BucketName=b,snsTopicARN={NAMES.config_topic_arn}" in delivery.fix


def test_missing_types_follows_the_recording_strategy() -> None:
    assert doctor.missing_types({"allSupported": True, "includeGlobalResourceTypes": False}) == set(doctor.GLOBAL_TYPES)
    excluded = {"recordingStrategy": {"useOnly": "EXCLUSION_BY_RESOURCE_TYPES"},
                "exclusionByResourceTypes": {"resourceTypes": ["AWS::EC2::RouteTable", "AWS::EC2::VPC"]}}
    assert doctor.missing_types(excluded) == {"AWS::EC2::RouteTable"}


def test_sns_needs_a_confirmed_lambda_subscription_of_ingest() -> None:
    assert doctor.sns_row(False, [], STAGE).status == FAIL
    pending = {"Protocol": "lambda", "Endpoint": INGEST, "SubscriptionArn": "PendingConfirmation"}
    assert "not confirmed" in doctor.sns_row(True, [pending], STAGE).detail
    assert doctor.sns_row(True, [{**pending, "Endpoint": INGEST.replace("ingest", "lookup")}], STAGE).status == FAIL
    assert doctor.sns_row(True, [{**pending, "SubscriptionArn": "arn:aws:sns:x"}], STAGE).status == OK
    other = Stage(NAMES, "arn:aws:sns:eu-west-1:1:existing")
    assert "ARGS=--config-topic-arn=arn:aws:sns:eu-west-1:1:existing" in doctor.sns_row(True, [], other).fix


def test_trails() -> None:
    assert doctor.trail_rows([], REGION)[0].status == FAIL
    local = {"Name": "t", "TrailARN": "arn:t", "HomeRegion": REGION, "IsMultiRegionTrail": False}
    assert doctor.trail_rows([{**local, "HomeRegion": "us-east-1"}], REGION)[0].status == FAIL
    stopped = doctor.trail_rows([{**local, "IsLogging": False}], REGION)
    assert stopped[0].status == FAIL and stopped[0].fix == "aws cloudtrail start-logging --name arn:t"
    assert [r.status for r in doctor.trail_rows([{**local, "IsLogging": True}], REGION)] == [OK, WARN]
    assert doctor.trail_rows([{**local, "IsLogging": None}], REGION)[0].status == WARN
    multi = {**local, "HomeRegion": "us-east-1", "IsMultiRegionTrail": True, "IsLogging": True}
    assert [r.status for r in doctor.trail_rows([multi], REGION)] == [OK]


def test_rules_and_sign_in_patterns() -> None:
    assert doctor.rule_row("r", REGION, {"x": {"State": "ENABLED"}}, INGEST, "fix").status == OK
    off = doctor.rule_row("r", REGION, {"x": {"State": "DISABLED"}}, INGEST, "fix")
    assert off.status == FAIL and off.fix == f"aws events enable-rule --name x --region {REGION}"
    assert doctor.rule_row("r", REGION, {}, INGEST, "fix") == Row("r", FAIL, f"no rule in {REGION} targets {INGEST}",
                                                                   "fix")
    assert doctor.forwards_signins('{"source": ["aws.signin"]}')
    assert doctor.forwards_signins('{"source": [{"prefix": "aws."}]}')
    assert doctor.forwards_signins('{"detail-type": ["AWS Console Sign In via CloudTrail"]}')
    api_calls = {"source": [{"prefix": "aws."}], "detail-type": ["AWS API Call via CloudTrail"]}
    assert not doctor.forwards_signins(json.dumps(api_calls))
    assert not doctor.forwards_signins("not json")


def test_each_other_region_must_forward_all_three_kinds_to_the_home_bus_and_record() -> None:
    assert STAGE.home_bus == HOME_BUS
    config_only = {"State": "ENABLED", "EventPattern": json.dumps(
        {"source": ["aws.config"], "detail-type": ["Config Configuration Item Change"]})}
    broad = {"State": "ENABLED", "EventPattern": json.dumps({"source": [{"prefix": "aws."}]})}
    assert doctor.unforwarded({"c": config_only}) == ["API calls", "sign-ins"]
    assert doctor.unforwarded({"c": config_only, "b": broad}) == []
    assert doctor.unforwarded({"b": {**broad, "State": "DISABLED"}}) == list(doctor.FORWARDED)
    recording = [{"name": "default", "recording": True}]
    assert doctor.region_row("eu-central-1", [], recording, STAGE) == Row(
        "region eu-central-1", OK, f"forwards to {REGION}; AWS Config is recording")
    both = doctor.region_row("eu-central-1", ["sign-ins"], [{"name": "rec", "recording": False}], STAGE)
    assert both.status == FAIL and "forwards its sign-ins to the default bus of eu-west-1" in both.detail
    assert "AWS Config is not recording there" in both.detail
    assert both.fix.startswith("make deploy STAGE=dev (it deploys mcd-dev-region in every enabled region)")
    assert "start-configuration-recorder --configuration-recorder-name rec --region eu-central-1" in both.fix
    assert "docs/deployment.md, step 1.3" in doctor.region_row("eu-central-1", [], [], STAGE).fix
    bad = Row("region x", FAIL, "d")
    assert doctor.fold_regions([bad, Row("region y", OK, ""), Row("region z", OK, "")], REGION) == [
        bad, Row("other regions", OK, f"2 other enabled region(s) forward to {REGION} and record with AWS Config")]
    assert doctor.fold_regions([bad], REGION) == [bad]
    assert doctor.fold_regions([], REGION) == [Row("other regions", OK, "no other enabled region")]


def test_enabled_regions_are_the_home_partitions_usable_ones() -> None:
    class Ec2:
        def describe_regions(self, AllRegions: bool) -> dict[str, Any]:
            assert AllRegions is False
            return {"Regions": [{"RegionName": "us-east-1", "OptInStatus": "opt-in-not-required"},
                                {"RegionName": "af-south-1", "OptInStatus": "opted-in"},
                                {"RegionName": "me-south-1", "OptInStatus": "not-opted-in"},
                                {"RegionName": "us-gov-west-1", "OptInStatus": "opt-in-not-required"},
                                {"RegionName": "eu-west-1"}]}

    assert doctor.enabled_regions(Ec2(), "eu-west-1") == ["af-south-1", "eu-west-1", "us-east-1"]
    assert doctor.enabled_regions(Ec2(), "us-gov-east-1") == ["us-gov-west-1"]


def invoke_config(destination: str | None) -> dict[str, Any]:
    """What get_function_event_invoke_config answers (an on-failure destination, or none)."""
    config: dict[str, Any] = {"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 21_600}
    if destination:
        config["DestinationConfig"] = {"OnFailure": {"Destination": destination}, "OnSuccess": {}}
    return config


def test_each_deployed_async_function_must_send_its_failed_events_to_the_async_failed_queue() -> None:
    assert NAMES.queue_arn("async_failed_queue") == ASYNC_FAILED
    healthy = doctor.destination_rows({"ingest": invoke_config(ASYNC_FAILED), "api_call": invoke_config(ASYNC_FAILED)},
                                      STAGE)
    assert healthy == [Row("async destinations", OK, "2 function(s) send failed events to mcd-dev-async-failed: "
                                                     "mcd-dev-ingest, mcd-dev-api_call")]
    elsewhere = f"arn:aws:sqs:{REGION}:{ACCOUNT}:mcd-prod-async-failed"  # another stage's queue
    rows = doctor.destination_rows({"ingest": None, "config_event": invoke_config(None),
                                    "console_signin": invoke_config(elsewhere),
                                    "api_call": invoke_config(ASYNC_FAILED)}, STAGE)
    assert [(r.check, r.status) for r in rows] == [
        ("async destination ingest", FAIL), ("async destination config_event", FAIL),
        ("async destination console_signin", FAIL), ("async destinations", OK)]
    assert rows[0].detail == ("mcd-dev-ingest has no event invoke config, so an event it fails on is dropped after "
                              "Lambda's retries")
    assert rows[1].detail.startswith("mcd-dev-config_event has no on-failure destination, so an event")
    assert rows[2].detail.startswith(f"mcd-dev-console_signin sends the events it fails on to {elsewhere}, not "
                                     "mcd-dev-async-failed")
    assert rows[0].fix == ("make deploy STAGE=dev (it sets each function's on-failure destination); a stage deployed "
                           "from a package: make package STAGE=dev, then deploy the package again")
    (nothing,) = doctor.destination_rows({}, Stage(NAMES, "arn:aws:sns:eu-west-1:1:existing"))
    assert nothing.status == FAIL and "mcd-dev-ingest, mcd-dev-config_event" in nothing.detail
    assert nothing.fix.startswith("make deploy STAGE=dev ARGS=--config-topic-arn=arn:aws:sns:eu-west-1:1:existing ")
    assert "make package STAGE=dev ARGS=--config-topic-arn=arn:aws:sns:eu-west-1:1:existing," in nothing.fix


def test_secret_says_what_the_value_looks_like_never_the_value() -> None:
    name = NAMES.slack_secret
    webhook = doctor.secret_row(name, WEBHOOK, "dev")
    assert webhook.status == OK and "webhook" in webhook.detail and WEBHOOK not in webhook.detail + webhook.fix
    assert doctor.secret_row(name, "xoxb-1-2-secret", "dev").status == OK
    assert doctor.secret_row(name, "http://127.0.0.1:9999/hook", "dev").status == FAIL  # loopback: local stage only
    assert doctor.secret_row(name, "http://127.0.0.1:9999/hook", "local").status == OK
    placeholder = doctor.secret_row(name, "REPLACE_ME (put the Slack incoming webhook URL here)", "dev")
    assert placeholder.status == FAIL and "put-secret-value" in placeholder.fix


def test_settings_are_validated_like_the_functions_do() -> None:
    assert doctor.settings_row("/p", None).status == FAIL
    assert doctor.settings_row("/p", '{"trusted_principals": []}').status == OK
    assert doctor.settings_row("/p", "{").status == FAIL
    bad = doctor.settings_row("/p", '{"trusted_principal": []}')
    assert bad.status == FAIL and "unknown settings key(s): trusted_principal" in bad.detail
    assert "put-parameter --name /p" in bad.fix
    assert doctor.settings_row("/p", "[]").status == FAIL


def test_member_accounts_need_a_home_bus_that_admits_the_organization() -> None:
    stage = doctor.Stage(StageNames("prod", ACCOUNT, REGION), "")
    assert doctor.organization_row((), None, stage).status == OK
    refused = doctor.organization_row(("222233334444",), None, stage)
    assert refused.status == FAIL and "OrganizationId=o-" in refused.fix and "1 member account(s)" in refused.detail
    other = json.dumps({"Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::222233334444:root"},
                                       "Action": "events:PutEvents"}]})
    assert doctor.organization_row(("222233334444",), other, stage).status == FAIL
    admitted = json.dumps({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "events:PutEvents",
                                          "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"}}}]})
    row = doctor.organization_row(("222233334444", "555566667777"), admitted, stage)
    assert row.status == OK and "o-a1b2c3d4e5" in row.detail


def test_alarms() -> None:
    assert doctor.alarm_rows([], NAMES)[0].status == WARN
    rows = doctor.alarm_rows([("mcd-dev-lookup-errors", "ALARM"), ("mcd-dev-slack-oldest-message", "ALARM"),
                              ("mcd-dev-dispatch-dlq-not-empty", "ALARM"), ("mcd-dev-api_call-throttles", "ALARM"),
                              ("mcd-dev-async-failed-not-empty", "ALARM"),
                              ("mcd-dev-new", "INSUFFICIENT_DATA"), ("mcd-dev-ok", "OK")], NAMES)
    fixes = {r.check: r.fix for r in rows}
    assert fixes["alarm mcd-dev-lookup-errors"] == "aws logs tail /aws/lambda/mcd-dev-lookup --since 1h"
    assert fixes["alarm mcd-dev-slack-oldest-message"] == "aws logs tail /aws/lambda/mcd-dev-slack_send --since 1h"
    assert "mcd-dev-dl_retry" in fixes["alarm mcd-dev-dispatch-dlq-not-empty"]
    assert fixes["alarm mcd-dev-async-failed-not-empty"] == fixes["alarm mcd-dev-dispatch-dlq-not-empty"]
    assert "get-function-concurrency --function-name mcd-dev-api_call" in fixes["alarm mcd-dev-api_call-throttles"]
    assert [(r.check, r.status) for r in rows[-2:]] == [("alarms without data", WARN), ("alarms", OK)]
    assert "mcd-dev-new" in rows[-2].detail and "1 of 7 alarm(s) OK" in rows[-1].detail
    assert doctor.alarm_rows([("mcd-dev-x", "ALARM")], NAMES) == [
        Row("alarm mcd-dev-x", FAIL, "in ALARM", "aws cloudwatch describe-alarm-history --alarm-name mcd-dev-x")]


def test_queues_and_errors() -> None:
    assert doctor.queue_row("q", 0, STAGE).status == OK
    full = doctor.queue_row("q", 3, STAGE)
    assert full.status == FAIL and "3 dead letter(s)" in full.detail
    assert f"s3://{NAMES.archive_bucket}/dead-letter/" in full.fix and "dl_retry" in full.fix
    assert doctor.queue_row("q", None, STAGE).fix == "make deploy STAGE=dev"
    assert doctor.queue_row("q", 2, STAGE, "failed event(s)").detail == "2 failed event(s) waiting"
    denied = ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "GetSecretValue")
    assert doctor.error_row("slack secret", "secretsmanager", denied) == Row(
        "slack secret", WARN, "not checked: AccessDeniedException on GetSecretValue",
        "use credentials allowed secretsmanager:GetSecretValue")
    throttled = ClientError({"Error": {"Code": "Throttling", "Message": "slow down"}}, "DescribeAlarms")
    assert doctor.error_row("alarms", "cloudwatch", throttled).status == FAIL
    offline = doctor.error_row("sns", "sns", EndpointConnectionError(endpoint_url="http://x"))
    assert offline.status == FAIL and "AWS_ENDPOINT_URL" in offline.fix


def test_render_is_a_table_with_a_header() -> None:
    text = doctor.render([Row("a", OK, "fine"), Row("longer check", FAIL, "broken", "do this")])
    lines = text.splitlines()
    assert lines[0].split(" | ") == ["check       ", "status", "detail", "fix"]
    assert lines[2] == "longer check | FAIL   | broken | do this"


def test_unusable_credentials_are_one_fail_row() -> None:
    class Session:
        region_name = REGION

        def client(self, service: str, region_name: str) -> Any:
            assert service == "sts"
            raise EndpointConnectionError(endpoint_url="https://sts.example")

    out = io.StringIO()
    assert doctor.main(["--stage", "dev"], out=out, session=Session()) == 1
    row = out.getvalue().splitlines()[1]
    assert row.startswith("credentials | FAIL   | could not ask AWS: EndpointConnectionError")


def test_mcd_doctor_is_dispatched(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(doctor, "main", lambda argv: 5 if argv == ["--stage", "dev"] else 1)
    assert cli.main(["doctor", "--stage", "dev"]) == 5
    assert "doctor --stage S [--region R]" in cli.USAGE


# --- against the embedded AWS ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def embedded() -> Iterator[str]:
    """The embedded AWS (``mcd_tools.embedded``: a moto server; boto3 finds it through AWS_ENDPOINT_URL)."""
    with pytest.MonkeyPatch.context() as env:
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SECURITY_TOKEN", "AWS_SESSION_TOKEN",
                    "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_ENDPOINT_URL"):
            env.setenv(key, "")  # restored when the module is done, whatever embedded_aws sets
        with embedded_aws(REGION) as endpoint:
            yield endpoint


@pytest.fixture
def aws(embedded: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A client factory on a freshly reset embedded AWS; ``.session`` is lent to doctor (models load once).

    The account's enabled regions are the home region and ``OTHER_REGIONS``: moto's describe_regions lists
    more than 30 (tests/e2e/test_regions.py covers every one) and costs its EC2 backend's set-up on each reset.
    """
    import boto3

    monkeypatch.setattr(doctor, "enabled_regions", lambda ec2, home: sorted({home, *OTHER_REGIONS}))

    urllib.request.urlopen(urllib.request.Request(f"{embedded}/moto-api/reset", method="POST"), timeout=10).close()
    session, clients = boto3.Session(), {}

    def client(service: str, region: str = REGION) -> Any:
        return clients.get((service, region)) or clients.setdefault(
            (service, region), session.client(service, region_name=region))

    client.session = session  # type: ignore[attr-defined]
    return client


def record_config(client: Any, region: str, topic: str | None = None) -> None:
    """A recording AWS Config recorder in ``region``, delivering to the one bucket (and ``topic``, if given)."""
    config = client("config", region)
    config.put_configuration_recorder(ConfigurationRecorder={
        "name": "default", "roleARN": f"arn:aws:iam::{ACCOUNT}:role/config",
        "recordingGroup": {"allSupported": True, "includeGlobalResourceTypes": region == REGION}})
    config.put_delivery_channel(DeliveryChannel={"name": "default", "s3BucketName": "config-bucket-dev",
                                                 **({"snsTopicARN": topic} if topic else {})})
    config.start_configuration_recorder(ConfigurationRecorderName="default")


def healthy_stage(client: Any) -> None:
    client("s3").create_bucket(Bucket="config-bucket-dev", CreateBucketConfiguration={"LocationConstraint": REGION})
    topic = client("sns").create_topic(Name="config-changes-dev")["TopicArn"]
    client("sns").subscribe(TopicArn=topic, Protocol="lambda", Endpoint=INGEST)
    record_config(client, REGION, topic)
    client("cloudtrail").create_trail(Name="main-trail", S3BucketName="config-bucket-dev", IsMultiRegionTrail=True)
    client("cloudtrail").start_logging(Name="main-trail")
    for function in ("config_event", "console_signin", "api_call"):
        client("events").put_rule(Name=f"mcd-dev-{function}", EventPattern='{"source": ["aws.signin"]}')
        client("events").put_targets(Rule=f"mcd-dev-{function}", Targets=[
            {"Id": "1", "Arn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:mcd-dev-{function}"}])
    east = client("events", "us-east-1")
    east.put_rule(Name="mcd-forward-sign-ins", EventPattern=json.dumps({"source": ["aws.signin"]}))
    east.put_targets(Rule="mcd-forward-sign-ins", Targets=[{
        "Id": "home", "Arn": f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/default",
        "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/mcd-event-forwarder"}])
    for region in OTHER_REGIONS:  # one broad rule forwards all three kinds (infra/region.yaml has one per kind)
        events = client("events", region)
        events.put_rule(Name="mcd-dev-forward", EventPattern=json.dumps({"source": [{"prefix": "aws."}]}))
        events.put_targets(Rule="mcd-dev-forward", Targets=[{"Id": "home", "Arn": HOME_BUS}])
        record_config(client, region)
    client("secretsmanager").create_secret(Name="mcd/dev/slack-webhook", SecretString=json.dumps({"url": WEBHOOK}))
    client("ssm").put_parameter(Name="/mcd/dev/settings", Type="String",
                                Value='{"trusted_principals": [], "accounts": ["222233334444"]}')
    client("events").put_permission(EventBusName="default", Action="events:PutEvents", Principal="*",
                                    StatementId="mcd-dev-organization-forwarding",
                                    Condition={"Type": "StringEquals", "Key": "aws:PrincipalOrgID",
                                               "Value": "o-a1b2c3d4e5"})
    for alarm in ("mcd-dev-lookup-dlq-not-empty", "mcd-dev-lookup-errors"):
        client("cloudwatch").put_metric_alarm(AlarmName=alarm, MetricName="Errors", Namespace="AWS/Lambda",
                                              Statistic="Sum", Period=60, EvaluationPeriods=1, Threshold=0,
                                              ComparisonOperator="GreaterThanThreshold")
        client("cloudwatch").set_alarm_state(AlarmName=alarm, StateValue="OK", StateReason="test")
    for queue in ("dispatch-dlq", "lookup-dlq", "slack-dlq", "async-failed"):
        client("sqs").create_queue(QueueName=f"mcd-dev-{queue}")
    deploy_async_functions(client)


def deploy_async_functions(client: Any) -> None:
    """The asynchronous functions, each with the on-failure destination scripts/deploy.py gives it."""
    role = client("iam").create_role(RoleName="mcd-dev", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return None\n")
    for function in ASYNC_FUNCTIONS:
        client("lambda").create_function(FunctionName=f"mcd-dev-{function}", Runtime="python3.12", Role=role,
                                         Handler="app.handler", Code={"ZipFile": code.getvalue()})
        client("lambda").put_function_event_invoke_config(
            FunctionName=f"mcd-dev-{function}", MaximumRetryAttempts=2,
            DestinationConfig={"OnFailure": {"Destination": ASYNC_FAILED}})


def run(aws: Any, *argv: str, stage: str = "dev") -> tuple[int, str, dict[str, Row]]:
    """``mcd doctor``'s exit code, its table, and the table read back into rows by check."""
    out = io.StringIO()
    code = doctor.main(["--stage", stage, "--region", REGION, *argv], out=out, session=aws.session)
    lines = [[cell.strip() for cell in line.split(" | ", 3)] for line in out.getvalue().splitlines()[1:]]
    return code, out.getvalue(), {cells[0]: Row(*cells, *[""] * (4 - len(cells))) for cells in lines}


def test_a_healthy_stage_is_all_ok_and_each_fault_is_found_with_its_fix(aws: Any) -> None:
    healthy_stage(aws)
    code, text, rows = run(aws)
    assert code == 0 and text.startswith("check") and WEBHOOK not in text
    assert [r for r in rows.values() if r.status != OK] == [], text
    assert set(rows) == {"config recorder", "config resource types", "config delivery channel", "sns config topic",
                         "cloudtrail", "eventbridge config_event", "eventbridge console_signin", "eventbridge api_call",
                         "eventbridge sign-ins (us-east-1)", "other regions", "slack secret", "settings", "alarms",
                         "queue mcd-dev-dispatch-dlq", "queue mcd-dev-lookup-dlq", "queue mcd-dev-slack-dlq",
                         "queue mcd-dev-async-failed", "async destinations", "organization"}, text
    assert rows["async destinations"].detail.startswith("5 function(s) send failed events to mcd-dev-async-failed")
    assert "1 member account(s); the home bus admits o-a1b2c3d4e5" in rows["organization"].detail

    aws("config").stop_configuration_recorder(ConfigurationRecorderName="default")
    aws("secretsmanager").delete_secret(SecretId="mcd/dev/slack-webhook")
    aws("ssm").put_parameter(Name="/mcd/dev/settings", Type="String", Overwrite=True,
                             Value='{"trusted_principals": ["arn:aws:sts::123456789012:assumed-role/x/y"]}')
    url = aws("sqs").get_queue_url(QueueName="mcd-dev-slack-dlq")["QueueUrl"]
    aws("sqs").send_message(QueueUrl=url, MessageBody="{}")
    aws("cloudwatch").set_alarm_state(AlarmName="mcd-dev-lookup-errors", StateValue="ALARM", StateReason="test")
    aws("events").disable_rule(Name="mcd-dev-api_call")
    aws("cloudtrail").stop_logging(Name="main-trail")
    aws("events", "eu-central-1").disable_rule(Name="mcd-dev-forward")
    aws("config", "us-east-1").stop_configuration_recorder(ConfigurationRecorderName="default")
    lam = aws("lambda")
    lam.delete_function(FunctionName="mcd-dev-config_event")  # turned off: not checked
    lam.delete_function_event_invoke_config(FunctionName="mcd-dev-ingest")
    lam.delete_function_event_invoke_config(FunctionName="mcd-dev-api_call")
    lam.put_function_event_invoke_config(FunctionName="mcd-dev-api_call", DestinationConfig={
        "OnFailure": {"Destination": f"arn:aws:sqs:{REGION}:{ACCOUNT}:somewhere-else"}})
    aws("sqs").send_message(QueueUrl=aws("sqs").get_queue_url(QueueName="mcd-dev-async-failed")["QueueUrl"],
                            MessageBody="{}")

    code, text, rows = run(aws)
    assert code == 1
    failed = {check: row for check, row in rows.items() if row.status == FAIL}
    assert set(failed) == {"config recorder", "slack secret", "settings", "queue mcd-dev-slack-dlq",
                           "alarm mcd-dev-lookup-errors", "eventbridge api_call", "cloudtrail",
                           "region eu-central-1", "region us-east-1", "async destination ingest",
                           "async destination api_call", "queue mcd-dev-async-failed"}, text
    assert all(row.fix for row in failed.values()), text
    assert "restore-secret --secret-id mcd/dev/slack-webhook" in failed["slack secret"].fix
    assert "session ARN" in failed["settings"].detail
    assert "1 dead letter(s)" in failed["queue mcd-dev-slack-dlq"].detail
    assert "enable-rule --name mcd-dev-api_call" in failed["eventbridge api_call"].fix
    assert rows["alarms"].status == OK and rows["config resource types"].status == OK
    assert "forwards its Config changes, API calls, sign-ins to the default bus" in failed["region eu-central-1"].detail
    assert failed["region us-east-1"].detail.startswith("AWS Config is not recording there")
    assert "other regions" not in rows and rows["eventbridge sign-ins (us-east-1)"].status == OK
    assert "mcd-dev-ingest has no event invoke config" in failed["async destination ingest"].detail
    assert "to arn:aws:sqs:eu-west-1:123456789012:somewhere-else, not" in failed["async destination api_call"].detail
    assert failed["async destination ingest"].fix.startswith("make deploy STAGE=dev ")
    assert rows["async destinations"].detail.startswith("2 function(s) send failed events to mcd-dev-async-failed: "
                                                        "mcd-dev-console_signin, mcd-dev-cloudwatch_logs ")
    assert failed["queue mcd-dev-async-failed"].detail.startswith("1 failed event(s) waiting")


def test_a_stage_that_was_never_deployed_fails_everywhere_without_crashing(aws: Any) -> None:
    code, text, rows = run(aws, "--config-topic-arn", "arn:aws:sns:eu-west-1:123456789012:given", stage="nothing")
    assert code == 1
    assert {check: row.status for check, row in rows.items()} == {
        "config recorder": FAIL, "sns config topic": FAIL, "cloudtrail": FAIL, "eventbridge config_event": FAIL,
        "eventbridge console_signin": FAIL, "eventbridge api_call": FAIL, "eventbridge sign-ins (us-east-1)": FAIL,
        "region eu-central-1": FAIL, "region us-east-1": FAIL, "slack secret": FAIL,
        "settings": FAIL, "alarms": WARN, "queue mcd-nothing-dispatch-dlq": FAIL, "queue mcd-nothing-lookup-dlq": FAIL,
        "queue mcd-nothing-slack-dlq": FAIL, "queue mcd-nothing-async-failed": FAIL, "async destinations": FAIL,
        "organization": OK}, text
    assert "arn:aws:sns:eu-west-1:123456789012:given does not exist" in rows["sns config topic"].detail
    assert "it deploys mcd-nothing-region in us-east-1" in rows["eventbridge sign-ins (us-east-1)"].fix
    assert "without MCD_CONFIG_VIA_EVENTBRIDGE=0" in rows["eventbridge config_event"].fix
