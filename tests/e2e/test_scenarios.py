"""Scenarios replayed end to end, as ``mcd replay`` and the held-out evaluation run them: moto, Chalice's
test client invoking ``app.py``'s handlers, the file-backed CloudTrail and the Slack stand-in over HTTP.

Every public scenario runs here, and those of ours that exercise the shell itself: duplicate and
malformed deliveries, EventBridge delivery, a bot posting over HTTP, oversized items in S3, redrive from
a dead-letter queue. All scenarios also run on the fakes
(``tests/stages/test_scenarios_in_memory.py``), which check the same expectations in a fraction of the time.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from scenario_check import OWN, PUBLIC, SlackMessage, check_expectations, scenario_param

from mcd_tools.replay import run

THROUGH_THE_SHELL = {
    "own-04-duplicate-deliveries-and-malformed-input",
    "own-12-config-change-delivered-only-by-eventbridge",
    "own-26-bot-escalation-is-a-new-message-not-an-edit",
    "own-30-oversized-location-outside-the-config-bucket",
    "own-32-dead-lettered-item-is-still-reported",
}


def check(scenario: dict[str, Any]) -> None:
    result = run(scenario)
    slack = [SlackMessage(m["payload"], edit="ts" in m["payload"]) for m in result.slack]
    check_expectations(scenario["expect"], result.outcomes, slack, result.throttled)


def test_the_shell_sample_names_scenarios_that_exist() -> None:
    assert {p.stem for p in OWN} >= THROUGH_THE_SHELL


@pytest.mark.parametrize("path", [p for p in OWN if p.stem in THROUGH_THE_SHELL], ids=lambda p: p.stem)
def test_own_scenario(path: Path) -> None:
    check(json.loads(path.read_text()))


@pytest.mark.skipif(not PUBLIC, reason="../shared/scenarios is not beside the clone")
@pytest.mark.parametrize("path", [scenario_param(p) for p in PUBLIC], ids=lambda p: p.stem)
def test_public_scenario(path: Path) -> None:
    check(json.loads(path.read_text()))
