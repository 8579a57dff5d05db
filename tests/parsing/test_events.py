"""parse_payload over every sample: the project's own (tests/events) and the shared public ones."""

from __future__ import annotations

import gzip
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from chalicelib.core.model import ConfigChange, Ignored, TrailEvent, Unparseable
from chalicelib.parsing.envelopes import SnsMeta
from chalicelib.parsing.events import parse_payload, parse_sns_event

EVENTS = Path(__file__).resolve().parents[1] / "events"
SHARED = Path(__file__).resolve().parents[3] / "shared" / "fixtures"
OWN_FILES = sorted(p for p in EVENTS.iterdir() if p.is_file())
SHARED_FILES = sorted(SHARED.rglob("*.json")) if SHARED.is_dir() else []


def parse(path: Path):
    return parse_payload(path.read_bytes(), path.name)


def kinds(items) -> list[str]:
    return [item.kind for item in items]


@pytest.mark.parametrize("path", OWN_FILES, ids=lambda p: p.name)
def test_own_fixture_never_unparseable_unless_named_so(path):
    items = parse(path)
    assert items and all(item.source == path.name for item in items)
    for item in items:
        json.dumps(item.to_json())  # JSON-safe
    unreadable = [i for i in items if isinstance(i, Unparseable)]
    if path.name.startswith("invalid_"):
        assert unreadable and len(unreadable) == len(items)
    elif path.name.startswith("partial_"):
        assert unreadable and len(unreadable) < len(items)
    else:
        assert not unreadable, unreadable


OWN_KINDS = {
    "awslogs_control_message.json": ["ignored"],
    "awslogs_gzip_cloudtrail.json": ["cloudtrail_event", "cloudtrail_event"],
    "awslogs_gzip_fname_cloudtrail.json": ["cloudtrail_event", "cloudtrail_event"],
    "awslogs_zlib_cloudtrail.json": ["cloudtrail_event", "cloudtrail_event"],
    "kinesis_awslogs_cloudtrail.json": ["cloudtrail_event", "cloudtrail_event", "ignored"],
    "cloudtrail_records_identities.json": ["cloudtrail_event"] * 11,
    "cloudtrail_records_array.json": ["cloudtrail_event"] * 2,
    "lookup_events_response.json": ["cloudtrail_event"] * 2,
    "partial_logs_decoded_truncated_message.json": ["cloudtrail_event", "ignored", "ignored", "unparseable"],
    "sns_envelope_old_format_configuration_items.json": ["config_change", "config_change"],
    "config_snapshot_started.json": ["ignored"],
    "config_compliance_change.json": ["ignored"],
    "config_rules_evaluation_started.json": ["ignored"],
    "config_history_delivery_completed.json": ["ignored"],
    "config_rule_scheduled_event.json": ["ignored"],
    "eventbridge_ec2_state_change.json": ["ignored"],
}


@pytest.mark.parametrize("name, expected", sorted(OWN_KINDS.items()))
def test_own_fixture_kinds(name, expected):
    assert kinds(parse(EVENTS / name)) == expected


@pytest.mark.parametrize("name", ["awslogs_gzip_cloudtrail.json", "awslogs_gzip_fname_cloudtrail.json",
                                  "awslogs_zlib_cloudtrail.json", "kinesis_awslogs_cloudtrail.json"])
def test_every_logs_encoding_gives_the_same_records(name):
    first, second = parse(EVENTS / name)[:2]
    assert (first.event_name, first.read_only) == ("AuthorizeSecurityGroupIngress", False)
    assert (second.event_name, second.read_only) == ("DescribeInstances", True)
    assert first.principal.display_name == "maria.garcia@example.com"


