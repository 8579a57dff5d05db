"""``dispatch`` on the in-memory fakes: one lookup job per changed item, once, delayed until CloudTrail may
show its call; oversized items read only from Config's bucket; one poison message never takes others down.

``tests/e2e/test_poison.py`` and ``tests/e2e/test_pipeline.py`` check the same end to end on moto.
"""

from __future__ import annotations

import gzip
import json
from datetime import timedelta
from typing import Any

import pytest
from memory_world import ACCOUNT, CAPTURE, START, oversized_notification, sg_item, sg_notification, world

from chalicelib.core.jobs import LookupJob
from chalicelib.memory_deps import MemoryDeps
from chalicelib.stages import dispatch as dispatch_stage
from chalicelib.stages.dispatch import FIRST_LOOKUP_AFTER_CAPTURE, dispatch

CONFIG_BUCKET = "config-delivery"
GROUPS = [f"sg-0p{i:02d}" for i in range(10)]


def notify(deps: MemoryDeps, message: str, message_id: str, *, inline: bool = True, **extra: Any) -> None:
    """What ingest queues for ``message`` (archived under ``AWSLogs/<id>.json``)."""
    key = f"AWSLogs/{message_id}.json"
    deps.archive.put(key, message)
    body = {"message_id": message_id, "topic_arn": "t", "received_at": "2024-05-01T12:00:45Z",
            "archive_bucket": deps.archive.bucket, "archive_key": key, **extra}
    if inline:
        body["message"] = message
    deps.queue("dispatch_queue").send(body)


def jobs(deps: MemoryDeps) -> list[LookupJob]:
    return [LookupJob.from_json(json.loads(body)) for body in deps.queue("lookup_queue").bodies()]


def config_key(group: str, account: str = ACCOUNT) -> str:
    return f"AWSLogs/{account}/Config/us-east-1/2024/5/1/OversizedChangeNotification/{group}.json.gz"


def test_a_change_becomes_one_delayed_lookup_job_with_its_capture_recorded() -> None:
    deps = world()
    notify(deps, sg_notification("sg-0aaa"), "m-1")
    counts = dispatch(deps)
    assert (counts["notifications"], counts["changes"]) == (1, 1)
    (job,) = jobs(deps)
    assert job.change.resource_id == "sg-0aaa" and job.not_before == CAPTURE + FIRST_LOOKUP_AFTER_CAPTURE
    assert job.archive_key == "AWSLogs/m-1.json" and job.arrived_at == START + timedelta(seconds=45)
    assert deps.queue("lookup_queue").depth() == {"visible": 0, "in_flight": 0, "delayed": 1}
    deps.manual_clock.advance((CAPTURE + FIRST_LOOKUP_AFTER_CAPTURE - START).total_seconds())
    assert len(deps.queue("lookup_queue").receive()) == 1, "due 45 s after the capture"
    assert deps.state.get(f"ci#{job.change_key}", "dispatched")["resource_id"] == "sg-0aaa"
    history = deps.state.with_prefix(f"res#{ACCOUNT}#aws::ec2::securitygroup#sg-0aaa")
    assert [item["sk"] for item in history] == ["cap#2024-05-01T12:00:40Z"]
    assert len(deps.queue("dispatch_queue")) == 0


def test_the_same_item_again_is_not_queued_twice() -> None:
    deps = world()
    notify(deps, sg_notification("sg-0aaa"), "m-1")
    notify(deps, sg_notification("sg-0aaa"), "m-2")
    counts = dispatch(deps)
    assert (counts["changes"], counts["duplicates"]) == (1, 1) and len(jobs(deps)) == 1


def test_a_notification_kept_only_in_the_archive_is_read_from_there() -> None:
    deps = world()
    notify(deps, sg_notification("sg-0arc"), "m-1", inline=False)
    assert dispatch(deps)["changes"] == 1 and jobs(deps)[0].change.resource_id == "sg-0arc"


def test_ignored_types_and_notifications_without_changes() -> None:
    deps = world(settings={"ignored_resource_types": ["AWS::EC2::SecurityGroup"]})
    notify(deps, sg_notification("sg-0ign"), "m-1")
    notify(deps, json.dumps({"messageType": "ConfigurationSnapshotDeliveryStarted", "configSnapshotId": "s"}), "m-2")
    counts = dispatch(deps)
    assert (counts["ignored"], counts["changes"], counts["dead_lettered"]) == (2, 0, 0)
    assert jobs(deps) == []


def test_unusable_items_are_dead_lettered_after_the_good_ones_are_queued() -> None:
    deps = world()
    good = sg_item("sg-0g1")["configurationItem"]
    bad = {**sg_item("sg-0g2")["configurationItem"], "configurationItemCaptureTime": None}
    notify(deps, json.dumps({"messageType": "ConfigurationItemChangeNotification", "configurationItems": [good, bad],
                             "notificationCreationTime": good["configurationItemCaptureTime"]}), "two")
    counts = dispatch(deps)
    assert (counts["changes"], counts["dead_lettered"]) == (1, 1)
    (dead,) = deps.queue("dispatch_dlq").peek()
    assert dead.attributes["mcd-permanent"] == "true"
    assert dead.attributes["mcd-reason"] == "configuration item without capture time (AWS::EC2::SecurityGroup sg-0g2)"
    assert json.loads(dead.body)["message_id"] == "two"


def test_a_queue_message_that_is_not_an_object_is_dead_lettered() -> None:
    deps = world()
    deps.queue("dispatch_queue").send("[1, 2]")
    deps.queue("dispatch_queue").send("not json")
    assert dispatch(deps)["dead_lettered"] == 2
    assert [json.loads(m.body) for m in deps.queue("dispatch_dlq").peek()] == [{"raw": "[1, 2]"}, {"raw": "not json"}]


