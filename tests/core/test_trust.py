"""Trust decisions (``chalicelib.core.trust``): trusted principals, AWS services, and what never earns trust.

Principals are built from ``userIdentity`` shapes through ``resolve_principal``, the way the detector
sees them, so these tests also pin which identity fields trust is decided on.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.core import trust
from chalicelib.core.model import Principal
from chalicelib.parsing.cloudtrail import resolve_principal

ACCT = "123456789012"
OTHER = "210987654321"


def role_session(role: str, session: str, *, path: str = "/", partition: str = "aws", account: str = ACCT,
                 issuer: bool = True, invoked_by: str | None = None) -> Principal:
    identity: dict[str, Any] = {
        "type": "AssumedRole",
        "principalId": f"AROAEXAMPLEID1234567:{session}",
        "arn": f"arn:{partition}:sts::{account}:assumed-role/{role}/{session}",
        "accountId": account,
        "accessKeyId": "ASIAEXAMPLEKEY123456",
    }
    if issuer:
        identity["sessionContext"] = {
            "sessionIssuer": {"type": "Role", "principalId": "AROAEXAMPLEID1234567",
                              "arn": f"arn:{partition}:iam::{account}:role{path}{role}", "accountId": account,
                              "userName": role},
            "webIdFederationData": {},
            "attributes": {"creationDate": "2025-01-01T00:00:00Z", "mfaAuthenticated": "false"},
        }
    if invoked_by:
        identity["invokedBy"] = invoked_by
    return resolve_principal(identity)


def iam_user(name: str, *, partition: str = "aws", account: str = ACCT, invoked_by: str | None = None) -> Principal:
    identity = {"type": "IAMUser", "principalId": "AIDAEXAMPLEID1234567", "accountId": account,
                "arn": f"arn:{partition}:iam::{account}:user/{name}", "userName": name}
    if invoked_by:
        identity["invokedBy"] = invoked_by
    return resolve_principal(identity)


def root(account: str = ACCT) -> Principal:
    return resolve_principal({"type": "Root", "principalId": account, "arn": f"arn:aws:iam::{account}:root",
                              "accountId": account})


def verdict(principal: Principal, *patterns: str, services: bool = True) -> str | None:
    return trust.verdict(principal, tuple(patterns), services)


# --- roles ---------------------------------------------------------------------------------------------------


def test_role_arn_trusts_every_session_of_that_role_whatever_the_session_name():
    pattern = f"arn:aws:iam::{ACCT}:role/github-actions-terraform"
    for session in ("gh-9481726354-1", "aws-go-sdk-1725376752631404304", "priya@example.com"):
        assert verdict(role_session("github-actions-terraform", session), pattern) == trust.TRUSTED


def test_star_matches_any_run_of_characters():
    pattern = f"arn:aws:iam::{ACCT}:role/terraform-*"
    assert verdict(role_session("terraform-network", "s"), pattern) == trust.TRUSTED
    assert verdict(role_session("terraform-", "s"), pattern) == trust.TRUSTED
    assert verdict(role_session("terraform", "s"), pattern) is None
    assert verdict(role_session("my-terraform-x", "s"), pattern) is None


def test_star_never_crosses_a_slash():
    # role/terraform-* must not trust the role mallory-admin that someone put under the path /terraform-x/.
    pattern = f"arn:aws:iam::{ACCT}:role/terraform-*"
    assert verdict(role_session("mallory-admin", "s", path="/terraform-x/"), pattern) is None
    assert verdict(role_session("terraform-ci", "s"), pattern) == trust.TRUSTED
    assert verdict(role_session("terraform-apply", "s", path="/ci/deploy/"),
                   f"arn:aws:iam::{ACCT}:role/*terraform*") is None


def test_star_in_a_path_pattern_takes_the_roles_directly_under_that_path():
    pattern = f"arn:aws:iam::{ACCT}:role/ci/*"
    assert verdict(role_session("terraform-apply", "s", path="/ci/"), pattern) == trust.TRUSTED
    assert verdict(role_session("deployer", "s", path="/ci/"), pattern) == trust.TRUSTED
    assert verdict(role_session("mallory-admin", "s", path="/ci/people/"), pattern) is None
    assert verdict(role_session("ci", "s"), pattern) is None
    assert verdict(role_session("terraform-apply", "s", path="/ci-x/"), pattern) is None


def test_star_never_crosses_a_colon():
    # An account "*" takes one account id, not "123:role/x" pieces of another ARN shape.
    pattern = "arn:aws:iam::*:role/OrganizationAccountAccessRole"
    assert verdict(role_session("OrganizationAccountAccessRole", "s", account=OTHER), pattern) == trust.TRUSTED
    assert trust._compile(f"arn:aws:iam::{ACCT}:user/ci-*").match(f"arn:aws:iam::{ACCT}:user/ci-x:y") is None


_SEGMENT = st.text(alphabet="abcXYZ09+=,.@_-", min_size=1, max_size=8)


@settings(max_examples=200, deadline=None)
@given(prefix=st.text(alphabet="abc-", max_size=4), path=st.lists(_SEGMENT, min_size=1, max_size=3),
       name=_SEGMENT)
def test_property_a_star_pattern_without_a_path_never_trusts_a_role_with_a_path(
        prefix: str, path: list[str], name: str):
    principal = role_session(name, "s", path="/" + "/".join(path) + "/")
    for pattern in (f"arn:aws:iam::{ACCT}:role/{prefix}*", f"arn:aws:iam::{ACCT}:role/*{prefix}",
                    f"arn:aws:iam::{ACCT}:role/{prefix}*{name}"):
        assert verdict(principal, pattern) is None


@settings(max_examples=200, deadline=None)
@given(path=st.lists(_SEGMENT, max_size=3), name=_SEGMENT, cut=st.integers(1, 8))
def test_property_a_star_in_the_name_trusts_the_role_on_that_path_only(path: list[str], name: str, cut: int):
    role_path = "/" + "".join(p + "/" for p in path)
    pattern = f"arn:aws:iam::{ACCT}:role{role_path}{name[:cut]}*"
    assert verdict(role_session(name, "s", path=role_path), pattern) == trust.TRUSTED
    assert verdict(role_session(name, "s", path=role_path + "deeper/"), pattern) is None
    if path:
        assert verdict(role_session(name, "s", path="/" + "".join(p + "/" for p in path[1:])), pattern) is None


def test_pattern_characters_other_than_star_are_literal():
    pattern = f"arn:aws:iam::{ACCT}:role/app.deployer"
    assert verdict(role_session("app.deployer", "s"), pattern) == trust.TRUSTED
    assert verdict(role_session("appXdeployer", "s"), pattern) is None
    assert verdict(role_session("app.deployer+x", "s"), f"arn:aws:iam::{ACCT}:role/app.deployer+") is None


def test_role_with_a_path_is_matched_on_the_session_issuer_not_the_session_arn():
    # The session ARN (assumed-role/terraform-apply/...) hides the path; sessionIssuer.arn carries it.
    principal = role_session("terraform-apply", "aws-go-sdk-1730212171884467452", path="/ci/")
    assert principal.arn == f"arn:aws:sts::{ACCT}:assumed-role/terraform-apply/aws-go-sdk-1730212171884467452"
    assert principal.issuer_arn == f"arn:aws:iam::{ACCT}:role/ci/terraform-apply"
    assert verdict(principal, f"arn:aws:iam::{ACCT}:role/ci/terraform-apply") == trust.TRUSTED


def test_a_different_path_is_a_different_role():
    principal = role_session("terraform-sandbox", "s", path="/sandbox/")
    assert verdict(principal, f"arn:aws:iam::{ACCT}:role/platform/terraform-*") is None
    assert verdict(role_session("terraform-net", "s", path="/platform/"),
                   f"arn:aws:iam::{ACCT}:role/platform/terraform-*") == trust.TRUSTED


def test_a_pattern_without_the_path_does_not_name_a_role_that_has_one():
    principal = role_session("terraform-apply", "s", path="/ci/")
    assert verdict(principal, f"arn:aws:iam::{ACCT}:role/terraform-apply") is None


def test_session_name_never_earns_trust():
    # An attacker's session of an untrusted role, named like the trusted role or like "terraform".
    for session in ("terraform", "terraform-network", "github-actions-terraform", "aws-go-sdk-1725376752631404304"):
        principal = role_session("NetworkAdmin", session)
        assert verdict(principal, f"arn:aws:iam::{ACCT}:role/terraform-*",
                       f"arn:aws:iam::{ACCT}:role/github-actions-terraform") is None


def test_role_named_like_a_trusted_role_in_another_account_is_not_trusted():
    principal = role_session("terraform-apply", "s", account=OTHER)
    assert verdict(principal, f"arn:aws:iam::{ACCT}:role/terraform-apply") is None


def test_missing_session_issuer_falls_back_to_the_role_in_the_session_arn():
    principal = role_session("terraform-apply", "build-42", issuer=False)
    assert principal.issuer_arn is None
    assert verdict(principal, f"arn:aws:iam::{ACCT}:role/terraform-apply") == trust.TRUSTED
    assert verdict(principal, f"arn:aws:iam::{ACCT}:role/terraform-*") == trust.TRUSTED
    # Role names are unique within an account whatever the path: a path pattern still names this role.
    assert verdict(principal, f"arn:aws:iam::{ACCT}:role/ci/terraform-apply") == trust.TRUSTED


def test_missing_session_issuer_still_judges_the_role_not_the_session_name():
    principal = role_session("NetworkAdmin", "terraform-apply", issuer=False)
    patterns = (f"arn:aws:iam::{ACCT}:role/terraform-apply", f"arn:aws:iam::{ACCT}:role/terraform-*")
    assert verdict(principal, *patterns) is None


def test_empty_session_issuer_object_is_not_an_issuer():
    identity = {"type": "AssumedRole", "arn": f"arn:aws:sts::{ACCT}:assumed-role/NetworkAdmin/terraform",
                "accountId": ACCT, "sessionContext": {"sessionIssuer": {}, "attributes": {}}}
    principal = resolve_principal(identity)
    assert verdict(principal, f"arn:aws:iam::{ACCT}:role/terraform*") is None
    assert verdict(principal, f"arn:aws:iam::{ACCT}:role/NetworkAdmin") == trust.TRUSTED


# --- partitions ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("pattern_partition, actual_partition", [
    ("aws", "aws-us-gov"), ("aws-us-gov", "aws"), ("aws", "aws-cn"), ("aws-cn", "aws"), ("aws-us-gov", "aws-cn"),
])
def test_partitions_never_cross_match(pattern_partition: str, actual_partition: str):
    pattern = f"arn:{pattern_partition}:iam::{ACCT}:role/ops/break-glass"
    assert verdict(role_session("break-glass", "k", path="/ops/", partition=actual_partition), pattern) is None
    assert verdict(role_session("break-glass", "k", partition=actual_partition, issuer=False), pattern) is None
    assert verdict(iam_user("jenkins", partition=actual_partition),
                   f"arn:{pattern_partition}:iam::{ACCT}:user/jenkins") is None


@pytest.mark.parametrize("partition", ["aws", "aws-us-gov", "aws-cn"])
def test_each_partition_matches_itself(partition: str):
    principal = role_session("terraform-iam", "aws-go-sdk-1", path="/platform/", partition=partition)
    assert verdict(principal, f"arn:{partition}:iam::{ACCT}:role/platform/terraform-*") == trust.TRUSTED
    user_pattern = f"arn:{partition}:iam::{ACCT}:user/jenkins"
    assert verdict(iam_user("jenkins", partition=partition), user_pattern) == trust.TRUSTED


# --- users and root ------------------------------------------------------------------------------------------


def test_user_arn_trusts_that_iam_user_only():
    pattern = f"arn:aws:iam::{ACCT}:user/jenkins-deployer"
    assert verdict(iam_user("jenkins-deployer"), pattern) == trust.TRUSTED
    assert verdict(iam_user("jenkins-deployer2"), pattern) is None
    assert verdict(iam_user("m.jensen"), pattern) is None
    assert verdict(iam_user("jenkins-deployer", account=OTHER), pattern) is None


def test_user_pattern_does_not_trust_a_role_of_the_same_name():
    assert verdict(role_session("jenkins-deployer", "s"), f"arn:aws:iam::{ACCT}:user/jenkins-deployer") is None


def test_user_patterns_with_star():
    assert verdict(iam_user("ci-bot"), f"arn:aws:iam::{ACCT}:user/ci-*") == trust.TRUSTED
    assert verdict(iam_user("dmitri.volkov"), f"arn:aws:iam::{ACCT}:user/ci-*") is None


def test_root_is_never_trusted():
    assert verdict(root()) is None
    assert verdict(root(), f"arn:aws:iam::{ACCT}:user/*", f"arn:aws:iam::{ACCT}:role/*") is None
    assert verdict(root(), f"arn:aws:iam::{ACCT}:root") is None  # refused (settings drop it; so does trust)
    assert verdict(root(OTHER), f"arn:aws:iam::{ACCT}:root") is None


def test_no_patterns_trust_nobody():
    assert verdict(role_session("terraform", "s")) is None
    assert not trust.is_trusted(iam_user("jenkins"), ())


def test_missing_or_empty_identity_is_neither_trusted_nor_a_service():
    for identity in (None, {}, {"type": "Unknown"}):
        principal = resolve_principal(identity)
        assert verdict(principal, f"arn:aws:iam::{ACCT}:role/*", f"arn:aws:iam::{ACCT}:user/*") is None


def test_identity_center_user_is_a_person():
    store = f"arn:aws:identitystore::{ACCT}:identitystore/d-9067230ab1"
    principal = resolve_principal({"type": "IdentityCenterUser", "accountId": ACCT, "arn": "",
                                   "onBehalfOf": {"userId": "94482488-3041-7026-18f3-be45837cd0e4",
                                                  "identityStoreArn": store},
                                   "credentialId": "EXAMPLEVHULjJdTUdPJfofVa1sufHDoj7aYcOYcxFVllWR_Whr1fEXAMPLE"})
    assert not trust.is_aws_service(principal)
    assert verdict(principal, f"arn:aws:iam::{ACCT}:role/*", f"arn:aws:iam::{ACCT}:user/*") is None


def test_federated_user_is_judged_as_a_person_not_as_a_service():
    principal = resolve_principal({
        "type": "FederatedUser", "principalId": f"{ACCT}:r.iyer",
        "arn": f"arn:aws:sts::{ACCT}:federated-user/r.iyer", "accountId": ACCT,
        "sessionContext": {"sessionIssuer": {"type": "IAMUser", "arn": f"arn:aws:iam::{ACCT}:user/sso-broker",
                                             "userName": "sso-broker", "accountId": ACCT}}})
    assert not trust.is_aws_service(principal)
    assert verdict(principal, f"arn:aws:iam::{ACCT}:role/terraform") is None
    assert verdict(principal, f"arn:aws:iam::{ACCT}:user/r.iyer") is None


# --- AWS services --------------------------------------------------------------------------------------------


def test_aws_service_identity_is_a_service():
    principal = resolve_principal({"type": "AWSService", "invokedBy": "ec2.amazonaws.com"})
    assert verdict(principal) == trust.AWS_SERVICE
    assert verdict(principal, services=False) is None


@pytest.mark.parametrize("role, service", [
    ("AWSServiceRoleForAutoScaling", "autoscaling.amazonaws.com"),
    ("AWSServiceRoleForElasticLoadBalancing", "elasticloadbalancing.amazonaws.com"),
    ("AWSServiceRoleForAmazonGuardDutyMalwareProtection", "malware-protection.guardduty.amazonaws.com"),
])
def test_service_linked_roles_are_services(role: str, service: str):
    principal = role_session(role, role.removeprefix("AWSServiceRoleFor"), path=f"/aws-service-role/{service}/")
    assert verdict(principal) == trust.AWS_SERVICE
    assert verdict(principal, services=False) is None
    no_issuer = role_session(role, "x", issuer=False)
    assert verdict(no_issuer) == trust.AWS_SERVICE


@pytest.mark.parametrize("service", [
    "cloudformation.amazonaws.com", "ssm.amazonaws.com", "guardduty.amazonaws.com", "autoscaling.amazonaws.com",
])
def test_calls_invoked_by_a_service_are_services(service: str):
    assert verdict(iam_user("marco.bianchi", invoked_by=service)) == trust.AWS_SERVICE
    assert verdict(role_session("ConfigRemediationRole", "f3a1c9e2", invoked_by=service)) == trust.AWS_SERVICE


def test_invoked_by_is_judged_by_the_principal_when_services_are_not_trusted():
    principal = iam_user("m.jensen", invoked_by="cloudformation.amazonaws.com")
    assert verdict(principal, services=False) is None
    assert verdict(principal, f"arn:aws:iam::{ACCT}:user/m.jensen", services=False) == trust.TRUSTED


@pytest.mark.parametrize("front_door", ["signin.amazonaws.com", "console.amazonaws.com", "SIGNIN.amazonaws.com "])
def test_signin_and_console_are_people(front_door: str):
    principal = iam_user("nina.petrov", invoked_by=front_door)
    assert not trust.is_aws_service(principal)
    assert verdict(principal) is None
    assert verdict(principal, f"arn:aws:iam::{ACCT}:user/nina.petrov") == trust.TRUSTED


def test_service_wins_over_trusted_principal():
    principal = role_session("terraform-apply", "s", invoked_by="cloudformation.amazonaws.com")
    assert verdict(principal, f"arn:aws:iam::{ACCT}:role/terraform-apply") == trust.AWS_SERVICE
    assert verdict(principal, f"arn:aws:iam::{ACCT}:role/terraform-apply", services=False) == trust.TRUSTED


def test_a_service_linked_role_can_still_be_trusted_by_pattern_when_services_are_not():
    principal = role_session("AWSServiceRoleForAutoScaling", "AutoScaling",
                             path="/aws-service-role/autoscaling.amazonaws.com/")
    pattern = f"arn:aws:iam::{ACCT}:role/aws-service-role/autoscaling.amazonaws.com/*"
    assert verdict(principal, pattern, services=False) == trust.TRUSTED
    assert verdict(principal, f"arn:aws:iam::{ACCT}:role/aws-service-role/*", services=False) is None


def test_terraform_user_agent_and_source_ip_earn_no_trust():
    from chalicelib.parsing.cloudtrail import parse_record

    record = {
        "eventVersion": "1.09", "eventTime": "2024-09-03T15:23:05Z", "eventSource": "ec2.amazonaws.com",
        "eventName": "ReplaceRoute", "awsRegion": "us-west-2", "sourceIPAddress": "35.164.20.8",
        "userAgent": "APN/1.0 HashiCorp/1.0 Terraform/1.9.5 (+https://www.terraform.io) terraform-provider-aws/5.66.0",
        "userIdentity": {"type": "AssumedRole", "arn": f"arn:aws:sts::{ACCT}:assumed-role/NetworkAdmin/terraform",
                         "accountId": ACCT,
                         "sessionContext": {"sessionIssuer": {"type": "Role",
                                                              "arn": f"arn:aws:iam::{ACCT}:role/NetworkAdmin",
                                                              "userName": "NetworkAdmin"}}},
        "eventID": "8fbb6798-4d76-4d19-be65-74711b1529ab",
    }
    event = parse_record(record, "test")
    assert verdict(event.principal, f"arn:aws:iam::{ACCT}:role/terraform*") is None


def test_a_customer_role_named_like_a_service_linked_role_is_not_a_service():
    from chalicelib.core.model import Principal
    from chalicelib.core.trust import is_aws_service

    fake = Principal(type="AssumedRole", arn="arn:aws:sts::111122223333:assumed-role/AWSServiceRoleForX/s",
                     issuer_arn="arn:aws:iam::111122223333:role/AWSServiceRoleForX")
    real = Principal(type="AssumedRole", arn="arn:aws:sts::111122223333:assumed-role/AWSServiceRoleForX/s",
                     issuer_arn="arn:aws:iam::111122223333:role/aws-service-role/x.amazonaws.com/AWSServiceRoleForX")
    assert not is_aws_service(fake)
    assert is_aws_service(real)


# --- console sessions are people (D17) -----------------------------------------------------------------------


def console(principal: Principal) -> Principal:
    return dataclasses.replace(principal, from_console=True)


def test_a_console_session_of_a_trusted_role_is_not_trusted():
    pattern = f"arn:aws:iam::{ACCT}:role/terraform-*"
    session = role_session("terraform-apply", "priya@example.com")
    assert verdict(session, pattern) == trust.TRUSTED
    assert verdict(console(session), pattern) is None
    # FORMAT.md: a user ARN trusts that IAM user wherever it signs in; the console rule is for roles.
    assert verdict(console(iam_user("jenkins")), f"arn:aws:iam::{ACCT}:user/jenkins") == trust.TRUSTED


def test_a_console_session_is_still_judged_as_a_service_call():
    principal = console(role_session("terraform-apply", "s", invoked_by="cloudformation.amazonaws.com"))
    assert verdict(principal, f"arn:aws:iam::{ACCT}:role/terraform-apply") == trust.AWS_SERVICE
    assert verdict(principal, f"arn:aws:iam::{ACCT}:role/terraform-apply", services=False) is None
    linked = console(role_session("AWSServiceRoleForAutoScaling", "AutoScaling",
                                  path="/aws-service-role/autoscaling.amazonaws.com/"))
    assert verdict(linked) == trust.AWS_SERVICE


@pytest.mark.parametrize("flag, where, trusted", [
    ("true", "record", False), ("TRUE", "record", False), (True, "record", False),
    ("true", "sessionContext", False), (True, "sessionContext", False),
    ("false", "record", True), (False, "sessionContext", True), ("yes", "record", True), (None, "record", True),
])
def test_session_credential_from_console_from_a_record(flag: Any, where: str, trusted: bool):
    from chalicelib.parsing.cloudtrail import parse_record

    identity = {"type": "AssumedRole", "arn": f"arn:aws:sts::{ACCT}:assumed-role/terraform-apply/s",
                "accountId": ACCT, "sessionContext": {"sessionIssuer": {
                    "type": "Role", "arn": f"arn:aws:iam::{ACCT}:role/terraform-apply"}}}
    record: dict[str, Any] = {"eventName": "AuthorizeSecurityGroupIngress", "userIdentity": identity}
    if flag is not None:
        if where == "record":
            record["sessionCredentialFromConsole"] = flag
        else:
            identity["sessionContext"]["sessionCredentialFromConsole"] = flag
    event = parse_record(record, "test")
    expected = trust.TRUSTED if trusted else None
    assert verdict(event.principal, f"arn:aws:iam::{ACCT}:role/terraform-apply") == expected


# --- refused patterns ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("pattern, words", [
    (f"arn:aws:iam::{ACCT}:role/*", ["every role"]),
    (f"arn:aws:iam::{ACCT}:role/**", ["every role"]),
    (f"arn:aws:iam::{ACCT}:role/*/*", ["every role"]),
    ("arn:aws:iam::*:role/*", ["every role"]),
    ("arn:*:iam::*:role/*", ["every role"]),
    (f"arn:aws:iam::{ACCT}:user/*", ["every user"]),
    (f"arn:aws:iam::{ACCT}:*", ["every principal"]),
    ("arn:aws:iam::*:*", ["every principal"]),
    (f"arn:aws:iam::{ACCT}:root", ["root"]),
    ("arn:aws:iam::*:root", ["root"]),
    (f"arn:aws:iam::{ACCT}:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_Admin_*", ["Identity Center"]),
    (f"arn:aws:iam::{ACCT}:role/aws-reserved/sso.amazonaws.com/eu-west-1/*", ["Identity Center"]),
    (f"arn:aws:iam::{ACCT}:role/AWS-Reserved/x/y", ["Identity Center"]),
    (f"arn:aws:iam::{ACCT}:role/AWSReservedSSO_*", ["Identity Center"]),
    (f"arn:aws:iam::{ACCT}:role/*/*/*_Admin_*", ["Identity Center"]),
    (f"arn:aws:iam::{ACCT}:role/aws-*/*/AWS*", ["Identity Center"]),
])
def test_patterns_anyone_could_borrow_are_refused(pattern: str, words: list[str]):
    reason = trust.refusal(pattern)
    assert reason is not None and pattern in reason
    for word in words:
        assert word in reason
    assert trust.usable((pattern,)) == ()


@pytest.mark.parametrize("pattern", [
    f"arn:aws:iam::{ACCT}:role/ci/*",
    f"arn:aws:iam::{ACCT}:role/terraform-*",
    f"arn:aws:iam::{ACCT}:role/*-terraform",
    f"arn:aws:iam::{ACCT}:role/platform/terraform-*",
    f"arn:aws:iam::{ACCT}:role/*/terraform-apply",  # never an Identity Center role name
    f"arn:aws:iam::{ACCT}:role/aws-service-role/autoscaling.amazonaws.com/*",
    f"arn:aws:iam::{ACCT}:user/ci-*",
    f"arn:aws:iam::{ACCT}:user/jenkins",
    "arn:aws:iam::*:role/OrganizationAccountAccessRole",
])
def test_patterns_naming_principals_of_their_own_are_kept(pattern: str):
    assert trust.refusal(pattern) is None
    assert trust.usable((pattern,)) == (pattern,)


def test_refused_patterns_trust_nobody_even_when_passed_directly():
    sso = role_session("AWSReservedSSO_Admin_0123456789abcdef", "priya@example.com",
                       path="/aws-reserved/sso.amazonaws.com/")
    assert verdict(sso, f"arn:aws:iam::{ACCT}:role/aws-reserved/sso.amazonaws.com/*") is None
    assert verdict(role_session("anything", "s"), f"arn:aws:iam::{ACCT}:role/*") is None
    assert verdict(iam_user("anyone"), f"arn:aws:iam::{ACCT}:user/*") is None


_GLOB_TEXT = st.text(alphabet="ab*", max_size=4)


@settings(max_examples=300, deadline=None)
@given(left=_GLOB_TEXT, right=_GLOB_TEXT)
def test_property_globs_meet_exactly_when_some_text_matches_both(left: str, right: str):
    import itertools
    import re

    def regex(glob: str) -> re.Pattern[str]:
        return re.compile("^" + "[^/:]*".join(re.escape(p) for p in glob.split("*")) + "$")

    # A shortest common text is never longer than both globs' letters together (8 here).
    texts = ("".join(t) for n in range(0, 9) for t in itertools.product("ab", repeat=n))
    witness = any(regex(left).match(t) and regex(right).match(t) for t in texts)
    assert trust._globs_meet(left, right) == witness


# --- a person editing a trusted role (D17) -------------------------------------------------------------------


PATTERNS = (f"arn:aws:iam::{ACCT}:role/terraform-*", f"arn:aws:iam::{ACCT}:role/ci/*",
            f"arn:aws:iam::{ACCT}:user/jenkins")


@pytest.mark.parametrize("arn, expected", [
    (f"arn:aws:iam::{ACCT}:role/terraform-ci", PATTERNS[0]),
    (f"arn:aws:iam::{ACCT}:role/ci/deployer", PATTERNS[1]),
    (f"arn:aws:iam::{ACCT}:role/terraform-x/mallory-admin", None),
    (f"arn:aws:iam::{ACCT}:role/ci/people/mallory", None),
    (f"arn:aws:iam::{OTHER}:role/terraform-ci", None),
    (f"arn:aws:iam::{ACCT}:user/jenkins", None),
    (f"arn:aws:sts::{ACCT}:assumed-role/terraform-ci/s", None),
    (None, None),
    ("", None),
])
def test_trusted_pattern_for_role(arn: str | None, expected: str | None):
    assert trust.trusted_pattern_for_role(arn, PATTERNS) == expected


def test_trusted_pattern_for_role_ignores_refused_patterns():
    assert trust.trusted_pattern_for_role(f"arn:aws:iam::{ACCT}:role/x", (f"arn:aws:iam::{ACCT}:role/*",)) is None


@pytest.mark.parametrize("name, path, expected", [
    ("terraform-ci", "/", PATTERNS[0]),
    ("terraform-ci", None, PATTERNS[0]),
    ("deployer", "/ci/", PATTERNS[1]),
    ("deployer", "ci", PATTERNS[1]),
    ("deployer", None, None),  # path unknown and role/ci/* says nothing about the name: Config path only
    ("deployer", "/", None),
    ("mallory-admin", "/terraform-x/", None),
    ("terraform-ci", "/people/", None),
    ("jenkins", None, None),
    ("a/b", None, None),
])
def test_trusted_pattern_for_role_name(name: str, path: str | None, expected: str | None):
    assert trust.trusted_pattern_for_role_name("aws", ACCT, name, path, PATTERNS) == expected
    assert trust.trusted_pattern_for_role_name("aws-us-gov", ACCT, name, path, PATTERNS) is None
    assert trust.trusted_pattern_for_role_name("aws", None, name, path, PATTERNS) is None


def role_write(name: str, params: dict[str, Any], *, identity: dict[str, Any] | None = None,
               error: str | None = None, source: str = "iam.amazonaws.com", console_flag: bool = False) -> Any:
    from chalicelib.parsing.cloudtrail import parse_record

    record: dict[str, Any] = {
        "eventName": name, "eventSource": source, "awsRegion": "us-east-1", "recipientAccountId": ACCT,
        "eventID": "5c1e7a8e-0b7e-4a52-9d1f-3b1f7f0c2a11", "readOnly": False, "requestParameters": params,
        "userIdentity": identity or {"type": "IAMUser", "arn": f"arn:aws:iam::{ACCT}:user/mallory",
                                     "accountId": ACCT, "userName": "mallory"},
    }
    if error:
        record["errorCode"] = error
    if console_flag:
        record["sessionCredentialFromConsole"] = "true"
    return parse_record(record, "test")


@pytest.mark.parametrize("name", sorted(trust.ROLE_WRITE_CALLS))
def test_every_role_write_on_a_trusted_role_by_a_person_names_the_pattern(name: str):
    params = {"roleName": "terraform-ci", "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}
    assert trust.trusted_role_edit(role_write(name, params), PATTERNS, True) == PATTERNS[0]


@pytest.mark.parametrize("event, why", [
    (role_write("UpdateAssumeRolePolicy", {"roleName": "web-app"}), "untrusted role"),
    (role_write("CreateRole", {"roleName": "deployer", "path": "/people/"}), "path not trusted"),
    (role_write("CreateRole", {"roleName": "deployer"}), "default path / is not /ci/"),
    (role_write("UpdateAssumeRolePolicy", {"roleName": "terraform-ci"}, error="AccessDenied"), "failed"),
    (role_write("CreateServiceLinkedRole", {"aWSServiceName": "autoscaling.amazonaws.com"}), "service-linked"),
    (role_write("DeleteRole", {"roleName": "terraform-ci"}), "not a write that lends trust"),
    (role_write("GetRole", {"roleName": "terraform-ci"}), "read"),
    (role_write("UpdateAssumeRolePolicy", {"roleName": "terraform-ci"}, source="sts.amazonaws.com"), "not IAM"),
    (role_write("UpdateAssumeRolePolicy", {}), "no role named"),
    (role_write("UpdateAssumeRolePolicy", {"roleName": "terraform-ci"}, identity={
        "type": "AssumedRole", "arn": f"arn:aws:sts::{ACCT}:assumed-role/terraform-apply/tf", "accountId": ACCT,
        "sessionContext": {"sessionIssuer": {"arn": f"arn:aws:iam::{ACCT}:role/terraform-apply"}}}), "trusted"),
    (role_write("TagRole", {"roleName": "terraform-ci"}, identity={
        "type": "AWSService", "invokedBy": "cloudformation.amazonaws.com"}), "AWS service"),
])
def test_role_writes_that_borrow_no_trust(event: Any, why: str):
    assert trust.trusted_role_edit(event, PATTERNS, True) is None, why


def test_a_console_session_of_a_trusted_role_editing_a_trusted_role_is_reported():
    identity = {"type": "AssumedRole", "arn": f"arn:aws:sts::{ACCT}:assumed-role/terraform-apply/priya",
                "accountId": ACCT,
                "sessionContext": {"sessionIssuer": {"arn": f"arn:aws:iam::{ACCT}:role/terraform-apply"}}}
    event = role_write("AttachRolePolicy", {"roleName": "terraform-ci"}, identity=identity, console_flag=True)
    assert trust.trusted_role_edit(event, PATTERNS, True) == PATTERNS[0]
    assert trust.trusted_role_edit(event, (), True) is None


def test_a_role_known_by_name_only_matches_a_path_pattern_that_names_it():
    pattern = f"arn:aws:iam::{ACCT}:role/ci/terraform-*"
    assert trust.trusted_pattern_for_role_name("aws", ACCT, "terraform-net", None, (pattern,)) == pattern
    assert trust.trusted_pattern_for_role_name("aws", ACCT, "terraform-net", "/ci/", (pattern,)) == pattern
    assert trust.trusted_pattern_for_role_name("aws", ACCT, "terraform-net", "/ci/x/", (pattern,)) is None
    assert trust.trusted_pattern_for_role_name("aws", ACCT, "web-app", None, (pattern,)) is None


# --- what the direct path and Slack do with it ----------------------------------------------------------------


def _direct_settings(*patterns: str) -> Any:
    from chalicelib.core.settings import Settings

    return Settings.from_dict({"trusted_principals": list(patterns)})


NOW = datetime(2025, 3, 2, 8, 15, tzinfo=timezone.utc)


@pytest.mark.parametrize("name, params", [
    ("CreateRole", {"roleName": "terraform-backdoor", "path": "/"}),
    ("TagRole", {"roleName": "terraform-ci", "tags": [{"key": "team", "value": "platform"}]}),
    ("UpdateRole", {"roleName": "terraform-ci", "maxSessionDuration": 43200}),
    ("PutRolePermissionsBoundary", {"roleName": "terraform-ci", "permissionsBoundary": "arn:aws:iam::aws:x"}),
])
def test_direct_path_stays_silent_on_a_role_edit_the_sensitive_call_rules_do_not_select(name, params):
    # FORMAT.md: nothing else is an outcome; the role's Config item reports it, naming the pattern.
    from chalicelib.core.rules import DirectRules, direct_outcome
    from chalicelib.stages.direct import trusted_role_alert

    settings = _direct_settings(*PATTERNS)
    event = role_write(name, params)
    assert direct_outcome(event, settings, DirectRules(), NOW) is None
    assert trusted_role_alert(event, None, settings, NOW) is None


def test_direct_path_adds_the_pattern_to_an_api_call_the_rules_already_selected():
    from chalicelib.core.rules import DirectRules, direct_outcome
    from chalicelib.stages.direct import trusted_role_alert

    settings = _direct_settings(*PATTERNS)
    event = role_write("UpdateAssumeRolePolicy", {"roleName": "terraform-ci", "policyDocument": "{}"})
    selected = direct_outcome(event, settings, DirectRules(), NOW)
    assert selected is not None and "trusted_pattern" not in selected.extra
    outcome = trusted_role_alert(event, selected, settings, NOW)
    assert outcome is not None and outcome.outcome_id == selected.outcome_id
    assert outcome.extra == {**selected.extra, "trusted_pattern": PATTERNS[0]}


def test_direct_path_leaves_other_calls_alone():
    from chalicelib.stages.direct import trusted_role_alert

    settings = _direct_settings(*PATTERNS)
    untrusted_role = role_write("CreateRole", {"roleName": "web-app"})
    assert trusted_role_alert(untrusted_role, None, settings, NOW) is None
    failed = role_write("TagRole", {"roleName": "terraform-ci"}, error="AccessDenied")
    assert trusted_role_alert(failed, None, settings, NOW) is None


def test_slack_severity_is_high_and_names_the_pattern():
    from chalicelib.core.outcomes import Outcome
    from chalicelib.core.severity import severity_reason
    from chalicelib.slack.render import render

    pattern = f"arn:aws:iam::{ACCT}:role/terraform-*"
    base = Outcome(kind="api_call", outcome_id="ct:x", at="2025-03-02T08:15:00Z", account=ACCT,
                   region="us-east-1", principal_arn=f"arn:aws:iam::{ACCT}:user/mallory", event_name="TagRole")
    assert severity_reason(base)[0] == "medium"
    flagged = dataclasses.replace(base, extra={"trusted_pattern": pattern})
    level, reason = severity_reason(flagged)
    assert level == "high" and pattern in reason
    assert pattern in json.dumps(render([flagged]))
    hostile = dataclasses.replace(base, extra={"trusted_pattern": "<!channel> *x*"})
    assert "<!channel>" not in json.dumps(render([hostile]))
    assert severity_reason(dataclasses.replace(base, extra={"trusted_pattern": 7}))[0] == "high"
    assert severity_reason(dataclasses.replace(base, extra={"trusted_pattern": ""}))[0] == "medium"


def _role_item(arn: str | None, *, resource_type: str = "AWS::IAM::Role", configuration: Any = None) -> Any:
    from chalicelib.core.model import ConfigChange

    return ConfigChange(source="t", message_type="ConfigurationItemChangeNotification", account=ACCT,
                        region="global", resource_type=resource_type, resource_id="AROAEXAMPLEID1234567",
                        resource_name="terraform-ci", arn=arn, capture_time=None, change_type="UPDATE",
                        status="OK", configuration=configuration)


def test_config_path_marks_a_manual_change_of_a_trusted_role():
    trusted = _role_item(f"arn:aws:iam::{ACCT}:role/terraform-ci")
    assert trust.trusted_role_mark("manual_change", trusted, PATTERNS) == {"trusted_pattern": PATTERNS[0]}
    assert trust.trusted_role_mark("suppressed", trusted, PATTERNS) == {}
    assert trust.trusted_role_mark("unattributed_change", trusted, PATTERNS) == {}
    assert trust.trusted_role_mark("manual_change", trusted, ()) == {}
    pathed = _role_item(f"arn:aws:iam::{ACCT}:role/terraform-x/mallory-admin")
    assert trust.trusted_role_mark("manual_change", pathed, PATTERNS) == {}
    other_type = _role_item(f"arn:aws:iam::{ACCT}:role/terraform-ci", resource_type="AWS::IAM::Policy")
    assert trust.trusted_role_mark("manual_change", other_type, PATTERNS) == {}
    lower = _role_item(f"arn:aws:iam::{ACCT}:role/terraform-ci", resource_type="aws::iam::role")
    assert trust.trusted_role_mark("manual_change", lower, PATTERNS) == {"trusted_pattern": PATTERNS[0]}


def test_config_path_without_an_arn_uses_the_role_configuration():
    item = _role_item(None, configuration={"roleName": "deployer", "path": "/ci/"})
    assert trust.trusted_role_mark("manual_change", item, PATTERNS) == {"trusted_pattern": PATTERNS[1]}
    item = _role_item(None, configuration={"roleName": "deployer", "path": "/people/"})
    assert trust.trusted_role_mark("manual_change", item, PATTERNS) == {}
    item = _role_item(None)
    assert trust.trusted_role_mark("manual_change", item, PATTERNS) == {"trusted_pattern": PATTERNS[0]}
