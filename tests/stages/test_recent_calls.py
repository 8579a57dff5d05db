"""The recent-calls index on the fakes: the direct stage fills it, the lookup stage decides from it.

Stream before history (FORMAT.md): a streamed call may be a change's cause at once. An untrusted one is
alerted on the first look with no ``LookupEvents`` at all; a suppression waits until the stream is complete
evidence; without a flowing stream, CloudTrail's history decides as before.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from memory_world import ACCOUNT, CAPTURE, REGION, START, TRUSTED_ROLE, lookup_job, slack_outcomes, trail_entry, world

from chalicelib.memory_deps import MemoryDeps
from chalicelib.stages.direct import direct
from chalicelib.stages.lookup import lookup
from chalicelib.stages.shared.recent_calls import recall

TRUSTED = {"trusted_principals": [TRUSTED_ROLE]}


def streamed(deps: MemoryDeps, record: dict[str, Any]) -> None:
    """``record`` delivered by EventBridge to ``api_call``, at the current time."""
    direct({"version": "0", "detail-type": "AWS API Call via CloudTrail", "source": "aws.ec2", "account": ACCOUNT,
            "region": REGION, "detail": record}, deps, "eventbridge")


def at(deps: MemoryDeps, when: Any) -> None:
    deps.manual_clock.advance(when.timestamp() - deps.clock())


def decide_at(deps: MemoryDeps, when: Any) -> dict[str, int]:
    at(deps, when)
    return lookup(deps)


def kinds(deps: MemoryDeps) -> list[tuple[str, str | None]]:
    """The Config path's alerts queued for Slack (the streamed call may also be an ``api_call`` of its own)."""
    return [(o["kind"], o["principal_arn"]) for o in slack_outcomes(deps) if o["kind"] != "api_call"]


def decisions(deps: MemoryDeps) -> list[str]:
    """Every outcome decided, suppressions (which Slack never sees) included, in the order of their markers."""
    return [str(item["kind"]) for item in deps.state.with_prefix("out#")]


def test_a_persons_streamed_call_is_alerted_on_the_first_look_without_lookup_events() -> None:
    person = trail_entry("sg-0aaa", START + timedelta(seconds=5), visible_after=1500)
    deps = world(trail=[person], settings=TRUSTED)
    at(deps, START + timedelta(seconds=30))
    streamed(deps, person["record"])
    deps.queue("lookup_queue").send(lookup_job("sg-0aaa").to_json())
    assert decide_at(deps, CAPTURE + timedelta(seconds=50))["decided"] == 1
    assert kinds(deps) == [("manual_change", f"arn:aws:iam::{ACCOUNT}:user/alice")]
    assert deps.lookups.stats.calls == 0


def test_a_trusted_streamed_call_is_suppressed_once_the_stream_is_complete() -> None:
    apply = trail_entry("sg-0bbb", START + timedelta(seconds=5), role="terraform", visible_after=1500)
    deps = world(trail=[apply], settings=TRUSTED)
    at(deps, START + timedelta(seconds=20))
    streamed(deps, apply["record"])
    deps.queue("lookup_queue").send(lookup_job("sg-0bbb").to_json())
    assert decide_at(deps, CAPTURE + timedelta(seconds=50))["decided"] == 0, "not complete yet: it waits"
    assert decide_at(deps, CAPTURE + timedelta(minutes=2, seconds=5))["decided"] == 1
    assert decisions(deps) == ["suppressed"]
    assert deps.lookups.stats.calls == 0


def test_a_later_streamed_record_completes_the_evidence_at_once() -> None:
    apply = trail_entry("sg-0ccc", START + timedelta(seconds=5), role="terraform", visible_after=1500)
    later = trail_entry("sg-0other", CAPTURE + timedelta(seconds=10), role="terraform", event_id="later-1")
    deps = world(trail=[apply], settings=TRUSTED)
    at(deps, START + timedelta(seconds=20))
    streamed(deps, apply["record"])
    at(deps, CAPTURE + timedelta(seconds=30))
    streamed(deps, later["record"])
    deps.queue("lookup_queue").send(lookup_job("sg-0ccc").to_json())
    assert decide_at(deps, CAPTURE + timedelta(seconds=50))["decided"] == 1
    assert deps.lookups.stats.calls == 0


