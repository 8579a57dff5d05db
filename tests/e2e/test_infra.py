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
import fnmatch
import importlib.util
import io
import json
import re
import warnings
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from mcd_tools.stack_template import alarm_requests, load_template, of_type, resolve, resolved_names

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "infra" / "stack.yaml"
CONFIG = ROOT / ".chalice" / "config.json"
REGION = "us-east-1"
MOTO_ACCOUNT = "123456789012"
TEMPLATE_BODY_LIMIT = 51_200  # bytes: deploy.py passes the template as TemplateBody, not from S3


def _load_deploy_script():
    spec = importlib.util.spec_from_file_location("mcd_deploy_script", ROOT / "scripts" / "deploy.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


deploy = _load_deploy_script()


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(TEMPLATE)  # raises if cfn-lint's decoder reports anything


@pytest.fixture
def moto_stack():
    """The stack created in moto with Stage=local: (outputs, client factory)."""
    with mock_aws(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*not supported by moto's CloudFormation.*")
        cfn = boto3.client("cloudformation", region_name=REGION)
        outputs = deploy.deploy_stack(cfn, "local", {})
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
                 "SlackDeadLetterQueue": "dl_retry"}
    for queue, function in consumers.items():
        visibility = resources[queue]["Properties"]["VisibilityTimeout"]
        for stage in config["stages"]:
            assert visibility > _lambda_timeout(config, stage, function), (queue, stage)
    for queue in ("DispatchQueue", "LookupQueue", "SlackQueue"):
        props = resources[queue]["Properties"]
        assert props["RedrivePolicy"]["maxReceiveCount"] == 5
        dlq = props["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
        assert resources[dlq]["Properties"]["MessageRetentionPeriod"] == 14 * 86_400
        assert props["SqsManagedSseEnabled"] and resources[dlq]["Properties"]["SqsManagedSseEnabled"]


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
    rule = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert rule["SSEAlgorithm"] in ("AES256", "aws:kms")
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

    ``config_event`` sits under an ``if`` (deployed only with MCD_CONFIG_VIA_EVENTBRIDGE=1); it is
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
    # Not KMS-encrypted on purpose: CloudWatch cannot publish to a topic under the AWS managed key alias/aws/sns.
    assert "KmsMasterKeyId" not in resources["HealthTopic"]["Properties"]
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
    assert queue_alarms == {f"mcd-prod-{q}-{kind}" for q in QUEUE_RESOURCES for kind in kinds}
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
    assert dimension_values("AWS/SQS", "ApproximateNumberOfMessagesVisible") == queues | {f"{q}-dlq" for q in queues}
    assert dimension_values("AWS/SQS", "ApproximateAgeOfOldestMessage") == queues
    age_chart = next(c for c in charts.values() if "ApproximateAgeOfOldestMessage" in json.dumps(c["metrics"]))
    assert {a["value"] for a in age_chart["annotations"]["horizontal"]} == set(OLDEST_MESSAGE_SECONDS.values())
    functions = {f"mcd-prod-{f}" for f in _app_functions()}
    assert dimension_values("AWS/Lambda", "Errors") == dimension_values("AWS/Lambda", "Throttles") == functions


def test_template_fits_the_template_body_limit():
    """scripts/deploy.py sends the template as TemplateBody, which CloudFormation caps at 51,200 bytes."""
    assert len(TEMPLATE.read_bytes()) <= TEMPLATE_BODY_LIMIT


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
    assert env == overridden
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
    assert deploy.deploy_stack(client("cloudformation"), "local", {}) == outputs


def test_existing_config_topic_is_used_not_created_and_kept_on_redeploy():
    with mock_aws(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*not supported by moto's CloudFormation.*")
        sns = boto3.client("sns", region_name=REGION)
        cfn = boto3.client("cloudformation", region_name=REGION)
        topic = sns.create_topic(Name="aws-config-delivery")["TopicArn"]
        outputs = deploy.deploy_stack(cfn, "dev", {"ConfigTopicArn": topic})
        assert outputs["McdConfigTopic"] == topic
        topics = sorted([topic, outputs["McdHealthTopic"]])  # the health topic is always the stack's own
        assert sorted(t["TopicArn"] for t in sns.list_topics()["Topics"]) == topics
        # Nothing given this time: the stack's current parameter values are kept (an empty
        # ConfigTopicArn would make the stack create its own topic).
        assert deploy.deploy_stack(cfn, "dev", {}) == outputs
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
    assert deploy.deploy_stack(cfn, "dev", {}) == OUTPUTS
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
