"""Structured logs: one JSON object per line, skipped entirely when the level is off."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone

import pytest

from chalicelib.core.logs import OUTCOME_LOGGER, log_json, log_outcome


def test_log_json_writes_one_json_object_with_the_event_first(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("mcd.test_logs")
    with caplog.at_level(logging.INFO, logger="mcd.test_logs"):
        log_json(logger, logging.WARNING, "slack_throttled", destination="ops", retry_after=30,
                 at=datetime(2024, 5, 1, tzinfo=timezone.utc), ids=("a", "b"))
    (record,) = caplog.records
    assert record.levelno == logging.WARNING and record.name == "mcd.test_logs"
    assert "\n" not in record.getMessage()
    data = json.loads(record.getMessage())
    assert list(data) == ["event", "destination", "retry_after", "at", "ids"]
    assert data == {"event": "slack_throttled", "destination": "ops", "retry_after": 30,
                    "at": "2024-05-01 00:00:00+00:00", "ids": ["a", "b"]}, "values JSON cannot hold are written as text"


def test_log_json_does_nothing_below_the_level(caplog: pytest.LogCaptureFixture) -> None:
    class Exploding:
        def __str__(self) -> str:
            raise AssertionError("a disabled level must not even format its fields")

    logger = logging.getLogger("mcd.test_logs_quiet")
    with caplog.at_level(logging.WARNING, logger="mcd.test_logs_quiet"):
        log_json(logger, logging.DEBUG, "noise", value=Exploding())
    assert caplog.records == []


def test_log_outcome_is_one_info_line_on_the_outcome_logger(caplog: pytest.LogCaptureFixture) -> None:
    outcome = {"kind": "manual_change", "outcome_id": "ci:1", "revision": 0,
               "at": datetime(2024, 5, 1, 12, tzinfo=timezone.utc)}
    with caplog.at_level(logging.INFO, logger=OUTCOME_LOGGER):
        log_outcome(outcome)
    (record,) = caplog.records
    assert (record.name, record.levelno, OUTCOME_LOGGER) == ("mcd.outcome", logging.INFO, "mcd.outcome")
    assert json.loads(record.getMessage()) == {"event": "outcome", "outcome": {
        "kind": "manual_change", "outcome_id": "ci:1", "revision": 0, "at": "2024-05-01 12:00:00+00:00"}}
