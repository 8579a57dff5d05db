"""``dl_retry`` on the in-memory fakes: redrive with backoff, then store, report and alert once; never loop.

The same behaviour is checked end to end on moto in ``tests/e2e/test_dead_letters.py`` and ``test_pipeline.py``.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from memory_world import ACCOUNT, CAPTURE, WEBHOOK, lookup_job, sg_item, slack_outcomes, world

from chalicelib.core.jobs import change_key
from chalicelib.core.outcomes import DEAD_LETTER, Outcome
from chalicelib.memory_deps import MemoryDeps
from chalicelib.parsing.config_notifications import parse_config_message
from chalicelib.stages.dead_letters import MAX_REDRIVES, dl_retry
from chalicelib.stages.deliver import slack_send
from chalicelib.stages.shared.dead_letter_notices import WATCH_LOST

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
