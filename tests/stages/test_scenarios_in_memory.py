"""Every scenario (own, public, the demo story) on the in-memory fakes: the same timeline as ``mcd replay``.

The stage functions run directly on ``MemoryDeps``, with ``LookupEvents`` served by the file-backed fake
CloudTrail, so the whole set takes seconds. ``tests/e2e/test_scenarios.py`` replays the public ones and
a sample of ours through the real handlers on moto, where the wiring is checked.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from memory_world import replay
from scenario_check import OWN, PUBLIC, SlackMessage, check_expectations, scenario_param

from mcd_tools.story import demo_story


def check(scenario: dict[str, Any]) -> None:
    result = replay(scenario)
    slack = [SlackMessage(call.payload, edit=call.method == "chat.update") for call in result.slack]
    check_expectations(scenario["expect"], result.outcomes, slack, throttled=None)  # nothing paces here


@pytest.mark.parametrize("path", [scenario_param(p) for p in OWN + PUBLIC], ids=lambda p: p.stem)
def test_scenario(path: Path) -> None:
    check(json.loads(path.read_text()))


def test_demo_story() -> None:
    check(demo_story())
