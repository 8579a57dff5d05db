"""The in-memory fakes behave like their real adapters: each contract scenario runs on both, the real adapter
on moto (or, for CloudTrail and Slack, on ``FakeCloudTrail`` and the local Slack stand-in) and the fake.

Then what only the fakes have: the manual clock, scripted failures and the helpers tests read them with.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from delivery_fixtures import reset_standin
from memory_world import START, trail_entry, trail_lookups
from moto import mock_aws

from chalicelib.adapters import memory
from chalicelib.adapters import slack as slack_adapter
from chalicelib.adapters.archive import Archive
from chalicelib.adapters.aws import ClientFactory
from chalicelib.adapters.cloudtrail import LookupClient
from chalicelib.adapters.queues import Queue
from chalicelib.adapters.secrets import Secret, SecretError, SecretReader
from chalicelib.adapters.state import StateTable
from chalicelib.core.errors import MalformedInput
from mcd_tools.fake_cloudtrail import FakeCloudTrail, entries_from_scenario
from mcd_tools.slack_standin import SlackStandIn

IMPLEMENTATIONS = ["real", "fake"]


@pytest.fixture(scope="module")
def aws() -> ClientFactory:
    """Clients shared by the module's tests (creating them is slow); each test opens its own ``mock_aws``."""
    return ClientFactory("us-east-1")


# --------------------------------------------------------------------------------------------
# Queues


@dataclass
class Queues:
    queue: Any
    dlq: Any
    advance: Callable[[float], None]


@pytest.fixture(params=IMPLEMENTATIONS)
def queues(request: pytest.FixtureRequest, aws: ClientFactory) -> Iterator[Queues]:
    """A queue (visibility 30 s) redriven to a dead-letter queue after 2 receives."""
    if request.param == "fake":
        clock = memory.ManualClock(START)
        dlq = memory.MemoryQueue("dlq", clock)
        yield Queues(memory.MemoryQueue("q", clock, visibility_timeout=30, dead_letter=dlq, max_receive_count=2),
                     dlq, clock.advance)
        return
    with mock_aws(), time_machine.travel(START, tick=False) as traveller:
        sqs = aws.client("sqs")
        dlq_url = sqs.create_queue(QueueName="contract-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        url = sqs.create_queue(QueueName="contract", Attributes={"VisibilityTimeout": "30", "RedrivePolicy": json.dumps(
            {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2})})["QueueUrl"]
        yield Queues(Queue(sqs, url), Queue(sqs, dlq_url), traveller.shift)


def test_queue_contract_delays_and_attributes(queues: Queues) -> None:
    queues.queue.send({"n": 1}, delay_seconds=10, attributes={"mcd-reason": "why"})
    assert queues.queue.receive() == []
    queues.advance(11)
    (message,) = queues.queue.receive()
    assert (message.json(), message.receive_count, message.attributes) == ({"n": 1}, 1, {"mcd-reason": "why"})


def test_queue_contract_visibility_receive_counts_and_redrive(queues: Queues) -> None:
    queues.queue.send("first")
    (once,) = queues.queue.receive()
    assert queues.queue.receive() == [], "in flight for its visibility timeout"
    queues.advance(31)
    (twice,) = queues.queue.receive()
    assert (twice.message_id, twice.receive_count) == (once.message_id, 2)
    queues.advance(31)
    assert queues.queue.receive() == [], "received twice: moved to the dead-letter queue"
    (dead,) = queues.dlq.receive()
    assert (dead.body, dead.message_id) == ("first", once.message_id)


def test_queue_contract_visibility_timeout_per_receive(queues: Queues) -> None:
    queues.queue.send("x")
    queues.queue.receive(visibility_timeout=5)
    queues.advance(6)
    assert [m.body for m in queues.queue.receive()] == ["x"]


def test_queue_contract_batches_and_deletes(queues: Queues) -> None:
    queues.queue.send_many([{"n": n} for n in range(12)])
    first = queues.queue.receive(10)
    second = queues.queue.receive(10)
    assert (len(first), len(second)) == (10, 2)
    assert sorted(m.json()["n"] for m in first + second) == list(range(12))
    queues.queue.delete(first + second)
    queues.advance(31)
    assert queues.queue.receive() == []