def test_without_a_flowing_stream_the_history_decides() -> None:
    apply = trail_entry("sg-0ddd", START + timedelta(seconds=5), role="terraform", visible_after=60)
    deps = world(trail=[apply], settings=TRUSTED)
    deps.queue("lookup_queue").send(lookup_job("sg-0ddd").to_json())
    assert decide_at(deps, CAPTURE + timedelta(minutes=3))["decided"] == 1
    assert decisions(deps) == ["suppressed"]
    assert deps.lookups.stats.calls > 0


def test_a_suppression_from_the_stream_is_revised_when_the_history_shows_a_person() -> None:
    """The stream missed the person's call (a lost delivery): the watch reads the history and alerts."""
    apply = trail_entry("sg-0eee", START + timedelta(seconds=5), role="terraform", visible_after=1500)
    person = trail_entry("sg-0eee", START + timedelta(seconds=9), event_id="person-1", visible_after=600)
    deps = world(trail=[apply, person], settings=TRUSTED)
    at(deps, START + timedelta(seconds=20))
    streamed(deps, apply["record"])
    deps.queue("lookup_queue").send(lookup_job("sg-0eee").to_json())
    decide_at(deps, CAPTURE + timedelta(minutes=2, seconds=5))
    assert decisions(deps) == ["suppressed"] and deps.lookups.stats.calls == 0
    for minute in range(3, 60):
        decide_at(deps, CAPTURE + timedelta(minutes=minute))
    assert deps.lookups.stats.calls == 0, "the one history check waits until late calls are visible"
    for minute in range(60, 91):
        decide_at(deps, CAPTURE + timedelta(minutes=minute))
    assert [o["kind"] for o in slack_outcomes(deps)] == ["manual_change"], "revised: the alert goes out"
    assert deps.lookups.stats.calls > 0


def test_a_suppression_from_the_stream_is_checked_in_the_history_once() -> None:
    apply = trail_entry("sg-0eef", START + timedelta(seconds=5), role="terraform", visible_after=300)
    deps = world(trail=[apply], settings=TRUSTED)
    at(deps, START + timedelta(seconds=20))
    streamed(deps, apply["record"])
    deps.queue("lookup_queue").send(lookup_job("sg-0eef").to_json())
    decide_at(deps, CAPTURE + timedelta(minutes=2, seconds=5))
    assert decisions(deps) == ["suppressed"]
    for minute in range(3, 150):
        decide_at(deps, CAPTURE + timedelta(minutes=minute))
    assert decisions(deps) == ["suppressed"] and slack_outcomes(deps) == []
    assert deps.lookups.stats.calls == 1, "one check, read to its end, and the watch is over"


def test_recall_reads_only_the_items_account_region_and_window() -> None:
    deps = world()
    mine = trail_entry("sg-0fff", START + timedelta(seconds=5))["record"]
    elsewhere = {**mine, "eventID": "other-region", "awsRegion": "eu-west-1"}
    other_account = {**mine, "eventID": "other-account", "recipientAccountId": "999999999999"}
    too_early = {**mine, "eventID": "too-early", "eventTime": "2024-05-01T11:00:00Z"}
    for record in (mine, elsewhere, other_account, too_early):
        streamed(deps, record)
    found = recall(deps, ACCOUNT, REGION, ["sg-0fff"], (START, CAPTURE), CAPTURE)
    assert [e.event_id for e in found.events] == [mine["eventID"]]
    assert "sg-0fff" in found.keys[mine["eventID"]]


def test_where_nothing_streamed_in_the_window_one_query_answers_instead_of_one_per_identifier() -> None:
    deps = world()
    found = recall(deps, ACCOUNT, REGION, ["sg-0aaa", "sg-0aaa-name", "arn:aws:ec2:x"], (START, CAPTURE), CAPTURE)
    assert found.events == () and not found.complete and not found.flowing
    assert deps.state.queries == 3, "the window's flow rows, then the hour before and after the capture"
