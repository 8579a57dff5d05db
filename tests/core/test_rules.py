"""Direct-alert rules: sign-in classification, sensitive-call rules, trust, outcomes and their ids."""

from __future__ import annotations

import base64
import copy
import gzip
import json
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from seed_rules import SEED_001_RULES, SEED_002_RULES

from chalicelib.core.errors import ConfigurationError
from chalicelib.core.model import Principal, TrailEvent
from chalicelib.core.outcomes import API_CALL, CONSOLE_SIGNIN, Outcome
from chalicelib.core.rules import (
    DEFAULT_INCLUDE,
    DirectRules,
    classify_signin,
    direct_outcome,
    glob_matches,
    is_sensitive_call,
    outcome_id,
    signin_alert,
)
from chalicelib.core.settings import Settings
from chalicelib.parsing.cloudtrail import parse_record
from chalicelib.parsing.events import parse_payload

SHARED = Path(__file__).resolve().parents[3] / "shared"
NOW = datetime(2025, 3, 18, 9, 30, tzinfo=timezone.utc)
ACCOUNT = "111122223333"



# --- record builders ---------------------------------------------------------------------------


def iam_user(name: str = "nina", account: str = ACCOUNT) -> dict[str, Any]:
    return {
        "type": "IAMUser",
        "principalId": "AIDAJB6RIF2UPI465UWFL",
        "arn": f"arn:aws:iam::{account}:user/{name}",
        "accountId": account,
        "accessKeyId": "ASIAF5TV5A77LGBKN3OD",
        "userName": name,
    }


def root(account: str = ACCOUNT) -> dict[str, Any]:
    return {
        "type": "Root",
        "principalId": account,
        "arn": f"arn:aws:iam::{account}:root",
        "accountId": account,
    }


def assumed_role(role: str, session: str, account: str = ACCOUNT, path: str = "") -> dict[str, Any]:
    return {
        "type": "AssumedRole",
        "principalId": f"AROAWOWSVXWEM57INMB6V:{session}",
        "arn": f"arn:aws:sts::{account}:assumed-role/{role}/{session}",
        "accountId": account,
        "sessionContext": {
            "sessionIssuer": {
                "type": "Role",
                "principalId": "AROAWOWSVXWEM57INMB6V",
                "arn": f"arn:aws:iam::{account}:role/{path}{role}",
                "accountId": account,
                "userName": role,
            },
            "attributes": {"creationDate": "2025-03-18T08:00:00Z", "mfaAuthenticated": "false"},
        },
    }


def call(
    name: str,
    source: str = "ec2.amazonaws.com",
    identity: dict[str, Any] | None = None,
    event_id: str = "79fd2d2d-6ff9-4ddf-aad6-3dea347aedd6",
    **extra: Any,
) -> dict[str, Any]:
    record = {
        "eventVersion": "1.09",
        "userIdentity": identity if identity is not None else iam_user(),
        "eventTime": "2025-03-18T09:02:11Z",
        "eventSource": source,
        "eventName": name,
        "awsRegion": "us-west-2",
        "sourceIPAddress": "203.0.113.201",
        "userAgent": "aws-cli/2.15.30",
        "requestParameters": {},
        "responseElements": None,
        "requestID": "7a53bbc6-87d8-4894-9b48-02811a10989e",
        "eventID": event_id,
        "readOnly": name.startswith(("Get", "List", "Describe", "Head", "Lookup")),
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": ACCOUNT,
    }
    record.update(extra)
    return record


def signin(
    identity: dict[str, Any],
    result: str = "Success",
    mfa: str | None = "No",
    name: str = "ConsoleLogin",
    event_type: str = "AwsConsoleSignIn",
    event_id: str = "690de331-1674-4d30-b414-0597e75b043e",
    **extra: Any,
) -> dict[str, Any]:
    record = {
        "eventVersion": "1.08",
        "userIdentity": identity,
        "eventTime": "2025-03-18T08:02:13Z",
        "eventSource": "signin.amazonaws.com",
        "eventName": name,
        "awsRegion": "us-east-1",
        "sourceIPAddress": "192.0.2.9",
        "userAgent": "Mozilla/5.0",
        "requestParameters": None,
        "responseElements": {name: result} if result else None,
        "additionalEventData": {
            "LoginTo": "https://console.aws.amazon.com/console/home",
            "MobileVersion": "No",
        },
        "eventID": event_id,
        "readOnly": False,
        "eventType": event_type,
        "managementEvent": True,
        "recipientAccountId": ACCOUNT,
    }
    if mfa is not None:
        record["additionalEventData"]["MFAUsed"] = mfa
    record.update(extra)
    return record


def ev(record: dict[str, Any]) -> TrailEvent:
    parsed = parse_record(record, "test")
    assert isinstance(parsed, TrailEvent)
    return parsed


def shared_json(relative: str) -> Any:
    path = SHARED / relative
    if not path.exists():
        pytest.skip(f"{path} is not available")
    return json.loads(path.read_text(encoding="utf-8"))


# --- sign-in classification --------------------------------------------------------------------