def test_queue_contract_delay_is_at_most_fifteen_minutes(queues: Queues) -> None:
    queues.queue.send("later", delay_seconds=5000)
    queues.advance(899)
    assert queues.queue.receive() == []
    queues.advance(2)
    assert [m.body for m in queues.queue.receive()] == ["later"]


# --------------------------------------------------------------------------------------------
# Archive


@dataclass
class Archives:
    archive: Any
    add_object: Callable[[str, str, bytes], None]


@pytest.fixture(params=IMPLEMENTATIONS)
def archives(request: pytest.FixtureRequest, aws: ClientFactory) -> Iterator[Archives]:
    if request.param == "fake":
        fake = memory.MemoryArchive("contract-archive")
        yield Archives(fake, fake.add_object)
        return
    with mock_aws():
        s3 = aws.client("s3")
        for bucket in ("contract-archive", "config-delivery"):
            s3.create_bucket(Bucket=bucket)
        yield Archives(Archive(s3, "contract-archive"),
                       lambda bucket, key, data: s3.put_object(Bucket=bucket, Key=key, Body=data))


def test_archive_contract(archives: Archives) -> None:
    archive = archives.archive
    assert archive.bucket == "contract-archive"
    archive.put("a/b.json", '{"caf\u00e9": 1}', metadata={"topic": "t\u00e9"})
    archive.put("raw.bin", b"\x00\x01")
    assert archive.get_text("a/b.json") == '{"caf\u00e9": 1}'
    assert archive.get_text("raw.bin") == "\x00\x01"
    archives.add_object("config-delivery", "item.json.gz", gzip.compress(b'{"item": 1}'))
    assert archive.get_text("item.json.gz", "config-delivery") == '{"item": 1}'
    with pytest.raises(Exception, match="NoSuchKey"):
        archive.get_text("absent.json")
    with pytest.raises(Exception, match="NoSuchKey"):
        archive.get_text("item.json.gz")  # in another bucket only
    archives.add_object("config-delivery", "bomb.json.gz", gzip.compress(b"0" * (17 * 2**20)))
    with pytest.raises(MalformedInput, match="inflates beyond"):
        archive.get_text("bomb.json.gz", "config-delivery")


# --------------------------------------------------------------------------------------------
# State


@pytest.fixture(params=IMPLEMENTATIONS)
def state(request: pytest.FixtureRequest, aws: ClientFactory) -> Iterator[Any]:
    if request.param == "fake":
        yield memory.MemoryState()
        return
    with mock_aws():
        ddb = aws.client("dynamodb")
        ddb.create_table(TableName="contract", BillingMode="PAY_PER_REQUEST",
                         AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                               {"AttributeName": "sk", "AttributeType": "S"}],
                         KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                                    {"AttributeName": "sk", "KeyType": "RANGE"}])
        yield StateTable(ddb, "contract")


def test_state_contract_items(state: Any) -> None:
    state.put("out#ci:1", "outcome", 1000.7, kind="manual_change")
    assert state.get("out#ci:1", "outcome") == {"pk": "out#ci:1", "sk": "outcome",
                                                 "expires_at": str(1000 + 14 * 86_400), "kind": "manual_change"}
    state.put("out#ci:1", "outcome", 2000.0, ttl_days=1)
    assert state.get("out#ci:1", "outcome") == {"pk": "out#ci:1", "sk": "outcome", "expires_at": str(2000 + 86_400)}
    assert state.get("out#ci:1", "outcome#r1") is None
    state.put("burst#d#k", "last", 0.0, outcomes="x" * 300_000, empty="")
    assert len(state.get("burst#d#k", "last")["outcomes"]) == 300_000


def test_state_contract_refusals(state: Any) -> None:
    for pk, sk in (("", "x"), ("x", "")):
        with pytest.raises(Exception):  # noqa: B017 (ClientError on AWS, ValueError in memory)
            state.put(pk, sk, 0.0)
    with pytest.raises(Exception):  # noqa: B017
        state.put("big", "item", 0.0, value="x" * 500_000)
    assert state.get("big", "item") is None