@pytest.mark.parametrize("name, resource_id", [
    ("sns_lambda_string_message_sg_update.json", "sg-0a1b2c3d4e5f60718"),
    ("sns_envelope_object_message_route_table.json", "rtb-07c5e4d3b2a190817"),
    ("sqs_record_wrapping_sns_envelope.json", "rtb-07c5e4d3b2a190817"),
    ("config_rule_invoking_event.json", "AROATX3PLQ7ZEXAMPLE01"),
    ("eventbridge_config_item_change.json", "acl-0e1d2c3b4a5968778"),
    ("config_oversized_summary.json", "sg-0c4d5e6f7a8b9c0d1"),
    ("config_oversized_delivery_failed.json", "sg-0c4d5e6f7a8b9c0d1"),
    ("config_oversized_email.txt", "sg-0c4d5e6f7a8b9c0d1"),
    ("config_change_resource_deleted_null_diff.json", "scratch-exports-eu"),
    ("config_item_api_spelling_configuration_string.json", "clickstream"),
])
def test_one_config_change_per_notification(name, resource_id):
    [change] = parse(EVENTS / name)
    assert isinstance(change, ConfigChange)
    assert change.resource_id == resource_id


def test_eventbridge_api_call_and_signin_failure():
    [call] = parse(EVENTS / "eventbridge_api_call_sso_authorize_sg.json")
    assert call.event_name == "AuthorizeSecurityGroupIngress"
    assert call.principal.issuer_arn.endswith("AWSReservedSSO_NetworkAdmin_3f1c2b7a9d8e6f50")
    [signin] = parse(EVENTS / "eventbridge_console_signin_failure.json")
    assert signin.event_type == "AwsConsoleSignIn"
    assert signin.error_message == "Failed authentication" and signin.error_code is None
    assert signin.raw["responseElements"] == {"ConsoleLogin": "Failure"}


def test_eventbridge_envelope_fills_account_and_region_the_record_lacks():
    event = {"detail-type": "AWS API Call via CloudTrail", "account": "999", "region": "ap-south-1",
             "detail": {"eventName": "CreateVpc"}}
    [item] = parse_payload(event, "eb")
    assert (item.account, item.region) == ("999", "ap-south-1")


def test_eventbridge_cloudtrail_detail_type_with_a_junk_detail():
    [item] = parse_payload({"detail-type": "AWS API Call via CloudTrail", "detail": "junk"}, "eb")
    assert isinstance(item, Unparseable)


# --- the shared public samples --------------------------------------------------------------------


@pytest.mark.skipif(not SHARED_FILES, reason="../shared/fixtures is not present")
@pytest.mark.parametrize("path", SHARED_FILES, ids=lambda p: str(p.relative_to(SHARED)))
def test_shared_fixture_parses_without_unparseable(path):
    items = parse_payload(path.read_bytes(), str(path))
    assert items
    assert not [i for i in items if isinstance(i, Unparseable)], items
    for item in items:
        json.dumps(item.to_json())


def shared(relative: str):
    path = SHARED / relative
    if not path.is_file():
        pytest.skip(f"{relative} is not present")
    return parse_payload(path.read_bytes(), relative)


def test_shared_alertlogic_sns_event():
    [change] = shared("config_sns/alertlogic__lambda_sns_event_sg_update_relatedevents.json")
    assert isinstance(change, ConfigChange)
    assert (change.resource_type, change.resource_id, change.change_type) == (
        "AWS::EC2::SecurityGroup", "sg-77707e10", "UPDATE")
    assert change.related_events == ("236106d5-0547-4097-b008-a8da2df524ab",)
    assert change.account == "481746159046"
    assert change.state_id == "8"
    assert [p.path for p in change.changed_properties] == ["Configuration.IpPermissions.0"]
    assert change.relationships[0].resource_name is None


def test_shared_powertools_zlib_awslogs_decodes():
    items = shared("cloudwatch_logs/powertools__awslogs_event_zlib_not_gzip_policy_level.json")
    assert kinds(items) == ["ignored", "ignored"]
    assert "testLogGroup" in items[0].reason and "First test message" in items[0].reason


