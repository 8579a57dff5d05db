"""Replay scenarios end to end and require exactly the expected outcomes and Slack message budget."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scenario_check import differences

from chalicelib.slack.render import check_limits
from mcd_tools.replay import run
from mcd_tools.story import demo_story

OWN = sorted((Path(__file__).parent / "scenarios").glob("*.json"))
PUBLIC_DIR = Path(__file__).resolve().parents[2] / "shared" / "scenarios"
PUBLIC = sorted(PUBLIC_DIR.glob("*.json")) if PUBLIC_DIR.is_dir() else []
# Public scenarios of capabilities whose issues are still open: run, reported, not yet required.
NOT_YET = {
    "public-13-stream-before-history-with-deadline": "issue 15 (attribute from the live CloudTrail stream)",
    "public-14-two-accounts-of-one-organisation": "issue 16 (cross-account attribution)",
    "public-15-tamper-protection-examples": "issue 13 (tamper alerts in the default rules)",
}


def _public(path: Path):
    reason = NOT_YET.get(path.stem)
    return pytest.param(path, marks=pytest.mark.xfail(reason=reason, strict=False)) if reason else path


def _check(path: Path) -> None:
    _check_scenario(json.loads(path.read_text()))


def _check_scenario(scenario: dict) -> None:
    result = run(scenario)
    expect = scenario["expect"]
    assert differences(expect["outcomes"], result.outcomes) == []
    limit = expect.get("max_slack_messages")
    if limit is not None:
        assert len(result.slack) <= limit
    minimum = expect.get("min_slack_messages")
    if minimum is not None:  # new messages only: an edit (chat.update carries ts) or a quiet thread reply is not one
        fresh = [m for m in result.slack if "ts" not in m["payload"]
                 and (not m["payload"].get("thread_ts") or m["payload"].get("reply_broadcast") in (True, "true"))]
        assert len(fresh) >= minimum
    alerts = [o for o in expect["outcomes"] if o["kind"] != "suppressed"]
    assert bool(result.slack) == bool(alerts), "alerts must reach Slack, and only alerts"
    for message in result.slack:
        assert check_limits(message["payload"]) == []
    assert result.throttled == 0, "the detector must pace LookupEvents to 2 calls per second"


@pytest.mark.parametrize("path", OWN, ids=lambda p: p.stem)
def test_own_scenario(path: Path) -> None:
    _check(path)


@pytest.mark.skipif(not PUBLIC, reason="../shared/scenarios is not beside the clone")
@pytest.mark.parametrize("path", [_public(p) for p in PUBLIC], ids=lambda p: p.stem)
def test_public_scenario(path: Path) -> None:
    _check(path)


def test_demo_story() -> None:
    _check_scenario(demo_story())
