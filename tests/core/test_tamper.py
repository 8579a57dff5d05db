"""Tamper protection: which write calls blind the detector or what it watches, and who may touch its resources."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.core.calls import WHAT_IT_DISABLES
from chalicelib.core.model import TrailEvent
from chalicelib.core.rules import DirectRules, is_sensitive_call
from chalicelib.core.tamper import MAX_SCANNED_VALUES, names_own_resource, role_name, tamper_reason
from chalicelib.parsing.cloudtrail import parse_record

ACCOUNT = "563014872290"
PERSON = {"type": "IAMUser", "arn": f"arn:aws:iam::{ACCOUNT}:user/r.tremblay", "accountId": ACCOUNT,
          "userName": "r.tremblay"}
ROOT = {"type": "Root", "arn": f"arn:aws:iam::{ACCOUNT}:root", "accountId": ACCOUNT}


def role_session(role: str, session: str) -> dict[str, Any]:
    return {"type": "AssumedRole", "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{session}",
            "accountId": ACCOUNT, "sessionContext": {"sessionIssuer": {
                "type": "Role", "arn": f"arn:aws:iam::{ACCOUNT}:role/{role}", "userName": role}}}


def call(name: str, parameters: Any = None, identity: dict[str, Any] | None = None, **extra: Any) -> TrailEvent:
    record = {"eventVersion": "1.09", "userIdentity": identity or PERSON, "eventTime": "2025-07-22T09:49:13Z",
              "eventSource": "lambda.amazonaws.com", "eventName": name, "awsRegion": "ca-central-1",
              "requestParameters": parameters, "eventID": "7dbb37e5-a6e1-4b9f-94d5-2c6ef9bc5b1e",
              "readOnly": False, "eventType": "AwsApiCall", "recipientAccountId": ACCOUNT, **extra}
    parsed = parse_record(record, "test")
    assert isinstance(parsed, TrailEvent)
    return parsed


@pytest.mark.parametrize("name", sorted(WHAT_IT_DISABLES))
def test_every_protective_call_says_what_it_disables(name: str) -> None:
    assert tamper_reason(call(name)) == WHAT_IT_DISABLES[name]


@pytest.mark.parametrize("value", [
    "mcd-dev-lookup", "MCD-DEV-LOOKUP", "arn:aws:lambda:ca-central-1:563014872290:function:mcd-dev-lookup",
    "563014872290:function:mcd-dev-lookup:$LATEST", "https://sqs.ca-central-1.amazonaws.com/563014872290/mcd-dev-slack",
    "/mcd/dev/settings", "mcd/dev/slack-webhook", "arn:aws:iam::563014872290:role/service/mcd-dev",
    "arn:aws:logs:ca-central-1:563014872290:log-group:trail:subscription-filter:mcd-dev-cloudtrail",
])
def test_values_that_name_the_detectors_resources(value: str) -> None:
    assert names_own_resource(value)


@pytest.mark.parametrize("value", ["invoice-renderer", "my-mcd-thing", "mcdonalds-menu", "/app/mcd", "mcd",
                                   "arn:aws:lambda:ca-central-1:563014872290:function:amcd-x", ""])
def test_values_that_do_not(value: str) -> None:
    assert not names_own_resource(value)


def test_a_write_naming_one_of_the_detectors_resources_anywhere_in_the_request_tampers() -> None:
    nested = {"Targets": [{"Id": "1", "Arn": "arn:aws:lambda:ca-central-1:563014872290:function:mcd-dev-api_call"}]}
    assert tamper_reason(call("RemoveTargets", nested)) == (
        "changes the detector's own resource arn:aws:lambda:ca-central-1:563014872290:function:mcd-dev-api_call")
    assert tamper_reason(call("PutFunctionConcurrency20171031", {"functionName": "invoice-renderer"})) is None


def test_the_detectors_own_roles_may_touch_its_resources_but_a_session_name_proves_nothing() -> None:
    purge = {"queueUrl": "https://sqs.ca-central-1.amazonaws.com/563014872290/mcd-dev-lookup"}
    assert tamper_reason(call("PurgeQueue", purge, role_session("mcd-dev", "mcd-dev-lookup"))) is None
    assert tamper_reason(call("PurgeQueue", purge, role_session("Admin", "mcd-dev"))) is not None
    assert role_name(f"arn:aws:sts::{ACCOUNT}:assumed-role/Admin/mcd-dev") == "Admin"


def test_any_write_by_the_root_user_tampers_and_a_read_by_it_is_not_sensitive() -> None:
    assert tamper_reason(call("PutBucketVersioning", {"bucketName": "phi"}, ROOT)) == "a write call by the root user"
    assert not is_sensitive_call(call("GetBucketVersioning", {"bucketName": "phi"}, ROOT, readOnly=True),
                                 DirectRules())


def test_failed_tampering_counts_only_when_access_was_denied() -> None:
    rules = DirectRules()
    assert is_sensitive_call(call("DeleteFlowLogs", errorCode="Client.UnauthorizedOperation"), rules)
    assert not is_sensitive_call(call("DeleteFlowLogs", errorCode="InvalidFlowLogId.NotFound"), rules)


def test_tamper_protection_can_be_turned_off_knowingly() -> None:
    off = DirectRules.from_mapping({"tamper": False, "include": ["CreateRoute"]})
    assert not is_sensitive_call(call("DisableKey"), off)
    assert is_sensitive_call(call("DisableKey"), DirectRules.from_mapping({"include": ["CreateRoute"]}))


def test_a_request_too_large_to_read_counts_as_naming_one_of_ours() -> None:
    flood = {"items": ["x"] * (MAX_SCANNED_VALUES + 10)}
    assert tamper_reason(call("UpdateSomething", flood)) is not None
