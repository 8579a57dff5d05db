"""``adapters.cloudtrail.LookupClient`` on a real boto3 client answered by ``FakeCloudTrail`` (moto has no
LookupEvents): pages, windows, pacing per region, throttling backoff, unreadable entries."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError
from memory_world import START, trail_entry

from chalicelib.adapters.aws import ClientFactory
from chalicelib.adapters.cloudtrail import BACKOFF, MIN_INTERVAL, LookupClient, Throttled
from chalicelib.adapters.memory import ManualClock
from chalicelib.core.model import TrailEvent
from mcd_tools.fake_cloudtrail import FakeCloudTrail, entries_from_scenario

NOW = START + timedelta(hours=1)
ACCOUNT_OF_ENTRIES = "123456789012"  # memory_world.ACCOUNT, whose records calls_on makes


def client_on(items: list[dict[str, Any]], clock: Any, sleep: Any) -> tuple[LookupClient, FakeCloudTrail]:
    trail = FakeCloudTrail(entries_from_scenario(items), clock)
    factory = ClientFactory("us-east-1", on_create=lambda service, region, client: trail.attach(client))
    return LookupClient(lambda region: factory.client("cloudtrail", region), clock, sleep), trail


def calls_on(group: str, count: int, *, region: str = "us-east-1") -> list[dict[str, Any]]:
    return [trail_entry(group, START + timedelta(seconds=n), event_id=f"{group}-{n:03d}", visible_after=60,
                        region=region) for n in range(count)]


def test_every_page_is_read_newest_first() -> None:
    clock = ManualClock(NOW)
    lookups, trail = client_on(calls_on("sg-1", 120), clock, clock.sleep)
    events, complete = lookups.lookup("us-east-1", "ResourceName", "sg-1")
    assert complete and [e.event_id for e in events] == [f"sg-1-{n:03d}" for n in reversed(range(120))]
    assert lookups.stats.calls == trail.calls == 3
    assert all(isinstance(e, TrailEvent) and e.source == "lookup:us-east-1" for e in events)


def test_a_lookup_stops_after_max_pages_and_says_so() -> None:
    clock = ManualClock(NOW)
    lookups, _ = client_on(calls_on("sg-1", 120), clock, clock.sleep)
    events, complete = lookups.lookup("us-east-1", "ResourceName", "sg-1", max_pages=2)
    assert not complete and len(events) == 100 and events[-1].event_id == "sg-1-020"


def test_the_window_is_inclusive_and_only_visible_calls_are_seen() -> None:
    clock = ManualClock(START + timedelta(seconds=65))  # calls 0..5 are visible (60 s after they were made)
    lookups, _ = client_on(calls_on("sg-1", 20) + calls_on("sg-2", 3), clock, clock.sleep)
    events, complete = lookups.lookup("us-east-1", "ResourceName", "sg-1", START + timedelta(seconds=2),
                                      START + timedelta(seconds=4))
    assert complete and [e.event_id for e in events] == ["sg-1-004", "sg-1-003", "sg-1-002"]
    everything, _ = lookups.lookup("us-east-1", "ResourceName", "sg-1")
    assert len(everything) == 6


def test_regions_are_separate() -> None:
    clock = ManualClock(NOW)
    lookups, _ = client_on(calls_on("sg-1", 2) + calls_on("sg-1", 3, region="eu-west-1"), clock, clock.sleep)
    assert len(lookups.lookup("eu-west-1", "ResourceName", "sg-1")[0]) == 3
    assert len(lookups.lookup("us-east-1", "ResourceName", "sg-1")[0]) == 2


def test_calls_are_paced_per_region() -> None:
    clock = ManualClock(NOW)
    lookups, trail = client_on(calls_on("sg-1", 120), clock, clock.sleep)
    lookups.lookup("us-east-1", "ResourceName", "sg-1")
    assert clock.slept == pytest.approx(2 * MIN_INTERVAL), "three pages, half a second apart"
    lookups.lookup("eu-west-1", "ResourceName", "sg-1")
    assert clock.slept == pytest.approx(2 * MIN_INTERVAL), "another region is not held back"
    assert trail.throttled == 0


def test_throttling_backs_off_then_gives_up_as_retryable() -> None:
    clock = ManualClock(NOW)
    slept: list[float] = []
    lookups, trail = client_on(calls_on("sg-1", 120), clock, slept.append)  # time stands still: throttled
    with pytest.raises(Throttled, match="throttled 4 times in us-east-1"):
        lookups.lookup("us-east-1", "ResourceName", "sg-1")
    assert lookups.stats.throttled == trail.throttled == 4
    assert [s for s in slept if s >= 1] == list(BACKOFF)


def test_throttling_that_passes_reads_on() -> None:
    clock = ManualClock(NOW)

    def sleep(seconds: float) -> None:  # pacing waits take no time (so the third page is throttled); backoffs do
        if seconds >= BACKOFF[0]:
            clock.advance(seconds)

    lookups, _ = client_on(calls_on("sg-1", 120), clock, sleep)
    events, complete = lookups.lookup("us-east-1", "ResourceName", "sg-1")
    assert complete and len(events) == 120 and lookups.stats.throttled >= 1


def test_other_errors_are_raised_at_once() -> None:
    clock = ManualClock(NOW)
    lookups, _ = client_on([], clock, clock.sleep)
    with pytest.raises(ClientError, match="InvalidLookupAttributesException"):
        lookups.lookup("us-east-1", "NotAnAttribute", "x")
    assert lookups.stats.calls == 1


def test_unreadable_entries_are_skipped_and_outer_fields_fill_gaps() -> None:
    clock = ManualClock(NOW)
    factory = ClientFactory("us-east-1")
    client = factory.client("cloudtrail")
    good = calls_on("sg-1", 1)[0]["record"]

    class Reply:
        status_code, headers, raw, content, text = 200, {}, None, b"", ""

    page = {"Events": [{"CloudTrailEvent": "not json"}, {"EventId": "x", "CloudTrailEvent": None},
                       {"EventId": good["eventID"], "CloudTrailEvent": json.dumps(good)}]}
    client.meta.events.register("before-call.cloudtrail.LookupEvents", lambda **_: (Reply(), page))
    lookups = LookupClient(lambda region: client, clock, clock.sleep)
    events, complete = lookups.lookup("us-east-1", "EventId", good["eventID"])
    assert complete and [e.event_id for e in events] == ["x", good["eventID"]]


class FakeSts:
    """STS that hands out credentials for some accounts' roles and refuses the rest."""

    def __init__(self, allowed: set[str], clock: ManualClock) -> None:
        self.allowed, self.clock, self.assumed = allowed, clock, []

    def assume_role(self, RoleArn: str, RoleSessionName: str) -> dict[str, Any]:
        self.assumed.append(RoleArn)
        if RoleArn.split(":")[4] not in self.allowed:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "not trusted"}}, "AssumeRole")
        expires = self.clock.now() + timedelta(hours=1)
        return {"Credentials": {"AccessKeyId": f"AKIA{RoleArn.split(':')[4]}", "SecretAccessKey": "s",
                                "SessionToken": "t", "Expiration": expires}}


