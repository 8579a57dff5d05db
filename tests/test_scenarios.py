"""Replay scenarios end to end and require exactly the expected outcomes and Slack message budget."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scenario_check import differences

from chalicelib.devtools.replay import run
from chalicelib.devtools.story import demo_story
from chalicelib.slack_render import check_limits

OWN = sorted((Path(__file__).parent / "scenarios").glob("*.json"))
PUBLIC_DIR = Path(__file__).resolve().parents[2] / "shared" / "scenarios"
PUBLIC = sorted(PUBLIC_DIR.glob("*.json")) if PUBLIC_DIR.is_dir() else []


def _check(path: Path) -> None:
    _check_scenario(json.loads(path.read_text()))


def _check_scenario(scenario: dict) -> None:
    result = run(scenario)
    expect = scenario["expect"]
    assert differences(expect["outcomes"], result.outcomes) == []
    limit = expect.get("max_slack_messages")
    if limit is not None:
        assert len(result.slack) <= limit
    alerts = [o for o in expect["outcomes"] if o["kind"] != "suppressed"]
    assert bool(result.slack) == bool(alerts), "alerts must reach Slack, and only alerts"
    for message in result.slack:
        assert check_limits(message["payload"]) == []
    assert result.throttled == 0, "the detector must pace LookupEvents to 2 calls per second"


@pytest.mark.parametrize("path", OWN, ids=lambda p: p.stem)
def test_own_scenario(path: Path) -> None:
    _check(path)


@pytest.mark.skipif(not PUBLIC, reason="../shared/scenarios is not beside the clone")
@pytest.mark.parametrize("path", PUBLIC, ids=lambda p: p.stem)
def test_public_scenario(path: Path) -> None:
    _check(path)


def test_demo_story() -> None:
    _check_scenario(demo_story())
