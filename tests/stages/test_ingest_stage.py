"""``ingest`` on the in-memory fakes: archive each SNS notification as received, queue a reference to it,
dead-letter what cannot be read, and fail the invocation (for Lambda's retry) only after trying every record."""

from __future__ import annotations

import json
from typing import Any

import pytest
from memory_world import ACCOUNT, CAPTURE, iso_z, sg_item, sg_notification, sns_event, world

from chalicelib.memory_deps import MemoryDeps
from chalicelib.stages.ingest import INLINE_LIMIT, config_event_as_sns, ingest

TOPIC = f"arn:aws:sns:eu-west-1:{ACCOUNT}:config-topic"


def dispatch_bodies(deps: MemoryDeps) -> list[dict[str, Any]]:
    return [json.loads(body) for body in deps.queue("dispatch_queue").bodies()]


def test_a_notification_is_archived_as_received_and_queued_by_reference() -> None:
    deps = world()
    message = sg_notification("sg-0aaa")
    assert ingest(sns_event(message, "msg-1", topic=TOPIC), deps) == {"queued": 1, "dead_lettered": 0}
    key = f"AWSLogs/{ACCOUNT}/Config/us-east-1/2024/5/1/ConfigNotifications/msg-1.json"
    assert deps.archive.list_keys() == [key]
    assert deps.archive.read(key) == message.encode()
    assert deps.archive.metadata[(deps.archive.bucket, key)] == {"sns-message-id": "msg-1", "topic": TOPIC}
    (body,) = dispatch_bodies(deps)
    assert body == {"message_id": "msg-1", "topic_arn": TOPIC, "received_at": iso_z(deps.now()),
                    "archive_bucket": deps.archive.bucket, "archive_key": key, "message": message}


def test_a_redelivery_overwrites_its_archive_copy_and_is_queued_again() -> None:
    deps = world()
    message = sg_notification("sg-0aaa")
    for _ in range(2):
        ingest(sns_event(message, "msg-1"), deps)
    assert len(deps.archive.list_keys()) == 1 and len(deps.queue("dispatch_queue")) == 2, "dispatch skips the copy"


def test_a_large_notification_travels_by_reference_only() -> None:
    deps = world()
    item = sg_item("sg-0big")
    item["configurationItem"]["configuration"]["padding"] = "x" * INLINE_LIMIT
    ingest(sns_event(json.dumps(item), "big-1"), deps)
    (body,) = dispatch_bodies(deps)
    assert "message" not in body and deps.archive.json(body["archive_key"]) == item


def test_an_unreadable_notification_is_archived_and_dead_lettered_while_the_others_proceed() -> None:
    deps = world()
    event = sns_event('{"configurationItem": {"resourceType": "AWS::EC2::Secur', "bad-1", topic=TOPIC)
    event["Records"] += sns_event(sg_notification("sg-0bbb"), "good-1")["Records"]
    assert ingest(event, deps) == {"queued": 1, "dead_lettered": 1}
    assert len(deps.archive.list_keys()) == 2
    assert deps.archive.list_keys()[0].startswith(f"AWSLogs/{ACCOUNT}/Config/eu-west-1/"), "named after the topic"
    (dead,) = deps.queue("dispatch_dlq").peek()
    assert json.loads(dead.body)["message_id"] == "bad-1"
    assert dead.attributes["mcd-permanent"] == "true" and "JSON" in dead.attributes["mcd-reason"]


def test_a_failing_record_fails_the_invocation_after_the_others(monkeypatch: pytest.MonkeyPatch) -> None:
    deps = world()
    original = deps.archive.put

    def flaky(key: str, body: Any, **kwargs: Any) -> None:
        if "sg-0bad" in str(body):
            raise RuntimeError("S3 unavailable")
        original(key, body, **kwargs)

    monkeypatch.setattr(deps.archive, "put", flaky)
    event = sns_event(sg_notification("sg-0bad"), "m-1")
    event["Records"] += sns_event(sg_notification("sg-0ok"), "m-2")["Records"]
    with pytest.raises(RuntimeError, match=r"1 SNS record\(s\) not ingested .* S3 unavailable"):
        ingest(event, deps)
    assert [b["message_id"] for b in dispatch_bodies(deps)] == ["m-2"]


def test_odd_envelopes_are_tolerated() -> None:
    deps = world()
    assert ingest({"Records": "nope"}, deps) == {"queued": 0, "dead_lettered": 0}
    assert ingest([], deps) == {"queued": 0, "dead_lettered": 0}  # type: ignore[arg-type]
    counts = ingest({"Records": [{"Sns": {"MessageId": "obj", "Message": sg_item("sg-0obj")}}, "junk"]}, deps)
    assert counts == {"queued": 1, "dead_lettered": 1}
    assert json.loads(dispatch_bodies(deps)[0]["message"]) == sg_item("sg-0obj")
    assert any(key.endswith(f"/no-id-{int(deps.clock())}.json") for key in deps.archive.list_keys())


def test_an_eventbridge_config_event_takes_the_sns_path() -> None:
    deps = world()
    item = sg_item("sg-0eb", CAPTURE)
    event = config_event_as_sns({"id": "eb-1", "detail-type": "Config Configuration Item Change", "detail": item})
    assert event == {"Records": [{"Sns": {"MessageId": "eb-1", "TopicArn": "", "Message": json.dumps(item)}}]}
    assert ingest(event, deps)["queued"] == 1
    assert config_event_as_sns({})["Records"][0]["Sns"]["Message"] == "{}"