HIDDEN_USER = {
    "type": "IAMUser",
    "accountId": ACCOUNT,
    "accessKeyId": "",
    "userName": "HIDDEN_DUE_TO_SECURITY_REASONS",
}
SSO_SESSION = assumed_role(
    "AWSReservedSSO_ReadOnlyAccess_91c0d7e2a4b3f815",
    "omar@example.com",
    path="aws-reserved/sso.amazonaws.com/",
)
IDENTITY_CENTER_USER = {
    "type": "IdentityCenterUser",
    "accountId": ACCOUNT,
    "arn": "",
    "onBehalfOf": {
        "userId": "94482488-3041-7026-18f3-be45837cd0e4",
        "identityStoreArn": "arn:aws:identitystore::111122223333:identitystore/d-9067230a1d",
    },
    "credentialId": "EXAMPLEVHULjJdTUdPJfofVa1sufHDoj7aYcOYcxFVllWR_Whr1fEXAMPLE",
}
FEDERATED_USER = {
    "type": "FederatedUser",
    "principalId": f"{ACCOUNT}:bob",
    "arn": f"arn:aws:sts::{ACCOUNT}:federated-user/bob",
    "accountId": ACCOUNT,
    "sessionContext": {
        "sessionIssuer": {
            "type": "IAMUser",
            "arn": f"arn:aws:iam::{ACCOUNT}:user/broker",
            "userName": "broker",
        }
    },
}


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        pytest.param(signin(root()), "root", id="root-success-no-mfa"),
        pytest.param(signin(root(), mfa="Yes"), "root", id="root-success-mfa"),
        pytest.param(
            signin(root(), result="Failure", errorMessage="Failed authentication"),
            "root",
            id="root-failure-root-wins",
        ),
        pytest.param(signin(iam_user()), "no_mfa", id="iam-user-no-mfa"),
        pytest.param(signin(iam_user(), mfa="Yes"), None, id="iam-user-mfa"),
        pytest.param(signin(iam_user(), mfa=None), None, id="iam-user-mfa-unknown"),
        pytest.param(
            signin(iam_user(), result="Failure", mfa="Yes", errorMessage="Failed authentication"),
            "failure",
            id="iam-user-failure-with-mfa",
        ),
        pytest.param(
            signin(HIDDEN_USER, result="", errorMessage="No username found in supplied account"),
            "failure",
            id="hidden-user-no-arn-error-message-only",
        ),
        pytest.param(
            signin(HIDDEN_USER, result="Failure", errorMessage="No username found in supplied account"),
            "failure",
            id="hidden-user-failure",
        ),
        pytest.param(
            signin(iam_user(), result="", errorCode="AccessDenied"), "failure", id="error-code-only"
        ),
        pytest.param(signin(SSO_SESSION), None, id="sso-assumed-role-mfa-no"),
        pytest.param(
            signin(SSO_SESSION, result="Failure", errorMessage="Failed authentication"),
            "failure",
            id="sso-failure",
        ),
        pytest.param(signin(IDENTITY_CENTER_USER), None, id="identity-center-user"),
        pytest.param(signin(FEDERATED_USER), None, id="federated-user"),
        pytest.param(
            signin(iam_user(), event_type="AwsConsoleSignin"), "no_mfa", id="doc-spelling-AwsConsoleSignin"
        ),
        pytest.param(signin(iam_user(), name="CheckMfa", mfa=None), None, id="check-mfa"),
        pytest.param(
            signin(assumed_role("Admin", "nina"), name="SwitchRole", mfa=None), None, id="switch-role"
        ),
        pytest.param(signin(assumed_role("Admin", "nina"), name="ExitRole", mfa=None), None, id="exit-role"),
        pytest.param(
            signin(root(), name="CheckMfa", mfa=None), None, id="root-check-mfa-is-a-step-of-its-login"
        ),
        pytest.param(
            signin(root(), name="PasswordRecoveryRequested", mfa=None), "root", id="root-password-recovery"
        ),
        pytest.param(
            call("CreateUser", "iam.amazonaws.com", root()), None, id="api-call-by-root-is-no-sign-in"
        ),
    ],
)
def test_classify_signin(record: dict[str, Any], expected: str | None) -> None:
    assert classify_signin(ev(record)) == expected


def test_classify_signin_doc_sample_with_lower_case_i() -> None:
    records = shared_json(
        "fixtures/cloudtrail_records/awsdocs_ct__consolelogin_iamuser_success_nomfa_records.json"
    )
    (record,) = records["Records"]
    assert record["eventType"] == "AwsConsoleSignin"
    assert classify_signin(ev(record)) == "no_mfa"


def test_classify_signin_on_a_bare_trail_event_without_raw_record() -> None:
    event = TrailEvent(
        source="test",
        event_id="e",
        event_name="ConsoleLogin",
        event_source="signin.amazonaws.com",
        event_time=None,
        account=ACCOUNT,
        region="us-east-1",
        read_only=False,
        error_code=None,
        principal=Principal(type="Root"),
        event_type="AwsConsoleSignIn",
    )
    assert classify_signin(event) == "root"


@pytest.mark.parametrize(
    ("signin_setting", "record", "expected"),
    [
        ({"root": False}, signin(root(), result="Failure", errorMessage="Failed authentication"), "failure"),
        ({"root": False}, signin(root()), None),
        ({"no_mfa": False}, signin(iam_user()), None),
        ({"failure": False}, signin(HIDDEN_USER, result="Failure", errorMessage="x"), None),
        (False, signin(root()), None),
        (True, signin(iam_user()), "no_mfa"),
    ],
)
def test_signin_options_enable_each_kind(
    signin_setting: Any, record: dict[str, Any], expected: str | None
) -> None:
    rules = DirectRules.from_mapping({"signin": signin_setting})
    assert signin_alert(ev(record), rules) == expected


