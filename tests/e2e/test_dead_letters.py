"""Nothing ends unseen: every stored dead letter is alerted once (digested), its change still reported,
and an operational alert that cannot be delivered never loops (issue 11, part 5). An event Lambda gave up on
reaches the async-failed queue as its destination record and is run again, or kept (issue 14)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from test_pipeline import ACCOUNT, CAPTURE, START, World, sg_notification, sns_event, trail_entry
from test_pipeline import world as world  # the fixture, re-exported

from chalicelib.core.outcomes import DEAD_LETTER, Outcome
from chalicelib.slack.operational import render_operational
from chalicelib.slack.render import check_limits
from chalicelib.stages import dead_letters
from chalicelib.stages import deliver as delivery
from chalicelib.stages.reruns import RERUNS
from mcd_tools.replay import run

PERMANENT = {"mcd-permanent": {"DataType": "String", "StringValue": "true"}}


def reason(text: str) -> dict[str, Any]:
    return {**PERMANENT, "mcd-reason": {"DataType": "String", "StringValue": text}}


def send(world: World, queue: str, body: str, attributes: dict[str, Any]) -> None:
    world.aws.client("sqs").send_message(QueueUrl=getattr(world.deps.env, f"{queue}_url"), MessageBody=body,
                                         MessageAttributes=attributes)


def slack_jobs(world: World) -> list[dict[str, Any]]:
    sqs = world.aws.client("sqs")
    found = sqs.receive_message(QueueUrl=world.deps.env.slack_queue_url, MaxNumberOfMessages=10,
                                VisibilityTimeout=0).get("Messages", [])
    return [json.loads(m["Body"])["outcome"] for m in found]


def payload_text(world: World) -> str:
    return json.dumps([m["payload"] for m in world.standin.messages], ensure_ascii=False)


def test_many_dead_letters_at_once_become_one_message_listing_counts(world: World) -> None:
    for n in range(5):
        send(world, "dispatch_dlq", json.dumps({"message_id": f"x-{n}", "message": "{\"configurationItem\": {"}),
             reason("Config notification: JSON ends early (Expecting value): the text looks truncated"))
    send(world, "lookup_dlq", '{"not": "a job"}', reason("unreadable lookup job: KeyError: 'change'"))
    assert world.tick("dl_retry")["dl_retry"] == {"redriven": 0, "stored": 6}
    alerts = slack_jobs(world)
    assert {a["kind"] for a in alerts} == {DEAD_LETTER} and len({a["outcome_id"] for a in alerts}) == 6
    world.tick("slack_send")
    assert len(world.standin.messages) == 1, "one digest, not six messages"
    text = payload_text(world)
    assert "6 dead letters" in text and "*5* Config notification" in text and "*1* attribution job" in text
    assert "5 × Config notification: JSON ends early" in text
    assert text.count("s3.console.aws.amazon.com/s3/object/mcd-test-archive?prefix=dead-letter") == 6
    assert check_limits(world.standin.messages[0]["payload"]) == []


def test_one_alert_per_dead_letter_key(world: World) -> None:
    for _ in range(3):
        dead_letters.surface(world.deps, "dispatch_queue", "dead-letter/dispatch_queue/2024/5/1/same.json",
                             "not a Config notification", "{}")
    assert len(slack_jobs(world)) == 1


@pytest.mark.parametrize("world", [[trail_entry("sg-0xx", START + timedelta(seconds=5))]], indirect=True)
def test_a_dead_lettered_change_is_still_reported_without_an_author(world: World) -> None:
    message = json.loads(sg_notification("sg-0xx", CAPTURE))
    message["configurationItem"]["configurationItemCaptureTime"] = "xxx"  # a placeholder (field-variations §9)
    world.deliver(json.dumps(message), "no-time")
    assert world.tick("dispatch")["dispatch"]["dead_lettered"] == 1
    assert world.tick("dl_retry")["dl_retry"]["stored"] == 1
    kinds = sorted(a["kind"] for a in slack_jobs(world))
    assert kinds == ["dead_letter", "unattributed_change"]
    alert = next(a for a in slack_jobs(world) if a["kind"] == DEAD_LETTER)
    assert alert["extra"]["still_reported"] == ["AWS::EC2::SecurityGroup sg-0xx"]
    assert "without capture time" in alert["reason"]


@pytest.mark.parametrize("world", [[trail_entry(g, START + timedelta(seconds=5)) for g in ("sg-0g1", "sg-0g2")]],
                         indirect=True)
def test_items_already_on_their_way_are_not_reported_twice(world: World) -> None:
    good = json.loads(sg_notification("sg-0g1", CAPTURE))["configurationItem"]
    bad = {**json.loads(sg_notification("sg-0g2", CAPTURE))["configurationItem"], "configurationItemCaptureTime": None}
    world.deliver(json.dumps({"messageType": "ConfigurationItemChangeNotification", "MessageVersion": "1.0",
                              "notificationCreationTime": good["configurationItemCaptureTime"],
                              "configurationItems": [good, bad]}), "two-items")
    counts = world.tick("dispatch")["dispatch"]
    assert counts["changes"] == 1 and counts["dead_lettered"] == 1
    world.tick("dl_retry")
    reported = [a for a in slack_jobs(world) if a["kind"] == "unattributed_change"]
    assert [a["resource_id"] for a in reported] == ["sg-0g2"], "sg-0g1 is being attributed by the lookup stage"


def test_an_undelivered_alert_is_alerted_once_and_its_alert_never_loops(world: World) -> None:
    alert = Outcome(kind="manual_change", outcome_id="ci:abc", at="2024-05-01T12:00:00Z", account=ACCOUNT,
                    resource_type="AWS::EC2::SecurityGroup", resource_id="sg-0lost",
                    principal_arn=f"arn:aws:iam::{ACCOUNT}:user/alice")
    send(world, "slack_dlq", json.dumps({"outcome": alert.to_json()}), {
        "mcd-redrives": {"DataType": "String", "StringValue": "3"}})
    assert world.tick("dl_retry")["dl_retry"]["stored"] == 1
    (operational,) = slack_jobs(world)
    assert operational["kind"] == DEAD_LETTER and "sg-0lost" in operational["extra"]["undelivered"]
    # The operational alert itself fails for good and comes back through the Slack DLQ: kept, never re-alerted.
    sqs = world.aws.client("sqs")
    for message in sqs.receive_message(QueueUrl=world.deps.env.slack_queue_url).get("Messages", []):
        sqs.delete_message(QueueUrl=world.deps.env.slack_queue_url, ReceiptHandle=message["ReceiptHandle"])
    send(world, "slack_dlq", json.dumps({"outcome": operational}), {
        "mcd-redrives": {"DataType": "String", "StringValue": "3"}})
    assert world.tick("dl_retry")["dl_retry"]["stored"] == 1
    assert slack_jobs(world) == []
    assert len(world.s3_keys("dead-letter/slack_queue/")) == 2


def test_slack_refusing_everything_ends_with_everything_stored_and_no_loop(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the Slack sender's own S3 dead letters surfaced too (the integration asked of delivery.py)."""
    original = delivery._store_dead

    def store_and_surface(deps: Any, body: str, why: str, name: str) -> str:
        key = original(deps, body, why, name)
        dead_letters.surface(deps, "slack_queue", key, why, body)
        return key

    monkeypatch.setattr(delivery, "_store_dead", store_and_surface)
    path = "/hooks/default"
    world.standin.fail(path, 404, "no_service", times=50)
    alert = Outcome(kind="unattributed_change", outcome_id="ci:zzz", at="2024-05-01T12:00:00Z", account=ACCOUNT,
                    resource_type="AWS::EC2::SecurityGroup", resource_id="sg-0zzz")
    world.deps.queue("slack_queue").send({"outcome": alert.to_json()})
    for _ in range(6):
        world.traveller.shift(60)
        world.tick("slack_send", "dl_retry")
    stored = world.s3_keys("dead-letter/slack/")
    assert len(stored) == 2, stored  # the alert, then its operational alert; nothing after that
    assert slack_jobs(world) == []


