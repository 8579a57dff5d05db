"""``lookup`` on the in-memory fakes: decide, wait, watch, follow up or give up on each queued item.

Jobs are queued as dispatch queues them; CloudTrail is ``FakeCloudTrail`` behind ``MemoryLookups``. The
flows at the end (floods, late authors) replay whole timelines on the fakes in milliseconds; the same
scenarios run through the real handlers on moto in ``tests/e2e/``.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import adversary
import pytest
from adversary import BUCKET, PERSON, flooded_bucket
from memory_world import (
    ACCOUNT,
    CAPTURE,
    START,
    TRUSTED_ROLE,
    change,
    lookup_job,
    queued_json,
    replay,
    slack_outcomes,
    trail_entry,
    world,
)
from scenario_check import differences

from chalicelib.core.jobs import LookupJob, change_key
from chalicelib.memory_deps import MemoryDeps
from chalicelib.stages import lookup as lookup_stage
from chalicelib.stages.lookup import LOOKUPS_FAILED, lookup
from mcd_tools.story import iam_user, ingress, scenario, terraform

TRUSTED = {"trusted_principals": [TRUSTED_ROLE]}


def queue_job(deps: MemoryDeps, job: LookupJob) -> None:
    deps.queue("lookup_queue").send(job.to_json())


def at(deps: MemoryDeps, when: datetime) -> None:
    deps.manual_clock.advance(when.timestamp() - deps.clock())


def waiting_jobs(deps: MemoryDeps) -> list[LookupJob]:
    return [LookupJob.from_json(body) for body in queued_json(deps, "lookup_queue")]


def emitted(deps: MemoryDeps) -> dict[str, str]:
    """Every outcome marker written: ``outcome_id#sk`` → kind."""
    return {f"{item['pk'][4:]}#{item['sk']}": item["kind"] for item in deps.state.with_prefix("out#")}


def test_an_idle_run_only_receives() -> None:
    deps = world()
    assert lookup(deps) == {"jobs": 0, "decided": 0, "waiting": 0, "unattributed": 0, "followups": 0}
    assert deps.lookups.stats.calls == 0 and deps._settings is None


def test_a_persons_call_is_alerted_and_followed_up() -> None:
    deps = world(trail=[trail_entry("sg-0aaa", START + timedelta(seconds=5))], settings=TRUSTED)
    queue_job(deps, lookup_job("sg-0aaa"))
    at(deps, START + timedelta(minutes=6))
    counts = lookup(deps)
    assert (counts["jobs"], counts["decided"]) == (1, 1)
    (alert,) = slack_outcomes(deps)
    assert (alert["kind"], alert["resource_id"], alert["principal_arn"]) == (
        "manual_change", "sg-0aaa", f"arn:aws:iam::{ACCOUNT}:user/alice")
    assert alert["event_ids"] == [f"evt-sg-0aaa-{int((START + timedelta(seconds=5)).timestamp())}"]
    (followup,) = waiting_jobs(deps)
    assert followup.decided_kind == "manual_change" and followup.not_before > deps.now() + timedelta(minutes=3)
    assert followup.not_before.timestamp() % 300 == 0, "on the shared follow-up grid"
    assert deps.queue("lookup_queue").depth()["delayed"] == 1


def test_a_trusted_call_is_suppressed_then_watched_until_the_give_up_time() -> None:
    deps = world(trail=[trail_entry("sg-0eee", START + timedelta(seconds=5), role="terraform")], settings=TRUSTED)
    queue_job(deps, lookup_job("sg-0eee"))
    at(deps, START + timedelta(minutes=6))
    assert lookup(deps)["decided"] == 1
    assert slack_outcomes(deps) == [] and list(emitted(deps).values()) == ["suppressed"]
    (watch,) = waiting_jobs(deps)
    assert watch.is_watch
    for _ in range(120):
        deps.manual_clock.advance(60)
        lookup(deps)
    assert slack_outcomes(deps) == [] and len(deps.queue("lookup_queue")) == 0, "final after the give-up time"


def test_a_watched_suppression_becomes_an_alert_when_a_persons_call_shows_up() -> None:
    trail = [trail_entry("sg-0w", START + timedelta(seconds=5), role="terraform", visible_after=60),
             trail_entry("sg-0w", START + timedelta(seconds=20), user="mallory", visible_after=600)]
    deps = world(trail=trail, settings=TRUSTED)
    queue_job(deps, lookup_job("sg-0w"))
    at(deps, START + timedelta(minutes=2))
    lookup(deps)
    assert list(emitted(deps).values()) == ["suppressed"]
    for _ in range(20):
        deps.manual_clock.advance(60)
        lookup(deps)
    (alert,) = slack_outcomes(deps)
    assert (alert["kind"], alert["revision"], alert["principal_arn"]) == (
        "manual_change", 1, f"arn:aws:iam::{ACCOUNT}:user/mallory")


