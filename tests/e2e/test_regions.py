"""Every enabled region covered: infra/region.yaml, ``make deploy``'s region stacks, and double arrival.

Each region other than the home region forwards its AWS Config changes, API calls and console sign-ins to
the home region's default bus (``mcd-<stage>-region``, from ``infra/region.yaml``), where ``config_event``
(deployed by default), ``api_call`` and ``console_signin`` take them. moto 5.2.5's CloudFormation creates
the template's role and rules, and its EventBridge delivers to an event bus in another region, so the
forwarding itself is exercised. The home region's own changes arrive twice (SNS and EventBridge): the fake
tier shows each is reported once.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import deploy_script
import pytest
from memory_world import replay
from moto import mock_aws

import app
from chalicelib.stage_config import StageNames
from chalicelib.stages.ingest import config_event_as_sns
from mcd_tools import doctor
from mcd_tools.stack_template import load_template, of_type

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "infra" / "region.yaml"
ACCOUNT, HOME = "123456789012", "eu-west-1"
NAMES = StageNames("dev", ACCOUNT, HOME)
HOME_BUS = f"arn:aws:events:{HOME}:{ACCOUNT}:event-bus/default"
RULES = {"mcd-dev-forward-config": app.CONFIG_CHANGE_PATTERN, "mcd-dev-forward-api-calls": app.API_CALL_PATTERN,
         "mcd-dev-forward-sign-ins": app.SIGNIN_PATTERN}


deploy: Any = deploy_script.deploy  # scripts/deploy.py, loaded once for every test module


class Session(boto3.session.Session):
    """A session that makes each (service, region) client once: over 30 regions, making them is the cost."""

    def __init__(self) -> None:
        super().__init__(region_name=HOME)
        self.clients: dict[tuple[str, str], Any] = {}

    def client(self, service: str, region_name: str | None = None, **kwargs: Any) -> Any:  # type: ignore[override]
        key = (service, region_name or HOME)
        return self.clients.get(key) or self.clients.setdefault(key, super().client(service, region_name=key[1]))


@pytest.fixture
def aws() -> Iterator[Session]:
    """moto in-process; a session in the home region (as ``make deploy`` has one)."""
    with mock_aws(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*not supported by moto's CloudFormation.*")
        logging.getLogger("moto").setLevel(logging.ERROR)  # each alarm of infra/stack.yaml is a warning otherwise
        yield Session()


def options(regions: list[str] | None = None, no_regions: bool = False) -> argparse.Namespace:
    return argparse.Namespace(regions=regions, no_regions=no_regions)


def stack_status(sess: Session, region: str) -> str | None:
    stack = deploy.describe_stack(sess.client("cloudformation", region_name=region), "mcd-dev-region")
    return stack and stack["StackStatus"]


def forwarding(sess: Session, region: str) -> dict[str, tuple[dict, list[dict]]]:
    """The rules in ``region`` that target the home bus: name -> (pattern, targets)."""
    events = sess.client("events", region_name=region)
    names = events.list_rule_names_by_target(TargetArn=HOME_BUS)["RuleNames"]
    return {name: (json.loads(events.describe_rule(Name=name)["EventPattern"]),
                   events.list_targets_by_rule(Rule=name)["Targets"]) for name in names}


def record_config(sess: Session, region: str) -> None:
    config = sess.client("config", region_name=region)
    config.put_configuration_recorder(ConfigurationRecorder={
        "name": "default", "roleARN": f"arn:aws:iam::{ACCOUNT}:role/config",
        "recordingGroup": {"allSupported": True, "includeGlobalResourceTypes": region == HOME}})
    config.put_delivery_channel(DeliveryChannel={"name": "default", "s3BucketName": "config-bucket"})
    config.start_configuration_recorder(ConfigurationRecorderName="default")


# --- the template --------------------------------------------------------------------------------------------

def test_make_lint_checks_the_region_template() -> None:
    lint = (ROOT / "Makefile").read_text().split("\nlint:", 1)[1].split("\n\n", 1)[0]
    assert re.search(r"cfn-lint --include-checks I --regions us-east-1 eu-west-1 eu-central-1 -- .*infra/region\.yaml",
                     lint)


def test_the_template_forwards_the_apps_three_patterns_to_the_home_bus() -> None:
    template = load_template(TEMPLATE)
    bus = {"Fn::Sub": "arn:${AWS::Partition}:events:${HomeRegion}:${HomeAccount}:event-bus/default"}
    rules = of_type(template, "AWS::Events::Rule")
    assert {r["Name"]["Fn::Sub"].replace("${Stage}", "dev"): r["EventPattern"] for r in rules.values()} == RULES
    for rule in rules.values():
        assert rule["State"] == "ENABLED"  # not ..._WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS: no read-only calls
        assert rule["Targets"] == [{"Id": "home", "Arn": bus, "RoleArn": {"Fn::GetAtt": ["ForwarderRole", "Arn"]}}]
    role = of_type(template, "AWS::IAM::Role")["ForwarderRole"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "events.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    (policy,) = role["Policies"]
    assert policy["PolicyDocument"]["Statement"] == [{"Effect": "Allow", "Action": "events:PutEvents", "Resource": bus}]
    assert "${AWS::Region}" in role["RoleName"]["Fn::Sub"], "IAM names are global: one role per region"


def test_the_template_also_works_as_a_stackset() -> None:
    """Nothing account-specific, nothing but plain resources (a service-managed StackSet deploys it as is)."""
    text, template = TEMPLATE.read_text(), load_template(TEMPLATE)
    assert not re.search(r"\b\d{12}\b", text), "no account is written into the template"
    assert set(template["Parameters"]) == {"Stage", "HomeRegion", "HomeAccount", "LookupRoleName"}
    assert not [p for p in ("HomeRegion", "HomeAccount") if "Default" in template["Parameters"][p]]
    kinds = {resource["Type"] for resource in template["Resources"].values()}
    assert kinds == {"AWS::IAM::Role", "AWS::Events::Rule", "AWS::CloudFormation::WaitConditionHandle"}
    assert "Transform" not in template


def test_a_member_account_gets_one_read_only_lookup_role_only_the_detectors_lookup_may_assume() -> None:
    template = load_template(TEMPLATE)
    role = template["Resources"]["LookupRole"]
    assert role["Condition"] == "MemberAccountOnce"  # once per member account: in its home-region instance
    assert template["Conditions"]["MemberAccountOnce"] == {"Fn::And": [
        {"Fn::Equals": [{"Ref": "AWS::Region"}, {"Ref": "HomeRegion"}]},
        {"Fn::Not": [{"Fn::Equals": [{"Ref": "AWS::AccountId"}, {"Ref": "HomeAccount"}]}]}]}
    properties = role["Properties"]
    (trust,) = properties["AssumeRolePolicyDocument"]["Statement"]
    lookup_function_role = "arn:${AWS::Partition}:iam::${HomeAccount}:role/mcd-${Stage}-lookup"
    assert trust["Principal"] == {"AWS": {"Fn::Sub": lookup_function_role}}
    (policy,) = properties["Policies"]
    assert policy["PolicyDocument"]["Statement"] == [
        {"Effect": "Allow", "Action": "cloudtrail:LookupEvents", "Resource": "*"}]
    assert template["Parameters"]["LookupRoleName"]["Default"] == "mcd-lookup"  # FORMAT.md's lookup_role


def test_the_home_bus_takes_events_from_the_organization_only_when_one_is_named() -> None:
    stack = load_template(ROOT / "infra" / "stack.yaml")
    policy = stack["Resources"]["OrganizationForwarding"]
    assert policy["Condition"] == "HasOrganization"
    statement = policy["Properties"]["Statement"]
    assert statement["Action"] == "events:PutEvents" and statement["Principal"] == "*"
    assert statement["Condition"] == {"StringEquals": {"aws:PrincipalOrgID": {"Ref": "OrganizationId"}}}


def test_in_the_home_region_of_the_home_account_it_creates_nothing_elsewhere_it_forwards(aws: Any) -> None:
    """A StackSet over every region meets the home region too: there the detector's own rules are enough.
    In another account (an organization's member, issue 16) the same region forwards."""
    here = aws.client("cloudformation", region_name=HOME)
    for stack, account in (("home", ACCOUNT), ("member", "210987654321")):
        here.create_stack(StackName=stack, TemplateBody=TEMPLATE.read_text(), Capabilities=["CAPABILITY_NAMED_IAM"],
                          Parameters=[{"ParameterKey": "Stage", "ParameterValue": "dev"},
                                      {"ParameterKey": "HomeRegion", "ParameterValue": HOME},
                                      {"ParameterKey": "HomeAccount", "ParameterValue": account}])
    assert here.describe_stacks(StackName="home")["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
    assert "Outputs" not in here.describe_stacks(StackName="home")["Stacks"][0]
    (member,) = here.describe_stacks(StackName="member")["Stacks"]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in member["Outputs"]}
    assert outputs["HomeBus"] == "arn:aws:events:eu-west-1:210987654321:event-bus/default"
    assert outputs["LookupRole"] == f"arn:aws:iam::{ACCOUNT}:role/mcd-lookup", "a member: its lookup role too"
    assert sorted(r["Name"] for r in aws.client("events").list_rules()["Rules"]) == sorted(RULES)


# --- make deploy: mcd-<stage>-region in every enabled region ----------------------------------------------------

def test_deploy_covers_every_enabled_region_but_home_and_teardown_removes_them(
        aws: Any, capsys: pytest.CaptureFixture[str]) -> None:
    enabled = doctor.enabled_regions(aws.client("ec2"), HOME)
    others = [region for region in enabled if region != HOME]
    assert len(others) > 10 and HOME in enabled and not [r for r in enabled if r.startswith(("us-gov-", "cn-"))]
    for region in enabled:
        record_config(aws, region)

    deploy.forward_other_regions(aws, options(), NAMES, NAMES.config_topic_arn)
    assert stack_status(aws, HOME) is None
    for region in others:
        assert stack_status(aws, region) == "CREATE_COMPLETE", region
        rules = forwarding(aws, region)
        assert {name: pattern for name, (pattern, _) in rules.items()} == RULES, region
        role = f"arn:aws:iam::{ACCOUNT}:role/mcd-dev-forward-{region}"
        assert {t["RoleArn"] for _, targets in rules.values() for t in targets} == {role}
    printed = capsys.readouterr().out
    assert f"stack mcd-dev-region (infra/region.yaml) in {len(others)} region(s), forwarding to {HOME}" in printed
    assert f"other regions | ok     | {len(others)} other enabled region(s) forward to {HOME}" in printed
    assert "FAIL" not in printed

    deploy.remove_other_regions(aws, "dev")
    assert [region for region in enabled if stack_status(aws, region)] == []
    assert [r["RoleName"] for r in aws.client("iam").list_roles()["Roles"] if "forward" in r["RoleName"]] == []
    assert f"stack mcd-dev-region deleted in {', '.join(others[:2])}" in capsys.readouterr().out


@pytest.fixture
def five_regions(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The account's enabled regions are five of moto's (the test above covers them all): quicker checks."""
    regions = [HOME, "eu-central-1", "us-east-1", "eu-north-1", "ap-southeast-2"]
    enabled = doctor.enabled_regions
    monkeypatch.setattr(doctor, "enabled_regions", lambda ec2, home: [r for r in enabled(ec2, home) if r in regions])
    return regions


def test_the_deploy_time_check_names_each_region_left_out(aws: Any, capsys: pytest.CaptureFixture[str],
                                                          five_regions: list[str]) -> None:
    for region in ("eu-central-1", "us-east-1", "eu-north-1"):
        record_config(aws, region)
    deploy.forward_other_regions(aws, options(["eu-central-1", HOME, "us-east-1"]), NAMES, NAMES.config_topic_arn)
    assert [r for r in five_regions if stack_status(aws, r)] == ["eu-central-1", "us-east-1"], "never home"
    rows = {line.split("|")[0].strip(): line for line in capsys.readouterr().out.splitlines() if "|" in line}
    assert "FAIL" in rows["region eu-north-1"] and "forwards its Config changes, API calls, sign-ins" in rows[
        "region eu-north-1"] and "not recording" not in rows["region eu-north-1"]
    assert "no AWS Config recorder there" in rows["region ap-southeast-2"]
    assert "region eu-central-1" not in rows and "region us-east-1" not in rows and "region eu-west-1" not in rows
    assert "2 other enabled region(s) forward" in rows["other regions"]

    deploy.forward_other_regions(aws, options(["eu-central-1"]), NAMES, NAMES.config_topic_arn)  # updates in place
    assert stack_status(aws, "eu-central-1") in ("CREATE_COMPLETE", "UPDATE_COMPLETE")
    assert len(forwarding(aws, "eu-central-1")) == 3

    deploy.forward_other_regions(aws, options(no_regions=True), NAMES, NAMES.config_topic_arn)  # checks only
    assert "region eu-north-1" in capsys.readouterr().out
    with pytest.raises(deploy.DeployError, match="not enabled: mars-north-1"):
        deploy.forward_other_regions(aws, options(["mars-north-1"]), NAMES, NAMES.config_topic_arn)


def test_a_region_whose_stack_fails_fails_the_deploy_after_the_others(aws: Any, five_regions: list[str]) -> None:
    aws.client("iam").create_role(RoleName="mcd-dev-forward-eu-central-1", AssumeRolePolicyDocument="{}")
    with pytest.raises(deploy.DeployError, match=r"mcd-dev-region failed in eu-central-1: those regions"):
        deploy.forward_other_regions(aws, options(["eu-central-1", "eu-north-1"]), NAMES, NAMES.config_topic_arn)
    assert stack_status(aws, "eu-north-1") == "CREATE_COMPLETE"


def test_make_deploy_and_make_teardown_handle_the_region_stacks(
        aws: Any, five_regions: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """scripts/deploy.py as make runs it (chalice stubbed: it cannot reach moto in-process)."""
    chalice: list[str] = []
    monkeypatch.setattr(deploy, "run_chalice", lambda action, *args, **kwargs: chalice.append(action))
    record_config(aws, "us-east-1")
    assert deploy.main(["deploy", "--stage", "dev", "--region", HOME, "--regions", "us-east-1"]) == 0
    printed = capsys.readouterr().out
    assert "region eu-north-1" in printed and "region us-east-1" not in printed, "left out, reported, no failure"
    assert chalice == ["deploy"] and [r for r in five_regions if stack_status(aws, r)] == ["us-east-1"]

    monkeypatch.setattr(deploy, "confirm", lambda stage, yes: True)
    # moto refuses to empty the deploy-artifacts bucket under its TLS-only policy: not this test's subject
    monkeypatch.setattr(deploy, "delete_artifacts_bucket", lambda sess, stage: None, raising=False)
    assert deploy.main(["teardown", "--stage", "dev", "--region", HOME]) == 0
    assert [r for r in five_regions if stack_status(aws, r)] == []
    assert "stack mcd-dev-region deleted in us-east-1" in capsys.readouterr().out


def test_region_options() -> None:
    assert deploy.region_names("eu-central-1, us-gov-west-1,eusc-de-east-1") == [
        "eu-central-1", "us-gov-west-1", "eusc-de-east-1"]
    for bad in ("", "eu-central-1;rm", "EU-WEST-1"):
        with pytest.raises(argparse.ArgumentTypeError):
            deploy.region_names(bad)
    assert deploy.forwarding_regions(["a-b-1", "c-d-2"], "a-b-1", None) == ["c-d-2"]
    assert deploy.forwarding_regions(["a-b-1", "c-d-2"], "a-b-1", ["c-d-2", "c-d-2", "a-b-1"]) == ["c-d-2"]
    with pytest.raises(SystemExit):  # one or the other
        deploy.main(["deploy", "--stage", "dev", "--regions", "eu-central-1", "--no-regions"])


# --- the forwarded events reach the detector's rules -----------------------------------------------------------

def test_forwarded_events_match_the_home_rules_and_ingest_as_the_regions_change(aws: Any) -> None:
    """Each kind put on eu-central-1's bus arrives on the home bus, where app.py's pattern for it matches."""
    deploy.deploy_regions(aws, NAMES, ["eu-central-1"])
    home_events, sqs = aws.client("events"), aws.client("sqs")
    queues = {}
    for name, pattern in RULES.items():  # stand-ins for config_event, api_call and console_signin
        queues[name] = sqs.create_queue(QueueName=name)["QueueUrl"]
        home_events.put_rule(Name=name, EventPattern=json.dumps(pattern))
        home_events.put_targets(Rule=name, Targets=[{"Id": "q", "Arn": f"arn:aws:sqs:{HOME}:{ACCOUNT}:{name}"}])
    change = json.loads((ROOT / "tests" / "events" / "eventbridge_config_item_change.json").read_text())
    change["detail"]["configurationItem"]["awsRegion"] = "eu-central-1"
    detail = json.dumps(change["detail"])
    entries = [{"Source": change["source"], "DetailType": change["detail-type"], "Detail": detail},
               {"Source": "aws.ec2", "DetailType": "AWS API Call via CloudTrail", "Detail": '{"eventName": "X"}'},
               {"Source": "aws.signin", "DetailType": "AWS Console Sign In via CloudTrail", "Detail": "{}"}]
    assert aws.client("events", region_name="eu-central-1").put_events(Entries=entries)["FailedEntryCount"] == 0
    arrived = {name: [json.loads(m["Body"]) for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
                      .get("Messages", [])] for name, url in queues.items()}
    assert {name: [event["detail-type"] for event in events] for name, events in arrived.items()} == {
        name: [entry["DetailType"]] for name, entry in zip(RULES, entries)}
    (forwarded,) = arrived["mcd-dev-forward-config"]
    message = json.loads(config_event_as_sns(forwarded)["Records"][0]["Sns"]["Message"])
    assert message == change["detail"] and message["configurationItem"]["awsRegion"] == "eu-central-1"


def test_config_event_is_deployed_unless_opted_out() -> None:
    """app.py registers config_event without MCD_CONFIG_VIA_EVENTBRIDGE; =0 leaves it out (read at packaging)."""
    code = ("import os, sys, app; first = hasattr(app, 'config_event'); "
            "os.environ['MCD_CONFIG_VIA_EVENTBRIDGE'] = '0'; del sys.modules['app']; import app; "
            "print(first, hasattr(app, 'config_event'))")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCD_")}
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["True", "False"]


# --- arriving twice: reported once (the fake tier) ---------------------------------------------------------------

def _item(group: str, region: str, capture: str) -> dict[str, Any]:
    item = {"configurationItemVersion": "1.3", "configurationItemCaptureTime": capture,
            "configurationStateId": 1, "awsAccountId": ACCOUNT, "configurationItemStatus": "OK",
            "resourceType": "AWS::EC2::SecurityGroup", "resourceId": group, "resourceName": group,
            "ARN": f"arn:aws:ec2:{region}:{ACCOUNT}:security-group/{group}", "awsRegion": region,
            "availabilityZone": "Not Applicable", "relatedEvents": [], "relationships": [], "tags": {},
            "configuration": {"groupId": group}, "supplementaryConfiguration": {}}
    diff = {"changeType": "UPDATE", "changedProperties": {"Configuration.IpPermissions.0": {
        "previousValue": None, "updatedValue": {"fromPort": 22}, "changeType": "CREATE"}}}
    return {"configurationItemDiff": diff, "configurationItem": item, "notificationCreationTime": capture,
            "messageType": "ConfigurationItemChangeNotification", "recordVersion": "1.3"}


def _event(item: dict[str, Any], region: str, at: str) -> dict[str, Any]:
    return {"at": at, "via": "eventbridge", "event": {
        "version": "0", "id": f"eb-{region}", "detail-type": "Config Configuration Item Change", "source": "aws.config",
        "account": ACCOUNT, "time": at, "region": region, "resources": [], "detail": item}}


def _call(group: str, region: str, user: str, event_id: str) -> dict[str, Any]:
    return {"visible_at": "2024-05-01T10:05:00Z",
            "resources": [{"ResourceType": "AWS::EC2::SecurityGroup", "ResourceName": group}],
            "record": {"eventVersion": "1.09", "eventTime": "2024-05-01T10:00:10Z", "eventSource": "ec2.amazonaws.com",
                       "eventName": "AuthorizeSecurityGroupIngress", "awsRegion": region, "eventID": event_id,
                       "userIdentity": {"type": "IAMUser", "principalId": f"AIDA{user.upper()}", "userName": user,
                                        "arn": f"arn:aws:iam::{ACCOUNT}:user/{user}", "accountId": ACCOUNT},
                       "sourceIPAddress": "203.0.113.5", "userAgent": "aws-cli/2", "readOnly": False,
                       "requestParameters": {"groupId": group}, "responseElements": None, "eventType": "AwsApiCall",
                       "managementEvent": True, "recipientAccountId": ACCOUNT}}


def test_a_home_change_arriving_by_sns_and_eventbridge_and_a_forwarded_one_are_each_reported_once() -> None:
    home = _item("sg-0home", HOME, "2024-05-01T10:00:40Z")
    away = _item("sg-0away", "ap-southeast-2", "2024-05-01T10:00:40Z")
    scenario = {"start": "2024-05-01T09:55:00Z", "end": "2024-05-01T11:00:00Z", "home_region": HOME,
                "settings": {"burst_window_seconds": 0},
                "deliveries": [{"at": "2024-05-01T10:00:42Z", "via": "sns", "message": home},
                               _event(home, HOME, "2024-05-01T10:00:43Z"),
                               _event(away, "ap-southeast-2", "2024-05-01T10:00:44Z")],
                "cloudtrail": [_call("sg-0home", HOME, "ana", "11111111-1111-4111-8111-111111111111"),
                               _call("sg-0away", "ap-southeast-2", "bo", "22222222-2222-4222-8222-222222222222")]}
    result = replay(scenario)
    reported = sorted((o["kind"], o["region"], o["resource_id"], o["principal_arn"].rsplit("/", 1)[-1])
                      for o in result.outcomes)
    assert reported == [("manual_change", "ap-southeast-2", "sg-0away", "bo"),
                        ("manual_change", HOME, "sg-0home", "ana")]
    assert len(result.slack) == 2
    assert len(result.deps.archive.list_keys()) == 3, "each copy is archived as it arrived"
