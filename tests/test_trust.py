"""Trust decisions (``chalicelib.trust``): trusted principals, AWS services, and what never earns trust.

Principals are built from ``userIdentity`` shapes through ``resolve_principal``, the way the detector
sees them, so these tests also pin which identity fields trust is decided on.
"""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib import trust
from chalicelib.cloudtrail_records import resolve_principal
from chalicelib.model import Principal

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


def test_star_may_span_a_role_path():
    pattern = f"arn:aws:iam::{ACCT}:role/*terraform*"
    assert verdict(role_session("terraform-apply", "s", path="/ci/deploy/"), pattern) == trust.TRUSTED


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


def test_root_is_trusted_only_when_named():
    assert verdict(root()) is None
    assert verdict(root(), f"arn:aws:iam::{ACCT}:user/*", f"arn:aws:iam::{ACCT}:role/*") is None
    assert verdict(root(), f"arn:aws:iam::{ACCT}:root") == trust.TRUSTED
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
    pattern = f"arn:aws:iam::{ACCT}:role/aws-service-role/*"
    assert verdict(principal, pattern, services=False) == trust.TRUSTED


def test_terraform_user_agent_and_source_ip_earn_no_trust():
    from chalicelib.cloudtrail_records import parse_record

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
    from chalicelib.model import Principal
    from chalicelib.trust import is_aws_service

    fake = Principal(type="AssumedRole", arn="arn:aws:sts::111122223333:assumed-role/AWSServiceRoleForX/s",
                     issuer_arn="arn:aws:iam::111122223333:role/AWSServiceRoleForX")
    real = Principal(type="AssumedRole", arn="arn:aws:sts::111122223333:assumed-role/AWSServiceRoleForX/s",
                     issuer_arn="arn:aws:iam::111122223333:role/aws-service-role/x.amazonaws.com/AWSServiceRoleForX")
    assert not is_aws_service(fake)
    assert is_aws_service(real)