def test_an_alert_gains_the_calls_that_became_visible_later() -> None:
    trail = [trail_entry("sg-0f", START + timedelta(seconds=5), event_id="first", visible_after=60),
             trail_entry("sg-0f", START + timedelta(seconds=25), user="bob", event_id="second", visible_after=400)]
    deps = world(trail=trail)
    queue_job(deps, lookup_job("sg-0f"))
    at(deps, START + timedelta(minutes=2))
    lookup(deps)
    for _ in range(15):
        deps.manual_clock.advance(60)
        lookup(deps)
    first, revised = slack_outcomes(deps)
    assert (first["event_ids"], first["revision"]) == (["first"], 0)
    assert (revised["event_ids"], revised["revision"]) == (["first", "second"], 1)
    assert len(deps.queue("lookup_queue")) == 0, "two follow-ups, then done"


def test_an_item_whose_author_is_not_visible_yet_waits_then_is_reported_unattributed() -> None:
    deps = world(settings={"give_up_minutes": 10})
    queue_job(deps, lookup_job("sg-0none"))
    at(deps, START + timedelta(minutes=1))
    counts = lookup(deps)
    assert counts["waiting"] == 1 and slack_outcomes(deps) == []
    (retry,) = waiting_jobs(deps)
    assert retry.attempts == 1 and retry.not_before == deps.now() + timedelta(minutes=1)
    for _ in range(12):
        deps.manual_clock.advance(60)
        lookup(deps)
    (unattributed,) = slack_outcomes(deps)
    assert unattributed["kind"] == "unattributed_change" and "unverified" not in unattributed["extra"]
    assert len(deps.queue("lookup_queue")) == 0


def test_lookups_that_keep_failing_still_report_the_change_at_the_give_up_time() -> None:
    deps = world(settings={"give_up_minutes": 10})
    deps.lookups.fail("us-east-1", RuntimeError("AccessDenied: CloudTrail refused this region"))
    queue_job(deps, lookup_job("sg-0fail"))
    for _ in range(14):
        deps.manual_clock.advance(60)
        lookup(deps)
    (unattributed,) = slack_outcomes(deps)
    assert (unattributed["kind"], unattributed["extra"]["unverified"]) == ("unattributed_change", LOOKUPS_FAILED)


def test_a_job_not_due_yet_goes_back_untouched() -> None:
    deps = world()
    job = replace(lookup_job("sg-0later"), not_before=START + timedelta(minutes=10))
    queue_job(deps, job)
    counts = lookup(deps)
    assert counts["jobs"] == 1 and deps.lookups.stats.calls == 0
    (back,) = waiting_jobs(deps)
    assert back.not_before == job.not_before and back.attempts == 0
    assert deps.queue("lookup_queue").receive() == [], "delayed until (just before) it is due"


def test_an_unreadable_job_is_dead_lettered_alone() -> None:
    deps = world(trail=[trail_entry("sg-0ok", START + timedelta(seconds=5))])
    deps.queue("lookup_queue").send('{"change": "damaged"}')
    queue_job(deps, lookup_job("sg-0ok"))
    at(deps, START + timedelta(minutes=6))
    assert lookup(deps)["decided"] == 1
    (dead,) = deps.queue("lookup_dlq").peek()
    assert dead.body == '{"change": "damaged"}' and dead.attributes["mcd-permanent"] == "true"
    assert dead.attributes["mcd-reason"].startswith("unreadable lookup job")


def test_several_jobs_in_one_region_share_one_sweep() -> None:
    groups = [f"sg-0s{i}" for i in range(4)]
    deps = world(trail=[trail_entry(g, START + timedelta(seconds=5 + i)) for i, g in enumerate(groups)])
    for group in groups:
        queue_job(deps, lookup_job(group))
    at(deps, START + timedelta(minutes=6))
    assert lookup(deps)["decided"] == 4
    assert [r["LookupAttributes"][0]["AttributeKey"] for _, r in deps.lookups.requests] == ["ReadOnly"]
    assert len(slack_outcomes(deps)) == 4


def test_an_earlier_capture_of_the_same_resource_bounds_the_window() -> None:
    earlier = CAPTURE - timedelta(minutes=5)
    deps = world(trail=[trail_entry("sg-0p", earlier - timedelta(seconds=30), user="old"),
                        trail_entry("sg-0p", CAPTURE - timedelta(seconds=20), user="new")])
    job = lookup_job("sg-0p")
    deps.state.put(f"res#{ACCOUNT}#aws::ec2::securitygroup#sg-0p", f"cap#{earlier.isoformat()[:19]}Z", 0.0)
    queue_job(deps, job)
    at(deps, START + timedelta(minutes=10))
    lookup(deps)
    (alert,) = slack_outcomes(deps)
    assert alert["principal_arn"].endswith(":user/new"), "the call before the earlier capture is not this change's"