def cross_account_client(clock: ManualClock, sts: FakeSts, made: list[tuple[str, str]]) -> LookupClient:
    from chalicelib.adapters.cloudtrail import CrossAccount

    class Answers:
        def __init__(self, key: str) -> None:
            self.key = key

        def lookup_events(self, **_: Any) -> dict[str, Any]:
            return {"Events": [{"EventId": f"from-{self.key}", "EventName": "PutBucketPolicy"}]}

    def client_with(region: str, credentials: dict[str, Any]) -> Answers:
        made.append((region, credentials["AccessKeyId"]))
        return Answers(credentials["AccessKeyId"])

    cross = CrossAccount(home_account="150432786091", role_name=lambda: "mcd-lookup", sts=lambda: sts,
                         client_with=client_with)
    return LookupClient(lambda region: Answers("home"), clock, clock.sleep, cross)


def test_another_accounts_history_is_read_through_its_lookup_role_with_cached_credentials() -> None:
    clock = ManualClock(NOW)
    sts, made = FakeSts({"603829174455"}, clock), []
    lookups = cross_account_client(clock, sts, made)
    (home,), _ = lookups.lookup("ca-central-1", "ResourceName", "b", account="150432786091")
    (member,), _ = lookups.lookup("ca-central-1", "ResourceName", "b", account="603829174455")
    lookups.lookup("ca-central-1", "ResourceName", "c", account="603829174455")
    assert (home.event_id, member.event_id) == ("from-home", "from-AKIA603829174455")
    assert sts.assumed == ["arn:aws:iam::603829174455:role/mcd-lookup"] and made == [
        ("ca-central-1", "AKIA603829174455")], "one role session and one client per account and region"
    clock.advance(3600)
    lookups.lookup("ca-central-1", "ResourceName", "c", account="603829174455")
    assert len(sts.assumed) == 2, "assumed again before the credentials expire"


def test_an_account_whose_role_cannot_be_assumed_is_unreachable_with_the_reason_once() -> None:
    from chalicelib.adapters.cloudtrail import AccountUnreachable

    clock = ManualClock(NOW)
    sts = FakeSts(set(), clock)
    lookups = cross_account_client(clock, sts, [])
    for _ in range(3):
        with pytest.raises(AccountUnreachable) as caught:
            lookups.lookup("ca-central-1", "ResourceName", "sg-1", account="829304715566")
    assert caught.value.account == "829304715566" and "AccessDenied" in caught.value.reason
    assert len(sts.assumed) == 1, "a refusal is remembered for a while: one try, not one per item"


def test_on_moto_the_lookup_role_is_assumed_through_sts_and_reads_only_that_accounts_history() -> None:
    from moto import mock_aws

    from chalicelib.adapters.cloudtrail import CrossAccount
    from mcd_tools.fake_cloudtrail import LookupRoles

    member, home = ACCOUNT_OF_ENTRIES, "999999999999"
    with mock_aws():
        clock = ManualClock(NOW)
        trail = FakeCloudTrail(entries_from_scenario(calls_on("sg-9", 3)), clock, home_account=home)
        roles = LookupRoles([member], "mcd-lookup", clock)

        def on_create(service: str, region: Any, client: Any) -> None:
            if service == "cloudtrail":
                trail.attach(client, roles.account_of(client))
            elif service == "sts":
                roles.attach(client)

        factory = ClientFactory("us-east-1", on_create=on_create)
        cross = CrossAccount(home_account=home, role_name=lambda: "mcd-lookup", sts=lambda: factory.client("sts"),
                             client_with=lambda region, creds: factory.with_credentials("cloudtrail", region, creds))
        lookups = LookupClient(lambda region: factory.client("cloudtrail", region), clock, clock.sleep, cross)
        events, _ = lookups.lookup("us-east-1", "ResourceName", "sg-9", account=member)
        assert len(events) == 3, "the member's history, read with its role"
        assert lookups.lookup("us-east-1", "ResourceName", "sg-9")[0] == [], "the home account holds none of it"
