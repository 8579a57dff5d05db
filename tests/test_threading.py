"""A Config change caused by a call that already had its own alert is threaded under that alert."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from mcd_tools.replay import run

PUBLIC_03 = Path(__file__).resolve().parents[2] / "shared" / "scenarios" / \
    "public-03-untrusted-role-session-named-terraform.json"


@pytest.mark.skipif(not PUBLIC_03.exists(), reason="../shared/scenarios is not beside the clone")
def test_config_diff_of_an_alerted_call_is_threaded_under_it_for_bots() -> None:
    scenario = copy.deepcopy(json.loads(PUBLIC_03.read_text()))
    scenario["settings"]["destinations"] = [
        {"name": "ops", "type": "bot", "secret": "mcd-test/bot-token", "channel": "C0OPS"}]

    def prepare(ctx: Any) -> None:
        ctx.deps.clients.client("secretsmanager").create_secret(Name="mcd-test/bot-token",
                                                                SecretString="xoxb-test-token")

    result = run(scenario, prepare=prepare)
    posts = [m["payload"] for m in result.slack]
    assert len(posts) == 2
    first, second = posts
    assert "ReplaceRoute" in json.dumps(first) and "thread_ts" not in first
    assert second.get("thread_ts"), "the manual_change must be a reply in the api_call's thread"
    assert "rtb-091287e7d7756da16" in json.dumps(second)


def test_account_aliases_from_settings_appear_in_alerts() -> None:
    from mcd_tools.story import ACCOUNT, demo_story

    story = demo_story()
    story["settings"]["account_aliases"] = {ACCOUNT: "payments-prod"}
    result = run(story)
    assert result.slack and all("payments-prod (" + ACCOUNT in json.dumps(m["payload"]) for m in result.slack)


SCENARIOS = Path(__file__).resolve().parent / "scenarios"


def new_messages(slack: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Messages people are notified of: posts, not edits (``chat.update`` carries ``ts``) nor thread replies
    kept out of the channel (a reply with ``reply_broadcast`` counts)."""
    return [m for m in slack if "ts" not in m["payload"]
            and (not m["payload"].get("thread_ts") or m["payload"].get("reply_broadcast") in (True, "true"))]


@pytest.mark.parametrize("name", ["own-25-world-open-group-inside-a-burst-of-tag-changes",
                                  "own-26-bot-escalation-is-a-new-message-not-an-edit"])
def test_an_escalation_inside_a_burst_is_a_new_message_at_once(name: str) -> None:
    from chalicelib.core.timeutil import parse_time

    scenario = json.loads((SCENARIOS / f"{name}.json").read_text())
    result = run(scenario)
    fresh = new_messages(result.slack)
    assert len(fresh) >= scenario["expect"]["min_slack_messages"]
    assert len(result.slack) <= scenario["expect"]["max_slack_messages"]
    [group] = [o for o in result.outcomes if o["resource_type"] == "AWS::EC2::SecurityGroup"]
    [escalation] = [m for m in fresh if group["resource_id"] in json.dumps(m["payload"])]
    assert escalation["payload"]["text"].startswith("[high]")
    waited = parse_time(escalation["at"]).timestamp() - parse_time(group["first_at"]).timestamp()
    assert 0 <= waited <= 60, "posted in the tick it was decided, not held for the burst's digest"