# --- sensitive-call rules ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "source", "expected"),
    [
        ("CreateRoute", "ec2.amazonaws.com", True),
        ("CreateRouteTable", "ec2.amazonaws.com", False),  # CreateRoute is an exact name
        ("DeleteRoute", "ec2.amazonaws.com", True),
        ("ReplaceRoute", "ec2.amazonaws.com", True),
        ("ReplaceRouteTableAssociation", "ec2.amazonaws.com", False),
        ("CreateUser", "iam.amazonaws.com", True),
        ("DeleteUser", "iam.amazonaws.com", True),
        ("CreateAccessKey", "iam.amazonaws.com", False),
        ("AddUserToGroup", "iam.amazonaws.com", False),  # *User is a suffix
        ("AuthorizeSecurityGroupIngress", "ec2.amazonaws.com", True),
        ("CreateSecurityGroup", "ec2.amazonaws.com", True),
        ("DescribeSecurityGroups", "ec2.amazonaws.com", False),
        ("ApplySecurityGroupsToLoadBalancer", "elasticloadbalancing.amazonaws.com", True),
        ("PutBucketPolicy", "s3.amazonaws.com", True),
        ("GetBucketPolicy", "s3.amazonaws.com", False),
        ("AttachRolePolicy", "iam.amazonaws.com", True),
        ("CreateNatGateway", "ec2.amazonaws.com", True),
        ("CreateTransitGatewayRoute", "ec2.amazonaws.com", True),  # *Gateway* contains
        ("CreateVpcPeeringConnection", "ec2.amazonaws.com", True),
        ("ReplaceNetworkAclEntry", "ec2.amazonaws.com", True),
        ("StopLogging", "cloudtrail.amazonaws.com", True),
        ("StartLogging", "cloudtrail.amazonaws.com", False),
        ("DeleteTrail", "cloudtrail.amazonaws.com", True),
        ("UpdateTrail", "cloudtrail.amazonaws.com", True),
        ("StopConfigurationRecorder", "config.amazonaws.com", True),
        ("DeleteConfigurationRecorder", "config.amazonaws.com", True),
        ("DeleteDeliveryChannel", "config.amazonaws.com", True),
        ("RunInstances", "ec2.amazonaws.com", False),
        ("ListUsers", "iam.amazonaws.com", False),
        ("HeadBucket", "s3.amazonaws.com", False),
        ("LookupEvents", "cloudtrail.amazonaws.com", False),
        ("ConsoleLogin", "signin.amazonaws.com", False),
    ],
)
def test_default_sensitive_names(name: str, source: str, expected: bool) -> None:
    assert is_sensitive_call(ev(call(name, source)), DirectRules()) is expected


def test_read_only_names_never_match_even_when_the_flag_is_missing_or_false() -> None:
    for flag in (None, False):
        record = call("DescribeSecurityGroups", readOnly=flag)
        if flag is None:
            del record["readOnly"]
        assert not is_sensitive_call(ev(record), DirectRules.from_mapping({"include": ["*"]}))


def test_read_only_flag_wins_over_a_matching_name() -> None:
    assert not is_sensitive_call(ev(call("CreateUser", "iam.amazonaws.com", readOnly=True)), DirectRules())
    assert not is_sensitive_call(ev(call("CreateUser", "iam.amazonaws.com", readOnly="true")), DirectRules())


def test_failed_calls_match_like_successful_ones_unless_errors_are_excluded() -> None:
    denied = call(
        "AuthorizeSecurityGroupIngress",
        errorCode="Client.UnauthorizedOperation",
        errorMessage="You are not authorized to perform this operation.",
    )
    access_denied = call(
        "PutBucketPolicy", "s3.amazonaws.com", errorCode="AccessDenied", errorMessage="Access Denied"
    )
    assert is_sensitive_call(ev(denied), DirectRules())
    assert is_sensitive_call(ev(access_denied), DirectRules())
    no_errors = DirectRules.from_mapping({"include_errors": False})
    assert not is_sensitive_call(ev(denied), no_errors)
    assert not is_sensitive_call(ev(access_denied), no_errors)
    assert is_sensitive_call(ev(call("AuthorizeSecurityGroupIngress")), no_errors)


def test_exclude_globs_drop_names_the_include_globs_take() -> None:
    rules = DirectRules.from_mapping({"exclude": ["*SecurityGroupEgress", "PutBucketPolicy"]})
    assert not is_sensitive_call(ev(call("AuthorizeSecurityGroupEgress")), rules)
    assert not is_sensitive_call(ev(call("PutBucketPolicy", "s3.amazonaws.com")), rules)
    assert is_sensitive_call(ev(call("AuthorizeSecurityGroupIngress")), rules)


def test_identity_types_and_event_sources_narrow_the_rules() -> None:
    rules = DirectRules.from_mapping({"identity_types": ["IAMUser"], "event_sources": ["ec2.amazonaws.com"],
                                      "tamper": False})
    assert is_sensitive_call(ev(call("CreateRoute")), rules)
    assert not is_sensitive_call(ev(call("CreateRoute", identity=assumed_role("NetworkAdmin", "c"))), rules)
    assert not is_sensitive_call(ev(call("CreateRoute", identity=root())), rules)
    assert not is_sensitive_call(ev(call("CreateUser", "iam.amazonaws.com")), rules)
    no_identity = call("CreateRoute")
    del no_identity["userIdentity"]
    assert not is_sensitive_call(ev(no_identity), rules)


