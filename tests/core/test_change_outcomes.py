"""``build_outcome``: the one outcome of a configuration item, whether the lookup or the dead-letter stage builds it."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone

from chalicelib.core.attribution import Attribution
from chalicelib.core.change_outcomes import build_outcome
from chalicelib.core.jobs import LookupJob
from chalicelib.core.model import ConfigChange, Principal, PropertyChange, TrailEvent
from chalicelib.core.outcomes import MANUAL_CHANGE, SUPPRESSED, UNATTRIBUTED_CHANGE
from chalicelib.core.trust import TRUSTED

ACCT = "111122223333"
NOW = datetime(2025, 3, 2, 9, 0, 30, 250_000, tzinfo=timezone.utc)
CAPTURE = datetime(2025, 3, 2, 8, 59, 10, tzinfo=timezone.utc)
NOTIFIED = "2025-03-02T08:59:10Z"  # the job arrived at the capture time: the Slack delay metric starts here
ALICE = Principal(type="IAMUser", arn=f"arn:aws:iam::{ACCT}:user/alice", account=ACCT,
                  issuer_arn=f"arn:aws:iam::{ACCT}:user/alice", user_name="alice")
TERRAFORM = Principal(type="AssumedRole", arn=f"arn:aws:sts::{ACCT}:assumed-role/terraform/run-1", account=ACCT,
                      issuer_arn=f"arn:aws:iam::{ACCT}:role/terraform", session_name="run-1")
SG_CHANGE = ConfigChange(
    source="sns:m-1", message_type="ConfigurationItemChangeNotification", account=ACCT, region="eu-west-1",
    resource_type="AWS::EC2::SecurityGroup", resource_id="sg-0abc", resource_name="web",
    arn=f"arn:aws:ec2:eu-west-1:{ACCT}:security-group/sg-0abc", capture_time=CAPTURE, change_type="UPDATE",
    status="OK", changed_properties=(PropertyChange("Configuration.IpPermissions.0", "CREATE", None, {"p": 22}),),
)
ROLE_CHANGE = replace(SG_CHANGE, resource_type="AWS::IAM::Role", resource_id="AROAEXAMPLE", resource_name="deployer",
                      arn=f"arn:aws:iam::{ACCT}:role/ci/deployer", region="global")


def job(change: ConfigChange = SG_CHANGE) -> LookupJob:
    return LookupJob(change=change, change_key="k-0abc", arrived_at=CAPTURE, archive_bucket="mcd-archive",
                     archive_key="AWSLogs/x.json")


def call(event_id: str | None, name: str, principal: Principal = ALICE) -> TrailEvent:
    return TrailEvent(source="lookup:eu-west-1", event_id=event_id, event_name=name, event_source="ec2.amazonaws.com",
                      event_time=CAPTURE, account=ACCT, region="eu-west-1", read_only=False, error_code=None,
                      principal=principal)


def test_a_manual_change_carries_the_item_the_author_and_the_calls() -> None:
    found = Attribution(verdict=None, principal=ALICE, via="resource", events=(
        call("e-1", "RevokeSecurityGroupIngress"), call(None, "DescribeX"),
        call("e-2", "AuthorizeSecurityGroupIngress")))
    outcome = build_outcome(job(), MANUAL_CHANGE, NOW, found)
    data = outcome.to_json()
    assert outcome.kind == MANUAL_CHANGE and outcome.is_alert
    assert (data["outcome_id"], data["at"], data["capture_time"]) == (
        "ci:k-0abc", "2025-03-02T09:00:30.250Z", "2025-03-02T08:59:10Z")
    assert (data["account"], data["region"], data["resource_type"], data["resource_id"], data["resource_name"],
            data["resource_arn"], data["change_type"]) == (
        ACCT, "eu-west-1", "AWS::EC2::SecurityGroup", "sg-0abc", "web", SG_CHANGE.arn, "UPDATE")
    assert data["principal_arn"] == ALICE.arn
    assert data["principal"]["arn"] == ALICE.arn and data["principal"]["type"] == "IAMUser"
    assert data["event_ids"] == ["e-1", "e-2"], "calls without an id are shown but have no id to list"
    assert [e["event_name"] for e in data["events"]] == [
        "RevokeSecurityGroupIngress", "DescribeX", "AuthorizeSecurityGroupIngress"]
    assert data["event_name"] == "AuthorizeSecurityGroupIngress", "the latest call names the change"
    assert data["reason"] is None
    assert data["changed_properties"] == [{"path": "Configuration.IpPermissions.0", "change_type": "CREATE",
                                           "previous": None, "updated": {"p": 22}}]
    assert (data["archive_bucket"], data["archive_key"]) == ("mcd-archive", "AWSLogs/x.json")
    assert data["extra"] == {"attributed_via": "resource", "notified_at": NOTIFIED}


def test_a_suppressed_change_keeps_its_verdict_as_the_reason() -> None:
    found = Attribution(verdict=TRUSTED, principal=TERRAFORM, events=(call("e-9", "Authorize", TERRAFORM),),
                        via="related-events")
    outcome = build_outcome(job(), SUPPRESSED, NOW, found)
    assert outcome.kind == SUPPRESSED and not outcome.is_alert
    assert (outcome.reason, outcome.principal_arn, outcome.event_ids) == ("trusted", TERRAFORM.arn, ("e-9",))
    assert outcome.extra == {"attributed_via": "related-events", "notified_at": NOTIFIED}
    patterns = (f"arn:aws:iam::{ACCT}:user/nobody", f"arn:aws:iam::{ACCT}:role/terra*")
    by = build_outcome(job(), SUPPRESSED, NOW, found, trusted_patterns=patterns).extra.get("trusted_by")
    assert by == f"arn:aws:iam::{ACCT}:role/terra*", "the pattern that silenced it, for the Suppressions metric"


def test_an_unattributed_change_has_no_author_and_may_say_why_it_is_unverified() -> None:
    plain = build_outcome(job(), UNATTRIBUTED_CHANGE, NOW, None)
    assert (plain.principal_arn, plain.principal, plain.events, plain.event_ids, plain.event_name, plain.reason) == (
        None, None, (), (), None, None)
    assert plain.extra == {"notified_at": NOTIFIED}
    assert plain.outcome_id == "ci:k-0abc" and plain.is_alert
    unverified = build_outcome(job(), UNATTRIBUTED_CHANGE, NOW, None, unverified="CloudTrail kept failing")
    assert unverified.extra == {"unverified": "CloudTrail kept failing", "notified_at": NOTIFIED}
    assert unverified.outcome_id == plain.outcome_id, "the same item is the same outcome, revised"


def test_a_manual_edit_of_a_trusted_role_is_marked_with_the_pattern_that_trusts_it() -> None:
    patterns = (f"arn:aws:iam::{ACCT}:user/*", f"arn:aws:iam::{ACCT}:role/ci/*")
    found = Attribution(verdict=None, principal=ALICE, events=(call("e-3", "AttachRolePolicy"),), via="resource")
    marked = build_outcome(job(ROLE_CHANGE), MANUAL_CHANGE, NOW, found, trusted_patterns=patterns)
    assert marked.extra == {"attributed_via": "resource", "trusted_pattern": f"arn:aws:iam::{ACCT}:role/ci/*",
                            "notified_at": NOTIFIED}
    assert "trusted_pattern" not in build_outcome(job(ROLE_CHANGE), MANUAL_CHANGE, NOW, found).extra
    assert "trusted_pattern" not in build_outcome(job(ROLE_CHANGE), UNATTRIBUTED_CHANGE, NOW, None,
                                                  trusted_patterns=patterns).extra, "only a manual change is marked"
    other = (f"arn:aws:iam::{ACCT}:role/other/*",)
    assert "trusted_pattern" not in build_outcome(job(ROLE_CHANGE), MANUAL_CHANGE, NOW, found,
                                                  trusted_patterns=other).extra


def test_the_partition_comes_from_the_items_arn_else_the_authors() -> None:
    gov = replace(SG_CHANGE, region="us-gov-west-1", arn="arn:aws-us-gov:ec2:us-gov-west-1:1:security-group/sg-0abc")
    assert build_outcome(job(gov), UNATTRIBUTED_CHANGE, NOW, None).partition == "aws-us-gov"
    china_user = replace(ALICE, arn="arn:aws-cn:iam::1:user/alice")
    found = Attribution(verdict=None, principal=china_user, events=(), via="resource")
    assert build_outcome(job(replace(SG_CHANGE, arn=None)), MANUAL_CHANGE, NOW, found).partition == "aws-cn"
    assert build_outcome(job(), MANUAL_CHANGE, NOW, found).partition == "aws", "the item's ARN wins"
    assert build_outcome(job(replace(SG_CHANGE, arn=None)), UNATTRIBUTED_CHANGE, NOW, None).partition == "aws"


def test_an_item_without_a_capture_time_or_properties_still_builds() -> None:
    bare = replace(SG_CHANGE, capture_time=None, changed_properties=(), resource_name=None)
    outcome = build_outcome(replace(job(bare), archive_bucket=None, archive_key=None), UNATTRIBUTED_CHANGE, NOW, None)
    assert (outcome.capture_time, outcome.changed_properties, outcome.resource_name) == (None, (), None)
    assert (outcome.archive_bucket, outcome.archive_key) == (None, None)
