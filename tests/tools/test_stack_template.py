"""mcd_tools.stack_template: the resolver of Fn::Sub / Ref / Fn::GetAtt and the stack's alarms as requests."""

from __future__ import annotations

from typing import Any

import pytest

from mcd_tools.stack_template import alarm_requests, health_topic_arn, load_template, resolve, resolved_names

NAMES = {"Stage": "dev", "AWS::Region": "eu-west-1", "Topic": "arn:aws:sns:eu-west-1:111122223333:t",
         "Queue.QueueName": "mcd-dev-lookup", "Queue.Arn": "arn:aws:sqs:eu-west-1:111122223333:mcd-dev-lookup"}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


def test_sub_replaces_variables_and_keeps_escaped_ones_literal() -> None:
    assert resolve({"Fn::Sub": "mcd-${Stage}-${AWS::Region}"}, NAMES) == "mcd-dev-eu-west-1"
    assert resolve({"Fn::Sub": "${!Stage} is ${Stage}"}, NAMES) == "${Stage} is dev"
    assert resolve({"Fn::Sub": "${Queue.QueueName}"}, NAMES) == "mcd-dev-lookup"
    assert resolve({"Fn::Sub": ["${Name}-${Stage}", {"Name": {"Ref": "Topic"}}]}, NAMES) == f"{NAMES['Topic']}-dev"
    with pytest.raises(KeyError):
        resolve({"Fn::Sub": "${Unknown}"}, NAMES)


def test_ref_and_getatt() -> None:
    assert resolve({"Ref": "Stage"}, NAMES) == "dev"
    assert resolve({"Fn::GetAtt": ["Queue", "Arn"]}, NAMES) == NAMES["Queue.Arn"]
    assert resolve({"Fn::GetAtt": "Queue.QueueName"}, NAMES) == "mcd-dev-lookup"


def test_nested_lists_and_dicts_are_resolved_and_plain_values_kept() -> None:
    value = {"Actions": [{"Ref": "Topic"}], "Dimensions": [{"Name": "QueueName", "Value": {"Fn::Sub": "x-${Stage}"}}],
             "Period": 300, "Enabled": True, "Nested": {"Deeper": [[{"Ref": "Stage"}, "literal"]]}}
    assert resolve(value, NAMES) == {
        "Actions": [NAMES["Topic"]], "Dimensions": [{"Name": "QueueName", "Value": "x-dev"}],
        "Period": 300, "Enabled": True, "Nested": {"Deeper": [["dev", "literal"]]}}


def test_names_of_a_stage_region_and_account(template) -> None:
    names = resolved_names(template, "qa", "eu-central-1", "111122223333", "aws-cn")
    assert names["HealthTopic"] == "arn:aws-cn:sns:eu-central-1:111122223333:mcd-qa-health"
    assert names["HealthTopic"] == health_topic_arn("qa", "eu-central-1", "111122223333", "aws-cn")
    assert names["DispatchQueue.QueueName"] == "mcd-qa-dispatch"
    assert names["SlackDeadLetterQueue.QueueName"] == "mcd-qa-slack-dlq"


@pytest.mark.parametrize(("stage", "region", "account"), [("local", "us-east-1", "123456789012"),
                                                           ("prod", "eu-west-1", "111122223333")])
def test_alarm_requests_are_the_stacks_27_alarms_notifying_the_health_topic(template, stage, region, account) -> None:
    requests = alarm_requests(template, stage, region, account)
    topic = f"arn:aws:sns:{region}:{account}:mcd-{stage}-health"
    assert len(requests) == 27
    for name, request in requests.items():
        assert name.startswith(f"mcd-{stage}-") and request["AlarmName"] == name
        assert request["AlarmActions"] == request["OKActions"] == [topic], name
        assert request["Tags"] == [{"Key": "mcd-stage", "Value": stage}], name
        assert "Fn::" not in repr(request) and "'Ref'" not in repr(request), name  # nothing left unresolved
    assert requests[f"mcd-{stage}-lookup-dlq-not-empty"]["Dimensions"] == [
        {"Name": "QueueName", "Value": f"mcd-{stage}-lookup-dlq"}]
    assert requests[f"mcd-{stage}-lookup-errors"]["Dimensions"] == [
        {"Name": "FunctionName", "Value": f"mcd-{stage}-lookup"}]


def test_alarm_requests_refuse_two_alarms_of_one_name() -> None:
    alarm = {"Type": "AWS::CloudWatch::Alarm", "Properties": {"AlarmName": {"Fn::Sub": "mcd-${Stage}-x"}}}
    twins = {"Resources": {"AAlarm": alarm, "BAlarm": alarm}}
    with pytest.raises(ValueError, match="share a name"):
        alarm_requests(twins, "dev", "eu-west-1", "111122223333")