def test_a_run_past_its_budget_leaves_the_rest_for_the_next() -> None:
    deps = world(budget_seconds=0.0)
    queue_job(deps, lookup_job("sg-0b"))
    lookup(deps)
    assert deps.lookups.stats.calls == 0 and len(waiting_jobs(deps)) == 1


# --------------------------------------------------------------------------------------------
# Whole timelines on the fakes (the same as tests/e2e/test_adversarial_evidence.py and
# test_attribution_flow.py, which run them through the real handlers on moto)


@pytest.mark.parametrize("trusted_write", [True, False], ids=["with-trusted-write", "alone"])
def test_a_flood_longer_than_one_run_still_finds_the_person(trusted_write: bool) -> None:
    story = flooded_bucket(reads=2500, failed=500, trusted_write=trusted_write)
    result = replay(story)
    assert differences(story["expect"]["outcomes"], result.outcomes) == []
    (outcome,) = result.outcomes
    assert outcome["principal_arn"] == PERSON
    assert len(result.slack) == 1


def test_an_unfinished_read_is_reported_unverified_not_suppressed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lookup_stage, "PAGES_PER_JOB_PER_RUN", 2)
    story = flooded_bucket(reads=2500, failed=500, trusted_write=True, trusted_at=55)
    story["settings"]["give_up_minutes"] = 5
    story["cloudtrail"][-1]["visible_at"] = story["start"]
    result = replay(story)
    assert [(o["kind"], o["resource_id"]) for o in result.outcomes] == [("unattributed_change", BUCKET)]
    assert "a person's call may be among them" in result.outcomes[0]["unverified"]
    assert len(result.slack) == 1


def test_a_later_partial_read_never_turns_the_alert_into_a_suppression() -> None:
    story = flooded_bucket(reads=500, failed=100, trusted_write=True, trusted_at=55)
    for entry in story["cloudtrail"]:
        entry["visible_at"] = adversary.at(400)
    story["cloudtrail"][0]["visible_at"] = adversary.at(70)
    result = replay(story)
    assert differences(story["expect"]["outcomes"], result.outcomes) == []


T0 = datetime(2024, 7, 3, 9, 0, tzinfo=START.tzinfo)


def one_item_two_authors(human_delay: timedelta, terraform_delay: timedelta) -> dict[str, Any]:
    tf, person = terraform(), iam_user("sam.oduya")
    delivery, tf_entry = ingress("sg-0abc0abc0abc0abc0", "app-sg", tf, T0, "10.0.0.0/16", 443,
                                 delay=terraform_delay, capture_after=timedelta(seconds=60))
    _, human_entry = ingress("sg-0abc0abc0abc0abc0", "app-sg", person, T0 + timedelta(seconds=20), "0.0.0.0/0",
                             22, delay=human_delay)
    expected = [{"kind": "manual_change", "resource_type": "AWS::EC2::SecurityGroup",
                 "resource_id": "sg-0abc0abc0abc0abc0", "principal_arn": person.identity["arn"],
                 "event_ids": [human_entry["record"]["eventID"]]}]
    return scenario("one-item-two-authors", "Terraform and a person change one group within one capture.",
                    T0 - timedelta(minutes=2), [delivery], [tf_entry, human_entry], expected, max_slack=1)


def test_a_person_seen_after_terraform_still_makes_it_a_manual_change() -> None:
    story = one_item_two_authors(human_delay=timedelta(minutes=8), terraform_delay=timedelta(minutes=3))
    result = replay(story)
    assert differences(story["expect"]["outcomes"], result.outcomes) == []
    assert len(result.slack) == 1


def test_a_person_seen_before_terraform_is_alerted_at_once() -> None:
    story = one_item_two_authors(human_delay=timedelta(minutes=3), terraform_delay=timedelta(minutes=8))
    result = replay(story)
    assert differences(story["expect"]["outcomes"], result.outcomes) == []
    assert result.slack[0].at <= (T0 + timedelta(seconds=20 + 3 * 60 + 90)).timestamp()


def test_the_flow_leaves_every_queue_empty() -> None:
    story = one_item_two_authors(human_delay=timedelta(minutes=3), terraform_delay=timedelta(minutes=8))
    deps = replay(story).deps
    assert {name: len(queue) for name, queue in deps.queues.items() if len(queue)} == {}
    assert json.loads(json.dumps(deps.lookups.stats.calls)) > 0


# --------------------------------------------------------------------------------------------
# Runs in chunks: coverage shared by chunks, copies sent before deletes, a job handled once a run