def test_the_filters_never_narrow_tamper_protection() -> None:
    rules = DirectRules.from_mapping({"identity_types": ["IAMUser"], "event_sources": ["ec2.amazonaws.com"],
                                      "include": ["CreateRoute"], "exclude": ["StopLogging"]})
    assert is_sensitive_call(ev(call("CreateRoute", identity=root())), rules), "a root write"
    assert is_sensitive_call(ev(call("StopLogging", "cloudtrail.amazonaws.com",
                                     identity=assumed_role("NetworkAdmin", "c"))), rules)
    assert not is_sensitive_call(ev(call("CreateRoute", identity=assumed_role("NetworkAdmin", "c"))), rules)


def test_glob_semantics() -> None:
    assert glob_matches("*User", "CreateUser")
    assert not glob_matches("*User", "CreateUserProfile")
    assert glob_matches("Create*Policy", "CreatePolicy")
    assert glob_matches("Create*Policy", "CreateBucketPolicy")
    assert not glob_matches("Create*Policy", "createpolicy")  # case-sensitive, like CloudTrail names
    assert not glob_matches("Create?oute", "CreateRoute")  # only '*' is special


# --- settings validation -----------------------------------------------------------------------


def test_defaults() -> None:
    assert DirectRules.from_mapping(None) == DirectRules.from_mapping({}) == DirectRules()
    rules = DirectRules()
    assert rules.include == DEFAULT_INCLUDE
    assert rules.exclude == ()
    assert rules.event_sources is None and rules.identity_types is None
    assert rules.include_errors is True
    assert rules.signin_enabled == ("root", "failure", "no_mfa")


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        ({"includes": ["*"]}, "includes"),
        ({"include": "CreateUser"}, "direct_rules.include"),
        ({"include": ["Create User"]}, "direct_rules.include"),
        ({"include": ["Get*"]}, "read-only"),
        ({"include": ["DescribeSecurityGroups"]}, "read-only"),
        ({"include": ["ConsoleLogin"]}, "direct_rules.signin"),
        ({"exclude": [3]}, "direct_rules.exclude"),
        ({"event_sources": ["ec2"]}, "direct_rules.event_sources"),
        ({"event_sources": []}, "direct_rules.event_sources"),
        ({"identity_types": ["IamUser"]}, "direct_rules.identity_types"),
        ({"include_errors": "yes"}, "direct_rules.include_errors"),
        ({"signin": "no"}, "direct_rules.signin"),
        ({"signin": {"rot": True}}, "rot"),
        ({"signin": {"root": "off"}}, "direct_rules.signin.root"),
    ],
)
def test_bad_settings_fail_loudly_naming_the_key(raw: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigurationError, match=named.replace(".", r"\.")):
        DirectRules.from_mapping(raw)


def test_not_a_mapping_fails() -> None:
    with pytest.raises(ConfigurationError, match="direct_rules"):
        DirectRules.from_mapping(["*"])  # type: ignore[arg-type]


def test_globs_are_normalised() -> None:
    rules = DirectRules.from_mapping({"include": ["**Policy**", "*Policy*", "CreateRoute"], "$comment": "x"})
    assert rules.include == ("*Policy*", "CreateRoute")


def test_empty_include_means_no_api_call_alerts() -> None:
    rules = DirectRules.from_mapping({"include": []})
    assert not is_sensitive_call(ev(call("CreateUser", "iam.amazonaws.com")), rules)


# --- seeds 001 and 002 -------------------------------------------------------------------------


def seed_rules(raw: dict[str, Any]) -> DirectRules:
    return DirectRules.from_mapping(Settings.from_dict({"direct_rules": raw}).direct_rules)


def test_seed_001_iam_users_on_five_services() -> None:
    rules = seed_rules(SEED_001_RULES)
    assert is_sensitive_call(ev(call("CreateBucket", "s3.amazonaws.com")), rules)
    assert is_sensitive_call(ev(call("RunInstances")), rules)
    assert is_sensitive_call(ev(call("CreateDBInstance", "rds.amazonaws.com")), rules)
    assert not is_sensitive_call(ev(call("RunInstances", identity=assumed_role("Admin", "nina"))), rules)
    assert not is_sensitive_call(ev(call("CreateFunction20150331", "lambda.amazonaws.com")), rules)
    assert not is_sensitive_call(ev(call("DescribeInstances")), rules)  # read-only never alerts
    # Sign-ins stay with the sign-in rule: root alerts whatever identity_types say.
    assert signin_alert(ev(signin(root())), rules) == "root"
    assert not is_sensitive_call(ev(signin(iam_user())), rules)


def test_seed_002_hidekuro_list_and_failed_sign_ins() -> None:
    rules = seed_rules(SEED_002_RULES)
    for name, source in [
        ("AuthorizeSecurityGroupIngress", "ec2.amazonaws.com"),
        ("PutBucketPolicy", "s3.amazonaws.com"),
        ("CreateNatGateway", "ec2.amazonaws.com"),
        ("DeleteUser", "iam.amazonaws.com"),
        ("CreateVpc", "ec2.amazonaws.com"),
        ("CreateNetworkAclEntry", "ec2.amazonaws.com"),
        ("CreateRoute", "ec2.amazonaws.com"),
        ("StopLogging", "cloudtrail.amazonaws.com"),
    ]:
        assert is_sensitive_call(ev(call(name, source)), rules), name
    for name in ("CreateTransitGatewayRoute", "DeleteRoute", "DescribeVpcs"):
        assert not is_sensitive_call(ev(call(name)), rules), name
    assert is_sensitive_call(ev(call("DeleteTrail")), rules), "not in seed 002's list, but tamper protection"
    assert (
        signin_alert(ev(signin(iam_user(), result="Failure", errorMessage="Failed authentication")), rules)
        == "failure"
    )
    assert (
        signin_alert(ev(signin(root(), result="Failure", errorMessage="Failed authentication")), rules)
        == "failure"
    )
    assert signin_alert(ev(signin(root())), rules) is None
    assert signin_alert(ev(signin(iam_user())), rules) is None