# --------------------------------------------------------------------------------------------
# Oversized items


def test_an_oversized_item_is_read_in_full_from_configs_bucket() -> None:
    deps = world()
    deps.archive.add_object(CONFIG_BUCKET, config_key("sg-0big"), gzip.compress(sg_notification("sg-0big").encode()))
    notify(deps, oversized_notification("sg-0big", f"{CONFIG_BUCKET}/{config_key('sg-0big')}"), "o-1")
    assert dispatch(deps)["changes"] == 1
    (job,) = jobs(deps)
    assert job.change.oversized and [p.path for p in job.change.changed_properties] == [
        "Configuration.IpPermissions.0"], "the diff comes from the full item"


@pytest.mark.parametrize(("bucket", "key", "settings"), [
    ("someone-elses-bucket", config_key("sg-0far"), {"config_buckets": [CONFIG_BUCKET]}),
    (CONFIG_BUCKET, config_key("sg-0far", account="999999999999"), {}),
    (CONFIG_BUCKET, "exports/sg-0far.json.gz", {}),
], ids=["not-a-config-bucket", "another-accounts-folder", "outside-configs-layout"])
def test_a_location_config_would_not_write_is_not_read_and_the_summary_is_reported(
        bucket: str, key: str, settings: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    deps = world(settings=settings)
    deps.archive.add_object(bucket, key, gzip.compress(sg_notification("sg-0far").encode()))
    reads: list[tuple[str, str | None]] = []
    original = deps.archive.get_text
    monkeypatch.setattr(deps.archive, "get_text", lambda k, b=None: reads.append((k, b)) or original(k, b))
    notify(deps, oversized_notification("sg-0far", f"{bucket}/{key}"), "far-1")
    assert dispatch(deps)["changes"] == 1
    assert [b for _, b in reads if b == bucket] == []
    (job,) = jobs(deps)
    assert job.change.resource_id == "sg-0far" and job.change.changed_properties == ()


def test_a_gzip_bomb_behind_an_oversized_item_loses_no_neighbour() -> None:
    deps = world()
    deps.archive.add_object(CONFIG_BUCKET, config_key(GROUPS[0]), gzip.compress(b"A" * (17 * 2**20)))
    notify(deps, oversized_notification(GROUPS[0], f"{CONFIG_BUCKET}/{config_key(GROUPS[0])}"), "bomb")
    for n, group in enumerate(GROUPS[1:]):
        notify(deps, sg_notification(group, CAPTURE + timedelta(seconds=n)), f"m-{n}")
    counts = dispatch(deps)
    assert counts["changes"] == 10 and counts["dead_lettered"] == 0
    assert sorted(j.change.resource_id for j in jobs(deps)) == sorted(GROUPS), "the bombed one from its summary"


# --------------------------------------------------------------------------------------------
# Poison


def test_an_exception_on_one_message_dead_letters_it_and_the_batch_goes_on(monkeypatch: pytest.MonkeyPatch) -> None:
    deps = world()
    for n, group in enumerate(GROUPS):
        notify(deps, sg_notification(group, CAPTURE + timedelta(seconds=n)), f"m-{n}")
    original = dispatch_stage.parse_config_message

    def poisoned(message: Any, source: str) -> Any:
        if GROUPS[4] in str(message):
            raise RecursionError("a parser bug met its input")
        return original(message, source)

    monkeypatch.setattr(dispatch_stage, "parse_config_message", poisoned)
    counts = dispatch(deps)
    assert (counts["changes"], counts["dead_lettered"]) == (9, 1)
    (dead,) = deps.queue("dispatch_dlq").peek()
    assert "RecursionError: a parser bug met its input" in dead.attributes["mcd-reason"]
    assert dead.attributes.get("mcd-permanent") is None and dead.attributes["mcd-redrives"] == "0"
    assert len(deps.queue("dispatch_queue")) == 0


class Killed(BaseException):
    """What an out-of-memory kill or a timeout looks like from inside: nothing after it runs."""


def test_a_message_a_run_died_on_twice_is_dead_lettered_unread(monkeypatch: pytest.MonkeyPatch) -> None:
    deps = world()
    for n, group in enumerate(GROUPS[:6]):
        notify(deps, sg_notification(group, CAPTURE + timedelta(seconds=n)), f"m-{n}")
    original = dispatch_stage.parse_config_message
    attempts = {"n": 0}

    def deadly(message: Any, source: str) -> Any:
        if GROUPS[2] in str(message):
            attempts["n"] += 1
            raise Killed()
        return original(message, source)

    monkeypatch.setattr(dispatch_stage, "parse_config_message", deadly)
    for _ in range(2):
        with pytest.raises(Killed):
            dispatch(deps)
        deps.manual_clock.advance(deps.queue("dispatch_queue").visibility_timeout + 1)
    counts = dispatch(deps)
    assert attempts["n"] == 2 and counts["dead_lettered"] == 1
    (dead,) = deps.queue("dispatch_dlq").peek()
    assert dead.attributes["mcd-permanent"] == "true" and "stopped twice" in dead.attributes["mcd-reason"]
    assert sorted({j.change.resource_id for j in jobs(deps)}) == sorted(g for g in GROUPS[:6] if g != GROUPS[2])
    assert len(deps.queue("dispatch_queue")) == 0


def test_a_run_past_its_budget_takes_nothing() -> None:
    deps = world(budget_seconds=0.0)
    notify(deps, sg_notification("sg-0aaa"), "m-1")
    assert dispatch(deps)["notifications"] == 0 and len(deps.queue("dispatch_queue")) == 1