def test_shared_lambda_docs_awslogs_is_test_log_group_with_plain_messages():
    items = shared("cloudwatch_logs/lambda_docs__awslogs_event_gzip_testloggroup.json")
    assert all(isinstance(i, Ignored) for i in items) and len(items) == 2
    assert "log group 'testLogGroup'" in items[0].reason
    assert "[ERROR] First test message" in items[0].reason
    assert "[ERROR] Second test message" in items[1].reason


def test_shared_hidekuro_awslogs_cloudtrail_delete_user():
    [event] = shared("cloudwatch_logs/hidekuro__awslogs_event_gzip_cloudtrail_deleteuser.json")
    assert event.event_name == "DeleteUser"
    assert event.principal.issuer_arn == "arn:aws:iam::123456789012:role/AdminRole"
    assert event.principal.display_name == "alice"
    assert event.principal.mfa is True


def test_shared_root_signin():
    [event] = shared("eventbridge/awsdocs_cwe__console_signin_root_no_version_field.json")
    assert isinstance(event, TrailEvent)
    assert event.principal.display_name == "root"
    assert event.principal.issuer_arn == "arn:aws:iam::123456789012:root"
    assert event.principal.mfa is False
    assert event.account == "123456789012"


def test_shared_iam_user_signin_doc_spelling():
    [event] = shared("cloudtrail_records/awsdocs_ct__consolelogin_iamuser_success_nomfa_records.json")
    assert event.event_type == "AwsConsoleSignin"
    assert event.principal.issuer_arn == "arn:aws:iam::111122223333:user/anaya"
    assert event.principal.mfa is False


def test_shared_role_chaining_source_identity():
    [event] = shared("cloudtrail_records/awsdocs_iam__assumedrole_role_chaining_sourceidentity_tags.json")
    assert event.principal.display_name == "JohnDoe"
    assert event.principal.session_name == "JohnRole1"
    assert event.principal.issuer_arn == "arn:aws:iam::111111111111:role/JohnRole1"


def test_shared_cross_account_caller():
    [event] = shared("cloudtrail_records/awsdocs_iam__assumerole_cross_account_caller_iamuser.json")
    assert event.account == "111122223333"
    assert event.principal.account == "777788889999"


def test_shared_lookup_events_prefers_inner_time():
    [event] = shared("cloudtrail_lookup/awscli__lookup_events_consolelogin_assumedrole.json")
    assert event.event_time == datetime(2016, 1, 26, 21, 42, 12, tzinfo=timezone.utc)
    assert event.principal.session_name == "my-session-name"
    assert event.indexed_resources == ()


def test_shared_config_rule_event():
    [change] = shared("config_items/powertools__config_rule_event_ec2_instance_update.json")
    assert change.account == "0123456789012"
    assert change.resource_id == "i-042dd005362091826"
    assert "Configuration.InstanceType" in [p.path for p in change.changed_properties]


def test_shared_bare_configuration_item():
    [change] = shared("config_items/rdk__ci_iam_role.json")
    assert (change.region, change.resource_id, change.resource_name) == (
        "global", "AROAIY7FPU7KRV7IZBNPC", "config-role-ezcrc2")
    assert change.state_id == "1478403712719"
    assert change.relationships[0].name == "Is attached to CustomerManagedPolicy"


def test_shared_oversized_and_snapshot():
    [change] = shared("config_sns/awsdocs__oversized_ci_change_ec2_instance_message.json")
    assert change.oversized and change.s3_location.startswith("my-bucket/AWSLogs/123456789012/")
    [ignored] = shared("config_sns/awsdocs__snapshot_delivery_completed.json")
    assert isinstance(ignored, Ignored)


def test_shared_sg_swap_relationship_diff():
    [change] = shared("config_sns/awsdocs__ci_change_ec2_instance_sg_swap_update.json")
    relationship_changes = {p.path: p.change_type for p in change.changed_properties
                            if p.path.startswith("Relationships.")}
    assert relationship_changes == {"Relationships.0": "DELETE", "Relationships.1": "CREATE"}


# --- input kinds ------------------------------------------------------------------------------------