# --- outcomes, trust and ids -------------------------------------------------------------------

TERRAFORM_TRUST = Settings.from_dict({"trusted_principals": [f"arn:aws:iam::{ACCOUNT}:role/terraform-*"]})


def test_trusted_role_session_named_anything_is_suppressed() -> None:
    record = call("CreateRoute", identity=assumed_role("terraform-network", "aws-go-sdk-1725376752631404304"))
    assert direct_outcome(ev(record), TERRAFORM_TRUST, DirectRules(), NOW) is None
    record = call("CreateRoute", identity=assumed_role("terraform-network", "alice"))
    assert direct_outcome(ev(record), TERRAFORM_TRUST, DirectRules(), NOW) is None


def test_untrusted_role_session_named_terraform_still_alerts() -> None:
    record = call(
        "ReplaceRoute",
        identity=assumed_role("NetworkAdmin", "terraform"),
        event_id="8fbb6798-4d76-4d19-be65-74711b1529ab",
        requestParameters={
            "routeTableId": "rtb-091287e7d7756da16",
            "destinationCidrBlock": "0.0.0.0/0",
            "gatewayId": "igw-07c37c53e6e016760",
        },
    )
    outcome = direct_outcome(ev(record), TERRAFORM_TRUST, DirectRules(), NOW)
    assert outcome is not None
    assert outcome.kind == API_CALL
    assert outcome.principal_arn == f"arn:aws:sts::{ACCOUNT}:assumed-role/NetworkAdmin/terraform"
    assert outcome.event_ids == ("8fbb6798-4d76-4d19-be65-74711b1529ab",)
    assert outcome.event_name == "ReplaceRoute"
    assert (outcome.resource_type, outcome.resource_id) == ("AWS::EC2::RouteTable", "rtb-091287e7d7756da16")


def test_aws_service_calls_are_suppressed_unless_services_are_not_trusted() -> None:
    via_cloudformation = dict(iam_user(), invokedBy="cloudformation.amazonaws.com")
    record = call("CreateSecurityGroup", identity=via_cloudformation)
    assert direct_outcome(ev(record), Settings(), DirectRules(), NOW) is None
    service = {"type": "AWSService", "invokedBy": "autoscaling.amazonaws.com"}
    assert (
        direct_outcome(ev(call("CreateSecurityGroup", identity=service)), Settings(), DirectRules(), NOW)
        is None
    )
    untrusting = Settings.from_dict({"trust_aws_services": False})
    outcome = direct_outcome(ev(record), untrusting, DirectRules(), NOW)
    assert outcome is not None and outcome.kind == API_CALL


def test_console_front_door_is_a_person() -> None:
    record = call(
        "AuthorizeSecurityGroupIngress", identity=dict(iam_user(), invokedBy="signin.amazonaws.com")
    )
    assert direct_outcome(ev(record), Settings(), DirectRules(), NOW) is not None


def test_sign_ins_are_not_suppressed_by_trust() -> None:
    trusted = Settings.from_dict({"trusted_principals": [f"arn:aws:iam::{ACCOUNT}:user/nina"]})
    outcome = direct_outcome(ev(signin(iam_user("nina"))), trusted, DirectRules(), NOW)
    assert outcome is not None
    assert (outcome.kind, outcome.signin) == (CONSOLE_SIGNIN, "no_mfa")


def test_unmatched_and_quiet_records_give_no_outcome() -> None:
    for record in (
        call("RunInstances"),
        call("DescribeSecurityGroups"),
        signin(iam_user(), mfa="Yes"),
        signin(SSO_SESSION),
        signin(iam_user(), name="CheckMfa", mfa=None),
    ):
        assert direct_outcome(ev(record), Settings(), DirectRules(), NOW) is None


def test_api_call_outcome_is_filled_for_rendering() -> None:
    params = {
        "groupId": "sg-08845592ad8ac519b",
        "ipPermissions": {
            "items": [
                {
                    "ipProtocol": "tcp",
                    "fromPort": 22,
                    "toPort": 22,
                    "ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]},
                }
            ]
        },
    }
    record = call(
        "AuthorizeSecurityGroupIngress",
        requestParameters=params,
        errorCode="AccessDenied",
        errorMessage="denied",
    )
    outcome = direct_outcome(ev(record), Settings(), DirectRules(), NOW)
    assert outcome is not None
    assert outcome.outcome_id == "ct:79fd2d2d-6ff9-4ddf-aad6-3dea347aedd6"
    assert outcome.at == "2025-03-18T09:30:00Z"
    assert (outcome.account, outcome.region, outcome.partition) == (ACCOUNT, "us-west-2", "aws")
    assert outcome.principal is not None and outcome.principal.type == "IAMUser"
    assert (outcome.resource_type, outcome.resource_id) == ("AWS::EC2::SecurityGroup", "sg-08845592ad8ac519b")
    (summary,) = outcome.events
    assert summary.request_parameters == params
    assert (summary.error_code, summary.error_message) == ("AccessDenied", "denied")
    assert (summary.source_ip, summary.user_agent) == ("203.0.113.201", "aws-cli/2.15.30")
    assert (summary.event_time, summary.event_source) == ("2025-03-18T09:02:11Z", "ec2.amazonaws.com")
    assert Outcome.from_json(json.loads(json.dumps(outcome.to_json()))) == outcome


