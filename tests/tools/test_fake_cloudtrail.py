"""The replay's file-backed CloudTrail ``LookupEvents`` keeps the real API's semantics, seen through boto3."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import boto3
import pytest
import time_machine
from botocore.exceptions import ClientError
from moto import mock_aws

from mcd_tools.fake_cloudtrail import FakeCloudTrail, entries_from_scenario

ACCT = "318472906155"
START = datetime(2024, 3, 12, 14, 0, tzinfo=timezone.utc)
NOW = START + timedelta(hours=1)


def iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def record(n: int, when: datetime, *, name: str = "AuthorizeSecurityGroupIngress", region: str = "us-east-2",
           read_only: bool | None = False, identity: dict[str, Any] | None = None) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "eventVersion": "1.09",
        "userIdentity": identity or {"type": "IAMUser", "principalId": "AIDAXV44465ZZ2X35TOJ6",
                                     "arn": f"arn:aws:iam::{ACCT}:user/dmitri.volkov", "accountId": ACCT,
                                     "accessKeyId": "ASIASE42AIPBVMOSU6ZP", "userName": "dmitri.volkov"},
        "eventTime": iso(when), "eventSource": "ec2.amazonaws.com", "eventName": name, "awsRegion": region,
        "requestParameters": {"groupId": f"sg-{n:017x}"}, "responseElements": None,
        "eventID": f"00000000-0000-4000-8000-{n:012d}", "recipientAccountId": ACCT,
    }
    if read_only is not None:
        rec["readOnly"] = read_only
    return rec


def entry(rec: dict[str, Any], visible: datetime = START, resources: list[tuple[str, str]] | None = None,
          username: str | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {
        "visible_at": iso(visible),
        "resources": [{"ResourceType": t, "ResourceName": n} for t, n in
                      (resources if resources is not None else
                       [("AWS::EC2::SecurityGroup", rec["requestParameters"]["groupId"])])],
        "record": rec,
    }
    if username is not None:
        item["username"] = username
    return item


class Harness:
    def __init__(self, items: list[dict[str, Any]], traveller: Any) -> None:
        self.trail = FakeCloudTrail(entries_from_scenario(items), time.time)
        self.traveller = traveller
        self.clients: dict[str, Any] = {}

    def client(self, region: str = "us-east-2") -> Any:
        if region not in self.clients:
            client = boto3.client("cloudtrail", region_name=region)
            self.trail.attach(client)
            self.clients[region] = client
        return self.clients[region]

    def lookup(self, region: str = "us-east-2", *, pace: bool = True, **params: Any) -> dict[str, Any]:
        if pace:
            self.traveller.shift(0.6)  # stay under 2 calls per second per region
        return self.client(region).lookup_events(**params)

    def all_ids(self, region: str = "us-east-2", **params: Any) -> list[str]:
        ids, token = [], None
        while True:
            page = self.lookup(region, **params, **({"NextToken": token} if token else {}))
            ids.extend(e["EventId"] for e in page["Events"])
            token = page.get("NextToken")
            if not token:
                return ids


@pytest.fixture
def traveller() -> Iterator[Any]:
    with mock_aws(), time_machine.travel(NOW, tick=False) as moving:
        yield moving


def harness(traveller: Any, items: list[dict[str, Any]]) -> Harness:
    return Harness(items, traveller)


def error_code(caught: pytest.ExceptionInfo[ClientError]) -> str:
    return caught.value.response["Error"]["Code"]


# --- request rules ------------------------------------------------------------------------------------------


def test_one_lookup_attribute_per_call(traveller):
    h = harness(traveller, [entry(record(1, START))])
    with pytest.raises(ClientError) as caught:
        h.lookup(LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "AuthorizeSecurityGroupIngress"},
                                   {"AttributeKey": "ReadOnly", "AttributeValue": "false"}])
    assert error_code(caught) == "InvalidLookupAttributesException"
    ok = h.lookup(LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "AuthorizeSecurityGroupIngress"}])
    assert [e["EventId"] for e in ok["Events"]] == ["00000000-0000-4000-8000-000000000001"]


def test_start_after_end_is_rejected(traveller):
    h = harness(traveller, [])
    with pytest.raises(ClientError) as caught:
        h.lookup(StartTime=START + timedelta(minutes=5), EndTime=START)
    assert error_code(caught) == "InvalidTimeRangeException"


@pytest.mark.parametrize("attribute, value, expected", [
    ("EventId", "00000000-0000-4000-8000-000000000002", [2]),
    ("EventName", "RevokeSecurityGroupIngress", [2]),
    ("ResourceName", "sg-00000000000000001", [1]),
    ("ResourceType", "AWS::EC2::SecurityGroup", [2, 1]),
    ("Username", "dmitri.volkov", [2, 1]),
    ("EventSource", "ec2.amazonaws.com", [2, 1]),
    ("AccessKeyId", "ASIASE42AIPBVMOSU6ZP", [2, 1]),
    ("ResourceName", "sg-nonexistent", []),
])
def test_each_lookup_attribute_filters(traveller, attribute: str, value: str, expected: list[int]):
    h = harness(traveller, [entry(record(1, START)), entry(record(2, START + timedelta(seconds=5),
                                                                  name="RevokeSecurityGroupIngress"))])
    page = h.lookup(LookupAttributes=[{"AttributeKey": attribute, "AttributeValue": value}])
    assert [e["EventId"] for e in page["Events"]] == [f"00000000-0000-4000-8000-{n:012d}" for n in expected]


# --- window, order, pages -----------------------------------------------------------------------------------


def test_window_is_inclusive_on_event_time(traveller):
    times = [START + timedelta(seconds=s) for s in (59, 60, 90, 120, 121)]
    h = harness(traveller, [entry(record(n, t)) for n, t in enumerate(times, 1)])
    page = h.lookup(StartTime=START + timedelta(seconds=60), EndTime=START + timedelta(seconds=120))
    assert [e["EventId"][-1] for e in page["Events"]] == ["4", "3", "2"]


def test_newest_first(traveller):
    times = [START + timedelta(seconds=s) for s in (30, 10, 50, 20)]
    h = harness(traveller, [entry(record(n, t)) for n, t in enumerate(times, 1)])
    events = h.lookup()["Events"]
    assert [e["EventTime"] for e in events] == sorted((e["EventTime"] for e in events), reverse=True)


def test_pages_of_at_most_fifty_with_next_token(traveller):
    h = harness(traveller, [entry(record(n, START + timedelta(seconds=n))) for n in range(1, 121)])
    first = h.lookup()
    assert len(first["Events"]) == 50 and first.get("NextToken")
    second = h.lookup(NextToken=first["NextToken"])
    third = h.lookup(NextToken=second["NextToken"])
    assert (len(second["Events"]), len(third["Events"])) == (50, 20)
    assert "NextToken" not in third
    ids = [e["EventId"] for page in (first, second, third) for e in page["Events"]]
    assert len(set(ids)) == 120
    assert ids[0].endswith("000000000120") and ids[-1].endswith("000000000001")


def test_max_results_is_respected_and_bounded(traveller):
    h = harness(traveller, [entry(record(n, START + timedelta(seconds=n))) for n in range(1, 8)])
    assert h.all_ids(MaxResults=3) == [f"00000000-0000-4000-8000-{n:012d}" for n in range(7, 0, -1)]
    with pytest.raises(ClientError) as caught:
        h.lookup(MaxResults=51)
    assert error_code(caught) == "InvalidMaxResultsException"


def test_bad_or_foreign_next_token_is_rejected(traveller):
    h = harness(traveller, [entry(record(n, START + timedelta(seconds=n))) for n in range(1, 61)])
    with pytest.raises(ClientError) as caught:
        h.lookup(NextToken="not-a-token")
    assert error_code(caught) == "InvalidNextTokenException"
    token = h.lookup()["NextToken"]
    with pytest.raises(ClientError) as caught:  # a token belongs to the query that produced it
        h.lookup(NextToken=token, LookupAttributes=[{"AttributeKey": "ReadOnly", "AttributeValue": "false"}])
    assert error_code(caught) == "InvalidNextTokenException"


# --- ReadOnly, visibility, regions ----------------------------------------------------------------------------


def test_read_only_is_inferred_for_old_records_and_returned_as_a_string(traveller):
    items = [entry(record(1, START, name="DescribeVolumes", read_only=None)),
             entry(record(2, START + timedelta(seconds=1), name="AttachVolume", read_only=None)),
             entry(record(3, START + timedelta(seconds=2), name="GetConsoleOutput", read_only=True)),
             entry(record(4, START + timedelta(seconds=3), name="ModifyInstanceAttribute", read_only=False))]
    h = harness(traveller, items)
    flags = {e["EventName"]: e["ReadOnly"] for e in h.lookup()["Events"]}
    assert flags == {"DescribeVolumes": "true", "AttachVolume": "false", "GetConsoleOutput": "true",
                     "ModifyInstanceAttribute": "false"}
    writes = h.lookup(LookupAttributes=[{"AttributeKey": "ReadOnly", "AttributeValue": "false"}])
    assert [e["EventName"] for e in writes["Events"]] == ["ModifyInstanceAttribute", "AttachVolume"]


def test_events_are_invisible_until_visible_at(traveller):
    visible = NOW + timedelta(minutes=10)
    h = harness(traveller, [entry(record(1, START), visible=visible), entry(record(2, START))])
    assert [e["EventId"][-1] for e in h.lookup()["Events"]] == ["2"]
    traveller.move_to(visible - timedelta(seconds=1))
    assert [e["EventId"][-1] for e in h.lookup()["Events"]] == ["2"]
    traveller.move_to(visible)
    assert sorted(e["EventId"][-1] for e in h.lookup(pace=False)["Events"]) == ["1", "2"]


def test_each_region_answers_only_for_its_own_records(traveller):
    items = [entry(record(1, START, region="us-east-2")), entry(record(2, START, region="us-east-1")),
             entry(record(3, START, region="us-gov-west-1"))]
    h = harness(traveller, items)
    assert [e["EventId"][-1] for e in h.lookup("us-east-2")["Events"]] == ["1"]
    assert [e["EventId"][-1] for e in h.lookup("us-east-1")["Events"]] == ["2"]
    assert h.lookup("eu-west-1")["Events"] == []


# --- throttling ---------------------------------------------------------------------------------------------


def test_more_than_two_calls_per_second_in_a_region_are_throttled(traveller):
    h = harness(traveller, [entry(record(1, START))])
    h.lookup(pace=False)
    h.lookup(pace=False)
    with pytest.raises(ClientError) as caught:
        h.lookup(pace=False)
    assert error_code(caught) == "ThrottlingException"
    assert h.trail.throttled == 1
    h.lookup("us-east-1", pace=False)  # another region has its own budget
    traveller.shift(1.0)
    assert h.lookup(pace=False)["Events"]


def test_two_calls_per_second_are_allowed_indefinitely(traveller):
    h = harness(traveller, [entry(record(1, START))])
    for _ in range(10):
        h.lookup(pace=False)
        traveller.shift(0.5)
    assert h.trail.throttled == 0 and h.trail.calls == 10


# --- the shape of Events[] ------------------------------------------------------------------------------------


def test_events_are_shaped_like_the_real_api(traveller):
    rec = record(1, START)
    h = harness(traveller, [entry(rec, username="dmitri.volkov")])
    (event,) = h.lookup()["Events"]
    assert event["EventId"] == rec["eventID"]
    assert event["EventName"] == "AuthorizeSecurityGroupIngress"
    assert event["ReadOnly"] == "false"
    assert event["AccessKeyId"] == "ASIASE42AIPBVMOSU6ZP"
    assert event["EventTime"] == START
    assert event["EventSource"] == "ec2.amazonaws.com"
    assert event["Username"] == "dmitri.volkov"
    assert event["Resources"] == [{"ResourceType": "AWS::EC2::SecurityGroup", "ResourceName": "sg-00000000000000001"}]
    assert isinstance(event["CloudTrailEvent"], str)
    assert json.loads(event["CloudTrailEvent"]) == rec


def test_username_defaults_like_event_history(traveller):
    session = {"type": "AssumedRole", "arn": f"arn:aws:sts::{ACCT}:assumed-role/terraform-apply/aws-go-sdk-17",
               "accountId": ACCT, "sessionContext": {"sessionIssuer": {
                   "type": "Role", "arn": f"arn:aws:iam::{ACCT}:role/ci/terraform-apply",
                   "userName": "terraform-apply"}}}
    root = {"type": "Root", "principalId": ACCT, "arn": f"arn:aws:iam::{ACCT}:root", "accountId": ACCT}
    items = [entry(record(1, START)), entry(record(2, START + timedelta(seconds=1), identity=session)),
             entry(record(3, START + timedelta(seconds=2), identity=root))]
    h = harness(traveller, items)
    names = {e["EventId"][-1]: e.get("Username") for e in h.lookup()["Events"]}
    assert names == {"1": "dmitri.volkov", "2": "aws-go-sdk-17", "3": "root"}


def test_records_without_visible_at_or_event_time_are_skipped():
    entries = entries_from_scenario([{"record": record(1, START)},
                                     {"visible_at": iso(START), "record": {"eventID": "x"}},
                                     entry(record(2, START))])
    assert [e.event_id for e in entries] == ["00000000-0000-4000-8000-000000000002"]
