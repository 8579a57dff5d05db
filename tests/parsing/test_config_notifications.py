"""AWS Config notifications and configuration items into ConfigChange."""

from __future__ import annotations

import gzip
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from chalicelib.core.model import ConfigChange, Ignored, PropertyChange, Relationship, Unparseable
from chalicelib.parsing.config_notifications import (
    IGNORED_TYPES,
    parse_config_message,
    parse_config_object,
    parse_configuration_item,
)

EVENTS = Path(__file__).resolve().parents[1] / "events"


def load(name: str):
    return json.loads((EVENTS / name).read_text())


def sns_message(name: str):
    """The SNS Message of a Lambda SNS event or bare envelope fixture, as delivered."""
    data = load(name)
    return data["Records"][0]["Sns"]["Message"] if "Records" in data else data["Message"]


def only(items):
    assert len(items) == 1, items
    return items[0]


def test_new_format_string_message():
    change = only(parse_config_message(sns_message("sns_lambda_string_message_sg_update.json"), "t"))
    assert isinstance(change, ConfigChange)
    assert (change.resource_type, change.resource_id, change.resource_name) == (
        "AWS::EC2::SecurityGroup", "sg-0a1b2c3d4e5f60718", "jump-hosts")
    assert change.account == "210987654321"
    assert change.region == "eu-west-1"
    assert change.arn == "arn:aws:ec2:eu-west-1:210987654321:security-group/sg-0a1b2c3d4e5f60718"
    assert change.change_type == "UPDATE"
    assert change.status == "OK"
    assert change.message_type == "ConfigurationItemChangeNotification"
    assert change.capture_time == datetime(2024, 6, 3, 8, 15, 42, 118000, tzinfo=timezone.utc)
    assert change.notification_time == datetime(2024, 6, 3, 8, 15, 44, 611000, tzinfo=timezone.utc)
    assert change.state_id == "1717402542118"
    assert change.related_events == ("6f2d7e1a-93c4-4b8e-a1d5-0c9e8f7b6a52",)
    assert change.relationships == (
        Relationship("AWS::EC2::VPC", "vpc-0f1e2d3c4b5a69788", None, "Is contained in Vpc"),)
    [prop] = change.changed_properties
    assert prop.path == "Configuration.IpPermissions.1"
    assert prop.change_type == "CREATE"
    assert prop.previous is None  # the key is absent in the input
    assert prop.updated["fromPort"] == 3389
    assert change.tags == {"Name": "jump-hosts", "owner": "platform"}
    assert change.configuration["groupId"] == "sg-0a1b2c3d4e5f60718"
    assert not change.oversized and change.s3_location is None


def test_object_message_without_resource_name_key():
    change = only(parse_config_message(sns_message("sns_envelope_object_message_route_table.json"), "t"))
    assert change.resource_id == "rtb-07c5e4d3b2a190817"
    assert change.resource_name is None
    assert change.state_id == "1717405269870"
    assert change.relationships[1] == Relationship("AWS::EC2::Subnet", "subnet-0aa1bb2cc3dd4ee5f", None,
                                                   "Is associated with Subnet ")
    assert change.changed_properties[0].previous is None


def test_old_2014_format_configuration_items_array():
    items = parse_config_message(sns_message("sns_envelope_old_format_configuration_items.json"), "t")
    assert [c.resource_id for c in items] == ["vol-3e7f1a2b", "i-9c8b7a6d"]
    volume, instance = items
    assert volume.resource_type == "AWS::EC2::VOLUME"  # kept as written
    assert volume.account == "345678901234"
    assert volume.state_id == "3"
    assert volume.capture_time == datetime(2014, 11, 12, 10, 2, 58, tzinfo=timezone.utc)
    assert volume.notification_time == datetime(2014, 11, 12, 10, 3, 11, tzinfo=timezone.utc)
    assert volume.message_type == "ConfigurationItemChangeNotification"
    assert volume.change_type is None
    assert volume.related_events == ("a1b2c3d4-1111-4a2b-8c3d-0e1f2a3b4c5d",)
    assert volume.tags == {"Name": "reports-data"}
    assert instance.configuration is None
    assert instance.relationships[0].name == "Is attached to Volume"