@pytest.mark.parametrize(
    ("name", "source", "params", "expected"),
    [
        (
            "PutBucketPolicy",
            "s3.amazonaws.com",
            {"bucketName": "b1"},
            ("AWS::S3::Bucket", "resource_id", "b1"),
        ),
        (
            "CreateUser",
            "iam.amazonaws.com",
            {"userName": "svc-export"},
            ("AWS::IAM::User", "resource_name", "svc-export"),
        ),
        (
            "PutRolePolicy",
            "iam.amazonaws.com",
            {"roleName": "app", "policyName": "p"},
            ("AWS::IAM::Role", "resource_name", "app"),
        ),
        (
            "CreatePolicyVersion",
            "iam.amazonaws.com",
            {"policyArn": "arn:aws:iam::111122223333:policy/p"},
            ("AWS::IAM::Policy", "resource_arn", "arn:aws:iam::111122223333:policy/p"),
        ),
        (
            "StopLogging",
            "cloudtrail.amazonaws.com",
            {"name": "arn:aws:cloudtrail:us-east-1:111122223333:trail/mgmt"},
            ("AWS::CloudTrail::Trail", "resource_name", "mgmt"),
        ),
        (
            "DeleteTrail",
            "cloudtrail.amazonaws.com",
            {"name": "mgmt"},
            ("AWS::CloudTrail::Trail", "resource_name", "mgmt"),
        ),
        (
            "CreateNetworkAclEntry",
            "ec2.amazonaws.com",
            {"networkAclId": "acl-1"},
            ("AWS::EC2::NetworkAcl", "resource_id", "acl-1"),
        ),
    ],
)
def test_evident_resources(
    name: str, source: str, params: dict[str, Any], expected: tuple[str, str, str]
) -> None:
    outcome = direct_outcome(ev(call(name, source, requestParameters=params)), Settings(), DirectRules(), NOW)
    assert outcome is not None
    resource_type, field, value = expected
    assert outcome.resource_type == resource_type
    assert getattr(outcome, field) == value


def test_created_security_group_is_named_from_the_response() -> None:
    record = call(
        "CreateSecurityGroup",
        requestParameters={"groupName": "web", "vpcId": "vpc-1"},
        responseElements={"_return": True, "groupId": "sg-0abc"},
    )
    outcome = direct_outcome(ev(record), Settings(), DirectRules(), NOW)
    assert outcome is not None
    assert (outcome.resource_type, outcome.resource_id) == ("AWS::EC2::SecurityGroup", "sg-0abc")


def test_console_signin_outcome_with_hidden_user() -> None:
    record = signin(
        HIDDEN_USER,
        result="Failure",
        errorMessage="No username found in supplied account",
        event_id="1004a2a2-cf4d-445f-9e9b-36c6366edd3d",
    )
    outcome = direct_outcome(ev(record), Settings(), DirectRules(), NOW)
    assert outcome is not None
    assert (outcome.kind, outcome.signin, outcome.principal_arn) == (CONSOLE_SIGNIN, "failure", None)
    assert outcome.event_ids == ("1004a2a2-cf4d-445f-9e9b-36c6366edd3d",)
    assert outcome.extra == {
        "result": "Failure",
        "mfa_used": "no",
        "user_name": "HIDDEN_DUE_TO_SECURITY_REASONS",
    }
    assert outcome.events[0].error_message == "No username found in supplied account"


def test_identity_center_empty_arn_is_null() -> None:
    outcome = direct_outcome(
        ev(signin(IDENTITY_CENTER_USER, result="Failure", errorMessage="x")), Settings(), DirectRules(), NOW
    )
    assert outcome is not None and outcome.principal_arn is None


def test_partition_comes_from_the_arn() -> None:
    record = call("CreateUser", "iam.amazonaws.com", identity=iam_user(), awsRegion="us-gov-west-1")
    record["userIdentity"]["arn"] = "arn:aws-us-gov:iam::111122223333:user/nina"
    outcome = direct_outcome(ev(record), Settings(), DirectRules(), NOW)
    assert outcome is not None and outcome.partition == "aws-us-gov"


def _eventbridge(record: dict[str, Any], detail_type: str = "AWS API Call via CloudTrail") -> dict[str, Any]:
    return {
        "version": "0",
        "id": "eaf70191-7da4-46a5-9d75-ac1f444319a6",
        "detail-type": detail_type,
        "source": "aws." + record["eventSource"].split(".")[0],
        "account": ACCOUNT,
        "time": record["eventTime"],
        "region": record["awsRegion"],
        "resources": [],
        "detail": record,
    }


def _awslogs(*records: dict[str, Any]) -> dict[str, Any]:
    data = {
        "messageType": "DATA_MESSAGE",
        "owner": ACCOUNT,
        "logGroup": "aws-cloudtrail-logs",
        "logStream": f"{ACCOUNT}_CloudTrail_us-west-2",
        "subscriptionFilters": ["mcd"],
        "logEvents": [
            {"id": str(i), "timestamp": 1742288531000, "message": json.dumps(r)}
            for i, r in enumerate(records)
        ],
    }
    return {"awslogs": {"data": base64.b64encode(gzip.compress(json.dumps(data).encode())).decode()}}


