"""``emit``: each outcome is logged and queued once per revision; ``emit_operational`` keeps to its own logger."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from memory_world import queued_json, slack_outcomes, world

from chalicelib.core.logs import OUTCOME_LOGGER
from chalicelib.core.outcomes import DEAD_LETTER, MANUAL_CHANGE, SUPPRESSED, EventSummary, Outcome
from chalicelib.stages.shared.emit import OPERATIONAL_LOGGER, SQS_BUDGET, emit, emit_operational

AT = "2024-05-01T12:00:00Z"


def outcome(kind: str = MANUAL_CHANGE, outcome_id: str = "ci:abc", **fields: Any) -> Outcome:
    return Outcome(kind=kind, outcome_id=outcome_id, at=AT, account="123456789012",
                   resource_type="AWS::EC2::SecurityGroup", resource_id="sg-0abc", **fields)


def logged(caplog: pytest.LogCaptureFixture, logger: str) -> list[dict[str, Any]]:
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == logger]


def test_an_alert_is_logged_queued_and_remembered(caplog: pytest.LogCaptureFixture) -> None:
    deps = world()
    with caplog.at_level(logging.INFO, logger="mcd"):
        assert emit(deps, outcome()) is True
    [line] = logged(caplog, OUTCOME_LOGGER)
    assert line["event"] == "outcome" and line["outcome"]["outcome_id"] == "ci:abc"
    assert line["outcome"]["revision"] == 0
    [queued] = slack_outcomes(deps)
    assert queued == line["outcome"], "Slack gets what the log says"
    marker = deps.state.get("out#ci:abc", "outcome")
    assert marker is not None and marker["kind"] == MANUAL_CHANGE


def test_a_redelivered_outcome_is_silent(caplog: pytest.LogCaptureFixture) -> None:
    deps = world()
    assert emit(deps, outcome()) is True
    with caplog.at_level(logging.INFO, logger="mcd"):
        assert emit(deps, outcome(resource_name="changed meanwhile")) is False
    assert logged(caplog, OUTCOME_LOGGER) == []
    assert [line["event"] for line in logged(caplog, "mcd.emit")] == ["duplicate_outcome_skipped"]
    assert len(slack_outcomes(deps)) == 1


def test_each_revision_is_emitted_once() -> None:
    deps = world()
    assert emit(deps, outcome()) is True
    assert emit(deps, outcome(), revision=1) is True
    assert emit(deps, outcome(), revision=1) is False
    assert emit(deps, outcome(), revision=2) is True
    assert [o["revision"] for o in slack_outcomes(deps)] == [0, 1, 2]
    assert deps.state.get("out#ci:abc", "outcome#r1") is not None
    assert emit(deps, outcome(outcome_id="ci:other")) is True, "the marker is per outcome id"


def test_a_suppressed_outcome_is_logged_and_remembered_but_never_queued(caplog: pytest.LogCaptureFixture) -> None:
    deps = world()
    with caplog.at_level(logging.INFO, logger=OUTCOME_LOGGER):
        assert emit(deps, outcome(SUPPRESSED, reason="trusted")) is True
    assert [line["outcome"]["kind"] for line in logged(caplog, OUTCOME_LOGGER)] == [SUPPRESSED]
    assert queued_json(deps, "slack_queue") == []
    assert deps.state.get("out#ci:abc", "outcome") is not None
    assert emit(deps, outcome(SUPPRESSED, reason="trusted")) is False


def test_an_operational_alert_goes_to_slack_once_and_never_to_the_outcome_log(
        caplog: pytest.LogCaptureFixture) -> None:
    deps = world()
    alert = outcome(DEAD_LETTER, "dl:1234", reason="stored", extra={"queue": "lookup_queue"})
    with caplog.at_level(logging.INFO, logger="mcd"):
        assert emit_operational(deps, alert) is True
        assert emit_operational(deps, alert) is False
    assert logged(caplog, OUTCOME_LOGGER) == []
    [line] = logged(caplog, OPERATIONAL_LOGGER)
    assert line["event"] == "operational_alert" and line["alert"]["outcome_id"] == "dl:1234"
    assert [r.levelno for r in caplog.records if r.name == OPERATIONAL_LOGGER] == [logging.ERROR]
    [queued] = slack_outcomes(deps)
    assert queued["kind"] == DEAD_LETTER and "revision" not in queued
    assert deps.state.get("out#dl:1234", "operational") is not None
    assert emit(deps, alert) is True, "its own marker: an outcome of the same id is another thing"


def test_an_alert_too_large_for_sqs_sheds_request_parameters_then_long_values() -> None:
    deps = world()
    big = "x" * (SQS_BUDGET // 2)
    events = tuple(EventSummary(event_id=f"e-{n}", event_name="PutBucketPolicy", event_time=AT,
                                request_parameters={"policy": big}) for n in range(3))
    emit(deps, outcome(events=events))
    [slim] = slack_outcomes(deps)
    assert [e["request_parameters"] for e in slim["events"]] == [{"omitted": "too large; see CloudTrail"}] * 3
    assert [e["event_id"] for e in slim["events"]] == ["e-0", "e-1", "e-2"]

    props = tuple({"path": f"Configuration.P{n}", "change_type": "UPDATE", "previous": None, "updated": big}
                  for n in range(3))
    emit(deps, outcome(outcome_id="ci:props", changed_properties=props))
    [_, trimmed] = slack_outcomes(deps)
    assert [p["path"] for p in trimmed["changed_properties"]] == ["Configuration.P0", "Configuration.P1",
                                                                  "Configuration.P2"]
    assert all(len(p["updated"]) < 600 and p["updated"].endswith("…") for p in trimmed["changed_properties"])
    assert all(len(body) < SQS_BUDGET + 10_000 for body in deps.queue("slack_queue").bodies())