def test_what_a_runs_sweeps_covered_and_what_is_left() -> None:
    def t(minute: int) -> datetime:
        return START + timedelta(minutes=minute)

    group = lookup_stage._Group("1", "us-east-1", share_ends=0.0)
    group.cover(t(10), t(20))
    group.cover(t(30), t(40))
    group.cover(t(20), t(25))  # joins the first span
    assert group.covered == [(t(10), t(25)), (t(30), t(40))]
    assert group.covers(t(12), t(25)) and not group.covers(t(12), t(31)) and not group.covers(t(9), t(11))
    assert group.gaps(t(5), t(45)) == [(t(40), t(45)), (t(25), t(30)), (t(5), t(10))], "newest first"
    assert group.gaps(t(11), t(24)) == []
    assert group.read_below(t(35)) == t(30) and group.read_below(t(27)) is None


class Recorded:
    """The lookup queue, recording what a run does to it, in order."""

    def __init__(self, queue: Any) -> None:
        self.queue = queue
        self.log: list[tuple[str, int]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.queue, name)

    def send_many(self, bodies: list[Any], **options: Any) -> None:
        self.log.append(("send", len(bodies)))
        self.queue.send_many(bodies, **options)

    def delete(self, messages: list[Any]) -> None:
        self.log.append(("delete", len(messages)))
        self.queue.delete(messages)


def test_jobs_go_back_ten_at_a_time_each_copy_before_its_message_is_deleted() -> None:
    deps = world(settings={"give_up_minutes": 60})
    for i in range(25):
        queue_job(deps, lookup_job(f"sg-0w{i:02d}"))
    recorded = Recorded(deps.queues["lookup_queue"])
    deps.queues["lookup_queue"] = recorded  # type: ignore[assignment]
    at(deps, START + timedelta(minutes=2))
    assert lookup(deps)["waiting"] == 25
    assert recorded.log == [("send", 10), ("delete", 10), ("send", 10), ("delete", 10), ("send", 5), ("delete", 5)]
    assert {job.attempts for job in waiting_jobs(deps)} == {1}


def test_a_job_back_on_the_queue_during_its_run_waits_for_the_next_run(monkeypatch: pytest.MonkeyPatch) -> None:
    deps = world(settings={"give_up_minutes": 60}, budget_seconds=240.0)
    queue_job(deps, lookup_job("sg-0again"))
    item = change("sg-0slow", account="210987654321")  # another account: a group of its own
    queue_job(deps, LookupJob(change=item, change_key=change_key(item), arrived_at=CAPTURE))
    at(deps, START + timedelta(minutes=2))
    monkeypatch.setattr(lookup_stage, "CHUNK_JOBS", 1)  # every job is a chunk of its own
    real_lookup = deps.lookups.lookup

    def slow(*args: Any, **kwargs: Any) -> Any:
        deps.manual_clock.advance(45)  # the second job's lookups outlast the first job's retry delay
        return real_lookup(*args, **kwargs)

    monkeypatch.setattr(deps.lookups, "lookup", slow)
    counts = lookup(deps)
    assert (counts["jobs"], counts["waiting"], counts["deferred"]) == (3, 2, 1), "received again, not read again"
    assert len(deps.lookups.requests) == 2, "one look for each job"
    again = next(job for job in waiting_jobs(deps) if job.change.resource_id == "sg-0again")
    assert again.attempts == 1 and again.not_before > deps.now()


def test_a_job_past_its_give_up_time_is_reported_even_when_its_region_had_no_time_left() -> None:
    deps = world(settings={"give_up_minutes": 10}, budget_seconds=60.0)
    old = lookup_job("sg-0old", arrived=START - timedelta(minutes=30))
    for i in range(lookup_stage.CHUNK_JOBS):
        queue_job(deps, lookup_job(f"sg-0n{i:03d}"))
    queue_job(deps, old)
    at(deps, START + timedelta(minutes=2))
    real_lookup = deps.lookups.lookup

    def slow(*args: Any, **kwargs: Any) -> Any:
        deps.manual_clock.advance(40)  # the first chunk spends the region's share
        return real_lookup(*args, **kwargs)

    deps.lookups.lookup = slow  # type: ignore[method-assign]
    counts = lookup(deps)
    assert counts["unattributed"] == 1
    assert [o["resource_id"] for o in slack_outcomes(deps)] == ["sg-0old"]


def test_a_region_whose_lookups_fail_is_tried_once_a_run_not_once_a_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    deps = world(settings={"give_up_minutes": 60})
    deps.lookups.fail("us-east-1", RuntimeError("ThrottlingException: Rate exceeded"))
    for i in range(5):
        queue_job(deps, lookup_job(f"sg-0t{i}"))
    monkeypatch.setattr(lookup_stage, "CHUNK_JOBS", 2)
    at(deps, START + timedelta(minutes=2))
    assert lookup(deps)["jobs"] == 5
    assert len(deps.lookups.requests) == 1
    assert {job.attempts for job in waiting_jobs(deps)} == {1}, "every job waits for its next look"
