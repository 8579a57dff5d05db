"""The one list of read-like calls, and which failed calls are worth an alert."""

from __future__ import annotations

import pytest

from chalicelib.core.calls import can_change, is_access_denied, is_read_like


@pytest.mark.parametrize("name", [
    "GetBucketAcl", "ListRoles", "DescribeSecurityGroups", "HeadObject", "LookupEvents", "SearchResources",
    "SimulatePrincipalPolicy", "GenerateServiceLastAccessedDetails", "ValidatePolicy", "EstimateTemplateCost",
    "PreviewAgents", "TestEventPattern", "CheckMfa", "DecodeAuthorizationMessage", "PollForTask",
    "BatchGetItem", "FilterLogEvents", "StartPolicyGeneration", "CreateAccessPreview", "AssumeRole",
    "Decrypt", "Verify", "StartQuery", "DetectStackDrift", "ConsoleLogin",
])
def test_calls_that_only_read_or_sign_in_are_read_like(name: str) -> None:
    assert is_read_like(name, read_only=False)
    assert not can_change(name, False, None)


@pytest.mark.parametrize("name", [
    "PutBucketAcl", "AuthorizeSecurityGroupIngress", "CreateRole", "VerifyEmailIdentity", "SignUp",
    "StartInstances", "UpdateAssumeRolePolicy", "ExecuteStatement", "StartQueryExecution", "CheckoutLicenseX",
])
def test_calls_that_can_change_something_are_not(name: str) -> None:
    expected = name.startswith("Check")  # FORMAT.md: every name starting Check is read-like
    assert is_read_like(name) is expected


def test_failed_calls_and_readonly_flag_never_change_anything() -> None:
    assert not can_change("PutBucketAcl", False, "AccessDenied")
    assert not can_change("PutBucketAcl", True, None)
    assert not can_change("", False, None)
    assert can_change("PutBucketAcl", None, None)


@pytest.mark.parametrize(("code", "denied"), [
    ("AccessDenied", True), ("AccessDeniedException", True), ("UnauthorizedOperation", True),
    ("Client.UnauthorizedOperation", True), ("InvalidParameterValue", False), ("NoSuchBucket", False),
    ("ValidationException", False), (None, False), ("", False),
])
def test_only_access_denials_count_as_denied(code: str | None, denied: bool) -> None:
    assert is_access_denied(code) is denied


@pytest.mark.parametrize(("error", "alerts"), [
    (None, True), ("Client.UnauthorizedOperation", True), ("AccessDenied", True),
    ("InvalidPermission.Duplicate", False), ("InvalidGroup.NotFound", False),
])
def test_a_failed_sensitive_call_alerts_only_when_access_was_denied(error: str | None, alerts: bool) -> None:
    from chalicelib.core.rules import DirectRules, is_sensitive_call
    from chalicelib.parsing.cloudtrail import parse_record

    record = {"eventName": "AuthorizeSecurityGroupIngress", "eventSource": "ec2.amazonaws.com", "readOnly": False,
              "eventType": "AwsApiCall", "eventID": "e1", "userIdentity": {"type": "IAMUser",
                                                                          "arn": "arn:aws:iam::1:user/bob"}}
    if error:
        record["errorCode"] = error
    event = parse_record(record, "test")
    assert is_sensitive_call(event, DirectRules.from_mapping({})) is alerts


def test_direct_rules_treat_only_formats_five_prefixes_as_read_only() -> None:
    # FORMAT.md's api_call rules: a person simulating a policy is worth an alert (it matches *Policy*),
    # though the call never causes a configuration change.
    from chalicelib.core.rules import DirectRules, is_sensitive_call
    from chalicelib.parsing.cloudtrail import parse_record

    record = {"eventName": "SimulatePrincipalPolicy", "eventSource": "iam.amazonaws.com", "readOnly": False,
              "eventType": "AwsApiCall", "eventID": "e2", "userIdentity": {"type": "IAMUser",
                                                                          "arn": "arn:aws:iam::1:user/bob"}}
    assert is_sensitive_call(parse_record(record, "test"), DirectRules.from_mapping({}))
    assert not can_change("SimulatePrincipalPolicy", False, None)
    record["eventName"] = "GetPolicy"
    assert not is_sensitive_call(parse_record(record, "test"), DirectRules.from_mapping({}))