RECORD = {"eventName": "CreateVpc", "eventSource": "ec2.amazonaws.com", "eventID": "e-1"}


@pytest.mark.parametrize("payload", [
    RECORD,
    json.dumps(RECORD),
    json.dumps(RECORD).encode(),
    bytearray(json.dumps(RECORD).encode()),
    gzip.compress(json.dumps(RECORD).encode(), mtime=0),  # a fixed header: the same test id in every process
    [RECORD],
    {"Records": [RECORD]},
    json.dumps(json.dumps(RECORD)),
])
def test_any_container_of_one_record(payload):
    [event] = parse_payload(payload, "p")
    assert isinstance(event, TrailEvent) and event.event_id == "e-1"


@pytest.mark.parametrize("payload, kind", [
    (None, "unparseable"),
    (3, "unparseable"),
    (b"", "unparseable"),
    ("", "unparseable"),
    ("   ", "unparseable"),
    ([], "ignored"),
    ({"Records": []}, "ignored"),
    ({"Events": []}, "ignored"),
    ({"unknown": 1}, "unparseable"),
    (b"\xff\xfe\x00\x01", "unparseable"),
    ('"just a string"', "unparseable"),
    ({"Type": "SubscriptionConfirmation", "Message": "confirm", "TopicArn": "t"}, "ignored"),
    ({"Records": [{"eventSource": "aws:s3", "s3": {}}]}, "ignored"),
    ({"Records": [{"eventSource": "aws:sqs", "body": ""}]}, "unparseable"),
    ({"Records": [{"eventSource": "aws:kinesis", "kinesis": {"data": "@@@"}}]}, "unparseable"),
    ({"Records": [{"EventSource": "aws:sns", "Sns": "x"}]}, "unparseable"),
    ({"Records": [{"EventSource": "aws:sns", "Sns": {"Message": ""}}]}, "unparseable"),
    ({"Records": [7]}, "unparseable"),
    ({"awslogs": {"data": 7}}, "unparseable"),
    ({"messageType": "DATA_MESSAGE"}, "unparseable"),
    ({"messageType": "DATA_MESSAGE", "logEvents": []}, "ignored"),
    ({"messageType": "DATA_MESSAGE", "logEvents": [{"message": 5}]}, "unparseable"),
    ({"invokingEvent": None}, "unparseable"),
])
def test_edge_payloads(payload, kind):
    items = parse_payload(payload, "p")
    assert kinds(items) == [kind]
    assert items[0].reason


def test_bare_awslogs_data_pasted_as_text():
    data = json.loads((EVENTS / "awslogs_gzip_cloudtrail.json").read_text())["awslogs"]["data"]
    assert kinds(parse_payload(data, "p")) == ["cloudtrail_event", "cloudtrail_event"]


def test_deep_nesting_is_cut_off():
    payload: object = RECORD
    for _ in range(30):
        payload = {"Type": "Notification", "Message": payload}
    [item] = parse_payload(payload, "p")
    assert isinstance(item, Unparseable) and "nested" in item.reason


def test_one_bad_record_does_not_lose_its_neighbours():
    items = parse_payload({"Records": [RECORD, "junk", {"x": 1}, RECORD]}, "p")
    assert kinds(items) == ["cloudtrail_event", "unparseable", "unparseable", "cloudtrail_event"]


def test_parse_sns_event_for_the_pipeline():
    event = json.loads((EVENTS / "sns_lambda_string_message_sg_update.json").read_text())
    [(meta, message)] = parse_sns_event(event)
    assert isinstance(meta, SnsMeta)
    assert meta.message_id == "7d0c9b7e-5e1a-5b3c-9a2f-1e4d6c8b0a13"
    assert meta.topic_arn == "arn:aws:sns:eu-west-1:210987654321:config-changes"
    assert isinstance(message, str)
    [change] = parse_payload(message, f"sns:{meta.message_id}")
    assert change.resource_id == "sg-0a1b2c3d4e5f60718"
    assert parse_sns_event(None) == []