def test_oversized_summary():
    change = only(parse_config_message(load("config_oversized_summary.json"), "t"))
    assert change.oversized
    assert change.message_type == "OversizedConfigurationItemChangeNotification"
    assert change.change_type == "UPDATE"
    assert change.resource_id == "sg-0c4d5e6f7a8b9c0d1"
    assert change.s3_location.startswith("config-bucket-210987654321/AWSLogs/")
    assert change.s3_location.endswith(".json.gz")
    assert change.changed_properties == ()
    assert change.state_id == "1717507327404"


def test_oversized_delivery_failed_is_still_a_change_without_location():
    change = only(parse_config_message(sns_message("config_oversized_delivery_failed.json"), "t"))
    assert isinstance(change, ConfigChange)
    assert change.oversized
    assert change.s3_location is None
    assert change.message_type == "OversizedConfigurationItemChangeDeliveryFailed"
    assert change.resource_type == "AWS::EC2::SecurityGroup"


@pytest.mark.parametrize("summary", [None, {}, {"changeType": "UPDATE"}, "text"])
def test_oversized_without_a_named_resource_is_unparseable(summary):
    body = {"messageType": "OversizedConfigurationItemChangeDeliveryFailed", "configurationItemSummary": summary}
    item = only(parse_config_message(body, "t"))
    assert isinstance(item, Unparseable)
    assert "configurationItemSummary" in item.reason


def test_email_text_with_preamble_and_footer():
    text = (EVENTS / "config_oversized_email.txt").read_text()
    change = only(parse_config_message(text, "mail"))
    assert change.oversized and change.resource_id == "sg-0c4d5e6f7a8b9c0d1"
    assert change.source == "mail"


@pytest.mark.parametrize("message_type", sorted(IGNORED_TYPES))
def test_types_without_a_change_are_ignored_with_a_reason(message_type):
    item = only(parse_config_message({"messageType": message_type, "awsAccountId": "1"}, "t"))
    assert isinstance(item, Ignored)
    assert item.reason == IGNORED_TYPES[message_type]


@pytest.mark.parametrize("name, fragment", [
    ("config_snapshot_started.json", "snapshot delivery started"),
    ("config_compliance_change.json", "compliance change"),
    ("config_history_delivery_completed.json", "history delivered"),
    ("config_rules_evaluation_started.json", "rules evaluation started"),
])
def test_fixture_notifications_without_a_change(name, fragment):
    data = load(name)
    message = sns_message(name) if ("Records" in data or "Message" in data) else data
    item = only(parse_config_message(message, "t"))
    assert isinstance(item, Ignored)
    assert fragment in item.reason


def test_unknown_message_type_is_ignored():
    item = only(parse_config_message({"messageType": "SomethingNew", "x": 1}, "t"))
    assert item == Ignored("t", "unknown messageType SomethingNew")


@pytest.mark.parametrize("message, fragment", [
    ({"hello": "world"}, "no messageType"),
    ("{broken", "Config notification"),
    ('{"configurationItemDiff": null, "configurationItem": ', "truncated"),
    ("[1, 2]", "expected an object"),
    (42, "got int"),
    (None, "got NoneType"),
    ({"messageType": "ConfigurationItemChangeNotification"}, "no configurationItem"),
    ({"messageType": "ConfigurationItemChangeNotification", "configurationItem": "x"}, "no configurationItem"),
])
def test_unreadable_notifications(message, fragment):
    item = only(parse_config_message(message, "t"))
    assert isinstance(item, Unparseable)
    assert fragment in item.reason


def test_double_encoded_message():
    message = json.dumps(json.dumps({"messageType": "ConfigRulesEvaluationStarted"}))
    assert isinstance(only(parse_config_message(message, "t")), Ignored)


def test_empty_and_bad_entries_in_configuration_items():
    assert isinstance(only(parse_config_message({"MessageType": "ConfigurationItemChangeNotification",
                                                 "configurationItems": []}, "t")), Ignored)
    items = parse_config_message({"configurationItems": [{"resourceType": "AWS::S3::Bucket", "resourceId": "b"},
                                                         "junk"]}, "t")
    assert isinstance(items[0], ConfigChange) and items[0].resource_id == "b"
    assert isinstance(items[1], Unparseable) and "configurationItems[1]" in items[1].reason