def test_state_contract_latest_before(state: Any) -> None:
    pk = "res#1#aws::ec2::securitygroup#sg-1"
    for sk in ("cap#2024-05-01T12:00:00Z", "cap#2024-05-01T12:05:00Z", "cap#2024-05-01T12:10:00Z", "ca", "cb"):
        state.put(pk, sk, 0.0)
    state.put("res#2", "cap#2024-05-01T12:09:00Z", 0.0)
    cases = {"cap#2024-05-01T12:10:00Z": "cap#2024-05-01T12:05:00Z", "cap#2024-05-01T12:06:00Z":
             "cap#2024-05-01T12:05:00Z", "cap#2024-05-01T12:00:00Z": None, "cap#9999": "cap#2024-05-01T12:10:00Z",
             "cap#": None}
    assert {bound: state.latest_before(pk, "cap#", bound) for bound in cases} == cases
    assert state.latest_before("res#3", "cap#", "cap#9999") is None


# --------------------------------------------------------------------------------------------
# CloudTrail lookups

TRAIL = ([trail_entry("sg-1", START + timedelta(seconds=n), event_id=f"e{n:03d}", visible_after=60)
          for n in range(0, 130)]
         + [trail_entry("sg-2", START + timedelta(seconds=n), event_id=f"f{n:03d}", region="eu-west-1")
            for n in range(3)]
         + [trail_entry("sg-1", START + timedelta(hours=2), event_id="late", visible_after=0)])


@pytest.fixture(params=IMPLEMENTATIONS)
def lookups(request: pytest.FixtureRequest) -> Any:
    clock = memory.ManualClock(START + timedelta(minutes=30))
    if request.param == "fake":
        return trail_lookups(TRAIL, clock)
    trail = FakeCloudTrail(entries_from_scenario(TRAIL), clock)
    factory = ClientFactory("us-east-1", on_create=lambda service, region, client: trail.attach(client))
    return LookupClient(lambda region: factory.client("cloudtrail", region), clock, clock.sleep)


def ids(result: tuple[list[Any], bool]) -> tuple[list[str], bool]:
    return [e.event_id for e in result[0]], result[1]


def test_lookups_contract(lookups: Any) -> None:
    everything = ids(lookups.lookup("us-east-1", "ResourceName", "sg-1"))
    assert everything == ([f"e{n:03d}" for n in reversed(range(130))], True), "newest first; late is not visible"
    assert lookups.stats.calls == 3
    window = ids(lookups.lookup("us-east-1", "ResourceName", "sg-1", START + timedelta(seconds=10),
                                START + timedelta(seconds=12)))
    assert window == (["e012", "e011", "e010"], True)
    assert ids(lookups.lookup("us-east-1", "ResourceName", "sg-1", max_pages=1)) == (
        [f"e{n:03d}" for n in reversed(range(80, 130))], False)
    assert ids(lookups.lookup("us-east-1", "EventId", "e007")) == (["e007"], True)
    assert ids(lookups.lookup("us-east-1", "ResourceName", "sg-2")) == ([], True)
    assert ids(lookups.lookup("eu-west-1", "ReadOnly", "false"))[0] == ["f002", "f001", "f000"]
    assert lookups.stats.calls == 8
    event = lookups.lookup("us-east-1", "EventId", "e001")[0][0]
    assert (event.source, event.event_name, event.principal.arn) == (
        "lookup:us-east-1", "AuthorizeSecurityGroupIngress", "arn:aws:iam::123456789012:user/alice")


# --------------------------------------------------------------------------------------------
# Secrets

SECRETS = {"mcd/bare": "https://hooks.slack.com/services/T/B/bare", "mcd/json": json.dumps({"token": " xoxb-1 "}),
           "ssm:/mcd/param": json.dumps({"webhook_url": "https://hooks.slack.com/services/T/B/ssm"}),
           "mcd/no-key": json.dumps({"other": "x"}), "mcd/bad-json": "{nope"}


