"""mcd_tools.local_world: what the local stage's world is made of, short of starting it.

Starting it (a moto server and the stack: seconds) is ``tests/e2e/test_chalice_local.py``'s, through the real
``chalice local``. Here: when it starts at all, the shipped examples through the real stages on the in-memory
fakes, the events file's forms and faults, the ticker, the Slack secret on moto.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from memory_world import sns_event, world
from moto import mock_aws

from chalicelib.core.timeutil import parse_time
from chalicelib.stages.ingest import ingest
from mcd_tools import local_world
from mcd_tools.local_world import (
    TICK_LOCK,
    LocalWorldError,
    Ticker,
    ensure,
    events_file,
    point_slack_secret,
    run_schedules,
    tick_seconds,
    trail_entries,
    wanted,
)

ROOT = Path(__file__).resolve().parents[2]
CONFIG = json.loads((ROOT / ".chalice" / "config.json").read_text())
LOCAL = CONFIG["stages"]["local"]["environment_variables"]
NOTIFICATION = ROOT / "examples" / "config-notification.json"
AUTHOR_SESSION = ("arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_PlatformAdmin_5b0e2f7c1d3a9e84/"
                  "priya.natarajan@example.com")


def test_only_the_local_stage_starts_a_world() -> None:
    assert wanted(LOCAL) and LOCAL["MCD_LOCAL_ROUTES"] == "1"
    assert events_file(LOCAL) == ROOT / "examples" / "cloudtrail-events.json"
    for stage in ("dev", "prod"):
        assert not wanted(CONFIG["stages"][stage]["environment_variables"]), stage
    assert ensure({"MCD_LOCAL_ROUTES": "1"}) is None and local_world._world is None  # the tests' environment


def test_the_shipped_examples_make_a_manual_change_alert_naming_the_person() -> None:
    """The example notification and events, through ingest and ``run_schedules`` on the in-memory fakes."""
    events = json.loads(events_file(LOCAL).read_text())["cloudtrail"]
    notification = json.loads(NOTIFICATION.read_text())
    capture = parse_time(notification["configurationItem"]["configurationItemCaptureTime"])
    [call] = [e["record"] for e in events if not e["record"]["readOnly"]]
    assert capture is not None and parse_time(call["eventTime"]) < capture  # type: ignore[operator]
    deps = world(trail=events, start=max(parse_time(e["visible_at"]) for e in events) + timedelta(minutes=1))
    assert ingest(sns_event(NOTIFICATION.read_text(), "m-1"), deps) == {"queued": 1, "dead_lettered": 0}

    ran = run_schedules(deps)
    assert ran is not None and list(ran) == ["dispatch", "lookup", "slack_send"], "in pipeline order"
    assert (ran["dispatch"]["changes"], ran["lookup"]["decided"], ran["slack_send"]["posted"]) == (1, 1, 1), \
        "one tick: events that are visible already need no wait"
    [posted] = deps.slack.calls
    text = json.dumps(posted.payload).replace("\\u2024", ".")
    assert "priya.natarajan@example.com changed sg-0f3e2d1c0b9a87654 (web-sg) by hand" in text
    assert AUTHOR_SESSION in text and call["eventID"] in text
    assert list(run_schedules(deps, dl_retry=True) or {}) == ["dispatch", "lookup", "dl_retry", "slack_send"]


def test_an_events_file_is_a_list_of_entries_or_a_scenario(tmp_path: Path) -> None:
    shipped = trail_entries(events_file(LOCAL))
    assert [e.record["eventName"] for e in shipped] == ["DescribeSecurityGroups", "AuthorizeSecurityGroupIngress"]
    items = json.loads(events_file(LOCAL).read_text())["cloudtrail"]
    as_list = tmp_path / "list.json"
    as_list.write_text(json.dumps(items))
    assert len(trail_entries(as_list)) == 2
    assert events_file({"MCD_LOCAL_CLOUDTRAIL": str(as_list)}) == as_list, "an absolute path is kept"


@pytest.mark.parametrize(("text", "says"), [
    (None, "cannot read the CloudTrail events file"),
    ("{not json", "cannot read the CloudTrail events file"),
    ('{"deliveries": []}', "expected a list of CloudTrail entries"),
    ("[1, 2]", "expected a list of CloudTrail entries"),
    ('[{"record": {"eventTime": "2024-06-03T08:15:31Z"}}]', "1 of 1 entries lack a readable visible_at"),
])
def test_an_events_file_that_cannot_be_used_says_why(tmp_path: Path, text: str | None, says: str) -> None:
    path = tmp_path / "events.json"
    if text is not None:
        path.write_text(text)
    with pytest.raises(LocalWorldError, match=says):
        trail_entries(path)


def test_a_world_that_cannot_start_starts_nothing(tmp_path: Path) -> None:
    before = dict(os.environ)
    with pytest.raises(LocalWorldError, match="MCD_LOCAL_CLOUDTRAIL names no CloudTrail events file"):
        ensure({"MCD_LOCAL_AWS": "embedded"})
    with pytest.raises(LocalWorldError, match="cannot read"):
        ensure({"MCD_LOCAL_AWS": "embedded", "MCD_LOCAL_CLOUDTRAIL": str(tmp_path / "missing.json")})
    with pytest.raises(LocalWorldError, match="MCD_LOCAL_TICK_SECONDS must be a number"):
        ensure({**LOCAL, "MCD_LOCAL_TICK_SECONDS": "soon"})
    assert local_world._world is None and dict(os.environ) == before


@pytest.mark.parametrize(("raw", "seconds"), [("", 1.0), ("0", 0.0), ("2.5", 2.5), ("-3", 0.0)])
def test_the_ticker_interval(raw: str, seconds: float) -> None:
    assert tick_seconds({"MCD_LOCAL_TICK_SECONDS": raw}) == seconds


def test_the_ticker_ticks_until_stopped_and_says_once_why_a_tick_failed(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[float] = []

    def tick() -> None:
        calls.append(time.monotonic())
        if len(calls) <= 3:
            raise RuntimeError("moto is not up yet")

    caplog.set_level(logging.WARNING, logger="mcd.local")
    ticker = Ticker(0.01, tick).start()
    deadline = time.monotonic() + 5
    while ticker.ticks < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    ticker.stop()
    stopped_at = len(calls)
    time.sleep(0.05)
    assert ticker.ticks >= 2 and len(calls) == stopped_at, "no tick after stop"
    failures = [r for r in caplog.records if "local_tick_failed" in r.getMessage()]
    assert len(failures) == 1 and "moto is not up yet" in failures[0].getMessage()


def test_a_tick_in_progress_is_waited_for_by_a_request_and_skipped_by_the_ticker() -> None:
    deps = world()
    with TICK_LOCK:
        assert run_schedules(deps, wait=False) is None
        finished: list[Any] = []
        waiting = threading.Thread(target=lambda: finished.append(run_schedules(deps)))
        waiting.start()
        waiting.join(0.1)
        assert not finished, "a request waits for the tick in progress"
    waiting.join(5)
    assert finished and finished[0]["dispatch"]["notifications"] == 0


def test_the_slack_secret_is_created_or_pointed_at_the_stand_in() -> None:
    with mock_aws():
        import boto3

        secrets = boto3.client("secretsmanager", region_name="us-east-1")
        point_slack_secret(secrets, "mcd/local/slack-webhook", "http://127.0.0.1:1/hooks/default")
        point_slack_secret(secrets, "mcd/local/slack-webhook", "http://127.0.0.1:2/hooks/default")
        value = secrets.get_secret_value(SecretId="mcd/local/slack-webhook")["SecretString"]
    assert json.loads(value) == {"url": "http://127.0.0.1:2/hooks/default"}
