"""Scenarios replayed end to end, as ``mcd replay`` and the held-out evaluation run them: moto, Chalice's
test client invoking ``app.py``'s handlers, the file-backed CloudTrail and the Slack stand-in over HTTP.

The public scenarios that exercise a different part of the shell run here (SNS to Slack, global IAM
lookups in us-east-1, items linked through relationships, oversized items in S3, a burst under
LookupEvents pacing, CloudWatch Logs batches, a flood, tamper alerts through EventBridge and CloudWatch
Logs), and those of ours that do: duplicate and malformed deliveries, EventBridge delivery, a bot
posting over HTTP, an oversized location outside the Config bucket, redrive from a dead-letter queue.
The rest differ only in what the stages decide, which the in-memory tier checks for every scenario;
``../shared/hooks/check_replay.py`` replays them all through ``mcd replay``. All scenarios also run on the fakes
(``tests/stages/test_scenarios_in_memory.py``), which check the same expectations in a fraction of the time.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from scenario_check import OWN, PUBLIC, SlackMessage, check_expectations, scenario_param

from mcd_tools.replay import run

PUBLIC_THROUGH_THE_SHELL = {
    "public-01-console-user-opens-ssh-to-world",
    "public-04-iam-role-change-global-chained-session",
    "public-05-instance-security-group-swap-three-items",
    "public-06-oversized-sg-and-cloudformation-as-user",
    "public-09-terraform-apply-burst-with-two-humans",
    "public-10-console-signins-and-cloudwatch-logs-batches",
    "public-12-flood-does-not-hide-a-person",
    "public-15-tamper-protection-examples",
}
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
    if PUBLIC:
        assert {p.stem for p in PUBLIC} >= PUBLIC_THROUGH_THE_SHELL


@pytest.mark.parametrize("path", [p for p in OWN if p.stem in THROUGH_THE_SHELL], ids=lambda p: p.stem)
def test_own_scenario(path: Path) -> None:
    check(json.loads(path.read_text()))


@pytest.mark.skipif(not PUBLIC, reason="../shared/scenarios is not beside the clone")
@pytest.mark.parametrize("path", [scenario_param(p) for p in PUBLIC if p.stem in PUBLIC_THROUGH_THE_SHELL],
                         ids=lambda p: p.stem)
def test_public_scenario(path: Path) -> None:
    check(json.loads(path.read_text()))