@pytest.fixture(params=IMPLEMENTATIONS)
def secrets(request: pytest.FixtureRequest, aws: ClientFactory) -> Iterator[Any]:
    if request.param == "fake":
        yield memory.MemorySecrets(SECRETS)
        return
    with mock_aws():
        for ref, value in SECRETS.items():
            if ref.startswith("ssm:"):
                aws.client("ssm").put_parameter(Name=ref[4:], Type="SecureString", Value=value)
            else:
                aws.client("secretsmanager").create_secret(Name=ref, SecretString=value)
        yield SecretReader(aws.client, memory.ManualClock())


def test_secrets_contract(secrets: Any) -> None:
    read = {ref: secrets.read(ref) for ref in ("mcd/bare", "mcd/json", "ssm:/mcd/param")}
    assert all(isinstance(value, Secret) for value in read.values())
    assert {ref: value.reveal() for ref, value in read.items()} == {
        "mcd/bare": "https://hooks.slack.com/services/T/B/bare", "mcd/json": "xoxb-1",
        "ssm:/mcd/param": "https://hooks.slack.com/services/T/B/ssm"}
    for ref, reason in (("mcd/no-key", "JSON without any of the keys"), ("mcd/bad-json", "not valid JSON")):
        with pytest.raises(SecretError, match=reason):
            secrets.read(ref)
    with pytest.raises(Exception):  # noqa: B017 (ResourceNotFoundException on AWS, SecretError in memory)
        secrets.read("mcd/absent")


# --------------------------------------------------------------------------------------------
# Slack


@pytest.fixture(scope="module")
def standin() -> Iterator[SlackStandIn]:
    server = SlackStandIn().start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class SlackSide:
    poster: Any
    webhook: Secret


@pytest.fixture(params=IMPLEMENTATIONS)
def slack(request: pytest.FixtureRequest, standin: SlackStandIn, monkeypatch: pytest.MonkeyPatch) -> SlackSide:
    if request.param == "fake":
        return SlackSide(memory.RecordingSlack(), Secret("https://hooks.slack.com/services/T/B/X"))
    reset_standin(standin)
    monkeypatch.setenv(slack_adapter.API_URL_VARIABLE, f"{standin.base_url}/api/")
    monkeypatch.delenv(slack_adapter.STAGE_VARIABLE, raising=False)
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    return SlackSide(slack_adapter, Secret(standin.webhook_url("default")))


def test_slack_contract(slack: SlackSide) -> None:
    payload = {"text": "hi", "unfurl_links": False}
    assert slack.poster.post_webhook(slack.webhook, payload) == slack_adapter.Delivery("ok")
    refused = slack.poster.post_webhook(Secret("https://example.com/hook"), payload)
    assert refused == slack_adapter.post_webhook(Secret("https://example.com/hook"), payload)
    assert (refused.status, refused.code, refused.whole_destination) == ("permanent", "bad_url", True)
    posted = slack.poster.post_bot(Secret("xoxb-1"), "C0ALERTS", payload)
    assert (posted.status, posted.channel) == ("ok", "C0ALERTS") and posted.ts
    updated = slack.poster.post_bot(Secret("xoxb-1"), "C0ALERTS", {"text": "more"}, update_ts=posted.ts)
    assert (updated.status, updated.ts, updated.channel) == ("ok", posted.ts, "C0ALERTS")


# --------------------------------------------------------------------------------------------
# What only the fakes have


def test_a_delete_needs_the_latest_receipt() -> None:
    clock = memory.ManualClock()
    queue = memory.MemoryQueue("q", clock, visibility_timeout=10)
    queue.send("x")
    (stale,) = queue.receive()
    clock.advance(10)
    (fresh,) = queue.receive()
    queue.delete([stale])
    assert len(queue) == 1, "SQS may ignore an older receipt: the fake always does"
    queue.delete([fresh])
    assert len(queue) == 0


def test_messages_expire_after_the_retention_period() -> None:
    clock = memory.ManualClock()
    queue = memory.MemoryQueue("q", clock, retention_seconds=100)
    queue.send("old")
    clock.advance(50)
    queue.send("new")
    clock.advance(50)
    assert [m.body for m in queue.receive()] == ["new"]