def test_dl_retry_goes_on_when_one_dead_letter_fails(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    for n in range(3):
        send(world, "dispatch_dlq", json.dumps({"message_id": f"x-{n}"}), reason(f"reason {n}"))
    original = world.deps.archive.put
    calls = {"n": 0}

    def flaky_put(key: str, body: Any, **kwargs: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("S3 hiccup")
        original(key, body, **kwargs)

    monkeypatch.setattr(world.deps.archive, "put", flaky_put)
    assert world.tick("dl_retry")["dl_retry"]["stored"] == 2
    world.traveller.shift(61)
    assert world.tick("dl_retry")["dl_retry"]["stored"] == 1  # the failed one came back and was kept


def test_operational_alerts_render_safely_and_within_limits() -> None:
    hostile = "<!channel> `code` & @here \u202e" + "x" * 5000
    alerts = [Outcome(kind=DEAD_LETTER, outcome_id=f"dl:{n}", at=f"2024-05-01T12:00:{n % 60:02d}Z", reason=hostile,
                      archive_bucket="mcd-archive", archive_key=f"dead-letter/slack_queue/2024/5/1/{n}.json",
                      extra={"queue": "slack_queue", "undelivered": hostile, "still_reported": [hostile] * 30})
              for n in range(120)]
    for batch in (alerts[:1], alerts):
        payload = render_operational(batch)
        assert check_limits(payload) == []
        text = json.dumps(payload)
        assert "<!channel>" not in text and "@here" not in text and "\u202e" not in text
    assert "and 1" in json.dumps(render_operational(alerts)) or "more under" in json.dumps(render_operational(alerts))
    gov = Outcome(kind=DEAD_LETTER, outcome_id="dl:g", at="2024-05-01T12:00:00Z", reason="r", partition="aws-us-gov",
                  archive_bucket="b", archive_key="dead-letter/x.json", extra={"queue": "lookup_queue"})
    assert "console.amazonaws-us-gov.com" in json.dumps(render_operational([gov]))


def test_the_replay_never_shows_operational_alerts_as_outcomes() -> None:
    scenario = {
        "name": "dead-letter-only", "start": "2024-05-01T12:00:00Z", "end": "2024-05-01T12:40:00Z",
        "home_region": "us-east-1", "settings": {},
        "deliveries": [{"at": "2024-05-01T12:01:00Z", "via": "sns", "message": '{"configurationItem": {"resour'}],
        "cloudtrail": [], "expect": {"outcomes": []},
    }
    result = run(scenario)
    assert result.outcomes == []
    assert len(result.slack) == 1 and "dead letter" in json.dumps(result.slack[0]["payload"])


# --- Lambda's on-failure destination (issue 14): nothing is lost between AWS and the first queue ---------


def async_failed_queue(world: World) -> str:
    """The stage's async-failed queue in moto, as infra/stack.yaml makes it (the sandbox predates it)."""
    url = world.aws.client("sqs").create_queue(QueueName="mcd-test-async-failed",
                                               Attributes={"MessageRetentionPeriod": "1209600"})["QueueUrl"]
    world.deps.env = replace(world.deps.env, async_failed_queue_url=url)
    return url


def destination_record(function: str, payload: dict[str, Any] | None, request_id: str) -> str:
    """What Lambda sends to an SQS on-failure destination after an event failed three times."""
    record: dict[str, Any] = {
        "version": "1.0", "timestamp": "2024-05-01T12:00:41.220Z",
        "requestContext": {"requestId": request_id, "condition": "RetriesExhausted", "approximateInvokeCount": 3,
                           "functionArn": f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{function}:$LATEST"},
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {"errorMessage": "1 SNS record(s) not ingested (Lambda retries them): EndpointConnection"
                                            "Error: Could not connect to the endpoint URL", "errorType": "RuntimeError",
                            "requestId": request_id, "stackTrace": ["  File \"/var/task/app.py\", line 51"]},
    }
    if payload is not None:  # Lambda leaves the event out of records over 256 KB
        record["requestPayload"] = payload
    return json.dumps(record)


@pytest.mark.parametrize("world", [[trail_entry("sg-0lost", START + timedelta(seconds=5))]], indirect=True)
def test_an_sns_event_lambda_gave_up_on_still_ends_in_slack(world: World) -> None:
    url = async_failed_queue(world)
    sqs = world.aws.client("sqs")
    event = sns_event(sg_notification("sg-0lost", CAPTURE), "sns-lost")
    for _ in range(2):  # at least once: the same record twice
        sqs.send_message(QueueUrl=url, MessageBody=destination_record("mcd-test-ingest", event, "a1b2-c3"))
    # app.py's dl_retry handler hands the stage RERUNS; the stage is called here with it directly.
    assert dead_letters.dl_retry(world.deps, RERUNS) == {"redriven": 2, "stored": 0}
    assert sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])[
        "Attributes"]["ApproximateNumberOfMessages"] == "0"
    assert world.s3_keys("AWSLogs/") == [
        f"AWSLogs/{ACCOUNT}/Config/us-east-1/2024/5/1/ConfigNotifications/sns-lost.json"]
    world.run_minutes(12)
    assert len(world.standin.messages) == 1 and "sg-0lost" in payload_text(world)


def test_a_record_without_its_event_is_kept_and_announced(world: World) -> None:
    url = async_failed_queue(world)
    body = destination_record("mcd-test-cloudwatch_logs", None, "big-1")
    world.aws.client("sqs").send_message(QueueUrl=url, MessageBody=body)
    assert dead_letters.dl_retry(world.deps, RERUNS) == {"redriven": 0, "stored": 1}
    (key,) = world.s3_keys("dead-letter/async_failed_queue/")
    assert key == "dead-letter/async_failed_queue/2024/5/1/mcd-test-cloudwatch_logs-big-1.json"
    kept = json.loads(world.aws.client("s3").get_object(Bucket=world.deps.env.archive_bucket, Key=key)["Body"].read())
    assert kept["body"] == body and "carries no event" in kept["reason"]
    (alert,) = slack_jobs(world)
    assert alert["kind"] == DEAD_LETTER and alert["extra"]["queue"] == "async_failed_queue"
    world.tick("slack_send")
    assert len(world.standin.messages) == 1 and "mcd-test-cloudwatch_logs failed" in payload_text(world)


def test_an_environment_without_the_queue_drains_the_others(world: World) -> None:
    world.deps.env = replace(world.deps.env, async_failed_queue_url="")  # resources made before the queue existed
    assert dead_letters.dl_retry(world.deps, RERUNS) == {"redriven": 0, "stored": 0}
