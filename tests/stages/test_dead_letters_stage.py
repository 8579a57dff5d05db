"""``dl_retry`` on the in-memory fakes: redrive with backoff, then store, report and alert once; never loop.
Lambda's records of failed asynchronous events are run again a bounded number of times, or kept.

The same behaviour is checked end to end on moto in ``tests/e2e/test_dead_letters.py`` and ``test_pipeline.py``.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from memory_world import (
    ACCOUNT,
    CAPTURE,
    WEBHOOK,
    lookup_job,
    queued_json,
    sg_item,
    sg_notification,
    slack_outcomes,
    sns_event,
    world,
)

from chalicelib.core.jobs import change_key
from chalicelib.core.metrics import DEAD_LETTERS
from chalicelib.core.outcomes import DEAD_LETTER, Outcome
from chalicelib.memory_deps import MemoryDeps
from chalicelib.parsing.config_notifications import parse_config_message
from chalicelib.stages.dead_letters import (
    MAX_REDRIVES,
    MAX_RERUNS,
    RERUN_WAIT_SECONDS,
    FailedInvocation,
    dl_retry,
    rerun_for,
)
from chalicelib.stages.deliver import slack_send
from chalicelib.stages.direct import direct
from chalicelib.stages.dispatch import dispatch
from chalicelib.stages.reruns import RERUNS
from chalicelib.stages.shared.dead_letter_notices import WATCH_LOST
from chalicelib.stages.shared.queues import ASYNC_FAILED_QUEUE

PERMANENT = {"mcd-permanent": "true"}


def dead(deps: MemoryDeps, queue: str, body: Any, **attributes: str) -> None:
    deps.queue(queue).send(body, attributes=attributes or None)


def stored(deps: MemoryDeps, queue: str) -> list[dict[str, Any]]:
    return [deps.archive.json(key) for key in deps.archive.list_keys(f"dead-letter/{queue}/")]


def test_a_transient_dead_letter_goes_back_with_a_growing_delay() -> None:
    deps = world()
    dead(deps, "lookup_dlq", '{"not": "a job"}')
    dead(deps, "dispatch_dlq", '{"x": 1}', **{"mcd-redrives": "2", "mcd-reason": "boom"})
    assert dl_retry(deps) == {"redriven": 2, "stored": 0}
    assert deps.queue("lookup_queue").receive() == [], "delayed a minute"
    deps.manual_clock.advance(60)
    (job,) = deps.queue("lookup_queue").receive()
    assert (job.body, job.attributes) == ('{"not": "a job"}', {"mcd-redrives": "1"})
    assert deps.queue("dispatch_queue").receive() == []
    deps.manual_clock.advance(180)
    (again,) = deps.queue("dispatch_queue").receive()
    assert again.attributes == {"mcd-redrives": "3"}, "60 s × 2² after the second redrive"
    assert len(deps.queue("lookup_dlq")) == len(deps.queue("dispatch_dlq")) == 0


def test_after_the_last_redrive_or_when_permanent_it_is_stored_with_its_reason() -> None:
    deps = world()
    dead(deps, "dispatch_dlq", '{"x": 1}', **PERMANENT, **{"mcd-reason": "not a Config notification"})
    dead(deps, "slack_dlq", '{"y": 2}', **{"mcd-redrives": str(MAX_REDRIVES)})
    dead(deps, "lookup_dlq", '{"z": 3}', **{"mcd-redrives": "many"})
    assert dl_retry(deps) == {"redriven": 0, "stored": 3}
    [notification] = stored(deps, "dispatch_queue")
    assert (notification["reason"], notification["body"], notification["redrives"]) == (
        "not a Config notification", '{"x": 1}', 0)
    assert stored(deps, "slack_queue")[0]["reason"] == f"failed after {MAX_REDRIVES} redrives"
    assert stored(deps, "lookup_queue")[0]["redrives"] == MAX_REDRIVES, "an unreadable count is the last one"
    alerts = slack_outcomes(deps)
    assert [a["kind"] for a in alerts] == [DEAD_LETTER] * 3
    assert {a["extra"]["queue"] for a in alerts} == {"dispatch_queue", "slack_queue", "lookup_queue"}


def test_many_dead_letters_at_once_become_one_slack_message() -> None:
    deps = world()
    for n in range(5):
        dead(deps, "dispatch_dlq", json.dumps({"message_id": f"x-{n}", "message": '{"configurationItem": {'}),
             **PERMANENT, **{"mcd-reason": "Config notification: JSON ends early"})
    dead(deps, "lookup_dlq", '{"not": "a job"}', **PERMANENT, **{"mcd-reason": "unreadable lookup job"})
    assert dl_retry(deps)["stored"] == 6
    assert len({a["outcome_id"] for a in slack_outcomes(deps)}) == 6
    slack_send(deps)
    [message] = deps.slack.delivered()
    text = json.dumps(message.payload)
    assert message.target == WEBHOOK
    assert "6 dead letters" in text and "*5* Config notification" in text and "*1* attribution job" in text


def test_a_stored_notification_still_reports_its_changes_without_an_author() -> None:
    deps = world()
    good = sg_item("sg-0g1")["configurationItem"]
    bad = {**sg_item("sg-0g2")["configurationItem"], "configurationItemCaptureTime": None}
    message = json.dumps({"messageType": "ConfigurationItemChangeNotification", "configurationItems": [good, bad],
                          "notificationCreationTime": good["configurationItemCaptureTime"]})
    being_attributed = next(i for i in parse_config_message(message, "t") if i.resource_id == "sg-0g1")
    deps.state.put(f"ci#{change_key(being_attributed)}", "dispatched", deps.clock())  # as dispatch marks it
    dead(deps, "dispatch_dlq", json.dumps({"message_id": "two", "message": message}), **PERMANENT,
         **{"mcd-reason": "configuration item without capture time"})
    dl_retry(deps)
    kinds = {a["kind"]: a for a in slack_outcomes(deps)}
    assert set(kinds) == {DEAD_LETTER, "unattributed_change"}
    assert kinds["unattributed_change"]["resource_id"] == "sg-0g2"
    assert kinds[DEAD_LETTER]["extra"]["still_reported"] == ["AWS::EC2::SecurityGroup sg-0g2"]


def test_a_notification_kept_only_in_the_archive_is_read_from_there() -> None:
    deps = world()
    deps.archive.put("AWSLogs/n.json", json.dumps(sg_item("sg-0arc")))
    dead(deps, "dispatch_dlq", json.dumps({"message_id": "m", "archive_key": "AWSLogs/n.json"}), **PERMANENT)
    dl_retry(deps)
    assert [a["resource_id"] for a in slack_outcomes(deps) if a["kind"] == "unattributed_change"] == ["sg-0arc"]


def test_a_stored_lookup_job_is_reported_as_an_unattributed_change() -> None:
    deps = world()
    dead(deps, "lookup_dlq", json.dumps(lookup_job("sg-0dead").to_json()), **{"mcd-redrives": "3"})
    dl_retry(deps)
    (change,) = [a for a in slack_outcomes(deps) if a["kind"] == "unattributed_change"]
    assert change["resource_id"] == "sg-0dead" and change["revision"] == 0
    assert deps.state.get(f"out#{change['outcome_id']}", "outcome") is not None


def test_a_stored_watch_is_no_longer_silence_and_a_stored_follow_up_was_already_alerted() -> None:
    deps = world()
    watch = replace(lookup_job("sg-0w"), decided_kind="suppressed", revision=1)
    followup = replace(lookup_job("sg-0f"), decided_kind="manual_change")
    for job in (watch, followup):
        dead(deps, "lookup_dlq", json.dumps(job.to_json()), **PERMANENT)
    dl_retry(deps)
    changes = [a for a in slack_outcomes(deps) if a["kind"] == "unattributed_change"]
    assert [(c["resource_id"], c["revision"], c["extra"]["unverified"]) for c in changes] == [
        ("sg-0w", 2, WATCH_LOST)]


def test_an_undelivered_alert_is_alerted_once_and_its_own_alert_never_loops() -> None:
    deps = world()
    lost = Outcome(kind="manual_change", outcome_id="ci:abc", at="2024-05-01T12:00:00Z", account=ACCOUNT,
                   resource_type="AWS::EC2::SecurityGroup", resource_id="sg-0lost",
                   principal_arn=f"arn:aws:iam::{ACCOUNT}:user/alice")
    dead(deps, "slack_dlq", json.dumps({"outcome": lost.to_json()}), **{"mcd-redrives": "3"})
    assert dl_retry(deps)["stored"] == 1
    (operational,) = slack_outcomes(deps)
    assert operational["kind"] == DEAD_LETTER and "sg-0lost" in operational["extra"]["undelivered"]
    deps.queue("slack_queue").purge()
    dead(deps, "slack_dlq", json.dumps({"outcome": operational}), **{"mcd-redrives": "3"})
    assert dl_retry(deps)["stored"] == 1
    assert slack_outcomes(deps) == []
    assert len(deps.archive.list_keys("dead-letter/slack_queue/")) == 2


def test_one_failing_dead_letter_does_not_stop_the_others(monkeypatch: pytest.MonkeyPatch) -> None:
    deps = world()
    for n in range(3):
        dead(deps, "dispatch_dlq", json.dumps({"message_id": f"x-{n}"}), **PERMANENT, **{"mcd-reason": f"r{n}"})
    original = deps.archive.put
    calls = {"n": 0}

    def flaky_put(key: str, body: Any, **kwargs: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("S3 hiccup")
        original(key, body, **kwargs)

    monkeypatch.setattr(deps.archive, "put", flaky_put)
    assert dl_retry(deps)["stored"] == 2
    assert dl_retry(deps)["stored"] == 0, "the failed one waits out its visibility timeout"
    deps.manual_clock.advance(61)
    assert dl_retry(deps)["stored"] == 1


def test_one_unreachable_queue_does_not_stop_the_others(monkeypatch: pytest.MonkeyPatch) -> None:
    deps = world()
    dead(deps, "lookup_dlq", '{"x": 1}', **PERMANENT)

    def unreachable(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("SQS unreachable")

    monkeypatch.setattr(deps.queue("dispatch_dlq"), "receive", unreachable)
    assert dl_retry(deps) == {"redriven": 0, "stored": 1}


def test_an_idle_run_only_receives() -> None:
    deps = world()
    assert dl_retry(deps) == {"redriven": 0, "stored": 0}
    assert deps.archive.list_keys() == [] and deps.state.items == {}


def test_the_capture_time_of_a_stored_change_is_kept() -> None:
    deps = world()
    dead(deps, "lookup_dlq", json.dumps(lookup_job("sg-0t").to_json()), **PERMANENT)
    dl_retry(deps)
    (change,) = [a for a in slack_outcomes(deps) if a["kind"] == "unattributed_change"]
    assert change["capture_time"] == CAPTURE.isoformat().replace("+00:00", "Z")


# --- Lambda's on-failure destination: the async-failed queue -------------------------------------------


EVENTS = Path(__file__).resolve().parents[1] / "events"


def destination_record(function: str, payload: Any = None, *, request_id: str = "req-1",
                       condition: str = "RetriesExhausted", drop: tuple[str, ...] = ()) -> str:
    """A record as Lambda sends a failed asynchronous invocation to an SQS on-failure destination."""
    record = {
        "version": "1.0", "timestamp": "2024-05-01T12:00:05.568Z",
        "requestContext": {"requestId": request_id, "condition": condition, "approximateInvokeCount": 3,
                           "functionArn": f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{function}:$LATEST"},
        "requestPayload": payload,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {"errorType": "EndpointConnectionError", "errorMessage": "Could not connect to SQS",
                            "stackTrace": ["  File \"/var/task/app.py\", line 50, in ingest"]},
    }
    for key in drop:
        record.pop(key)
    return json.dumps(record)


def failed(deps: MemoryDeps, body: str) -> None:
    deps.queue(ASYNC_FAILED_QUEUE).send(body)


def always_failing(calls: list[dict[str, Any]]) -> dict[str, Any]:
    def rerun(event: dict[str, Any], deps: Any) -> None:
        calls.append(event)
        raise RuntimeError("S3 still unreachable")

    return {"ingest": rerun}


def test_a_failed_sns_event_is_ingested_again_and_its_record_deleted() -> None:
    deps = world()
    event = sns_event(sg_notification("sg-0a1"), "sns-1")
    for request in ("req-1", "req-1"):  # delivered twice (SQS is at least once): the stages are idempotent
        failed(deps, destination_record("mcd-prod-ingest", event, request_id=request))
    assert dl_retry(deps, RERUNS) == {"redriven": 2, "stored": 0}
    assert len(deps.queue(ASYNC_FAILED_QUEUE)) == 0
    assert [k for k in deps.archive.list_keys() if k.startswith("AWSLogs/")] == [
        f"AWSLogs/{ACCOUNT}/Config/us-east-1/2024/5/1/ConfigNotifications/sns-1.json"]
    assert dispatch(deps)["changes"] == 1, "the second copy is skipped by dispatch, as a redelivered SNS message"
    assert [job["change"]["resource_id"] for job in queued_json(deps, "lookup_queue")] == ["sg-0a1"]


def test_a_failed_sign_in_event_is_alerted_by_the_direct_stage_once() -> None:
    deps = world()
    signin = json.loads((EVENTS / "eventbridge_console_signin_failure.json").read_text())
    failed(deps, destination_record("mcd-prod-console_signin", signin))
    direct(signin, deps, "eventbridge")  # one try did get through before the failure: still one alert
    assert dl_retry(deps, RERUNS)["redriven"] == 1
    assert [a["kind"] for a in slack_outcomes(deps)] == ["console_signin"]


def test_an_event_failing_again_waits_for_the_next_run_then_succeeds(monkeypatch: pytest.MonkeyPatch) -> None:
    deps = world()
    failed(deps, destination_record("mcd-dev-ingest", sns_event(sg_notification("sg-0b"), "sns-2")))
    original = deps.archive.put

    def down(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("S3 unreachable")

    monkeypatch.setattr(deps.archive, "put", down)
    assert dl_retry(deps, RERUNS) == {"redriven": 0, "stored": 0}
    assert deps.queue(ASYNC_FAILED_QUEUE).depth()["in_flight"] == 1, "kept, hidden until the next run"
    monkeypatch.setattr(deps.archive, "put", original)
    deps.manual_clock.advance(RERUN_WAIT_SECONDS)
    assert dl_retry(deps, RERUNS) == {"redriven": 1, "stored": 0}
    assert len(deps.queue(ASYNC_FAILED_QUEUE)) == 0 and len(deps.queue("dispatch_queue")) == 1


def test_an_event_that_keeps_failing_is_kept_as_a_dead_letter_and_surfaced() -> None:
    deps = world()
    event = sns_event(sg_notification("sg-0c"), "sns-3")
    failed(deps, destination_record("mcd-prod-ingest", event))
    calls: list[dict[str, Any]] = []
    for _ in range(MAX_RERUNS):
        counts = dl_retry(deps, always_failing(calls))
        deps.manual_clock.advance(600)  # the schedule: every 10 minutes
    assert calls == [event] * MAX_RERUNS, "run again on each of its receives, never more"
    assert counts == {"redriven": 0, "stored": 1}
    (kept,) = stored(deps, ASYNC_FAILED_QUEUE)
    assert kept["reason"].startswith("mcd-prod-ingest failed (RetriesExhausted after 3 tries): EndpointConnectionError")
    assert f"run again {MAX_RERUNS} times, still failing: RuntimeError: S3 still unreachable" in kept["reason"]
    assert json.loads(kept["body"])["requestPayload"] == event and kept["request_id"] == "req-1"
    (alert,) = slack_outcomes(deps)
    assert (alert["kind"], alert["extra"]["queue"]) == (DEAD_LETTER, ASYNC_FAILED_QUEUE)
    assert alert["archive_key"].startswith("dead-letter/async_failed_queue/2024/5/1/mcd-prod-ingest-req-1")
    assert deps.metrics.total(DEAD_LETTERS, Queue=ASYNC_FAILED_QUEUE) == 1
    assert len(deps.queue(ASYNC_FAILED_QUEUE)) == 0 and dl_retry(deps, RERUNS) == {"redriven": 0, "stored": 0}


@pytest.mark.parametrize(("body", "why"), [
    ("not json {", "the message is not JSON"),
    (json.dumps({"Records": []}), "no requestContext"),
    (destination_record("mcd-prod-ingest", drop=("requestPayload",)), "carries no event (Lambda leaves it out"),
    (destination_record("mcd-prod-api_call", ["an", "array"]), "the event is a list, not an object"),
    (destination_record("someone-elses-function", {"Records": []}), "not a function dl_retry can run again"),
    (destination_record("mcd-prod-dispatch", {"detail-type": "Scheduled Event"}), "not a function dl_retry can"),
])
def test_an_unusable_record_is_kept_at_once_never_dropped(body: str, why: str) -> None:
    deps = world()
    failed(deps, body)
    calls: list[dict[str, Any]] = []
    assert dl_retry(deps, {**RERUNS, **always_failing(calls)}) == {"redriven": 0, "stored": 1}
    (kept,) = stored(deps, ASYNC_FAILED_QUEUE)
    assert why in kept["reason"] and kept["body"] == body and calls == []
    assert [a["kind"] for a in slack_outcomes(deps)] == [DEAD_LETTER]
    assert len(deps.queue(ASYNC_FAILED_QUEUE)) == 0


def test_runs_that_died_on_a_record_count_towards_its_bound() -> None:
    """A re-run that times out the whole invocation never reaches the end: the receive count still grows."""
    deps = world()
    failed(deps, destination_record("mcd-prod-ingest", sns_event(sg_notification("sg-0d"), "sns-4")))
    for _ in range(MAX_RERUNS):
        deps.queue(ASYNC_FAILED_QUEUE).receive(visibility_timeout=0)
    calls: list[dict[str, Any]] = []
    assert dl_retry(deps, always_failing(calls)) == {"redriven": 0, "stored": 1}
    assert calls == [] and "not run again after 3 tries" in stored(deps, ASYNC_FAILED_QUEUE)[0]["reason"]


def test_the_same_failed_event_stored_twice_is_one_object_and_one_alert() -> None:
    deps = world()
    record = destination_record("mcd-prod-cloudwatch_logs", drop=("requestPayload",), request_id="req-9")
    failed(deps, record)
    failed(deps, record)
    assert dl_retry(deps, RERUNS)["stored"] == 2
    assert len(deps.archive.list_keys("dead-letter/async_failed_queue/")) == 1
    assert len(slack_outcomes(deps)) == 1


def test_without_a_table_of_reruns_every_failed_event_is_kept() -> None:
    deps = world()
    failed(deps, destination_record("mcd-prod-ingest", sns_event(sg_notification("sg-0e"), "sns-5")))
    assert dl_retry(deps) == {"redriven": 0, "stored": 1}
    assert "not a function dl_retry can run again" in stored(deps, ASYNC_FAILED_QUEUE)[0]["reason"]


def test_a_function_is_found_by_its_deployed_name() -> None:
    assert rerun_for("mcd-prod-api_call", RERUNS) == "api_call"
    assert rerun_for("mcd-dev-config_event", RERUNS) == "config_event"
    assert rerun_for("ingest", RERUNS) == "ingest"
    assert rerun_for("mcd-prod-slack_send", RERUNS) is None and rerun_for("", RERUNS) is None
    record = FailedInvocation.read(destination_record("mcd-prod-api_call", {"id": "e"}, condition="EventAgeExceeded"))
    assert (record.function, record.condition, record.invokes, record.problem) == (
        "mcd-prod-api_call", "EventAgeExceeded", 3, "")
