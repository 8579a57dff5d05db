"""The core path's plumbing against moto and the Slack stand-in: archive, queues, crashes, dead letters.

Scenario replays (tests/e2e/test_scenarios.py) check what the detector concludes; these tests check that
nothing is lost or done twice on the way, whatever fails.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import time_machine
from chalice.test import Client
from memory_world import oversized_notification as oversized_notification  # re-exported to the e2e tests
from memory_world import sg_notification
from moto import mock_aws

import app as app_module
from chalicelib import bootstrap
from chalicelib.adapters.aws import ClientFactory
from chalicelib.core.outcomes import Outcome
from mcd_tools.fake_cloudtrail import FakeCloudTrail, entries_from_scenario
from mcd_tools.sandbox import create_resources
from mcd_tools.slack_standin import SlackStandIn

ROOT = Path(__file__).resolve().parents[2]
START = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
ACCOUNT = "123456789012"
TRUSTED_ROLE = f"arn:aws:iam::{ACCOUNT}:role/terraform"





def trail_entry(group: str, when: datetime, *, user: str = "alice", role: str | None = None,
                event_id: str | None = None, visible_after: int = 300) -> dict[str, Any]:
    if role:
        identity = {"type": "AssumedRole", "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/session-1",
                    "accountId": ACCOUNT, "sessionContext": {"sessionIssuer": {
                        "type": "Role", "arn": f"arn:aws:iam::{ACCOUNT}:role/{role}", "userName": role}}}
    else:
        identity = {"type": "IAMUser", "arn": f"arn:aws:iam::{ACCOUNT}:user/{user}", "accountId": ACCOUNT,
                    "userName": user}
    record = {"eventVersion": "1.09", "userIdentity": identity, "eventTime": when.isoformat().replace("+00:00", "Z"),
              "eventSource": "ec2.amazonaws.com", "eventName": "AuthorizeSecurityGroupIngress",
              "awsRegion": "us-east-1", "sourceIPAddress": "198.51.100.7", "userAgent": "aws-cli/2.15.0",
              "requestParameters": {"groupId": group}, "responseElements": {"_return": True},
              "eventID": event_id or f"evt-{group}-{int(when.timestamp())}", "readOnly": False,
              "eventType": "AwsApiCall", "recipientAccountId": ACCOUNT}
    return {"visible_at": (when + timedelta(seconds=visible_after)).isoformat(), "record": record,
            "resources": [{"ResourceType": "AWS::EC2::SecurityGroup", "ResourceName": group}]}


def sns_event(message: str, message_id: str) -> dict[str, Any]:
    return {"Records": [{"EventSource": "aws:sns", "Sns": {
        "Type": "Notification", "MessageId": message_id, "Message": message, "Subject": None,
        "TopicArn": f"arn:aws:sns:us-east-1:{ACCOUNT}:config-changes", "MessageAttributes": {}}}]}


@dataclass
class World:
    client: Any
    deps: bootstrap.Deps
    standin: SlackStandIn
    trail: FakeCloudTrail
    traveller: Any
    aws: ClientFactory

    def deliver(self, message: str, message_id: str) -> Any:
        return self.client.lambda_.invoke("ingest", sns_event(message, message_id)).payload

    def tick(self, *names: str) -> dict[str, Any]:
        event = self.client.events.generate_cw_event(source="aws.events", detail_type="Scheduled Event",
                                                    detail={}, resources=[], region="us-east-1")
        return {n: self.client.lambda_.invoke(n, event).payload for n in names or ("dispatch", "lookup", "slack_send")}

    def run_minutes(self, minutes: int) -> None:
        for _ in range(minutes):
            self.traveller.shift(60)
            self.tick()

    def queue_bodies(self, name: str) -> list[str]:
        sqs = self.aws.client("sqs")
        url = getattr(self.deps.env, f"{name}_url")
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        return [attrs["ApproximateNumberOfMessages"], attrs["ApproximateNumberOfMessagesNotVisible"],
                attrs["ApproximateNumberOfMessagesDelayed"]]

    def s3_keys(self, prefix: str = "") -> list[str]:
        found = self.aws.client("s3").list_objects_v2(Bucket=self.deps.env.archive_bucket, Prefix=prefix)
        return [o["Key"] for o in found.get("Contents", [])]


@pytest.fixture
def world(request: pytest.FixtureRequest) -> Iterator[World]:
    entries = getattr(request, "param", [])
    with mock_aws(), time_machine.travel(START, tick=False) as traveller:
        standin = SlackStandIn(clock=time.time).start()
        trail = FakeCloudTrail(entries_from_scenario(entries), time.time)
        factory = ClientFactory("us-east-1", on_create=lambda s, r, c: trail.attach(c) if s == "cloudtrail" else None)
        env = create_resources(factory.client, "us-east-1", prefix="mcd-test",
                               settings={"trusted_principals": [TRUSTED_ROLE]},
                               slack_secret_value=standin.webhook_url("default"), visibility_timeout=30)
        deps = bootstrap.Deps(env, factory, clock=time.time, sleep=traveller.shift)
        bootstrap.install(deps)
        try:
            with Client(app_module.app, stage_name="test", project_dir=str(ROOT)) as client:
                yield World(client, deps, standin, trail, traveller, factory)
        finally:
            standin.stop()
            bootstrap.reset()


CAPTURE = START + timedelta(seconds=40)


@pytest.mark.parametrize("world", [[trail_entry("sg-0aaa", START + timedelta(seconds=5))]], indirect=True)
def test_notification_is_archived_as_received_and_alerted_once_despite_redelivery(world: World) -> None:
    message = sg_notification("sg-0aaa", CAPTURE)
    world.deliver(message, "msg-1")
    world.deliver(message, "msg-1")  # SNS redelivery: same MessageId
    world.deliver(message, "msg-2")  # the same item again in another notification
    keys = world.s3_keys("AWSLogs/")
    assert keys == [f"AWSLogs/{ACCOUNT}/Config/us-east-1/2024/5/1/ConfigNotifications/msg-1.json",
                    f"AWSLogs/{ACCOUNT}/Config/us-east-1/2024/5/1/ConfigNotifications/msg-2.json"]
    archived = world.aws.client("s3").get_object(Bucket=world.deps.env.archive_bucket, Key=keys[0])["Body"].read()
    assert archived.decode() == message
    world.run_minutes(12)
    assert len(world.standin.messages) == 1
    assert "sg-0aaa" in json.dumps(world.standin.messages[0]["payload"])


def test_malformed_notification_is_archived_and_dead_lettered_while_the_batch_proceeds(world: World) -> None:
    world.deliver('{"configurationItem": {"resourceType": "AWS::EC2::Secur', "bad-1")
    world.deliver(sg_notification("sg-0bbb", CAPTURE), "good-1")
    assert len(world.s3_keys("AWSLogs/")) == 2
    dlq = world.aws.client("sqs").receive_message(QueueUrl=world.deps.env.dispatch_dlq_url,
                                                  MessageAttributeNames=["All"])["Messages"]
    assert len(dlq) == 1
    assert "JSON" in dlq[0]["MessageAttributes"]["mcd-reason"]["StringValue"]
    assert json.loads(dlq[0]["Body"])["message_id"] == "bad-1"
    counts = world.tick("dispatch")["dispatch"]
    assert counts["changes"] == 1


def test_dispatch_crash_mid_batch_loses_nothing(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(3):
        world.deliver(sg_notification(f"sg-0c{i}", CAPTURE + timedelta(seconds=i)), f"m-{i}")
    from chalicelib.stages import dispatch

    original = dispatch.parse_config_message
    calls = {"n": 0}

    def flaky(message: Any, source: str) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("simulated crash")
        return original(message, source)

    monkeypatch.setattr(dispatch, "parse_config_message", flaky)
    first = world.tick("dispatch")["dispatch"]
    assert first["changes"] == 2 and first["dead_lettered"] == 1  # the crash is isolated, with its reason
    monkeypatch.setattr(dispatch, "parse_config_message", original)
    dlq = world.aws.client("sqs").receive_message(QueueUrl=world.deps.env.dispatch_dlq_url,
                                                  MessageAttributeNames=["All"], VisibilityTimeout=0)["Messages"]
    assert "simulated crash" in dlq[0]["MessageAttributes"]["mcd-reason"]["StringValue"]
    assert "mcd-permanent" not in dlq[0]["MessageAttributes"]  # a transient failure gets more chances
    assert world.tick("dl_retry")["dl_retry"] == {"redriven": 1, "stored": 0}
    world.traveller.shift(61)  # redriven after a minute
    second = world.tick("dispatch")["dispatch"]
    assert second["changes"] == 1


def test_a_handler_crash_leaves_messages_for_the_next_run(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    world.deliver(sg_notification("sg-0ddd", CAPTURE), "m-d")
    world.tick("dispatch")
    from chalicelib.stages import lookup as lookup_stage

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("process died")

    monkeypatch.setattr(lookup_stage, "_resolve_group", broken)
    world.traveller.shift(180)
    world.tick("lookup")
    monkeypatch.undo()
    bootstrap.install(world.deps)
    world.run_minutes(90)
    kinds = [json.loads(json.dumps(m["payload"]))["text"] for m in world.standin.messages]
    assert len(kinds) == 1 and "sg-0ddd" in kinds[0]


def test_dead_letters_are_redriven_a_few_times_then_kept_in_s3(world: World) -> None:
    sqs = world.aws.client("sqs")
    sqs.send_message(QueueUrl=world.deps.env.lookup_dlq_url, MessageBody='{"not": "a job"}')
    sqs.send_message(QueueUrl=world.deps.env.dispatch_dlq_url, MessageBody='{"x": 1}', MessageAttributes={
        "mcd-permanent": {"DataType": "String", "StringValue": "true"},
        "mcd-reason": {"DataType": "String", "StringValue": "not a Config notification"}})
    counts = world.tick("dl_retry")["dl_retry"]
    assert counts == {"redriven": 1, "stored": 1}
    stored = world.s3_keys("dead-letter/dispatch_queue/")
    assert len(stored) == 1
    body = json.loads(world.aws.client("s3").get_object(Bucket=world.deps.env.archive_bucket,
                                                        Key=stored[0])["Body"].read())
    assert body["reason"] == "not a Config notification"
    redriven = sqs.receive_message(QueueUrl=world.deps.env.lookup_queue_url, MessageAttributeNames=["All"])
    assert redriven.get("Messages") == [] or "Messages" not in redriven  # delayed, not yet visible
    world.traveller.shift(61)
    url = world.deps.env.lookup_queue_url
    message = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"])["Messages"][0]
    assert message["MessageAttributes"]["mcd-redrives"]["StringValue"] == "1"


def test_idle_ticks_only_receive(world: World) -> None:
    """An empty tick costs one ReceiveMessage per queue, and a heartbeat per schedule at most every 5 minutes."""
    calls: list[str] = []
    for service in ("sqs", "s3", "dynamodb", "ssm", "secretsmanager", "cloudtrail"):
        world.aws.client(service).meta.events.register(
            "before-call.*.*", lambda model, **_: calls.append(model.name))
    world.tick("dispatch", "lookup", "slack_send")
    assert sorted(calls) == ["PutItem"] * 3 + ["ReceiveMessage"] * 3, "the first run of each writes its heartbeat"
    calls.clear()
    world.run_minutes(4)
    assert calls == ["ReceiveMessage"] * 12


@pytest.mark.parametrize("world", [[trail_entry("sg-0eee", START + timedelta(seconds=5), role="terraform")]],
                         indirect=True)
def test_trusted_change_is_suppressed_and_never_posted(world: World) -> None:
    world.deliver(sg_notification("sg-0eee", CAPTURE), "m-e")
    world.run_minutes(95)  # decided at once, then watched until the give-up time (D20)
    assert world.standin.messages == []
    assert world.queue_bodies("lookup_queue") == ["0", "0", "0"]


@pytest.mark.parametrize("world", [[trail_entry("sg-0fff", START + timedelta(seconds=5))]], indirect=True)
def test_local_routes_drive_the_pipeline(world: World) -> None:
    """The chalice-local routes deliver, tick, and show queues, state and a Slack preview."""
    http = world.client.http
    message = json.loads(sg_notification("sg-0fff", CAPTURE))
    reply = http.post("/local/sns", headers={"Content-Type": "application/json"}, body=json.dumps(message))
    assert reply.status_code == 200 and json.loads(reply.body) == {"queued": 1, "dead_lettered": 0}
    queues = json.loads(http.get("/local/queues").body)
    assert queues["dispatch_queue"]["visible"] == 1
    world.traveller.shift(400)
    first = json.loads(http.post("/local/tick").body)
    assert first["dispatch"]["changes"] == 1
    world.traveller.shift(60)
    json.loads(http.post("/local/tick").body)
    state = json.loads(http.get("/local/state?prefix=out%23").body)["items"]
    assert [row["kind"] for row in state] == ["manual_change"]
    assert len(world.standin.messages) == 1
    bad = http.post("/local/eventbridge", headers={"Content-Type": "application/json"}, body='"not an event"')
    assert bad.status_code == 400


def test_local_preview_shows_waiting_alerts_escaped(world: World) -> None:

    outcome = Outcome(kind="unattributed_change", outcome_id="ci:x", at="2024-05-01T12:00:00Z",
                      account=ACCOUNT, region="us-east-1", resource_type="AWS::EC2::SecurityGroup",
                      resource_id="sg-0123", resource_name="<!channel> evil")
    world.deps.queue("slack_queue").send({"outcome": outcome.to_json()})
    page = world.client.http.get("/local/slack-preview")
    assert page.status_code == 200
    text = page.body.decode() if isinstance(page.body, bytes) else page.body
    assert "sg-0123" in text
    assert "<!channel>" not in text
    assert json.loads(world.client.http.get("/local/queues").body)["slack_queue"]["visible"] == 1


@pytest.mark.parametrize("world", [[trail_entry("sg-0big", START + timedelta(seconds=5))]], indirect=True)
def test_oversized_item_is_read_in_full_from_configs_bucket(world: World) -> None:
    import gzip

    full = json.loads(sg_notification("sg-0big", CAPTURE))
    s3 = world.aws.client("s3")
    s3.create_bucket(Bucket="config-delivery")
    key = f"AWSLogs/{ACCOUNT}/Config/us-east-1/2024/5/1/OversizedChangeNotification/sg-0big.json.gz"
    s3.put_object(Bucket="config-delivery", Key=key, Body=gzip.compress(json.dumps(full).encode()))
    world.deliver(oversized_notification("sg-0big", f"config-delivery/{key}"), "oversized-1")
    world.run_minutes(10)
    assert len(world.standin.messages) == 1
    text = json.dumps(world.standin.messages[0]["payload"])
    assert "sg-0big" in text and "0.0.0.0/0" in text, "the diff comes from the full item in S3"


def test_a_lookup_job_that_keeps_failing_is_still_reported_when_stored(world: World) -> None:
    world.deliver(sg_notification("sg-0dead", CAPTURE), "m-dead")
    world.tick("dispatch")
    sqs = world.aws.client("sqs")
    world.traveller.shift(120)
    job = sqs.receive_message(QueueUrl=world.deps.env.lookup_queue_url)["Messages"][0]
    sqs.delete_message(QueueUrl=world.deps.env.lookup_queue_url, ReceiptHandle=job["ReceiptHandle"])
    sqs.send_message(QueueUrl=world.deps.env.lookup_dlq_url, MessageBody=job["Body"], MessageAttributes={
        "mcd-redrives": {"DataType": "String", "StringValue": "3"}})
    assert world.tick("dl_retry")["dl_retry"] == {"redriven": 0, "stored": 1}
    world.tick("slack_send")
    texts = [json.dumps(m["payload"]) for m in world.standin.messages]
    assert len(texts) == 2  # the change, without an author; and the operational alert about the dead letter
    assert any("sg-0dead" in t and "dead letter" not in t for t in texts)
    assert any("1 dead letter" in t and "attribution job" in t for t in texts)
