"""Surfacing a stored dead letter: its change still reported, one operational alert, never a loop.

``surface`` and ``dead_letter_alert`` called directly on the fakes; ``tests/stages/test_dead_letters_stage.py``
covers them through ``dl_retry``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import replace
from typing import Any

import pytest
from memory_world import ACCOUNT, lookup_job, sg_item, slack_outcomes, world

from chalicelib.core.jobs import change_key
from chalicelib.core.outcomes import DEAD_LETTER, UNATTRIBUTED_CHANGE, Outcome
from chalicelib.memory_deps import MemoryDeps
from chalicelib.parsing.config_notifications import parse_config_message
from chalicelib.stages.shared.dead_letter_notices import WATCH_LOST, dead_letter_alert, surface
from chalicelib.stages.shared.state_keys import DISPATCHED, item_marker

KEY = "dead-letter/some_queue/2024/5/1/m-1.json"


def by_kind(deps: MemoryDeps) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for outcome in slack_outcomes(deps):
        found.setdefault(outcome["kind"], []).append(outcome)
    return found


def events(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [json.loads(r.getMessage())["event"] for r in caplog.records if r.name == "mcd.dead_letters"]


def two_item_notification(*groups: str) -> str:
    items = [sg_item(g)["configurationItem"] for g in groups]
    return json.dumps({"messageType": "ConfigurationItemChangeNotification", "configurationItems": items,
                       "notificationCreationTime": items[0]["configurationItemCaptureTime"]})


def test_one_alert_per_stored_dead_letter() -> None:  # moved from tests/stages/test_dead_letters_stage.py
    deps = world()
    for _ in range(3):
        surface(deps, "dispatch_queue", "dead-letter/dispatch_queue/2024/5/1/same.json", "reason", "{}")
    assert len(slack_outcomes(deps)) == 1


def test_a_lookup_jobs_change_is_reported_as_unattributed_beside_the_alert() -> None:
    deps = world()
    job = lookup_job("sg-0dead")
    surface(deps, "lookup_queue", KEY, "failed after 3 redrives", json.dumps(job.to_json()), message_id="m-1")
    kinds = by_kind(deps)
    [change] = kinds[UNATTRIBUTED_CHANGE]
    assert (change["outcome_id"], change["resource_id"], change["principal_arn"]) == (
        f"ci:{job.change_key}", "sg-0dead", None)
    assert "unverified" not in change["extra"]
    [alert] = kinds[DEAD_LETTER]
    assert alert["extra"] == {"queue": "lookup_queue", "message_id": "m-1",
                              "still_reported": ["AWS::EC2::SecurityGroup sg-0dead"]}
    assert (alert["reason"], alert["archive_key"]) == ("failed after 3 redrives", KEY)


def test_a_lost_watch_revises_its_suppression_and_a_follow_up_is_not_reported_again() -> None:
    deps = world()
    watch = replace(lookup_job("sg-0w"), decided_kind="suppressed", revision=2)
    surface(deps, "lookup_queue", KEY, "r", json.dumps(watch.to_json()))
    [change] = by_kind(deps)[UNATTRIBUTED_CHANGE]
    assert (change["revision"], change["extra"]["unverified"]) == (3, WATCH_LOST)
    deps.queue("slack_queue").purge()
    followup = replace(lookup_job("sg-0f"), decided_kind="manual_change")
    surface(deps, "lookup_queue", KEY + ".2", "r", json.dumps(followup.to_json()))
    [alert] = slack_outcomes(deps)
    assert alert["kind"] == DEAD_LETTER and "still_reported" not in alert["extra"]


@pytest.mark.parametrize("body", ["{not json", "[1, 2]", '{"change": "not a change"}', "null"])
def test_an_unreadable_job_leaves_only_the_alert(body: str) -> None:
    deps = world()
    surface(deps, "lookup_queue", KEY, "unreadable lookup job", body)
    [alert] = slack_outcomes(deps)
    assert alert["kind"] == DEAD_LETTER and alert["extra"] == {"queue": "lookup_queue"}


def test_a_notification_reports_only_items_not_already_dispatched_nor_ignored() -> None:
    deps = world(settings={"ignored_resource_types": ["AWS::EC2::SecurityGroup"]})
    message = two_item_notification("sg-0a", "sg-0b")
    surface(deps, "dispatch_queue", KEY, "r", json.dumps({"message_id": "n", "message": message}))
    assert UNATTRIBUTED_CHANGE not in by_kind(deps), "an ignored resource type is never reported"

    deps = world()
    already = next(i for i in parse_config_message(message, "t") if i.resource_id == "sg-0a")
    deps.state.put(item_marker(change_key(already)), DISPATCHED, deps.clock())
    surface(deps, "dispatch_queue", KEY, "r", json.dumps({"message_id": "n", "message": message,
                                                          "received_at": "2024-05-01T11:00:00Z",
                                                          "archive_bucket": "b", "archive_key": "AWSLogs/n.json"}))
    kinds = by_kind(deps)
    [change] = kinds[UNATTRIBUTED_CHANGE]
    assert change["resource_id"] == "sg-0b", "sg-0a is the lookup stage's to report"
    assert (change["archive_bucket"], change["archive_key"]) == ("b", "AWSLogs/n.json")
    assert kinds[DEAD_LETTER][0]["extra"]["still_reported"] == ["AWS::EC2::SecurityGroup sg-0b"]


def test_an_undelivered_alert_is_named_in_its_operational_alert() -> None:
    deps = world()
    lost = Outcome(kind="manual_change", outcome_id="ci:abc", at="2024-05-01T12:00:00Z", account=ACCOUNT,
                   resource_type="AWS::EC2::SecurityGroup", resource_id="sg-0lost", event_name="AuthorizeX",
                   principal_arn=f"arn:aws:iam::{ACCOUNT}:user/alice")
    surface(deps, "slack_queue", KEY, "channel_not_found", json.dumps({"outcome": lost.to_json()}))
    [alert] = slack_outcomes(deps)
    assert alert["extra"]["undelivered"] == (
        f"manual_change AWS::EC2::SecurityGroup sg-0lost AuthorizeX arn:aws:iam::{ACCOUNT}:user/alice")


def test_an_undelivered_operational_alert_is_logged_never_alerted_again(caplog: pytest.LogCaptureFixture) -> None:
    deps = world()
    own = dead_letter_alert(deps, "lookup_queue", KEY, "r")
    with caplog.at_level(logging.ERROR, logger="mcd.dead_letters"):
        surface(deps, "slack_queue", "dead-letter/slack_queue/x.json", "webhook gone",
                json.dumps({"outcome": own.to_json()}))
    assert slack_outcomes(deps) == [] and deps.state.items == {}
    assert events(caplog) == ["operational_alert_dead_lettered"]


def test_a_failure_while_reporting_still_alerts(caplog: pytest.LogCaptureFixture) -> None:
    deps = world()
    body = json.dumps({"message_id": "n", "archive_key": "AWSLogs/missing.json"})  # not in the archive
    with caplog.at_level(logging.ERROR, logger="mcd.dead_letters"):
        surface(deps, "dispatch_queue", KEY, "r", body)
    assert events(caplog) == ["dead_letter_not_reported"]
    [alert] = slack_outcomes(deps)
    assert alert["kind"] == DEAD_LETTER


def test_surface_never_raises(caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    deps = world()

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("SQS unreachable")

    monkeypatch.setattr(deps.queue("slack_queue"), "send", broken)
    with caplog.at_level(logging.ERROR, logger="mcd.dead_letters"):
        surface(deps, "lookup_queue", KEY, "r", "{}")
    assert events(caplog) == ["dead_letter_alert_failed"]


def test_the_alert_is_named_by_its_key_and_bounded() -> None:
    deps = world(home_region="us-gov-west-1")
    alert = dead_letter_alert(deps, "dispatch_queue", KEY, "r" * 5000, message_id="m" * 500,
                              reported=[f"AWS::S3::Bucket b{n}" for n in range(30)], subject="manual_change x")
    assert alert.outcome_id == "dl:" + hashlib.sha256(KEY.encode()).hexdigest()[:32]
    assert dead_letter_alert(deps, "lookup_queue", KEY, "other").outcome_id == alert.outcome_id
    assert dead_letter_alert(deps, "dispatch_queue", KEY + "x", "r").outcome_id != alert.outcome_id
    assert (alert.kind, alert.at, alert.region, alert.partition) == (
        DEAD_LETTER, "2024-05-01T12:00:00Z", "us-gov-west-1", "aws-us-gov")
    assert (alert.archive_bucket, alert.archive_key) == (deps.archive.bucket, KEY)
    assert len(alert.reason or "") == 1000 and len(alert.extra["message_id"]) == 200
    assert len(alert.extra["still_reported"]) == 20 and alert.extra["undelivered"] == "manual_change x"
