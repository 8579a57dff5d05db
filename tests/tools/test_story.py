"""Scenario builders: well-formed deliveries and CloudTrail entries, and the demo's and benchmark's stories."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from typing import Any

from chalicelib.core.model import ConfigChange, TrailEvent
from chalicelib.core.timeutil import parse_time
from chalicelib.parsing.cloudtrail import parse_record
from chalicelib.parsing.config_notifications import parse_config_message
from mcd_tools import story

T0 = datetime(2024, 11, 29, 10, 0, tzinfo=timezone.utc)


def config_items(delivery: dict[str, Any]) -> list[ConfigChange]:
    return [i for i in parse_config_message(delivery["message"], "test") if isinstance(i, ConfigChange)]


def test_event_ids_are_stable_uuid_shaped_and_distinct() -> None:
    first = story.event_id("AuthorizeSecurityGroupIngress", T0)
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", first)
    assert story.event_id("AuthorizeSecurityGroupIngress", T0) == first
    assert story.event_id("AuthorizeSecurityGroupIngress", T0 + timedelta(seconds=1)) != first


def test_a_trail_entry_becomes_visible_after_its_delay_and_parses_as_its_actor() -> None:
    actor = story.sso_human("priya@example.com")
    entry = story.trail(actor, T0, "PutBucketTagging", "s3.amazonaws.com", {"bucketName": "b"},
                        [("AWS::S3::Bucket", "b")], delay=timedelta(minutes=7), error="AccessDenied")
    assert parse_time(entry["visible_at"]) == T0 + timedelta(minutes=7)
    assert entry["resources"] == [{"ResourceType": "AWS::S3::Bucket", "ResourceName": "b"}]
    assert entry["username"] == "priya@example.com"
    event = parse_record(entry["record"], "test")
    assert isinstance(event, TrailEvent)
    assert (event.event_name, event.event_time, event.region, event.error_code) == (
        "PutBucketTagging", T0, story.REGION, "AccessDenied")
    assert event.principal.arn == actor.identity["arn"]
    assert event.principal.issuer_arn == actor.identity["sessionContext"]["sessionIssuer"]["arn"]
    assert entry["record"]["responseElements"] == {"_return": True}
    read = story.trail(actor, T0, "GetBucketTagging", "s3.amazonaws.com", {}, [], read_only=True)
    assert read["record"]["responseElements"] is None and "errorCode" not in read["record"]


def test_an_ingress_pair_names_the_same_group_and_arrives_forty_seconds_after_capture() -> None:
    delivery, entry = story.ingress("sg-0abc", "web", story.terraform(), T0, "0.0.0.0/0", 22)
    [item] = config_items(delivery)
    assert (item.resource_type, item.resource_id, item.resource_name, item.account, item.region) == (
        "AWS::EC2::SecurityGroup", "sg-0abc", "web", story.ACCOUNT, story.REGION)
    assert item.capture_time == T0 + timedelta(seconds=50)
    assert parse_time(delivery["at"]) == item.capture_time + timedelta(seconds=40)
    assert delivery["via"] == "sns"
    assert [p.path for p in item.changed_properties] == ["Configuration.IpPermissions.1"]
    assert entry["record"]["requestParameters"]["groupId"] == "sg-0abc"
    assert entry["resources"] == [{"ResourceType": "AWS::EC2::SecurityGroup", "ResourceName": "sg-0abc"}]
    assert parse_time(entry["visible_at"]) == T0 + timedelta(minutes=5)


def test_an_iam_role_change_is_global_and_recorded_in_us_east_1() -> None:
    delivery, entry = story.role_policy("reporting", "AROAEXAMPLE1", story.iam_user("kim"), T0)
    [item] = config_items(delivery)
    assert (item.resource_type, item.region, item.resource_id) == ("AWS::IAM::Role", "global", "AROAEXAMPLE1")
    assert entry["record"]["awsRegion"] == "us-east-1"
    assert ("AWS::IAM::Role", "reporting") in {(r["ResourceType"], r["ResourceName"]) for r in entry["resources"]}


def test_the_demo_story_is_a_valid_scenario_with_its_expectations() -> None:
    demo = story.demo_story()
    kinds = [o["kind"] for o in demo["expect"]["outcomes"]]
    assert (kinds.count("suppressed"), kinds.count("manual_change"), kinds.count("unattributed_change")) == (12, 2, 1)
    assert demo["expect"]["max_slack_messages"] == 3
    assert len(demo["deliveries"]) == 15 and len(demo["cloudtrail"]) == 14, "the orphan's call is never visible"
    assert [d["at"] for d in demo["deliveries"]] == sorted(d["at"] for d in demo["deliveries"])
    last = max(parse_time(d["at"]) for d in demo["deliveries"])  # type: ignore[type-var]
    assert parse_time(demo["end"]) == last + timedelta(hours=2)
    assert demo["settings"]["trusted_principals"] == [f"arn:aws:iam::{story.ACCOUNT}:role/ci/{story.TERRAFORM_ROLE}"]
    json.dumps(demo)  # a scenario file is JSON


def test_a_burst_is_deterministic_and_has_the_people_asked_for() -> None:
    burst = story.burst_story(30, humans=4, seed=3, min_delay=2, max_delay=4)
    assert burst == story.burst_story(30, humans=4, seed=3, min_delay=2, max_delay=4)
    assert burst != story.burst_story(30, humans=4, seed=4, min_delay=2, max_delay=4)
    expected = burst["expect"]["outcomes"]
    assert len(burst["deliveries"]) == len(burst["cloudtrail"]) == len(expected) == 30
    assert [o["kind"] for o in expected].count("manual_change") == 4 and burst["expect"]["max_slack_messages"] == 4
    for entry in burst["cloudtrail"]:
        lag = parse_time(entry["visible_at"]) - parse_time(entry["record"]["eventTime"])  # type: ignore[operator]
        assert timedelta(minutes=2) <= lag <= timedelta(minutes=4)
    times = [parse_time(e["record"]["eventTime"]) for e in burst["cloudtrail"]]
    assert max(times) - min(times) < timedelta(minutes=3)  # type: ignore[operator]
