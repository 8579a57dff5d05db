"""mcd_tools.stack_template: the resolver of Fn::Sub / Ref / Fn::GetAtt and the stack's alarms as requests."""

from __future__ import annotations

from typing import Any

import pytest

from mcd_tools.stack_template import (
    NO_VALUE,
    alarm_requests,
    condition_values,
    health_topic_arn,
    load_template,
    parameter_values,
    resolve,
    resolved_names,
    stack_resource,
)

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
def test_alarm_requests_are_the_stacks_29_alarms_notifying_the_health_topic(template, stage, region, account) -> None:
    requests = alarm_requests(template, stage, region, account)
    topic = f"arn:aws:sns:{region}:{account}:mcd-{stage}-health"
    assert len(requests) == 29
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


def test_if_join_split_and_no_value() -> None:
    conditions = {"On": True, "Off": False}
    assert resolve({"Fn::If": ["On", {"Ref": "Stage"}, "other"]}, NAMES, conditions) == "dev"
    assert resolve({"Fn::If": ["Off", {"Ref": "Stage"}, "other"]}, NAMES, conditions) == "other"
    kept = {"A": {"Fn::If": ["Off", 1, {"Ref": "AWS::NoValue"}]}, "B": [1, {"Ref": "AWS::NoValue"}, 2]}
    assert resolve(kept, NAMES, conditions) == {"B": [1, 2]}
    assert resolve({"Ref": "AWS::NoValue"}, NAMES) == NO_VALUE
    assert resolve({"Fn::Join": ["-", [{"Ref": "Stage"}, "x"]]}, NAMES) == "dev-x"
    assert resolve({"Fn::Split": [",", {"Fn::Sub": "${Stage},y"}]}, NAMES) == ["dev", "y"]
    with pytest.raises(KeyError):
        resolve({"Fn::If": ["Unknown", 1, 2]}, NAMES, conditions)


def test_parameters_and_conditions_as_given_or_by_default() -> None:
    template = {"Parameters": {"Mode": {"Type": "String", "Default": "none"}, "Days": {"Type": "Number", "Default": 0},
                               "Accounts": {"Type": "CommaDelimitedList", "Default": ""}},
                "Conditions": {"Create": {"Fn::Equals": [{"Ref": "Mode"}, "create"]},
                               "Locked": {"Fn::Not": [{"Fn::Equals": [{"Ref": "Days"}, "0"]}]},
                               "Either": {"Fn::Or": [{"Condition": "Create"}, {"Condition": "Locked"}]},
                               "Both": {"Fn::And": [{"Condition": "Create"}, {"Condition": "Locked"}]},
                               "Listed": {"Fn::Not": [{"Fn::Equals": [{"Fn::Join": ["", {"Ref": "Accounts"}]}, ""]}]}}}
    defaults = parameter_values(template, {})
    assert defaults == {"Mode": "none", "Days": "0", "Accounts": [""]}
    assert condition_values(template, defaults) == {
        "Create": False, "Locked": False, "Either": False, "Both": False, "Listed": False}
    given = parameter_values(template, {"Mode": "create", "Days": "7", "Accounts": "1,2"})
    assert given["Accounts"] == ["1", "2"]
    assert condition_values(template, given) == {
        "Create": True, "Locked": True, "Either": True, "Both": True, "Listed": True}


def test_a_resource_as_the_stack_creates_it_for_a_stage_and_parameters(template) -> None:
    queue = stack_resource(template, "LookupQueue", "qa", "eu-west-1", "111122223333", {"KmsKeyMode": "create"})
    assert queue["QueueName"] == "mcd-qa-lookup"
    assert queue["KmsMasterKeyId"] == "arn:aws:kms:eu-west-1:111122223333:key/stack-key"
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == "arn:aws:sqs:eu-west-1:111122223333:mcd-qa-lookup-dlq"
    assert stack_resource(template, "StackKey", "qa", "eu-west-1", "111122223333") is None  # KmsKeyMode none
    china = stack_resource(template, "StackKey", "qa", "cn-north-1", "111122223333", {"KmsKeyMode": "create"}, "aws-cn")
    assert "sqs.cn-north-1.amazonaws.com.cn" in repr(china)