def test_null_diff_null_configuration_resource_deleted():
    change = only(parse_config_message(load("config_change_resource_deleted_null_diff.json"), "t"))
    assert change.status == "ResourceDeleted"
    assert change.change_type is None
    assert change.changed_properties == ()
    assert change.configuration is None
    assert change.tags == {}


def test_api_spelling_with_string_configuration_and_key_value_tags():
    change = only(parse_config_message(load("config_item_api_spelling_configuration_string.json"), "t"))
    assert change.message_type is None
    assert change.arn == "arn:aws:kinesis:eu-west-1:210987654321:stream/clickstream"
    assert change.account == "210987654321"
    assert change.configuration["streamName"] == "clickstream"
    assert change.tags == {"team": "analytics", "cost-center": "4711"}
    assert change.relationships[0].name == "Is associated with "
    assert change.state_id == "1717344333000"
    assert change.capture_time == datetime(2024, 6, 2, 16, 5, 33, tzinfo=timezone.utc)


def test_config_rule_invoking_event_message():
    event = load("config_rule_invoking_event.json")
    change = only(parse_config_message(event["invokingEvent"], "rule"))
    assert change.region == "global"
    assert change.resource_type == "AWS::IAM::Role"
    assert change.resource_name == "reporting-export"
    assert [p.path for p in change.changed_properties] == ["Configuration.RolePolicyList.0"]


@pytest.mark.parametrize("written, expected", [
    ("2024-06-03T08:15:42Z", datetime(2024, 6, 3, 8, 15, 42, tzinfo=timezone.utc)),
    ("2024-06-03T08:15:42.118Z", datetime(2024, 6, 3, 8, 15, 42, 118000, tzinfo=timezone.utc)),
    ("2024-06-03 08:15:42 UTC", datetime(2024, 6, 3, 8, 15, 42, tzinfo=timezone.utc)),
    # field-variations.md §9: times that end in UTC, with or without a space, with or without fractions
    ("2017-01-09T22:50:14.328UTC", datetime(2017, 1, 9, 22, 50, 14, 328000, tzinfo=timezone.utc)),
    ("2017-01-09T22:50:14UTC", datetime(2017, 1, 9, 22, 50, 14, tzinfo=timezone.utc)),
    ("2017-01-09T22:50:14.328 UTC", datetime(2017, 1, 9, 22, 50, 14, 328000, tzinfo=timezone.utc)),
    ("2017-01-09 22:50:14 UTC", datetime(2017, 1, 9, 22, 50, 14, tzinfo=timezone.utc)),
    ("2017-01-09T22:50:14.328utc", datetime(2017, 1, 9, 22, 50, 14, 328000, tzinfo=timezone.utc)),
    ("2017-01-09T22:50:14Z UTC", datetime(2017, 1, 9, 22, 50, 14, tzinfo=timezone.utc)),
    ("2017-01-09T23:50:14+01:00 UTC", datetime(2017, 1, 9, 22, 50, 14, tzinfo=timezone.utc)),
    ("2017-01-09T22:50:14.328 GMT", datetime(2017, 1, 9, 22, 50, 14, 328000, tzinfo=timezone.utc)),
    (" 2017-01-09T22:50:14.328UTC ", datetime(2017, 1, 9, 22, 50, 14, 328000, tzinfo=timezone.utc)),
    ("Mar 24, 2014 9:11:59 PM UTC", datetime(2014, 3, 24, 21, 11, 59, tzinfo=timezone.utc)),
    ("UTC", None),
    ("2017-01-09T25:50:14UTC", None),
    ("xxx", None),
    (None, None),
])
def test_capture_time_spellings(written, expected):
    change = parse_configuration_item({"configurationItemCaptureTime": written}, source="t", message_type=None,
                                      diff=None, notification_time=None)
    assert change.capture_time == expected


