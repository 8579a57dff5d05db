"""The severity policy: which outcomes are high, medium or low, and the one ranking routing and Slack share."""

from __future__ import annotations

import json

import pytest
from slack_fixtures import SSH_WORLD, api_call, event, manual, perm, signin, unattributed

from chalicelib.core.calls import AUDIT_CALLS, PROTECTIVE_CALLS, WHAT_IT_DISABLES
from chalicelib.core.model import Principal
from chalicelib.core.outcomes import Outcome
from chalicelib.core.rules import DEFAULT_INCLUDE
from chalicelib.core.severity import (
    HIGH,
    LOW,
    MEDIUM,
    SEVERITY_RANK,
    Severity,
    change_reason,
    max_severity,
    severity,
    severity_reason,
)


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [
        (manual(), "high"),  # 0.0.0.0/0 added to tcp/22
        (manual(changed_properties=({**SSH_WORLD, "updated": perm(22, "10.20.0.0/16", "::/0")},)), "high"),
        (manual(changed_properties=({**SSH_WORLD, "updated": perm(22, "10.20.0.0/16", "10.9.0.0/16")},)), "medium"),
        # already open before: not newly opened
        (
            manual(
                changed_properties=(
                    {**SSH_WORLD, "previous": perm(443, "0.0.0.0/0"), "updated": perm(443, "0.0.0.0/0", "10.4.0.0/16")},
                )
            ),
            "medium",
        ),
        # egress to the world is not ingress
        (manual(changed_properties=({**SSH_WORLD, "path": "Configuration.IpPermissionsEgress.0"},)), "medium"),
        # world-open ingress in the request of a (possibly denied) call
        (
            api_call(
                event_name="AuthorizeSecurityGroupIngress",
                events=(
                    event(
                        request_parameters={
                            "ipPermissions": {"items": [{"ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]}}]}
                        }
                    ),
                ),
            ),
            "high",
        ),
        (signin(), "high"),
        (signin(signin="failure", principal=Principal(type="Root")), "high"),
        (api_call(), "high"),  # StopLogging
        (api_call(event_name="DeleteConfigurationRecorder", events=()), "high"),
        (
            api_call(
                event_name="PutRolePolicy",
                events=(event(event_name="PutRolePolicy", event_source="iam.amazonaws.com"),),
            ),
            "high",
        ),
        (api_call(event_name="AttachUserPolicy", events=()), "high"),
        (api_call(event_name="CreatePolicyVersion", events=()), "high"),
        (manual(resource_type="AWS::IAM::Role", changed_properties=()), "high"),
        (api_call(event_name="CreateVpc", events=(event(event_name="CreateVpc"),)), "medium"),
        (
            api_call(
                event_name="PutBucketPolicy",
                events=(
                    event(
                        event_name="PutBucketPolicy",
                        event_source="s3.amazonaws.com",
                        request_parameters={"bucketPolicy": {"Statement": [{"Effect": "Allow", "Principal": "*"}]}},
                    ),
                ),
            ),
            "high",
        ),
        (
            api_call(
                event_name="PutBucketPolicy",
                events=(
                    event(
                        event_name="PutBucketPolicy",
                        event_source="s3.amazonaws.com",
                        request_parameters={
                            "bucketPolicy": {"Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:x"}}]}
                        },
                    ),
                ),
            ),
            "medium",
        ),
        (
            manual(
                resource_type="AWS::S3::Bucket",
                events=(event(event_name="PutBucketPolicy"),),
                changed_properties=(
                    {
                        "path": "SupplementaryConfiguration.BucketPolicy",
                        "change_type": "UPDATE",
                        "previous": {"policyText": None},
                        "updated": {
                            "policyText": json.dumps(
                                {"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject"}]}
                            )
                        },
                    },
                ),
            ),
            "high",
        ),
        (manual(changed_properties=(), events=(event(event_name="ModifyInstanceAttribute"),)), "medium"),
        (unattributed(), "medium"),
        (unattributed(change_type="DELETE"), "low"),
        (
            unattributed(
                changed_properties=(
                    {
                        "path": "Relationships.0",
                        "change_type": "DELETE",
                        "previous": {"resourceId": "i-1"},
                        "updated": None,
                    },
                )
            ),
            "low",
        ),
        (signin(signin="no_mfa", principal=Principal(type="IAMUser"), principal_arn="arn:aws:iam::1:user/u"), "medium"),
        (signin(signin="failure", principal=Principal(type="IAMUser"), principal_arn=None), "low"),
    ],
)
def test_severity(outcome: Outcome, expected: str) -> None:
    assert severity(outcome) == expected


def test_one_ranking_for_routing_and_rendering() -> None:
    from chalicelib.stages import deliver

    assert deliver.SEVERITY_RANK is SEVERITY_RANK and deliver.severity is severity
    assert SEVERITY_RANK["low"] < SEVERITY_RANK["medium"] < SEVERITY_RANK["high"]
    assert SEVERITY_RANK[Severity.HIGH] == SEVERITY_RANK["high"]
    assert max_severity([LOW, HIGH, MEDIUM]) is HIGH and max_severity([]) is MEDIUM


def test_a_severity_is_its_text() -> None:
    level = severity(manual())
    assert level is Severity.HIGH and level == "high"
    assert f"[{level}]" == "[high]" and str(level) == "high" and json.dumps(level) == '"high"'


@pytest.mark.parametrize("name", PROTECTIVE_CALLS)
def test_every_protective_call_is_high_and_says_what_it_disables(name: str) -> None:
    level, reason = severity_reason(api_call(event_name=name, events=()))
    assert (level, reason) == (HIGH, f"tampering: {WHAT_IT_DISABLES[name]} ({name})")
    assert name not in AUDIT_CALLS or name in DEFAULT_INCLUDE


def test_a_tamper_alert_is_high_and_says_what_it_touches() -> None:
    alert = api_call(event_name="PutFunctionConcurrency20171031", events=(),
                     extra={"tamper": "changes the detector's own resource mcd-dev-lookup"})
    assert severity_reason(alert) == (HIGH, "tampering: changes the detector's own resource mcd-dev-lookup")


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (SSH_WORLD, "world-open ingress (0.0.0.0/0 or ::/0)"),
        ({**SSH_WORLD, "path": "Configuration.IpPermissionsEgress.0"}, None),
        ({"path": "SupplementaryConfiguration.BucketAcl", "previous": None,
          "updated": {"grantee": "http://acs.amazonaws.com/groups/global/AllUsers"}}, "public bucket ACL"),
        ({"path": "SupplementaryConfiguration.BucketPolicy", "previous": None,
          "updated": {"policyText": json.dumps({"Statement": [{"Effect": "Allow", "Principal": "*"}]})}},
         "public bucket policy"),
        ({"path": "Configuration.RolePolicyList.0", "previous": None,
          "updated": {"policyText": json.dumps({"Statement": [{"Effect": "Allow", "Principal": "*"}]})}}, None),
        ({"path": "Tags.env", "previous": "a", "updated": "b"}, None),
    ],
)
def test_change_reason(change: dict, reason: str | None) -> None:
    assert change_reason(change) == reason


def test_the_trusted_pattern_is_named_on_one_clipped_line() -> None:
    pattern = "arn:aws:iam::1:role/\u202eterraform-*\n" + "x" * 100
    level, reason = severity_reason(api_call(extra={"trusted_pattern": pattern}))
    assert level is HIGH and reason.startswith("trusted role changed by an untrusted principal (trusted as arn:aws")
    assert "\u202e" not in reason and "\n" not in reason and reason.endswith("…)")
