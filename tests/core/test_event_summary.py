"""``summary_of``: the one builder of what an alert shows of a CloudTrail record (direct and Config paths)."""

from __future__ import annotations

from datetime import datetime, timezone

from chalicelib.core.attribution import Attribution
from chalicelib.core.change_outcomes import build_outcome
from chalicelib.core.jobs import LookupJob
from chalicelib.core.model import ConfigChange, TrailEvent
from chalicelib.core.outcomes import EventSummary, summary_of
from chalicelib.core.rules import DirectRules, direct_outcome
from chalicelib.core.settings import Settings
from chalicelib.parsing.cloudtrail import parse_record

NOW = datetime(2025, 3, 2, 9, 0, tzinfo=timezone.utc)
ACCT = "111122223333"
RECORD = {
    "eventVersion": "1.08", "eventID": "0b8f7a7e-52a4-4f0f-9d55-d1b3e0b8a001",
    "eventName": "AuthorizeSecurityGroupIngress", "eventSource": "ec2.amazonaws.com",
    "eventTime": "2025-03-02T08:10:00Z", "awsRegion": "eu-west-1",
    "sourceIPAddress": "198.51.100.7", "userAgent": "aws-cli/2.15.0", "recipientAccountId": ACCT,
    "errorCode": "Client.UnauthorizedOperation", "errorMessage": "You are not authorized",
    "userIdentity": {"type": "IAMUser", "arn": f"arn:aws:iam::{ACCT}:user/nina", "accountId": ACCT, "userName": "nina"},
    "requestParameters": {"groupId": "sg-0abc", "ipPermissions": {"items": [{"fromPort": 22}]}},
}


def event(**changes) -> TrailEvent:
    parsed = parse_record({**RECORD, **changes}, "test")
    assert isinstance(parsed, TrailEvent)
    return parsed


def test_summary_of_a_record() -> None:
    assert summary_of(event()) == EventSummary(
        event_id="0b8f7a7e-52a4-4f0f-9d55-d1b3e0b8a001", event_name="AuthorizeSecurityGroupIngress",
        event_time="2025-03-02T08:10:00Z", event_source="ec2.amazonaws.com", region="eu-west-1",
        source_ip="198.51.100.7", user_agent="aws-cli/2.15.0", error_code="Client.UnauthorizedOperation",
        error_message="You are not authorized",
        request_parameters={"groupId": "sg-0abc", "ipPermissions": {"items": [{"fromPort": 22}]}},
    )


def test_an_unreadable_event_time_is_shown_as_written() -> None:
    assert summary_of(event(eventTime="Mar 32, 2024 25:61:00 XM")).event_time == "Mar 32, 2024 25:61:00 XM"
    assert summary_of(event(eventTime=None)).event_time is None


def test_missing_and_wrong_typed_fields_are_absent() -> None:
    summary = summary_of(event(sourceIPAddress=None, userAgent=["x"], errorCode={"c": 1}, requestParameters=None))
    assert (summary.source_ip, summary.user_agent, summary.error_code, summary.request_parameters) == (
        None, None, None, None)


def test_direct_and_config_outcomes_show_a_record_alike() -> None:
    record = event(errorCode=None, errorMessage=None)
    direct = direct_outcome(record, Settings(), DirectRules(), NOW)
    assert direct is not None and direct.events == (summary_of(record),)
    change = ConfigChange(source="t", message_type=None, account=ACCT, region="eu-west-1",
                          resource_type="AWS::EC2::SecurityGroup", resource_id="sg-0abc", resource_name=None,
                          arn=None, capture_time=NOW, change_type="UPDATE", status=None)
    job = LookupJob(change=change, change_key="k", arrived_at=NOW)
    found = Attribution(verdict=None, principal=record.principal, events=(record,), via="resource")
    config = build_outcome(job, "manual_change", NOW, found)
    assert config.events == (summary_of(record),)