def _outcomes(payload: dict[str, Any], via: str) -> list[Outcome]:
    result = []
    for item in parse_payload(payload, via):
        if isinstance(item, TrailEvent):
            outcome = direct_outcome(item, Settings(), DirectRules(), NOW)
            if outcome is not None:
                result.append(outcome)
    return result


@pytest.mark.parametrize(
    "event_id",
    ["79fd2d2d-6ff9-4ddf-aad6-3dea347aedd6", None, "redacted", "EXAMPLE8-90ab-cdef-fedc-ba987EXAMPLE"],
)
def test_same_event_by_both_paths_and_twice_gets_one_id(event_id: str | None) -> None:
    record = call("AuthorizeSecurityGroupIngress", requestParameters={"groupId": "sg-1"})
    if event_id is None:
        del record["eventID"]
    else:
        record["eventID"] = event_id
    by_eventbridge = _outcomes(_eventbridge(copy.deepcopy(record)), "eventbridge")
    by_logs = _outcomes(_awslogs(copy.deepcopy(record)), "cloudwatch_logs")
    again = _outcomes(_eventbridge(copy.deepcopy(record)), "eventbridge")
    assert len(by_eventbridge) == len(by_logs) == len(again) == 1
    assert by_eventbridge[0].outcome_id == by_logs[0].outcome_id == again[0].outcome_id


def test_records_without_real_ids_still_get_distinct_ids() -> None:
    first = call(
        "CreateUser",
        "iam.amazonaws.com",
        event_id="EXAMPLE8-90ab-cdef-fedc-ba987EXAMPLE",
        requestParameters={"userName": "a"},
    )
    second = call(
        "CreateUser",
        "iam.amazonaws.com",
        event_id="EXAMPLE8-90ab-cdef-fedc-ba987EXAMPLE",
        requestParameters={"userName": "b"},
    )
    assert outcome_id(ev(first)) != outcome_id(ev(second))
    del first["eventID"], second["eventID"]
    assert outcome_id(ev(first)) != outcome_id(ev(second))
    assert outcome_id(ev(first)).startswith("ct:")


def test_sign_in_by_eventbridge_and_logs_gets_one_id() -> None:
    record = signin(root())
    by_eventbridge = _outcomes(_eventbridge(record, "AWS Console Sign In via CloudTrail"), "eventbridge")
    by_logs = _outcomes(_awslogs(record), "cloudwatch_logs")
    assert (
        [o.outcome_id for o in by_eventbridge]
        == [o.outcome_id for o in by_logs]
        == ["ct:690de331-1674-4d30-b414-0597e75b043e"]
    )


# --- public scenarios: the direct outcomes expected there --------------------------------------


def _scenario(prefix: str) -> dict[str, Any]:
    if not (SHARED / "scenarios").exists():
        pytest.skip("shared scenarios are not available")
    (path,) = sorted((SHARED / "scenarios").glob(f"{prefix}*.json"))
    return json.loads(path.read_text(encoding="utf-8"))


def _direct_outcomes_of(scenario: dict[str, Any]) -> list[dict[str, Any]]:
    settings = Settings.from_dict(scenario["settings"])
    rules = DirectRules.from_mapping(settings.direct_rules)
    seen: dict[str, dict[str, Any]] = {}
    for delivery in scenario["deliveries"]:
        if delivery["via"] == "eventbridge":
            payload, via = delivery["event"], "eventbridge"
        elif delivery["via"] == "cloudwatch_logs":
            payload, via = delivery["logs"], "cloudwatch_logs"
        else:
            continue
        for item in parse_payload(payload, via):
            if isinstance(item, TrailEvent):
                outcome = direct_outcome(item, settings, rules, NOW)
                if outcome is not None:
                    seen.setdefault(outcome.outcome_id, _essentials(outcome.to_json()))
    return sorted(seen.values(), key=json.dumps)


def _essentials(outcome: dict[str, Any]) -> dict[str, Any]:
    keys = {
        "console_signin": ("kind", "principal_arn", "event_ids", "signin"),
        "api_call": ("kind", "principal_arn", "event_ids", "event_name"),
    }[outcome["kind"]]
    return {k: list(outcome[k]) if k == "event_ids" else outcome[k] for k in keys}


def test_public_10_console_signins_and_cloudwatch_logs_batches() -> None:
    scenario = _scenario("public-10")
    expected = sorted(
        (
            _essentials(o)
            for o in scenario["expect"]["outcomes"]
            if o["kind"] in ("console_signin", "api_call")
        ),
        key=json.dumps,
    )
    assert _direct_outcomes_of(scenario) == expected


def test_public_03_only_the_untrusted_replace_route_alerts() -> None:
    scenario = _scenario("public-03")
    expected = sorted(
        (
            _essentials(o)
            for o in scenario["expect"]["outcomes"]
            if o["kind"] in ("console_signin", "api_call")
        ),
        key=json.dumps,
    )
    assert _direct_outcomes_of(scenario) == expected
    assert [o["event_name"] for o in expected] == ["ReplaceRoute"]


# --- the shared public samples (formerly test_direct_fixtures.py) -------------------------------

FIXTURES = SHARED / "fixtures"
FIXTURES_NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)

