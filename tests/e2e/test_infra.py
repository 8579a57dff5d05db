"""infra/stack.yaml and scripts/deploy.py: lint-clean, deployable into moto, named as the functions derive.

The stack's outputs are the names ``chalicelib.stage_config`` derives from stage, account and region,
so deploying writes nothing into the working tree; ``deploy.py`` checks the outputs against them.

moto 5.2.5's CloudFormation creates the queues, the bucket (with its encryption), the table (keys),
the SSM parameter, the SNS topics and the dashboard. It skips AWS::SecretsManager::Secret,
AWS::S3::BucketPolicy, AWS::SNS::TopicPolicy and AWS::CloudWatch::Alarm, and ignores the bucket's
public access block, lifecycle and ownership controls and the table's TTL; those are checked on the
template itself. The alarms are also put into moto's CloudWatch by hand, property for property as
the template has them (the CloudFormation properties are PutMetricAlarm's parameters), so botocore
checks every one as a request AWS would accept.
"""

from __future__ import annotations

import ast
import dataclasses
import fnmatch
import io
import json
import re
import warnings
from pathlib import Path
from typing import Any

import boto3
import deploy_script
import pytest
from moto import mock_aws

from mcd_tools.stack_template import (
    alarm_requests,
    load_template,
    of_type,
    resolve,
    resolved_names,
    stack_resource,
)

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "infra" / "stack.yaml"
CONFIG = ROOT / ".chalice" / "config.json"
REGION = "us-east-1"
MOTO_ACCOUNT = "123456789012"
TEMPLATE_BODY_LIMIT = 51_200  # bytes: CloudFormation's cap on TemplateBody; deploy.py uploads a larger template


deploy: Any = deploy_script.deploy  # scripts/deploy.py, loaded once for every test module


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(TEMPLATE)  # raises if cfn-lint's decoder reports anything


@pytest.fixture
def moto_stack():
    """The stack created in moto with Stage=local: (outputs, client factory)."""
    with mock_aws(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*not supported by moto's CloudFormation.*")
        session = boto3.session.Session(region_name=REGION)
        outputs = deploy.deploy_stack(session.client("cloudformation"), "local", {},
                                      upload=deploy.template_uploader(session, "local"))
        yield outputs, lambda service: boto3.client(service, region_name=REGION)


def _lambda_timeout(config: dict[str, Any], stage: str, function: str) -> int:
    """The function's timeout in ``stage`` as Chalice resolves it (stage, top-level ``lambda_functions``, top)."""
    from chalice.config import Config

    return int(Config(chalice_stage=stage, function_name=function, config_from_disk=config).lambda_timeout)


# ------------------------------------------------------------------------------------------------
# The template


def test_make_lint_runs_cfn_lint_with_informational_findings_in_three_regions():
    """cfn-lint runs once, in ``make lint`` (which ``make test`` runs first), strict: informational included."""
    lint = (ROOT / "Makefile").read_text().split("\nlint:", 1)[1].split("\n\n", 1)[0]
    assert "cfn-lint --include-checks I --regions us-east-1 eu-west-1 eu-central-1 -- infra/stack.yaml" in lint


def test_make_lint_scans_infra_with_checkov_offline_and_every_skip_says_why_in_the_docs(template):
    lint = (ROOT / "Makefile").read_text().split("\nlint:", 1)[1].split("\n\n", 1)[0]
    assert "checkov --directory infra --framework cloudformation --skip-download" in lint
    skips = {(skip["id"], logical): skip.get("comment", "") for logical, resource in template["Resources"].items()
             for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])}
    assert skips and all(len(comment) >= 40 for comment in skips.values()), skips
    documented = re.findall(r"^\| (CKV_AWS_\d+)[^|]*\| `(\w+)` \|", (ROOT / "docs" / "deployment.md").read_text(), re.M)
    assert sorted(documented) == sorted(skips)


def test_outputs_are_exactly_the_mapped_environment_variables(template):
    outputs = template["Outputs"]
    # McdHealthTopic is for people (subscriptions), not a name the functions derive.
    assert set(outputs) == set(deploy.OUTPUT_TO_ENV) | {"McdHealthTopic"}
    for name, variable in deploy.OUTPUT_TO_ENV.items():
        assert outputs[name]["Description"].startswith(variable + " "), name
        assert "Export" not in outputs[name]
    from chalicelib.bootstrap import Environment

    # The outputs alone, as explicit overrides, make a complete environment; no stage writes them down:
    # the functions derive them (test_stack_outputs_are_the_names_the_functions_derive).
    env = Environment.from_env({variable: f"value-of-{variable}" for variable in deploy.OUTPUT_TO_ENV.values()})
    assert env.settings_ref == "value-of-MCD_SETTINGS" and env.slack_secret == "value-of-MCD_SLACK_SECRET"
    config = json.loads(CONFIG.read_text())
    for stage, settings in config["stages"].items():
        assert not set(deploy.OUTPUT_TO_ENV.values()) & set(settings.get("environment_variables", {})), stage
    assert not set(deploy.OUTPUT_TO_ENV.values()) & set(config.get("environment_variables", {}))


def test_deploy_script_reads_the_template_parameters(template):
    assert deploy.template_parameters(TEMPLATE.read_text()) == list(template["Parameters"])


