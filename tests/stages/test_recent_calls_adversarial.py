"""The recent-calls index under attack (D29): a person who stuffs a call with identifiers, a record forged into
the trail's log group under the person's eventID, and records that break the index for their neighbours."""

from __future__ import annotations

import base64
import copy
import gzip
import json
from datetime import timedelta
from typing import Any

from memory_world import ACCOUNT, CAPTURE, START, lookup_job, slack_outcomes, trail_entry, world
from test_recent_calls import TRUSTED, at, decide_at, decisions, streamed

from chalicelib.core import stream
from chalicelib.core.attribution import CallIndex, item_keys
from chalicelib.memory_deps import MemoryDeps
from chalicelib.parsing.cloudtrail import parse_lookup_event, parse_record
from chalicelib.stages.direct import direct


def via_logs(deps: MemoryDeps, *records: dict[str, Any]) -> None:
    """``records`` as a CloudWatch Logs subscription delivers them (anyone who may write to the group can)."""
    data = {"messageType": "DATA_MESSAGE", "owner": ACCOUNT, "logGroup": "trail", "logStream": "x",
            "subscriptionFilters": ["mcd"],
            "logEvents": [{"id": str(i), "timestamp": 0, "message": json.dumps(r)} for i, r in enumerate(records)]}
    direct({"awslogs": {"data": base64.b64encode(gzip.compress(json.dumps(data).encode())).decode()}}, deps,
           "cloudwatch_logs")


def stuffed(group: str) -> dict[str, Any]:
    """A person's CreateTags on ``group`` carrying 40 ARN-looking tag values: ARNs sort first, the group's id
    would be the 41st identifier."""
    entry = trail_entry(group, START + timedelta(seconds=9), event_id="person-1", visible_after=600,
                        event_name="CreateTags")
    entry["record"]["requestParameters"] = {
        "resourcesSet": {"items": [{"resourceId": group}]},
        "tagSet": {"items": [{"key": f"k{i}", "value": f"arn:{i}"} for i in range(40)]}}
    return entry


def run_until_final(deps: MemoryDeps) -> None:
    for minute in range(2, 150):
        decide_at(deps, CAPTURE + timedelta(minutes=minute, seconds=5))


def test_a_call_stuffed_with_identifiers_is_still_matched_on_the_resource_it_changed() -> None:
    apply = trail_entry("sg-0aaa1111", START + timedelta(seconds=5), role="terraform", visible_after=600)
    person = stuffed("sg-0aaa1111")
    deps = world(trail=[apply, person], settings=TRUSTED)
    at(deps, START + timedelta(seconds=20))
    streamed(deps, apply["record"])
    streamed(deps, person["record"])
    deps.queue("lookup_queue").send(lookup_job("sg-0aaa1111").to_json())
    decide_at(deps, CAPTURE + timedelta(minutes=2, seconds=5))
    assert decisions(deps) == ["manual_change"], "decided from the stream's overflow row, which names the group"
    rows = stream.call_rows(parse_record(person["record"], "t"))
    overflow = [r for r in rows if r.pk.endswith(stream.OVERFLOW)]
    assert len(rows) == stream.MAX_KEYS + 1 and "sg-0aaa1111" in json.loads(overflow[0].attrs["keys"])


def test_a_forged_record_under_the_persons_event_id_cannot_suppress_their_change() -> None:
    apply = trail_entry("sg-0aaa1111", START + timedelta(seconds=5), role="terraform", visible_after=600)
    person = trail_entry("sg-0aaa1111", START + timedelta(seconds=9), event_id="person-1", visible_after=600,
                         event_name="CreateTags")
    deps = world(trail=[apply, person], settings=TRUSTED)
    at(deps, START + timedelta(seconds=20))
    streamed(deps, apply["record"])
    streamed(deps, person["record"])
    forged = copy.deepcopy(apply["record"]) | {k: person["record"][k] for k in
                                              ("eventID", "eventTime", "eventName", "requestParameters")}
    at(deps, START + timedelta(seconds=30))
    via_logs(deps, forged)
    deps.queue("lookup_queue").send(lookup_job("sg-0aaa1111").to_json())
    decide_at(deps, CAPTURE + timedelta(minutes=2, seconds=5))
    assert "suppressed" not in decisions(deps), "two records claim person-1: the stream decides nothing"
    run_until_final(deps)
    assert [o["kind"] for o in slack_outcomes(deps)] == ["manual_change"], decisions(deps)


def test_cloudtrails_own_copy_of_a_call_stands_for_it_over_a_streamed_one() -> None:
    genuine = trail_entry("sg-0ccc3333", START, event_id="e-1")["record"]
    cut = copy.deepcopy(genuine) | {"requestParameters": None, "userIdentity": {"type": "AssumedRole",
                                    "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/terraform/x"}}
    index = CallIndex()
    index.add(parse_record(cut, "stream"))
    change = lookup_job("sg-0ccc3333").change
    assert index.candidates(change, item_keys(change)) == []
    history = parse_lookup_event({"EventId": "e-1", "CloudTrailEvent": json.dumps(genuine),
                                  "Resources": [{"ResourceType": "AWS::EC2::SecurityGroup",
                                                 "ResourceName": "sg-0ccc3333"}]}, "lookup:eu-west-1")
    version = index.version
    index.add(history)
    (found,) = index.candidates(change, item_keys(change))
    assert found.source == "lookup:eu-west-1" and found.principal.arn.endswith("user/alice")
    assert index.version > version, "decisions made on the streamed copy are made again"


def test_a_poison_record_never_keeps_its_neighbours_out_of_the_index() -> None:
    good = trail_entry("sg-0aaa1111", START + timedelta(seconds=9), event_id="person-1")["record"]
    text_context = copy.deepcopy(good) | {"eventID": "p1"}
    text_context["userIdentity"] = {**text_context["userIdentity"], "sessionContext": "x", "pad": "y" * 5000}
    long_region = copy.deepcopy(good) | {"eventID": "p2", "awsRegion": "us-" + "a" * 3000 + "-1"}
    deps = world()
    via_logs(deps, text_context, long_region, good)
    keys = {row["pk"] for row in deps.state.with_prefix("ix#")}
    assert any(pk.endswith("#sg-0aaa1111") for pk in keys), "the genuine record is indexed"
    assert all(len(pk.encode()) < 1024 for pk in keys), "no key DynamoDB would refuse (the batch with it)"
    assert stream.call_rows(parse_record(long_region, "t")) == []