def test_a_message_over_sqs_limit_is_refused() -> None:
    queue = memory.MemoryQueue("q", memory.ManualClock())
    with pytest.raises(RuntimeError, match="SQS refused"):
        queue.send("x" * 262_145)
    assert len(queue) == 0


def test_queue_depth_and_peek() -> None:
    clock = memory.ManualClock()
    queue = memory.MemoryQueue("q", clock, visibility_timeout=10)
    queue.send_many(["a", "b"])
    queue.send("c", delay_seconds=60)
    queue.receive(1)
    assert queue.depth() == {"visible": 1, "in_flight": 1, "delayed": 1}
    assert [(m.body, m.receive_count) for m in queue.peek()] == [("b", 0), ("a", 1), ("c", 0)]
    assert queue.bodies() == ["b", "a", "c"]


def test_the_manual_clock_moves_only_when_told() -> None:
    clock = memory.ManualClock(START)
    clock.sleep(1.5)
    clock.sleep(-3)
    clock.advance(0.5)
    assert clock() == START.timestamp() + 2 and clock.slept == 1.5 and clock.now() == START + timedelta(seconds=2)
    with pytest.raises(ValueError):
        clock.advance(-1)


def test_lookups_can_fail_by_region_and_recover() -> None:
    lookups = memory.MemoryLookups()
    lookups.fail("eu-west-1", RuntimeError("refused region"))
    assert lookups.lookup("us-east-1", "EventId", "x") == ([], True)
    with pytest.raises(RuntimeError, match="refused region"):
        lookups.lookup("eu-west-1", "EventId", "x")
    lookups.recover("eu-west-1")
    assert lookups.lookup("eu-west-1", "EventId", "x") == ([], True)
    assert lookups.stats.calls == 3 and [r for r, _ in lookups.requests] == ["us-east-1", "eu-west-1", "eu-west-1"]


def test_recording_slack_scripts_answers_and_tracks_bot_messages() -> None:
    clock = memory.ManualClock(START)
    slack = memory.RecordingSlack(clock=clock)
    hook = Secret("https://hooks.slack.com/services/T/B/X")
    slack.script(hook.reveal(), slack_adapter.Delivery("retry", "down", unavailable=True))
    assert slack.post_webhook(hook, {"text": "1"}).status == "retry"
    assert slack.post_webhook(hook, {"text": "1"}).status == "ok"
    posted = slack.post_bot(Secret("xoxb"), "#alerts", {"text": "a"})
    assert posted.channel == "CALERTS" and posted.ts and posted.ts.startswith(str(int(START.timestamp())))
    gone = slack.post_bot(Secret("xoxb"), "CALERTS", {"text": "b"}, update_ts="1.000001")
    assert (gone.status, gone.code) == ("permanent", "message_not_found")
    assert slack.post_bot(Secret("xoxb"), "CALERTS", {"text": "c"}, update_ts=posted.ts).status == "ok"
    assert slack.messages[("CALERTS", posted.ts)] == {"text": "c"}
    assert [c.method for c in slack.delivered()] == ["webhook", "chat.postMessage", "chat.update"]
    assert [c.method for c in slack.calls] == ["webhook", "webhook", "chat.postMessage", "chat.update", "chat.update"]


def test_memory_secrets_can_be_made_unreadable() -> None:
    secrets = memory.MemorySecrets({"a": "value"})
    assert secrets.read("a").reveal() == "value"
    secrets.unreadable.add("a")
    with pytest.raises(SecretError, match="secret a cannot be read"):
        secrets.read("a")
    assert secrets.reads == ["a", "a"]


def test_memory_archive_helpers() -> None:
    archive = memory.MemoryArchive("b")
    archive.put("x/1.json", '{"a": 1}', metadata={"m": "caf\u00e9"})
    archive.put("y/2.json", "{}")
    assert archive.list_keys("x/") == ["x/1.json"] and archive.json("x/1.json") == {"a": 1}
    assert archive.metadata[("b", "x/1.json")] == {"m": "caf_"}
