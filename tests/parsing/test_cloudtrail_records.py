"""CloudTrail records, LookupEvents entries, and who made the call (resolve_principal)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from chalicelib.core.model import IndexedResource, Principal, TrailEvent, Unparseable
from chalicelib.parsing.cloudtrail import parse_lookup_event, parse_record, resolve_principal, with_location
from chalicelib.parsing.events import parse_payload

EVENTS = Path(__file__).resolve().parents[1] / "events"
ACCT = "210987654321"


def identities() -> dict[str, dict]:
    """The records of cloudtrail_records_identities.json by eventName."""
    records = json.loads((EVENTS / "cloudtrail_records_identities.json").read_text())["Records"]
    return {r["eventName"]: r for r in records}


def principal_of(event_name: str) -> Principal:
    record = identities()[event_name]
    return resolve_principal(record.get("userIdentity"), record.get("additionalEventData"))


@pytest.mark.parametrize("event_name, expected", [
    ("CreateUser", Principal(
        type="IAMUser", arn=f"arn:aws:iam::{ACCT}:user/ops-anna", account=ACCT,
        issuer_arn=f"arn:aws:iam::{ACCT}:user/ops-anna", display_name="ops-anna", mfa=True,
        user_name="ops-anna", access_key_id="ASIATX3PLQ7ZCONSOLE1")),
    ("PutBucketPolicy", Principal(
        type="Root", arn=f"arn:aws:iam::{ACCT}:root", account=ACCT, issuer_arn=f"arn:aws:iam::{ACCT}:root",
        display_name="root", mfa=True, access_key_id="ASIATX3PLQ7ZROOT0001")),
    ("ModifyDBInstance", Principal(
        type="AssumedRole", arn=f"arn:aws:sts::{ACCT}:assumed-role/break-glass/jdoe", account=ACCT,
        issuer_arn=f"arn:aws:iam::{ACCT}:role/ops/break-glass", display_name="jdoe", session_name="jdoe",
        mfa=False, access_key_id="ASIATX3PLQ7ZBREAKGLS")),
    ("RunInstances", Principal(
        type="FederatedUser", arn=f"arn:aws:sts::{ACCT}:federated-user/build-bot", account=ACCT,
        issuer_arn=f"arn:aws:iam::{ACCT}:user/ci-federator", display_name="build-bot", mfa=False,
        access_key_id="ASIATX3PLQ7ZFEDERAT1")),
    ("CreateServiceLinkedRole", Principal(
        type="AWSService", display_name="autoscaling.amazonaws.com", invoked_by="autoscaling.amazonaws.com")),
    ("AssumeRole", Principal(type="AWSAccount", account="345678901234", display_name="345678901234")),
    ("DeleteBucketPolicy", Principal(type="IdentityCenterUser", arn=None, account=ACCT,
                                     display_name="li.wei@example.com")),
    ("AssumeRoleWithSAML", Principal(type="SAMLUser", display_name="k.tanaka", user_name="k.tanaka")),
    ("AssumeRoleWithWebIdentity", Principal(
        type="WebIdentityUser", display_name="repo:acme/infra:ref:refs/heads/main",
        user_name="repo:acme/infra:ref:refs/heads/main")),
    ("StopLogging", Principal()),
    ("DeleteTrail", Principal()),
])
def test_resolve_principal_for_every_identity_type(event_name, expected):
    assert principal_of(event_name) == expected


@pytest.mark.parametrize("identity", [None, {}, "AssumedRole", 7, [], {"type": None}])
def test_missing_or_junk_identity_resolves_to_an_empty_principal(identity):
    assert resolve_principal(identity, "junk") == Principal()


def test_unknown_type_has_no_display_name_but_keeps_facts():
    principal = resolve_principal({"type": "SomethingNew", "arn": "arn:aws:iam::1:thing/x", "accountId": "1"})
    assert principal.display_name is None
    assert principal.issuer_arn is None
    assert principal.arn == "arn:aws:iam::1:thing/x"


def test_assumed_role_prefers_source_identity_from_session_context_then_identity():
    base = {"type": "AssumedRole", "arn": "arn:aws:sts::1:assumed-role/JohnDoe/JohnRole1",
            "sessionContext": {"sessionIssuer": {"arn": "arn:aws:iam::1:role/JohnRole1"}, "sourceIdentity": "John"}}
    principal = resolve_principal(base)
    assert (principal.display_name, principal.session_name, principal.source_identity) == (
        "John", "JohnRole1", "John")
    outer = {**base, "sessionContext": {}, "sourceIdentity": "Jane"}
    assert resolve_principal(outer).display_name == "Jane"
    assert resolve_principal(outer).issuer_arn is None


def test_sso_session_name_is_the_email():
    principal = resolve_principal({
        "type": "AssumedRole",
        "arn": f"arn:aws:sts::{ACCT}:assumed-role/AWSReservedSSO_Admin_0123/alex@example.com",
        "sessionContext": {"sessionIssuer": {"type": "Role", "arn": f"arn:aws:iam::{ACCT}:role/aws-reserved/"
                                                                    "sso.amazonaws.com/AWSReservedSSO_Admin_0123"}}})
    assert principal.session_name == "alex@example.com"
    assert principal.display_name == "alex@example.com"
    assert principal.issuer_arn.endswith("role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_Admin_0123")


@pytest.mark.parametrize("arn", [None, "", "arn:aws:sts::1:assumed-role/only-role", "garbage"])
def test_assumed_role_without_a_session_in_the_arn(arn):
    principal = resolve_principal({"type": "AssumedRole", "arn": arn})
    assert principal.session_name is None and principal.display_name is None


def test_identity_center_user_falls_back_to_on_behalf_of():
    identity = {"type": "IdentityCenterUser", "arn": "", "onBehalfOf": {"userId": "uid-1"}}
    assert resolve_principal(identity).display_name == "uid-1"
    assert resolve_principal(identity, {"UserName": "li"}).display_name == "li"
    assert resolve_principal(identity).arn is None


@pytest.mark.parametrize("attributes_key, value, extra, expected", [
    ("attributes", "true", None, True),
    ("attributes", "True", None, True),
    ("attributes", "FALSE", None, False),
    ("Attributes", "False", None, False),
    ("attributes", True, None, True),
    ("attributes", "maybe", None, None),
    ("attributes", None, {"MFAUsed": "Yes"}, True),
    ("attributes", None, {"MFAUsed": "No"}, False),
    ("attributes", "true", {"MFAUsed": "No"}, False),
    ("attributes", None, {"MFAUsed": "perhaps"}, None),
    ("attributes", None, None, None),
])
def test_mfa(attributes_key, value, extra, expected):
    attributes = {} if value is None else {"mfaAuthenticated": value}
    identity = {"type": "IAMUser", "sessionContext": {attributes_key: attributes}}
    assert resolve_principal(identity, extra).mfa is expected


def test_parse_record_fields():
    record = identities()["DeleteBucketPolicy"]
    event = parse_record(record, "src")
    assert isinstance(event, TrailEvent)
    assert event.source == "src"
    assert event.event_id == "11111111-aaaa-4bbb-8ccc-000000000007"
    assert event.event_name == "DeleteBucketPolicy"
    assert event.event_source == "s3.amazonaws.com"
    assert event.event_time == datetime(2024, 6, 3, 8, 15, 31, tzinfo=timezone.utc)
    assert event.account == ACCT
    assert event.region == "eu-west-1"
    assert event.read_only is False
    assert event.error_code == "AccessDenied"
    assert event.error_message.startswith("User is not authorized")
    assert event.event_type == "AwsApiCall"
    assert event.source_ip == "198.51.100.23"
    assert event.user_agent.startswith("Mozilla/5.0")
    assert event.raw is record  # kept, not copied
    assert event.indexed_resources == ()


def test_account_falls_back_to_the_caller_and_read_only_strings():
    record = {"eventName": "X", "userIdentity": {"type": "IAMUser", "accountId": "111"}, "readOnly": "TRUE"}
    event = parse_record(record, "s")
    assert event.account == "111" and event.read_only is True
    assert parse_record({"eventName": "X", "readOnly": "no"}, "s").read_only is None
    assert parse_record({"eventName": "X", "recipientAccountId": "222",
                         "userIdentity": {"accountId": "111"}}, "s").account == "222"


def test_console_signin_doc_spelling_and_gov_partition():
    record = json.loads((EVENTS / "cloudtrail_record_bare_consolelogin_gov_mfa.json").read_text())
    event = parse_record(record, "s")
    assert event.event_type == "AwsConsoleSignin"
    assert event.principal.issuer_arn == "arn:aws-us-gov:iam::123456789012:user/sam.okafor"
    assert event.principal.mfa is True
    assert event.read_only is None


def test_failed_console_login_has_no_arn_and_no_error_code():
    detail = json.loads((EVENTS / "eventbridge_console_signin_failure.json").read_text())["detail"]
    event = parse_record(detail, "s")
    assert event.principal.arn is None and event.principal.issuer_arn is None
    assert event.principal.display_name == "HIDDEN_DUE_TO_SECURITY_REASONS"
    assert event.principal.access_key_id is None  # "" is absent
    assert event.error_code is None and event.error_message == "Failed authentication"
    assert event.principal.mfa is False


def test_missing_fields_are_none():
    event = parse_record({"eventVersion": "1.0", "eventTime": "garbage", "eventID": 17}, "s")
    assert isinstance(event, TrailEvent)
    assert event.event_name is None and event.event_time is None and event.region is None
    assert event.event_id == "17"


@pytest.mark.parametrize("record", [None, [], "text", 3])
def test_non_object_record_is_unparseable(record):
    assert isinstance(parse_record(record, "s"), Unparseable)


def lookup_events() -> list[dict]:
    return json.loads((EVENTS / "lookup_events_response.json").read_text())["Events"]


def test_lookup_event_prefers_the_inner_record():
    outer = lookup_events()[1]
    event = parse_lookup_event(outer, "lookup")
    assert event.event_name == "DescribeSecurityGroups"
    assert event.event_time == datetime(2024, 6, 5, 11, 40, tzinfo=timezone.utc)
    assert event.read_only is True  # inner has no readOnly: outer "true" fills it
    assert event.principal.session_name == "aws-go-sdk-1717402000000000000"
    assert event.raw["eventID"] == "55555555-eeee-4fff-8aaa-000000000002"


def test_lookup_event_resources_and_epoch_time():
    event = parse_lookup_event(lookup_events()[0], "lookup")
    assert event.indexed_resources == (IndexedResource("AWS::IAM::Role", "reporting-export"),
                                       IndexedResource("AWS::IAM::Policy", "read-exports"))
    assert event.read_only is False
    assert event.principal.display_name == "maria.garcia@example.com"


def test_lookup_event_inner_time_wins_over_outer_offset_time():
    inner = {"eventID": "e", "eventName": "ConsoleLogin", "eventTime": "2016-01-26T21:42:12Z"}
    event = parse_lookup_event({"EventId": "e", "EventTime": "2021-11-18T09:41:02-08:00",
                                "CloudTrailEvent": json.dumps(inner)}, "l")
    assert event.event_time == datetime(2016, 1, 26, 21, 42, 12, tzinfo=timezone.utc)


@pytest.mark.parametrize("cloudtrail_event", [None, "{broken", "[1]", 5])
def test_lookup_event_falls_back_to_outer_fields(cloudtrail_event):
    when = datetime(2024, 6, 5, 13, 40, tzinfo=timezone(timedelta(hours=2)))
    outer = {"EventId": "e-1", "EventName": "CreateVpc", "EventSource": "ec2.amazonaws.com", "EventTime": when,
             "ReadOnly": "false", "AccessKeyId": "AKIA1", "Username": "bob",
             "Resources": [{"ResourceType": "AWS::EC2::VPC"}, "junk"], "CloudTrailEvent": cloudtrail_event}
    event = parse_lookup_event(outer, "l")
    assert isinstance(event, TrailEvent)
    assert (event.event_id, event.event_name, event.event_source) == ("e-1", "CreateVpc", "ec2.amazonaws.com")
    assert event.event_time == datetime(2024, 6, 5, 11, 40, tzinfo=timezone.utc)
    assert event.read_only is False
    assert event.principal.access_key_id == "AKIA1"
    assert event.principal.display_name == "bob"
    assert event.indexed_resources == (IndexedResource("AWS::EC2::VPC", None),)
    assert event.raw is outer


@pytest.mark.parametrize("entry", [{}, {"CloudTrailEvent": "{broken"}, "text", None])
def test_lookup_event_without_anything_readable(entry):
    assert isinstance(parse_lookup_event(entry, "l"), Unparseable)


# --- sessionCredentialFromConsole: a person drives the session (D17) ------------------------------------------

CONSOLE_IDENTITY = {
    "type": "AssumedRole", "principalId": "AROAEXAMPLEID1234567:priya",
    "arn": f"arn:aws:sts::{ACCT}:assumed-role/terraform-apply/priya", "accountId": ACCT,
    "sessionContext": {"sessionIssuer": {"type": "Role", "arn": f"arn:aws:iam::{ACCT}:role/terraform-apply",
                                         "userName": "terraform-apply"},
                       "attributes": {"creationDate": "2025-03-02T08:00:00Z", "mfaAuthenticated": "true"}},
}


def console_record(flag, *, in_context: bool = False) -> dict:
    identity = json.loads(json.dumps(CONSOLE_IDENTITY))
    record = {"eventVersion": "1.09", "eventID": "0b8f7a7e-52a4-4f0f-9d55-d1b3e0b8a001",
              "eventName": "AuthorizeSecurityGroupIngress", "eventSource": "ec2.amazonaws.com",
              "eventTime": "2025-03-02T08:10:00Z", "awsRegion": "eu-west-1", "userIdentity": identity}
    if in_context:
        identity["sessionContext"]["sessionCredentialFromConsole"] = flag
    else:
        record["sessionCredentialFromConsole"] = flag
    return record


@pytest.mark.parametrize("flag, expected", [
    ("true", True), ("True", True), (" true ", True), (True, True),
    ("false", False), (False, False), (None, False), ("1", False), (1, False), ({}, False),
])
@pytest.mark.parametrize("in_context", [False, True])
def test_session_credential_from_console_is_read_from_the_record_or_the_session_context(
        flag, expected, in_context):
    event = parse_record(console_record(flag, in_context=in_context), "test")
    assert event.principal.from_console is expected
    assert event.principal.to_json()["from_console"] is expected


def test_principal_without_the_flag_is_not_from_console():
    assert resolve_principal(CONSOLE_IDENTITY).from_console is False
    assert Principal().from_console is False
    assert "from_console" in Principal().to_json()


def test_lookup_events_entries_carry_the_console_flag_from_the_cloudtrail_event_string():
    inner = console_record("true")
    entry = {"EventId": inner["eventID"], "EventName": inner["eventName"], "ReadOnly": "false",
             "EventTime": "2025-03-02T08:10:00Z", "EventSource": "ec2.amazonaws.com", "Username": "priya",
             "Resources": [{"ResourceType": "AWS::EC2::SecurityGroup", "ResourceName": "sg-0123456789abcdef0"}],
             "CloudTrailEvent": json.dumps(inner)}
    event = parse_lookup_event(entry, "lookup")
    assert isinstance(event, TrailEvent)
    assert event.principal.from_console is True
    assert event.to_json()["principal"]["from_console"] is True
    plain = parse_lookup_event({**entry, "CloudTrailEvent": json.dumps(console_record("false"))}, "lookup")
    assert plain.principal.from_console is False


# --- the complete typed record: every field a consumer needs, read once ----------------------------------------

SIGNIN = {"eventVersion": "1.08", "eventID": "3fcfb182-98f8-4744-bd45-10a395ab61cb", "eventName": "ConsoleLogin",
          "eventSource": "signin.amazonaws.com", "eventTime": "2025-03-02T08:10:00Z", "awsRegion": "us-east-1",
          "eventType": "AwsConsoleSignIn", "recipientAccountId": ACCT,
          "userIdentity": {"type": "IAMUser", "arn": f"arn:aws:iam::{ACCT}:user/nina", "accountId": ACCT,
                           "userName": "nina"},
          "responseElements": {"ConsoleLogin": "Success"}, "additionalEventData": {"MFAUsed": "No"}}

_DROP = object()  # leave the field out of the record


def signin_with(**fields) -> TrailEvent:
    record = json.loads(json.dumps(SIGNIN))
    for key, value in fields.items():
        if value is _DROP:
            record.pop(key, None)
        else:
            record[key] = value
    event = parse_record(record, "test")
    assert isinstance(event, TrailEvent)
    return event


def test_a_sign_in_record_is_read_completely():
    event = signin_with()
    assert (event.console_login, event.mfa_used, event.recipient_account) == ("Success", False, ACCT)
    assert (event.identity_type, event.failed, event.event_time_text) == ("IAMUser", False, "2025-03-02T08:10:00Z")
    assert event.principal.user_name == "nina"


@pytest.mark.parametrize("extra, expected", [
    (_DROP, None), (None, None), ("MFAUsed=No", None), ([], None), ({}, None),
    ({"MFAUsed": None}, None), ({"MFAUsed": "Yes"}, True), ({"MFAUsed": "No"}, False),
    ({"MFAUsed": " yes "}, True), ({"MFAUsed": "NO"}, False),
    # Not CloudTrail's spelling: never an answer, so never a "without MFA" alert on a guess.
    ({"MFAUsed": "true"}, None), ({"MFAUsed": "false"}, None), ({"MFAUsed": True}, None),
    ({"MFAUsed": False}, None), ({"MFAUsed": 0}, None), ({"MFAUsed": ["No"]}, None),
])
def test_mfa_used_is_yes_or_no_only(extra, expected):
    assert signin_with(additionalEventData=extra).mfa_used is expected


@pytest.mark.parametrize("response, expected", [
    (_DROP, None), (None, None), ("Failure", None), ([{"ConsoleLogin": "Failure"}], None), ({}, None),
    ({"ConsoleLogin": None}, None), ({"ConsoleLogin": ""}, None), ({"ConsoleLogin": True}, None),
    ({"ConsoleLogin": {"x": 1}}, None), ({"ConsoleLogin": "Failure"}, "Failure"),
    ({"ConsoleLogin": "success"}, "success"),
])
def test_console_login_result_as_written_or_none(response, expected):
    assert signin_with(responseElements=response).console_login == expected


@pytest.mark.parametrize("value, expected", [
    (_DROP, None), (None, None), ("", None), ("222233334444", "222233334444"), (222233334444, "222233334444"),
    (True, None), ({"id": "1"}, None), ("true", "true"),
])
def test_recipient_account_and_the_account_it_decides(value, expected):
    event = signin_with(recipientAccountId=value)
    assert event.recipient_account == expected
    assert event.account == (expected or ACCT)  # the caller's own account fills the gap


@pytest.mark.parametrize("code, message, expected_code, expected_message, failed", [
    (_DROP, _DROP, None, None, False),
    (None, None, None, None, False),
    ("", "", None, None, False),
    ("AccessDenied", "not allowed", "AccessDenied", "not allowed", True),
    (_DROP, "Failed authentication", None, "Failed authentication", True),  # failed sign-ins: no errorCode
    (403, _DROP, "403", None, True),
    (True, False, None, None, False),
    ("true", _DROP, "true", None, True),
    ({"code": "AccessDenied"}, ["x"], None, None, False),
])
def test_error_code_and_message(code, message, expected_code, expected_message, failed):
    event = signin_with(errorCode=code, errorMessage=message)
    assert (event.error_code, event.error_message, event.failed) == (expected_code, expected_message, failed)


@pytest.mark.parametrize("value, expected", [
    (_DROP, None), (None, None), (True, True), (False, False), ("true", True), ("FALSE", False), (" True ", True),
    ("yes", None), (1, None), (0, None), ([], None),
])
def test_read_only_flag(value, expected):
    assert signin_with(readOnly=value).read_only is expected


@pytest.mark.parametrize("value, time_text", [
    ("not a time", "not a time"), (None, None), (_DROP, None), ({"t": 1}, None), ("", None),
])
def test_event_time_text_keeps_what_could_not_be_read(value, time_text):
    event = signin_with(eventTime=value)
    assert event.event_time is None
    assert event.event_time_text == time_text


@pytest.mark.parametrize("kind, expected", [
    (_DROP, None), (None, None), ("", None), (7, "7"), ({"type": "IAMUser"}, None), (["Root"], None),
    ("Root", "Root"), ("SomethingNew", "SomethingNew"),
])
def test_identity_type_is_the_principal_type(kind, expected):
    identity = {**SIGNIN["userIdentity"]}
    if kind is _DROP:
        identity.pop("type")
    else:
        identity["type"] = kind
    event = signin_with(userIdentity=identity)
    assert event.identity_type == event.principal.type
    assert event.identity_type == expected


@pytest.mark.parametrize("value", [_DROP, None, "text", ["a"], {"roleName": "x", "path": "/ci/"}, 5, True])
def test_free_form_request_and_response_parts_are_kept_as_delivered(value):
    event = signin_with(requestParameters=value, responseElements=value, resources=value)
    expected = None if value is _DROP else value
    assert event.request_parameters == expected
    assert event.response_elements == expected
    assert event.resources == expected


def test_invoked_by_and_session_issuer_are_on_the_principal():
    identity = {"type": "AssumedRole", "arn": f"arn:aws:sts::{ACCT}:assumed-role/ci/s", "accountId": ACCT,
                "invokedBy": "cloudformation.amazonaws.com",
                "sessionContext": {"sessionIssuer": {"type": "Role", "arn": f"arn:aws:iam::{ACCT}:role/ci"}}}
    event = signin_with(userIdentity=identity)
    assert event.principal.invoked_by == "cloudformation.amazonaws.com"
    assert event.principal.issuer_arn == f"arn:aws:iam::{ACCT}:role/ci"


# The fingerprint decides the outcome id of records without a real eventID: it must never change.
REDACTED = {"eventVersion": "1.08", "eventID": "redacted", "eventName": "DeleteTrail",
            "eventSource": "cloudtrail.amazonaws.com", "eventTime": "2025-03-02T08:10:00Z", "awsRegion": "eu-west-1",
            "requestID": "req-1", "sourceIPAddress": "198.51.100.7",
            "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/nina",
                             "principalId": "AIDAEXAMPLE", "accessKeyId": "AKIAEXAMPLE", "userName": "nina"},
            "requestParameters": {"name": "org-trail"}}
REDACTED_FINGERPRINT = "296868b181c6965c90f974da"


def test_fingerprint_is_stable_whichever_way_the_record_arrives():
    assert parse_record(REDACTED, "t").fingerprint == REDACTED_FINGERPRINT
    entry = {"EventId": "redacted", "EventName": "DeleteTrail", "CloudTrailEvent": json.dumps(REDACTED)}
    assert parse_lookup_event(entry, "l").fingerprint == REDACTED_FINGERPRINT
    no_region = {k: v for k, v in REDACTED.items() if k != "awsRegion"}
    envelope = {"version": "0", "id": "x", "detail-type": "AWS API Call via CloudTrail", "source": "aws.cloudtrail",
                "account": "111122223333", "time": "2025-03-02T08:10:00Z", "region": "eu-west-1", "resources": [],
                "detail": no_region}
    (item,) = parse_payload(envelope, "eventbridge")
    assert item.region == "eu-west-1" and item.fingerprint == REDACTED_FINGERPRINT  # the envelope's region counts


def test_fingerprint_differs_when_the_call_differs():
    other = {**REDACTED, "requestParameters": {"name": "other-trail"}}
    assert parse_record(other, "t").fingerprint != REDACTED_FINGERPRINT


def test_with_location_fills_gaps_only():
    record = {k: v for k, v in REDACTED.items() if k != "awsRegion"}
    event = parse_record({**record, "recipientAccountId": "111122223333"}, "t")
    filled = with_location(event, "999988887777", "us-west-2")
    assert (filled.account, filled.region) == ("111122223333", "us-west-2")  # the record's account stays
    assert filled.fingerprint != event.fingerprint
    assert with_location(filled, None, "eu-west-1").region == "us-west-2"


@pytest.mark.parametrize("params", [{1: "a", "b": 2}, {"nan": float("nan")}])
def test_a_record_that_cannot_be_written_as_json_still_parses(params):
    event = parse_record({**REDACTED, "requestParameters": params}, "python")
    assert isinstance(event, TrailEvent)
    assert event.fingerprint is None or len(event.fingerprint) == 24


def test_a_record_nested_too_deep_to_write_still_parses():
    deep: dict = {}
    node = deep
    for _ in range(100_000):
        node["x"] = {}
        node = node["x"]
    event = parse_record({**REDACTED, "requestParameters": deep}, "python")
    assert isinstance(event, TrailEvent) and event.fingerprint is None