def test_visibility_timeouts_exceed_the_consumers_timeouts_in_every_stage(template):
    resources = template["Resources"]
    config = json.loads(CONFIG.read_text())
    consumers = {"DispatchQueue": "dispatch", "LookupQueue": "lookup", "SlackQueue": "slack_send",
                 "DispatchDeadLetterQueue": "dl_retry", "LookupDeadLetterQueue": "dl_retry",
                 "SlackDeadLetterQueue": "dl_retry", "AsyncFailedQueue": "dl_retry"}
    assert set(consumers) == set(of_type(template, "AWS::SQS::Queue"))
    for queue, function in consumers.items():
        visibility = resources[queue]["Properties"]["VisibilityTimeout"]
        for stage in config["stages"]:
            assert visibility > _lambda_timeout(config, stage, function), (queue, stage)
    for queue in ("DispatchQueue", "LookupQueue", "SlackQueue"):
        props = resources[queue]["Properties"]
        assert props["RedrivePolicy"]["maxReceiveCount"] == 5
        dlq = props["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
        assert resources[dlq]["Properties"]["MessageRetentionPeriod"] == 14 * 86_400
    assert resources["AsyncFailedQueue"]["Properties"]["MessageRetentionPeriod"] == 14 * 86_400


def test_work_queues_keep_messages_as_long_as_alerts_wait_for_slack(template):
    from chalicelib.stages.deliver import RETRY_FOR_SECONDS

    resources = template["Resources"]
    for queue in ("DispatchQueue", "LookupQueue", "SlackQueue"):
        assert resources[queue]["Properties"]["MessageRetentionPeriod"] == 14 * 86_400, queue
    assert resources["SlackQueue"]["Properties"]["MessageRetentionPeriod"] >= RETRY_FOR_SECONDS


def test_archive_bucket_is_private_encrypted_tls_only_and_expires(template):
    resources = template["Resources"]
    props = resources["ArchiveBucket"]["Properties"]
    assert set(props["PublicAccessBlockConfiguration"].values()) == {True}
    assert len(props["PublicAccessBlockConfiguration"]) == 4
    default = stack_resource(template, "ArchiveBucket", "prod", REGION, MOTO_ACCOUNT)
    (rule,) = default["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule == {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
    rules = {r.get("Prefix"): r for r in props["LifecycleConfiguration"]["Rules"]}
    assert rules["AWSLogs/"]["ExpirationInDays"] == {"Ref": "ArchiveRetentionDays"}
    assert template["Parameters"]["ArchiveRetentionDays"]["Default"] == 400
    assert rules["dead-letter/"]["ExpirationInDays"] == {"Ref": "DeadLetterRetentionDays"}
    (deny,) = resources["ArchiveBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny" and deny["Action"] == "s3:*"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_table_secret_parameter_and_topic(template):
    resources = template["Resources"]
    table = resources["StateTable"]["Properties"]
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    pitr = table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"]
    assert pitr == {"Fn::If": ["IsProd", True, False]}
    secret = resources["SlackWebhookSecret"]["Properties"]
    assert secret["Name"] == {"Fn::Sub": "mcd/${Stage}/slack-webhook"}
    assert "hooks.slack.com" not in secret["SecretString"] and "REPLACE_ME" in secret["SecretString"]
    assert resources["SettingsParameter"]["Properties"]["Type"] == "String"
    assert resources["ConfigTopic"]["Condition"] == "CreateConfigTopic"
    statement = resources["ConfigTopicPolicy"]["Properties"]["PolicyDocument"]["Statement"][0]
    assert statement["Principal"] == {"Service": "config.amazonaws.com"} and statement["Action"] == "sns:Publish"
    # Chalice subscribes the ingest function and grants SNS the invoke permission itself.
    kinds = {r["Type"] for r in resources.values()}
    assert not kinds & {"AWS::SNS::Subscription", "AWS::Lambda::Permission", "AWS::Lambda::Function"}


# ------------------------------------------------------------------------------------------------
# Watching the watcher: the health topic, the alarms and the dashboard (docs/operations.md)

QUEUE_RESOURCES = {"dispatch": ("DispatchQueue", "DispatchDeadLetterQueue"),
                   "lookup": ("LookupQueue", "LookupDeadLetterQueue"),
                   "slack": ("SlackQueue", "SlackDeadLetterQueue")}
OLDEST_MESSAGE_SECONDS = {"dispatch": 900, "lookup": 7200, "slack": 3600}  # lookup jobs wait on purpose up to ~90 min
HANDLER_METRICS = {"AlertDelayFromCall", "AlertDelayFromNotification", "Outcomes", "Suppressions", "LookupCalls",
                   "LookupThrottles", "DeadLetters", "SlackRateLimited"}
SUSTAINED_THROTTLE_PERIODS = 6


def _app_functions() -> dict[str, int | None]:
    """Each Lambda function app.py declares (any ``@app.…`` decorator but ``route``) and its schedule in seconds.

    ``config_event`` sits under an ``if`` (deployed unless MCD_CONFIG_VIA_EVENTBRIDGE=0); it is
    found all the same. ``watchdog`` (every 5 minutes, issue 13) is being added to app.py; until it
    is there it is expected explicitly, with no schedule read from app.py.
    """
    functions: dict[str, int | None] = {}
    for node in ast.walk(ast.parse((ROOT / "app.py").read_text())):
        if not isinstance(node, ast.FunctionDef):
            continue
        for decorator in node.decorator_list:
            call = decorator if isinstance(decorator, ast.Call) else None
            target = call.func if call else decorator
            if (isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name)
                    and target.value.id == "app" and target.attr != "route"):
                functions[node.name] = None
                if target.attr == "schedule" and call and isinstance(call.args[0], ast.Call):
                    rate = call.args[0]
                    unit = next((k.value.attr for k in rate.keywords if k.arg == "unit"), "MINUTES")
                    seconds = {"MINUTES": 60, "HOURS": 3600, "DAYS": 86_400}[unit]
                    functions[node.name] = ast.literal_eval(rate.args[0]) * seconds
    functions.setdefault("watchdog", 300)  # not in app.py yet: being added now, every 5 minutes
    return functions


def _dashboard(template: dict[str, Any], stage: str = "prod") -> dict[str, Any]:
    (props,) = of_type(template, "AWS::CloudWatch::Dashboard").values()
    assert props["DashboardName"] == {"Fn::Sub": "mcd-${Stage}"}
    body = resolve(props["DashboardBody"], resolved_names(template, stage, REGION, MOTO_ACCOUNT))
    assert "${" not in body
    return json.loads(body)


def test_health_topic_is_the_output_and_accepts_only_the_stages_alarms(template):
    resources = template["Resources"]
    assert resources["HealthTopic"]["Properties"]["TopicName"] == {"Fn::Sub": "mcd-${Stage}-health"}
    assert template["Outputs"]["McdHealthTopic"]["Value"] == {"Ref": "HealthTopic"}
    # Never under the AWS managed key alias/aws/sns, which CloudWatch cannot use: the CMK or nothing.
    assert "KmsMasterKeyId" not in stack_resource(template, "HealthTopic", "prod", REGION, MOTO_ACCOUNT)
    encrypted = stack_resource(template, "HealthTopic", "prod", REGION, MOTO_ACCOUNT, {"KmsKeyMode": "create"})
    assert encrypted["KmsMasterKeyId"] == f"arn:aws:kms:{REGION}:{MOTO_ACCOUNT}:key/stack-key"
    policy = resources["HealthTopicPolicy"]["Properties"]
    assert policy["Topics"] == [{"Ref": "HealthTopic"}]
    allow, deny = policy["PolicyDocument"]["Statement"]
    assert allow["Principal"] == {"Service": "cloudwatch.amazonaws.com"} and allow["Action"] == "sns:Publish"
    pattern = resolve(allow["Condition"]["ArnLike"]["aws:SourceArn"],
                      resolved_names(template, "prod", REGION, "111122223333"))
    for name in alarm_requests(template, "prod", REGION, MOTO_ACCOUNT):
        assert fnmatch.fnmatchcase(f"arn:aws:cloudwatch:{REGION}:111122223333:alarm:{name}", pattern), name
    assert not fnmatch.fnmatchcase(f"arn:aws:cloudwatch:{REGION}:111122223333:alarm:mcd-dev-lookup-errors", pattern)
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_every_alarm_notifies_the_health_topic_on_alarm_and_ok(template):
    topic = resolved_names(template, "prod", REGION, MOTO_ACCOUNT)["HealthTopic"]
    for logical, props in of_type(template, "AWS::CloudWatch::Alarm").items():
        assert logical.endswith("Alarm"), logical
        assert props["AlarmActions"] == props["OKActions"] == [{"Ref": "HealthTopic"}], logical
        if logical == "WatchdogNotRunningAlarm":  # the one alarm on missing data: no invocation at all
            assert (props["TreatMissingData"], props["ComparisonOperator"]) == ("breaching", "LessThanThreshold")
            continue
        assert props["TreatMissingData"] == "notBreaching", logical
        assert props["ComparisonOperator"] == "GreaterThanThreshold", logical
        assert props["Tags"] == [{"Key": "mcd-stage", "Value": {"Ref": "Stage"}}], logical
    for name, alarm in alarm_requests(template, "prod", REGION, MOTO_ACCOUNT).items():
        assert name.startswith("mcd-prod-") and alarm["AlarmActions"] == [topic]
        # Read by a person in an email or chat: what it means and the first thing to check.
        assert 100 <= len(alarm["AlarmDescription"]) <= 1024 and "First:" in alarm["AlarmDescription"], name


def test_every_queue_has_its_dead_letter_and_oldest_message_alarms(template):
    alarms = alarm_requests(template, "prod", REGION, MOTO_ACCOUNT)
    names = resolved_names(template, "prod", REGION, MOTO_ACCOUNT)
    queue_alarms = {n for n, a in alarms.items() if a["Namespace"] == "AWS/SQS"}
    kinds = ("dlq-not-empty", "oldest-message")
    assert queue_alarms == {f"mcd-prod-{q}-{kind}" for q in QUEUE_RESOURCES for kind in kinds} | {
        "mcd-prod-async-failed-not-empty"}
    async_failed = alarms["mcd-prod-async-failed-not-empty"]  # any event that failed all of Lambda's tries
    assert async_failed["Dimensions"] == [{"Name": "QueueName", "Value": "mcd-prod-async-failed"}]
    assert (async_failed["MetricName"], async_failed["Statistic"], async_failed["Threshold"]) == (
        "ApproximateNumberOfMessagesVisible", "Maximum", 0)
    resources = template["Resources"]
    for queue, (main, dlq) in QUEUE_RESOURCES.items():
        assert resources[main]["Properties"]["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": [dlq, "Arn"]}
        not_empty = alarms[f"mcd-prod-{queue}-dlq-not-empty"]
        assert not_empty["Dimensions"] == [{"Name": "QueueName", "Value": names[f"{dlq}.QueueName"]}]
        assert names[f"{dlq}.QueueName"] == f"mcd-prod-{queue}-dlq"
        assert (not_empty["MetricName"], not_empty["Statistic"], not_empty["Threshold"]) == (
            "ApproximateNumberOfMessagesVisible", "Maximum", 0)
        oldest = alarms[f"mcd-prod-{queue}-oldest-message"]
        assert oldest["Dimensions"] == [{"Name": "QueueName", "Value": f"mcd-prod-{queue}"}]
        assert (oldest["MetricName"], oldest["Statistic"], oldest["Threshold"]) == (
            "ApproximateAgeOfOldestMessage", "Maximum", OLDEST_MESSAGE_SECONDS[queue])
        assert oldest["Period"] == not_empty["Period"] == 300  # SQS sends its metrics every 5 minutes


def test_every_function_has_errors_and_throttles_alarms(template):
    functions = _app_functions()
    assert {"ingest", "config_event", "dispatch", "lookup", "dl_retry", "slack_send", "console_signin", "api_call",
            "cloudwatch_logs", "watchdog"} <= set(functions)
    config = json.loads(CONFIG.read_text())
    alarms = alarm_requests(template, "prod", REGION, MOTO_ACCOUNT)
    lambda_alarms = {n for n, a in alarms.items() if a["Namespace"] == "AWS/Lambda"}
    assert lambda_alarms == {f"mcd-prod-{f}-{m}" for f in functions for m in ("errors", "throttles")} | {
        "mcd-prod-watchdog-not-running"}
    not_running = alarms["mcd-prod-watchdog-not-running"]
    assert (not_running["MetricName"], not_running["Threshold"], not_running["Period"] * not_running[
        "EvaluationPeriods"]) == ("Invocations", 1, 900), "the watchdog runs every 5 minutes: 15 without a run"
    for function, schedule in functions.items():
        for metric in ("Errors", "Throttles"):
            alarm = alarms[f"mcd-prod-{function}-{metric.lower()}"]
            assert alarm["Dimensions"] == [{"Name": "FunctionName", "Value": f"mcd-prod-{function}"}]
            assert (alarm["MetricName"], alarm["Statistic"], alarm["Threshold"], alarm["Period"]) == (
                metric, "Sum", 0, 300)
        assert alarms[f"mcd-prod-{function}-errors"]["EvaluationPeriods"] == 1
        # A single-flight consumer (reserved concurrency 1) whose run can outlast its schedule is throttled
        # now and then in any backlog; its throttles alarm waits for half an hour of them. The others: at once.
        reserved = config["lambda_functions"].get(function, {}).get("reserved_concurrency")
        outlasts = bool(schedule and function in config["lambda_functions"]
                        and _lambda_timeout(config, "prod", function) > schedule)
        throttles = alarms[f"mcd-prod-{function}-throttles"]
        periods = SUSTAINED_THROTTLE_PERIODS if reserved == 1 and outlasts else 1
        assert throttles["EvaluationPeriods"] == throttles.get("DatapointsToAlarm", 1) == periods, function
    assert {f for f in functions if alarms[f"mcd-prod-{f}-throttles"]["EvaluationPeriods"] > 1} == {
        "dispatch", "lookup", "slack_send"}


def test_dashboard_body_is_json_showing_the_metrics_queues_and_functions(template):
    widgets = _dashboard(template)["widgets"]
    cells = set()
    for widget in widgets:
        assert widget["x"] >= 0 and widget["x"] + widget["width"] <= 24
        area = {(widget["x"] + i, widget["y"] + j) for i in range(widget["width"]) for j in range(widget["height"])}
        assert not cells & area, widget  # no widget hides another
        cells |= area
    charts = {w["properties"]["title"]: w["properties"] for w in widgets if w["type"] == "metric"}
    for chart in charts.values():
        assert chart["region"] == REGION
    lines = [(title, line) for title, chart in charts.items() for line in chart["metrics"]]
    metrics = [(t, line) for t, line in lines if isinstance(line[0], str)]
    searches = [line[0]["expression"] for _, line in lines if isinstance(line[0], dict)]
    shown = {line[1] for _, line in metrics if line[0] == "mcd"}
    shown |= {m for e in searches for m in re.findall(r'MetricName="(\w+)"', e)}
    assert shown == HANDLER_METRICS
    assert all(line[2:4] == ["Stage", "prod"] for _, line in metrics if line[0] == "mcd")
    for dimension, metric in (("Kind", "Outcomes"), ("Pattern", "Suppressions"), ("Queue", "DeadLetters")):
        assert f"SEARCH('{{mcd,Stage,{dimension}}} Stage=\"prod\" MetricName=\"{metric}\"', 'Sum', 300)" in searches
    delay = {(line[1], line[4]["stat"]) for _, line in metrics if line[1].startswith("AlertDelay")}
    stats = ("p50", "p90", "Maximum")
    assert delay == {(m, s) for m in ("AlertDelayFromCall", "AlertDelayFromNotification") for s in stats}

    def dimension_values(namespace: str, metric: str) -> set[str]:
        return {line[3] for _, line in metrics if line[:2] == [namespace, metric]}

    queues = {f"mcd-prod-{q}" for q in QUEUE_RESOURCES}
    assert dimension_values("AWS/SQS", "ApproximateNumberOfMessagesVisible") == queues | {
        f"{q}-dlq" for q in queues} | {"mcd-prod-async-failed"}
    assert dimension_values("AWS/SQS", "ApproximateAgeOfOldestMessage") == queues
    age_chart = next(c for c in charts.values() if "ApproximateAgeOfOldestMessage" in json.dumps(c["metrics"]))
    assert {a["value"] for a in age_chart["annotations"]["horizontal"]} == set(OLDEST_MESSAGE_SECONDS.values())
    functions = {f"mcd-prod-{f}" for f in _app_functions()}
    assert dimension_values("AWS/Lambda", "Errors") == dimension_values("AWS/Lambda", "Throttles") == functions


def test_a_template_over_the_body_limit_goes_through_the_stages_artifacts_bucket(monkeypatch, capsys):
    """CloudFormation caps TemplateBody at 51,200 bytes: a larger template is uploaded to the stage's own
    deploy-artifacts bucket, created by the deploy (private, encrypted, versioned, TLS only) and deleted by
    the teardown."""
    assert deploy.TEMPLATE_BODY_LIMIT == TEMPLATE_BODY_LIMIT
    assert deploy.template_source("small", None) == {"TemplateBody": "small"}
    with pytest.raises(deploy.DeployError, match="over 51,200 bytes"):
        deploy.template_source("x" * (TEMPLATE_BODY_LIMIT + 1), None)
    monkeypatch.setattr(deploy, "TEMPLATE_BODY_LIMIT", 1_000)  # the upload path, however large the template is
    monkeypatch.setattr(deploy, "run_chalice", lambda *args, **kwargs: None)
    bucket = f"mcd-local-deploy-{MOTO_ACCOUNT}-{REGION}"
    with mock_aws(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*not supported by moto's CloudFormation.*")
        assert deploy.main(["deploy", "--stage", "local", "--stack-only", "--region", REGION]) == 0
        s3 = boto3.client("s3", region_name=REGION)
        (deny,) = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])["Statement"]
        assert (deny["Effect"], deny["Condition"]) == ("Deny", {"Bool": {"aws:SecureTransport": "false"}})
        # moto ignores that condition (it cannot tell TLS) and so refuses every object request: lift it to look.
        s3.delete_bucket_policy(Bucket=bucket)
        (uploaded,) = s3.list_objects_v2(Bucket=bucket)["Contents"]
        assert s3.get_object(Bucket=bucket, Key=uploaded["Key"])["Body"].read() == TEMPLATE.read_bytes()
        blocked = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
        assert set(blocked.values()) == {True} and len(blocked) == 4
        rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
        assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
        assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
        assert deploy.main(["deploy", "--stage", "local", "--stack-only", "--region", REGION]) == 0  # bucket reused
        assert len(s3.list_object_versions(Bucket=bucket)["Versions"]) == 1  # an unchanged template is not re-sent
        s3.delete_bucket_policy(Bucket=bucket)
        assert deploy.main(["teardown", "--stage", "local", "--region", REGION]) == 0
        assert bucket not in {b["Name"] for b in s3.list_buckets()["Buckets"]}
        assert not boto3.client("cloudformation", region_name=REGION).list_stacks(
            StackStatusFilter=["CREATE_COMPLETE", "UPDATE_COMPLETE"])["StackSummaries"]
    printed = capsys.readouterr().out
    assert f"over the TemplateBody limit: from s3://{bucket}/templates/stack-" in printed
    assert f"deleted the deploy-artifacts bucket {bucket}" in printed


# ------------------------------------------------------------------------------------------------
# The stack in moto


def test_stack_deploys_into_moto_and_every_output_resolves(moto_stack):
    outputs, client = moto_stack
    assert set(outputs) >= set(deploy.OUTPUT_TO_ENV)
    assert all(outputs[name] for name in deploy.OUTPUT_TO_ENV)
    assert outputs["McdSettings"] == "ssm:/mcd/local/settings"
    assert outputs["McdSlackSecret"] == "mcd/local/slack-webhook"
    assert outputs["McdConfigTopic"] == f"arn:aws:sns:{REGION}:123456789012:config-changes-local"
    assert outputs["McdStateTable"] == "mcd-local-state"
    status = client("cloudformation").describe_stacks(StackName="mcd-local")["Stacks"][0]["StackStatus"]
    assert status == "CREATE_COMPLETE"


def test_moto_queues_have_their_dead_letter_queues(moto_stack):
    outputs, client = moto_stack
    sqs = client("sqs")
    for name, visibility in (("Dispatch", "180"), ("Lookup", "360"), ("Slack", "180")):
        attrs = sqs.get_queue_attributes(QueueUrl=outputs[f"Mcd{name}QueueUrl"], AttributeNames=["All"])["Attributes"]
        dlq = sqs.get_queue_attributes(QueueUrl=outputs[f"Mcd{name}DlqUrl"], AttributeNames=["All"])["Attributes"]
        redrive = json.loads(attrs["RedrivePolicy"])
        assert redrive == {"deadLetterTargetArn": dlq["QueueArn"], "maxReceiveCount": 5}
        assert attrs["VisibilityTimeout"] == visibility
        assert dlq["MessageRetentionPeriod"] == "1209600"
        assert attrs["MessageRetentionPeriod"] == "1209600"
        assert "RedrivePolicy" not in dlq


def test_moto_table_bucket_parameter_and_topic_exist(moto_stack):
    outputs, client = moto_stack
    table = client("dynamodb").describe_table(TableName=outputs["McdStateTable"])["Table"]
    assert {(k["AttributeName"], k["KeyType"]) for k in table["KeySchema"]} == {("pk", "HASH"), ("sk", "RANGE")}
    attributes = {(a["AttributeName"], a["AttributeType"]) for a in table["AttributeDefinitions"]}
    assert attributes == {("pk", "S"), ("sk", "S")}
    s3 = client("s3")
    s3.head_bucket(Bucket=outputs["McdArchiveBucket"])
    rule = s3.get_bucket_encryption(Bucket=outputs["McdArchiveBucket"])["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    parameter = client("ssm").get_parameter(Name=outputs["McdSettings"][4:])["Parameter"]
    assert parameter["Type"] == "String" and json.loads(parameter["Value"])["trusted_principals"] == []
    client("sns").get_topic_attributes(TopicArn=outputs["McdConfigTopic"])


def test_moto_health_topic_dashboard_and_alarms(moto_stack, template):
    outputs, client = moto_stack
    topic = outputs["McdHealthTopic"]
    assert topic == f"arn:aws:sns:{REGION}:{MOTO_ACCOUNT}:mcd-local-health"
    client("sns").get_topic_attributes(TopicArn=topic)
    cloudwatch = client("cloudwatch")
    body = cloudwatch.get_dashboard(DashboardName="mcd-local")["DashboardBody"]
    assert json.loads(body) == _dashboard(template, "local")  # moto's Fn::Sub agrees with the tests' reading
    # moto 5.2.5's CloudFormation skips AWS::CloudWatch::Alarm: put each alarm as the stack defines it, so
    # botocore validates its properties as a PutMetricAlarm request (a moto that creates them is checked as is).
    alarms = alarm_requests(template, "local", REGION, MOTO_ACCOUNT)
    if not cloudwatch.describe_alarms(AlarmNamePrefix="mcd-local-")["MetricAlarms"]:
        for alarm in alarms.values():
            cloudwatch.put_metric_alarm(**alarm)
    described = cloudwatch.describe_alarms(AlarmNamePrefix="mcd-local-", MaxRecords=100)["MetricAlarms"]
    assert {a["AlarmName"] for a in described} == set(alarms)
    assert all(a["AlarmActions"] == a["OKActions"] == [topic] for a in described)


def test_stack_outputs_are_the_names_the_functions_derive(moto_stack):
    from chalicelib.bootstrap import Environment

    outputs, client = moto_stack
    stack = client("cloudformation").describe_stacks(StackName="mcd-local")["Stacks"][0]
    names, topic = deploy.stack_names(stack, "local", REGION)
    assert (names.account, names.region, names.partition, topic) == (MOTO_ACCOUNT, REGION, "aws", "")
    assert deploy.derived_outputs(names) == {name: outputs[name] for name in deploy.OUTPUT_TO_ENV}
    deploy.check_outputs("local", outputs, deploy.derived_outputs(names))
    # What a function of the stage derives from MCD_STAGE and its context's ARN is the stack, name for name.
    arn = f"arn:aws:lambda:{REGION}:{MOTO_ACCOUNT}:function:mcd-local-lookup"
    env = Environment.from_env({"MCD_STAGE": "local", "AWS_REGION": REGION}, arn)
    overridden = Environment.from_env({**{v: outputs[o] for o, v in deploy.OUTPUT_TO_ENV.items()}, "AWS_REGION": REGION,
                                       "MCD_STAGE": "local"})
    assert env == dataclasses.replace(overridden, account=env.account)  # the ARN names the account, overrides don't
    assert env.dispatch_queue_url == outputs["McdDispatchQueueUrl"]
    assert env.archive_bucket == outputs["McdArchiveBucket"]


def test_deploy_checks_the_stack_and_writes_nothing_into_the_tree(capsys):
    tracked = {path: path.read_bytes() for path in (CONFIG, TEMPLATE, *(ROOT / ".chalice").glob("*.json"))}
    with mock_aws(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*not supported by moto's CloudFormation.*")
        assert deploy.main(["deploy", "--stage", "local", "--stack-only", "--region", REGION]) == 0
        assert deploy.main(["deploy", "--stage", "local", "--stack-only", "--region", REGION]) == 0  # a redeploy
    printed = capsys.readouterr().out
    assert "MCD_STATE_TABLE = mcd-local-state" in printed
    assert f"export MCD_ACCOUNT_ID={MOTO_ACCOUNT}" in printed
    assert {path: path.read_bytes() for path in tracked} == tracked


def test_redeploy_updates_in_place(moto_stack):
    outputs, client = moto_stack
    session = boto3.session.Session(region_name=REGION)
    assert deploy.deploy_stack(client("cloudformation"), "local", {},
                               upload=deploy.template_uploader(session, "local")) == outputs


def test_existing_config_topic_is_used_not_created_and_kept_on_redeploy():
    with mock_aws(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*not supported by moto's CloudFormation.*")
        sns = boto3.client("sns", region_name=REGION)
        cfn = boto3.client("cloudformation", region_name=REGION)
        upload = deploy.template_uploader(boto3.session.Session(region_name=REGION), "dev")
        topic = sns.create_topic(Name="aws-config-delivery")["TopicArn"]
        outputs = deploy.deploy_stack(cfn, "dev", {"ConfigTopicArn": topic}, upload=upload)
        assert outputs["McdConfigTopic"] == topic
        topics = sorted([topic, outputs["McdHealthTopic"]])  # the health topic is always the stack's own
        assert sorted(t["TopicArn"] for t in sns.list_topics()["Topics"]) == topics
        # Nothing given this time: the stack's current parameter values are kept (an empty
        # ConfigTopicArn would make the stack create its own topic).
        assert deploy.deploy_stack(cfn, "dev", {}, upload=upload) == outputs
        assert sorted(t["TopicArn"] for t in sns.list_topics()["Topics"]) == topics


class _UnchangedStack:
    """CloudFormation answering an update of an unchanged stack as AWS does (moto compares Number
    parameters as int against the strings sent, so it never says this for a stack with defaults)."""

    def __init__(self, outputs: dict[str, str]) -> None:
        self.outputs = outputs
        self.updates: list[dict[str, Any]] = []

    def describe_stacks(self, StackName: str) -> dict[str, Any]:
        return {"Stacks": [{"StackName": StackName, "StackStatus": "UPDATE_COMPLETE",
                            "Parameters": [{"ParameterKey": "Stage", "ParameterValue": "dev"},
                                           {"ParameterKey": "ArchiveRetentionDays", "ParameterValue": "730"}],
                            "Outputs": [{"OutputKey": k, "OutputValue": v} for k, v in self.outputs.items()]}]}

    def update_stack(self, **kwargs: Any) -> None:
        from botocore.exceptions import ClientError

        self.updates.append(kwargs)
        raise ClientError({"Error": {"Code": "ValidationError", "Message": "No updates are to be performed."}},
                          "UpdateStack")


def test_redeploy_of_an_unchanged_stack_is_tolerated(capsys):
    cfn = _UnchangedStack(OUTPUTS)
    assert deploy.deploy_stack(cfn, "dev", {}, upload=lambda body: "https://b.s3.eu-west-1.amazonaws.com/t") == OUTPUTS
    assert "stack mcd-dev is up to date" in capsys.readouterr().out
    (update,) = cfn.updates
    assert {p["ParameterKey"]: p["ParameterValue"] for p in update["Parameters"]} == {
        "Stage": "dev", "ArchiveRetentionDays": "730"}


def test_emptying_the_archive_removes_every_version():
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket="archive")
        s3.put_bucket_versioning(Bucket="archive", VersioningConfiguration={"Status": "Enabled"})
        for _ in range(3):
            s3.put_object(Bucket="archive", Key="AWSLogs/a.json", Body=b"{}")
        s3.put_object(Bucket="archive", Key="dead-letter/b.json", Body=b"{}")
        s3.delete_object(Bucket="archive", Key="dead-letter/b.json")
        assert deploy.empty_bucket(s3, "archive") == 5
        s3.delete_bucket(Bucket="archive")
        assert deploy.empty_bucket(s3, "no-such-bucket") == 0


# ------------------------------------------------------------------------------------------------
# Checking the outputs against the derived names (nothing is written into .chalice/config.json)


OUTPUTS = {name: f"value-of-{variable}" for name, variable in deploy.OUTPUT_TO_ENV.items()}


def _derived(stage: str = "dev", topic: str = "") -> dict[str, str]:
    from chalicelib.stage_config import StageNames

    return deploy.derived_outputs(StageNames(stage, "111122223333", "eu-west-1"), topic)


def test_derived_outputs_are_every_mapped_output_named_after_the_stage():
    derived = _derived()
    assert set(derived) == set(deploy.OUTPUT_TO_ENV)
    assert derived["McdDispatchDlqUrl"] == "https://sqs.eu-west-1.amazonaws.com/111122223333/mcd-dev-dispatch-dlq"
    assert derived["McdArchiveBucket"] == "mcd-dev-archive-111122223333-eu-west-1"
    assert derived["McdStateTable"] == "mcd-dev-state" and derived["McdSettings"] == "ssm:/mcd/dev/settings"
    assert derived["McdSlackSecret"] == "mcd/dev/slack-webhook"
    assert derived["McdConfigTopic"] == "arn:aws:sns:eu-west-1:111122223333:config-changes-dev"
    assert _derived(topic="arn:aws:sns:eu-west-1:111122223333:mine")["McdConfigTopic"].endswith(":mine")


def test_config_json_keeps_its_formatting():
    text = CONFIG.read_text()
    assert json.dumps(json.loads(text), indent=2, ensure_ascii=False) + "\n" == text


def test_check_outputs_refuses_missing_or_differing_outputs_and_unknown_stages():
    config = json.loads(CONFIG.read_text())
    derived = _derived()
    with pytest.raises(deploy.DeployError, match="McdStateTable"):
        deploy.check_outputs("dev", {k: v for k, v in derived.items() if k != "McdStateTable"}, derived)
    with pytest.raises(deploy.DeployError, match="McdArchiveBucket is other-bucket, derived mcd-dev-archive"):
        deploy.check_outputs("dev", {**derived, "McdArchiveBucket": "other-bucket"}, derived)
    with pytest.raises(deploy.DeployError, match="McdConfigTopic"):
        deploy.check_outputs("dev", derived, _derived(topic="arn:aws:sns:eu-west-1:111122223333:mine"))
    # An emulator's queue URL names the same queue with another host: accepted.
    emulated = {**derived, "McdLookupQueueUrl": "http://localhost:4566/111122223333/mcd-dev-lookup"}
    deploy.check_outputs("dev", emulated, derived)
    with pytest.raises(deploy.DeployError, match="no stage 'qa'"):
        deploy.stage_environment(config, "qa")
    assert deploy.stage_environment(config, "local")["MCD_LOCAL_ROUTES"] == "1"


def test_stack_parameters_keep_current_values_and_drop_removed_ones():
    declared = ["Stage", "ConfigTopicArn", "ArchiveRetentionDays"]
    params = deploy.stack_parameters("prod", {"ArchiveRetentionDays": "730"},
                                     {"Stage": "prod", "ConfigTopicArn": "arn:x", "Removed": "1"}, declared)
    assert {p["ParameterKey"]: p["ParameterValue"] for p in params} == {
        "Stage": "prod", "ConfigTopicArn": "arn:x", "ArchiveRetentionDays": "730"}
    with pytest.raises(deploy.DeployError, match="Nope"):
        deploy.stack_parameters("dev", {"Nope": "1"}, None, declared)


def test_prod_teardown_needs_confirmation(monkeypatch):
    monkeypatch.setattr(deploy.sys, "stdin", io.StringIO())  # not a terminal: no prompt
    assert deploy.confirm("dev", yes=False)
    assert deploy.confirm("prod", yes=True)
    assert not deploy.confirm("prod", yes=False)


def test_every_queue_refuses_requests_over_plain_http(template):
    queues = set(of_type(template, "AWS::SQS::Queue"))
    [policy] = of_type(template, "AWS::SQS::QueuePolicy").values()
    assert {ref["Ref"] for ref in policy["Queues"]} == queues
    [statement] = policy["PolicyDocument"]["Statement"]
    assert (statement["Effect"], statement["Principal"], statement["Action"]) == ("Deny", "*", "sqs:*")
    assert {r["Fn::GetAtt"][0] for r in statement["Resource"]} == queues
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_the_archive_is_versioned_unless_told_otherwise(template):
    assert template["Parameters"]["ArchiveVersioning"]["Default"] == "true"
    bucket = template["Resources"]["ArchiveBucket"]["Properties"]
    assert bucket["VersioningConfiguration"]["Fn::If"][:2] == ["ArchiveVersioned", {"Status": "Enabled"}]
    assert all(rule.get("NoncurrentVersionExpiration") or "AbortIncompleteMultipartUpload" in rule
               for rule in bucket["LifecycleConfiguration"]["Rules"]), "old versions expire too"


# ------------------------------------------------------------------------------------------------
# Locked down (issue 14): log groups, the Config topic's policy, the optional CMK, Object Lock

ACCOUNT = "111122223333"
OTHER_ACCOUNT = "444455556666"
CONFIG_SERVICE_ROLE = f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/config.amazonaws.com/AWSServiceRoleForConfig"
KEY_PATHS = {  # where each kind of resource holding data names its KMS key
    "AWS::SQS::Queue": ("KmsMasterKeyId",),
    "AWS::S3::Bucket": ("BucketEncryption", "ServerSideEncryptionConfiguration", 0, "ServerSideEncryptionByDefault",
                        "KMSMasterKeyID"),
    "AWS::DynamoDB::Table": ("SSESpecification", "KMSMasterKeyId"),
    "AWS::SecretsManager::Secret": ("KmsKeyId",),
    "AWS::SNS::Topic": ("KmsMasterKeyId",),
    "AWS::Logs::LogGroup": ("KmsKeyId",),
}


def test_every_function_has_a_log_group_that_expires(template):
    groups = [stack_resource(template, group, "prod", REGION, ACCOUNT)
              for group in of_type(template, "AWS::Logs::LogGroup")]
    assert {g["LogGroupName"] for g in groups} == {f"/aws/lambda/mcd-prod-{f}" for f in _app_functions()}
    assert template["Parameters"]["LogRetentionDays"]["Default"] == 90
    assert {g["RetentionInDays"] for g in groups} == {"90"}
    dev = stack_resource(template, "IngestLogGroup", "dev", REGION, ACCOUNT, {"LogRetentionDays": "30"})
    assert dev["RetentionInDays"] == "30"
    # Chalice must not create them too: a stage's log_retention_in_days would, and `chalice package
    # --pkg-format terraform` refuses it.
    config = json.loads(CONFIG.read_text())
    assert not any("log_retention_in_days" in settings for settings in (config, *config["stages"].values()))


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _principal_matches(principal: Any, request: dict[str, Any]) -> bool:
    if principal in ("*", {"AWS": "*"}):
        return True
    if "Service" in principal:
        return request.get("service") in _listed(principal["Service"])
    arn = request.get("principal_arn")
    return bool(arn) and any(p in (arn, arn.split(":")[4], f"arn:aws:iam::{arn.split(':')[4]}:root")
                             for p in _listed(principal["AWS"]))


def _conditions_hold(conditions: dict[str, Any], request: dict[str, Any]) -> bool:
    """IAM's reading of these operators: any listed value matches; a key the request lacks holds only for the
    negated operators."""
    compare = {"StringEquals": str.__eq__, "StringNotEquals": str.__eq__, "ArnLike": fnmatch.fnmatchcase,
               "ArnNotLike": fnmatch.fnmatchcase, "Bool": lambda value, expected: value == str(expected).lower()}
    for operator, keys in conditions.items():
        negated = "Not" in operator
        for key, expected in keys.items():
            value = request["keys"].get(key.lower())
            if value is None:
                if negated:
                    continue
                return False
            if any(compare[operator](value, e) for e in _listed(expected)) == negated:
                return False
    return True


def _decision(policy: dict[str, Any], request: dict[str, Any]) -> str:
    """A resource policy's answer to a request: "deny" (explicit), "allow", or "none" (not allowed by it)."""
    applying = [s for s in policy["Statement"] if request["action"] in _listed(s["Action"])
                and _principal_matches(s["Principal"], request) and _conditions_hold(s.get("Condition", {}), request)]
    return "deny" if any(s["Effect"] == "Deny" for s in applying) else "allow" if applying else "none"


def _as_service(service: str, source_account: str, tls: bool = True) -> dict[str, Any]:
    return {"action": "sns:Publish", "service": service, "keys": {"aws:sourceaccount": source_account,
            "aws:principalservicename": service, "aws:securetransport": str(tls).lower()}}


def _as_role(arn: str, action: str = "sns:Publish") -> dict[str, Any]:
    return {"action": action, "principal_arn": arn, "keys": {
        "aws:principalarn": arn, "aws:principalaccount": arn.split(":")[4], "aws:securetransport": "true"}}


def test_only_aws_config_may_publish_to_the_config_topic(template):
    def decide(request: dict[str, Any], **parameters: str) -> str:
        properties = stack_resource(template, "ConfigTopicPolicy", "prod", REGION, ACCOUNT, parameters)
        return _decision(properties["PolicyDocument"], request)

    # AWS Config publishes with the recorder's role (here the service-linked role, docs/deployment.md step 1)
    # and, if that is refused, as its service principal: both are allowed, neither is caught by the deny.
    assert decide(_as_role(CONFIG_SERVICE_ROLE)) == decide(_as_service("config.amazonaws.com", ACCOUNT)) == "allow"
    for intruder in ("role/Admin", "user/alice", "root", "role/mcd-prod-ingest", "role/config-recorder"):
        assert decide(_as_role(f"arn:aws:iam::{ACCOUNT}:{intruder}")) == "deny", intruder
    assert decide(_as_service("events.amazonaws.com", ACCOUNT)) == "deny"
    assert decide(_as_service("config.amazonaws.com", ACCOUNT, tls=False)) == "deny"
    # Another account's Config only when listed; a recorder role of one's own only when named.
    assert decide(_as_service("config.amazonaws.com", OTHER_ACCOUNT)) == "none"
    assert decide(_as_service("config.amazonaws.com", OTHER_ACCOUNT), ConfigPublisherAccounts=OTHER_ACCOUNT) == "allow"
    recorder = f"arn:aws:iam::{OTHER_ACCOUNT}:role/config-recorder"
    assert decide(_as_role(recorder), ConfigPublisherAccounts=OTHER_ACCOUNT) == "deny"
    named = {"ConfigPublisherAccounts": OTHER_ACCOUNT,
             "ConfigDeliveryRoleArns": f"arn:aws:iam::{OTHER_ACCOUNT}:role/config-*"}
    assert decide(_as_role(recorder), **named) == decide(_as_role(CONFIG_SERVICE_ROLE), **named) == "allow"
    # The account subscribes functions (chalice deploy); the policy exists only on the stack's own topic.
    assert decide(_as_role(f"arn:aws:iam::{ACCOUNT}:role/deployer", "sns:Subscribe")) == "allow"
    given = {"ConfigTopicArn": f"arn:aws:sns:{REGION}:{ACCOUNT}:mine"}
    assert stack_resource(template, "ConfigTopicPolicy", "prod", REGION, ACCOUNT, given) is None


def test_an_organizations_members_may_deliver_to_the_config_topic_through_aws_config_only(template):
    """Issue 16: member accounts' delivery channels publish to the central topic (docs/organizations.md)."""
    org, other_org = "o-a1b2c3d4e5", "o-zzzzzzzzzz"

    def decide(request: dict[str, Any], **parameters: str) -> str:
        properties = stack_resource(template, "ConfigTopicPolicy", "prod", REGION, ACCOUNT, parameters)
        return _decision(properties["PolicyDocument"], request)

    def in_org(request: dict[str, Any], organization: str) -> dict[str, Any]:
        return {**request, "keys": {**request["keys"], "aws:principalorgid": organization,
                                    "aws:sourceorgid": organization}}

    member_slr = CONFIG_SERVICE_ROLE.replace(ACCOUNT, OTHER_ACCOUNT)
    assert decide(in_org(_as_role(member_slr), org), OrganizationId=org) == "allow"
    assert decide(in_org(_as_service("config.amazonaws.com", OTHER_ACCOUNT), org), OrganizationId=org) == "allow"
    assert decide(in_org(_as_role(member_slr), org)) == "deny", "no organization named: members are refused"
    assert decide(in_org(_as_role(member_slr), other_org), OrganizationId=org) == "none", "cross-account: refused"
    for intruder in ("role/Admin", "role/aws-service-role/config.amazonaws.com/Other", "user/alice"):
        request = in_org(_as_role(f"arn:aws:iam::{OTHER_ACCOUNT}:{intruder}"), org)
        assert decide(request, OrganizationId=org) == "deny", intruder
    assert decide(in_org(_as_service("config.amazonaws.com", OTHER_ACCOUNT), other_org), OrganizationId=org) == "none"
    assert decide(_as_role(CONFIG_SERVICE_ROLE), OrganizationId=org) == "allow", "the home account still delivers"


def _dig(value: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        value = value[step] if isinstance(step, int) or step in value else None
        if value is None:
            return None
    return value


def test_every_resource_holding_data_is_encrypted_and_with_the_cmk_when_there_is_one(template):
    existing = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    for parameters, key in (({"KmsKeyMode": "create"}, f"arn:aws:kms:{REGION}:{ACCOUNT}:key/stack-key"),
                            ({"KmsKeyMode": "existing", "KmsKeyArn": existing}, existing),
                            ({}, None)):
        for logical, resource in template["Resources"].items():
            if resource["Type"] not in KEY_PATHS:
                continue
            properties = stack_resource(template, logical, "prod", REGION, ACCOUNT, parameters)
            named = _dig(properties, KEY_PATHS[resource["Type"]])
            # AWS Config cannot publish to an encrypted topic: the Config topic never is.
            assert named == (None if logical == "ConfigTopic" else key), (logical, parameters)
    # Without a CMK, SSE all the same where AWS offers it to every publisher: SSE-SQS, SSE-S3, DynamoDB's
    # AWS owned key, Secrets Manager's and CloudWatch Logs' own keys (the topics: see the health topic).
    for queue in of_type(template, "AWS::SQS::Queue"):
        assert stack_resource(template, queue, "prod", REGION, ACCOUNT)["SqsManagedSseEnabled"] is True
    bucket = stack_resource(template, "ArchiveBucket", "prod", REGION, ACCOUNT, {"KmsKeyMode": "create"})
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["BucketKeyEnabled"] is True
    assert "SqsManagedSseEnabled" not in stack_resource(template, "SlackQueue", "prod", REGION, ACCOUNT,
                                                        {"KmsKeyMode": "create"})


def test_a_created_key_rotates_and_serves_the_stages_roles_through_its_services_only(template):
    assert template["Parameters"]["KmsKeyMode"]["Default"] == "none"
    assert stack_resource(template, "StackKey", "prod", REGION, ACCOUNT) is None
    key = stack_resource(template, "StackKey", "prod", REGION, ACCOUNT, {"KmsKeyMode": "create"})
    assert key["EnableKeyRotation"] is True
    statements = {s["Sid"]: s for s in key["KeyPolicy"]["Statement"]}
    assert statements["AccountAdministersThroughIam"]["Principal"] == {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}
    roles = statements["StageRolesThroughTheStagesServices"]
    assert "kms:*" not in roles["Action"] and not any("Grant" in action for action in roles["Action"])
    assert roles["Condition"]["StringEquals"]["aws:PrincipalAccount"] == ACCOUNT
    assert set(roles["Condition"]["StringEquals"]["kms:ViaService"]) == {
        f"{service}.{REGION}.amazonaws.com" for service in ("sqs", "s3", "dynamodb", "secretsmanager")}
    patterns = roles["Condition"]["ArnLike"]["aws:PrincipalArn"]
    for role, may in (("mcd-prod", True), ("mcd-prod-lookup", True), ("mcd-dev-lookup", False),
                      ("mcd-production", False)):
        assert any(fnmatch.fnmatchcase(f"arn:aws:iam::{ACCOUNT}:role/{role}", p) for p in patterns) == may, role
    logs = statements["CloudWatchLogsForTheStagesLogGroups"]
    assert logs["Principal"] == {"Service": f"logs.{REGION}.amazonaws.com"}
    context = logs["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"]
    for group in of_type(template, "AWS::Logs::LogGroup"):
        name = stack_resource(template, group, "prod", REGION, ACCOUNT)["LogGroupName"]
        assert fnmatch.fnmatchcase(f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{name}", context)
    assert statements["CloudWatchAlarmsToTheHealthTopic"]["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert "config.amazonaws.com" not in json.dumps(key)  # the Config topic is never encrypted


def test_object_lock_is_off_unless_asked_and_then_governance_on_a_versioned_archive(template):
    default = stack_resource(template, "ArchiveBucket", "prod", REGION, ACCOUNT)
    assert not {"ObjectLockEnabled", "ObjectLockConfiguration"} & set(default)
    assert template["Parameters"]["ArchiveObjectLockDays"]["Default"] == 0
    locked = stack_resource(template, "ArchiveBucket", "prod", REGION, ACCOUNT,
                            {"ArchiveObjectLockDays": "30", "ArchiveVersioning": "false"})
    assert locked["ObjectLockEnabled"] is True
    assert locked["ObjectLockConfiguration"] == {"ObjectLockEnabled": "Enabled",
                                                 "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": "30"}}}
    assert locked["VersioningConfiguration"] == {"Status": "Enabled"}  # Object Lock needs versioning
    unversioned = stack_resource(template, "ArchiveBucket", "prod", REGION, ACCOUNT, {"ArchiveVersioning": "false"})
    assert "VersioningConfiguration" not in unversioned


def test_the_stack_with_its_own_key_deploys_into_moto():
    with mock_aws(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*not supported by moto's CloudFormation.*")
        session = boto3.session.Session(region_name=REGION)
        cfn = session.client("cloudformation")
        outputs = deploy.deploy_stack(cfn, "prod", {"KmsKeyMode": "create", "LogRetentionDays": "30"},
                                      upload=deploy.template_uploader(session, "prod"))
        key_id = cfn.describe_stack_resource(StackName="mcd-prod", LogicalResourceId="StackKey")[
            "StackResourceDetail"]["PhysicalResourceId"]
        sqs = session.client("sqs")
        for output in ("McdDispatchQueueUrl", "McdSlackDlqUrl", "McdAsyncFailedQueueUrl"):
            attributes = sqs.get_queue_attributes(QueueUrl=outputs[output], AttributeNames=["All"])["Attributes"]
            assert attributes["KmsMasterKeyId"].endswith(key_id), output
        health = session.client("sns").get_topic_attributes(TopicArn=outputs["McdHealthTopic"])["Attributes"]
        assert health["KmsMasterKeyId"].endswith(key_id)
        groups = session.client("logs").describe_log_groups(logGroupNamePrefix="/aws/lambda/mcd-prod-")["logGroups"]
        assert len(groups) == len(_app_functions()) and {g["retentionInDays"] for g in groups} == {30}


def test_teardown_of_an_archive_under_object_lock_stops_before_deleting_anything(monkeypatch, capsys):
    from datetime import datetime, timedelta, timezone

    chalice_runs: list[tuple[Any, ...]] = []
    monkeypatch.setattr(deploy, "run_chalice", lambda *args, **kwargs: chalice_runs.append(args))
    with mock_aws(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*not supported by moto's CloudFormation.*")
        assert deploy.main(["deploy", "--stage", "dev", "--stack-only", "--region", REGION]) == 0
        session = boto3.session.Session(region_name=REGION)
        s3, bucket = session.client("s3"), f"mcd-dev-archive-{MOTO_ACCOUNT}-{REGION}"
        assert deploy.object_lock_days(s3, bucket) == 0  # off by default
        # What ArchiveObjectLockDays=30 creates (moto's CloudFormation ignores Object Lock).
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        s3.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 30}}})
        s3.put_object(Bucket=bucket, Key="AWSLogs/123/Config/n.json", Body=b"{}")
        assert deploy.object_lock_days(s3, bucket) == 30
        assert deploy.main(["teardown", "--stage", "dev", "--region", REGION]) == 1
        assert session.client("cloudformation").describe_stacks(StackName="mcd-dev")["Stacks"]
        assert s3.list_object_versions(Bucket=bucket)["Versions"] and not chalice_runs
        later = datetime.now(timezone.utc) + timedelta(days=31)
        deploy.refuse_locked_archive(session, "dev", now=later)  # once the retention has passed, nothing stops it
    error = capsys.readouterr().err
    assert f"s3://{bucket} has S3 Object Lock (GOVERNANCE, 30 days)" in error and "deleted nothing" in error


def test_a_log_group_outside_the_stack_stops_the_deploy_before_cloudformation_fails_on_it(capsys):
    with mock_aws(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*not supported by moto's CloudFormation.*")
        logs = boto3.client("logs", region_name=REGION)
        logs.create_log_group(logGroupName="/aws/lambda/mcd-dev-ingest")  # by Lambda, or an older chalice deploy
        logs.create_log_group(logGroupName="/aws/lambda/mcd-devx-ingest")  # another stage's: no matter
        assert deploy.main(["deploy", "--stage", "dev", "--stack-only", "--region", REGION]) == 1
        assert "these exist outside it: /aws/lambda/mcd-dev-ingest. Delete them" in capsys.readouterr().err
        logs.delete_log_group(logGroupName="/aws/lambda/mcd-dev-ingest")
        assert deploy.main(["deploy", "--stage", "dev", "--stack-only", "--region", REGION]) == 0
        assert deploy.main(["deploy", "--stage", "dev", "--stack-only", "--region", REGION]) == 0  # its own: fine