def test_parse_configuration_item_mixed_spelling_and_odd_values():
    ci = {
        "ARN": "arn:aws:ec2:us-east-1:1:vpc/vpc-1", "accountId": 123456789012, "resourceType": "AWS::EC2::VPC",
        "resourceId": "vpc-1", "resourceName": None, "awsRegion": "us-east-1",
        "configurationStateId": True, "relatedEvents": ["e-1", None, 7, ""],
        "relationships": [{"resourceId": "igw-1"}, {"relationshipName": "Contains Subnet",
                                                    "resourceType": "AWS::EC2::Subnet"}, "junk"],
        "configuration": "not json", "tags": {"a": None, "b": 2, "c": {"nested": 1}},
    }
    diff = {"changeType": "UPDATE", "changedProperties": {"Configuration.CidrBlock": "weird",
                                                          "Tags.0": {"previousValue": None, "changeType": "DELETE"}}}
    change = parse_configuration_item(ci, source="s", message_type="m", diff=diff,
                                      notification_time="2024-01-01T00:00:00Z")
    assert change.account == "123456789012"
    assert change.state_id is None
    assert change.related_events == ("e-1",)
    assert change.relationships == (Relationship(None, "igw-1", None, None),
                                    Relationship("AWS::EC2::Subnet", None, None, "Contains Subnet"))
    assert change.configuration == "not json"
    assert change.tags == {"a": "", "b": "2"}
    assert change.changed_properties == (PropertyChange("Configuration.CidrBlock", None),
                                         PropertyChange("Tags.0", "DELETE", None, None))
    assert change.notification_time == datetime(2024, 1, 1, tzinfo=timezone.utc)


def test_parse_configuration_item_of_a_non_object_is_empty():
    change = parse_configuration_item("junk", source="s", message_type=None, diff="junk", notification_time=5.5)
    assert change.resource_id is None and change.changed_properties == ()


def test_ci_level_tags_win_over_configuration_tags():
    ci = {"resourceType": "AWS::EC2::Instance", "tags": {"Name": "new"},
          "configuration": {"tags": [{"key": "Name", "value": "old"}, {"Key": "env", "Value": "prod"}]}}
    change = parse_configuration_item(ci, source="s", message_type=None, diff=None, notification_time=None)
    assert change.tags == {"Name": "new", "env": "prod"}


def test_parse_config_object_gzip_plain_and_corrupt():
    body = json.dumps(load("config_change_resource_deleted_null_diff.json"))
    for payload in (gzip.compress(body.encode()), body.encode(), body):
        change = only(parse_config_object(payload, "s3://b/k"))
        assert change.resource_id == "scratch-exports-eu" and change.source == "s3://b/k"
    broken = only(parse_config_object(gzip.compress(body.encode())[:50], "s3://b/k"))
    assert isinstance(broken, Unparseable) and broken.reason.startswith("S3 object")


def test_parse_config_object_history_file_with_configuration_items():
    history = {"fileVersion": "1.0", "configurationItems": [
        {"resourceType": "AWS::EC2::SecurityGroup", "resourceId": "sg-1", "configurationItemStatus": "OK"}]}
    change = only(parse_config_object(json.dumps(history).encode(), "s3://b/h"))
    assert change.resource_id == "sg-1"


def test_items_with_utc_times_are_changes_ready_for_attribution():
    """A 2017-era notification whose times end in UTC is a normal change, not a dead letter (issue 11)."""
    message = json.loads(sns_message("sns_lambda_string_message_sg_update.json"))
    message["configurationItem"]["configurationItemCaptureTime"] = "2017-01-09T22:50:14.328UTC"
    message["notificationCreationTime"] = "2017-01-09T22:51:02.714UTC"
    change = only(parse_config_message(json.dumps(message), "t"))
    assert change.capture_time == datetime(2017, 1, 9, 22, 50, 14, 328000, tzinfo=timezone.utc)
    assert change.notification_time == datetime(2017, 1, 9, 22, 51, 2, 714000, tzinfo=timezone.utc)


def test_parse_config_object_refuses_a_bomb_as_unreadable():
    bomb = gzip.compress(b'{"configurationItem": {"x": "' + b"A" * (20 * 2**20) + b'"}}', compresslevel=1)
    item = only(parse_config_object(bomb, "s3://b/k"))
    assert isinstance(item, Unparseable) and "inflates beyond 16 MiB" in item.reason