EXPECTED_FROM_FIXTURES = {
    "cloudtrail_lookup/awscli__lookup_events_consolelogin_assumedrole.json": [None],  # federated: MFA at the IdP
    "cloudtrail_records/awsdocs_ct__consolelogin_iamuser_success_nomfa_records.json": [("console_signin", "no_mfa")],
    "cloudtrail_records/awsdocs_iam__assumedrole_role_chaining_sourceidentity_tags.json": [None],  # read-only STS
    "cloudtrail_records/awsdocs_iam__assumerole_cross_account_caller_iamuser.json": [None],
    "cloudtrail_records/stratus__iamuser_authorize_sg_ingress_port22_anonymized.json": [
        ("api_call", "AuthorizeSecurityGroupIngress")],
    "cloudwatch_logs/hidekuro__awslogs_event_gzip_cloudtrail_deleteuser.json": [("api_call", "DeleteUser")],
    # CreateBucket matches no name, but the root user made it: tamper protection reports every root write
    "eventbridge/awsdocs_cwe__api_call_s3_create_bucket_root.json": [("api_call", "CreateBucket")],
    "eventbridge/awsdocs_cwe__console_signin_root_no_version_field.json": [("console_signin", "root")],
}


@pytest.mark.skipif(not FIXTURES.is_dir(), reason="../shared/fixtures is not beside the clone")
@pytest.mark.parametrize("name", sorted(EXPECTED_FROM_FIXTURES))
def test_shared_samples_give_the_right_direct_outcome(name: str) -> None:
    events = [i for i in parse_payload(json.loads((FIXTURES / name).read_text()), name) if isinstance(i, TrailEvent)]
    outcomes = [direct_outcome(e, Settings(), DirectRules.from_mapping(None), FIXTURES_NOW) for e in events]
    got = [None if o is None else (o.kind, o.signin or o.event_name) for o in outcomes]
    assert got == EXPECTED_FROM_FIXTURES[name]


# --- the rules read the typed record only ------------------------------------------------------


def bare_signin(**fields: Any) -> TrailEvent:
    """A sign-in built without the parser, with a raw record that says the opposite of every typed field."""
    contrary = {"responseElements": {"ConsoleLogin": "Failure"}, "additionalEventData": {"MFAUsed": "No"},
                "errorCode": "AccessDenied", "errorMessage": "x", "readOnly": True, "eventType": "AwsApiCall",
                "userIdentity": {"type": "Root", "userName": "someone-else"}, "recipientAccountId": "999999999999"}
    values: dict[str, Any] = {
        "source": "test", "event_id": "9a6e9a2c-6f1d-4d6e-9b0a-1c2d3e4f5a6b", "event_name": "ConsoleLogin",
        "event_source": "signin.amazonaws.com", "event_time": None, "account": ACCOUNT, "region": "us-east-1",
        "read_only": False, "error_code": None, "event_type": "AwsConsoleSignIn",
        "principal": Principal(type="IAMUser", user_name="nina"), "console_login": "Success", "mfa_used": True,
        "raw": contrary,
    }
    values.update(fields)
    return TrailEvent(**values)


def test_sign_in_rules_read_the_typed_fields_not_the_raw_record() -> None:
    assert classify_signin(bare_signin()) is None
    assert classify_signin(bare_signin(mfa_used=False)) == "no_mfa"
    assert classify_signin(bare_signin(mfa_used=None)) is None
    assert classify_signin(bare_signin(console_login=" FAILURE ")) == "failure"
    assert classify_signin(bare_signin(error_message="Failed authentication")) == "failure"
    assert classify_signin(bare_signin(principal=Principal(type="Root"))) == "root"


def test_sign_in_outcome_extra_comes_from_the_typed_fields() -> None:
    outcome = direct_outcome(bare_signin(mfa_used=False), Settings(), DirectRules(), NOW)
    assert outcome is not None
    assert outcome.extra == {"result": "Success", "mfa_used": "no", "user_name": "nina"}
    assert outcome.account == ACCOUNT


def test_sensitive_call_rules_read_the_typed_fields_not_the_raw_record() -> None:
    call_event = bare_signin(event_name="CreateUser", event_source="iam.amazonaws.com", event_type="AwsApiCall",
                             console_login=None, mfa_used=None)
    assert is_sensitive_call(call_event, DirectRules())
    assert not is_sensitive_call(replace(call_event, read_only=True), DirectRules())
    assert is_sensitive_call(replace(call_event, error_code="AccessDenied"), DirectRules())
    assert not is_sensitive_call(replace(call_event, error_code="ValidationError"), DirectRules())


def test_outcome_id_without_a_guid_or_a_parser_fingerprint_is_still_deterministic() -> None:
    event = bare_signin(event_id="redacted")
    assert event.fingerprint is None
    assert outcome_id(event) == outcome_id(bare_signin(event_id="redacted"))
    assert outcome_id(event).startswith("ct:redacted:")
    assert outcome_id(event) != outcome_id(bare_signin(event_id="redacted", region="eu-west-1"))


def test_outcome_partition_from_the_caller_then_the_region() -> None:
    event = bare_signin(principal=Principal(type="IAMUser", arn="arn:aws-cn:iam::1:user/li"), region="us-gov-west-1")
    assert direct_outcome(replace(event, mfa_used=False), Settings(), DirectRules(), NOW).partition == "aws-cn"
    for region, partition in (("us-gov-west-1", "aws-us-gov"), ("cn-north-1", "aws-cn"), ("us-isob-east-1",
                              "aws-iso-b"), ("eu-west-1", "aws"), (None, "aws")):
        outcome = direct_outcome(bare_signin(mfa_used=False, region=region), Settings(), DirectRules(), NOW)
        assert outcome is not None and outcome.partition == partition
