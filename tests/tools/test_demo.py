"""``make demo``'s terminal view: Block Kit read as plain text, and the outcomes and messages it prints.

The demo's run itself (embedded AWS, the stack, the story) is ``tests/tools/test_embedded.py``.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from chalicelib.core.outcomes import Outcome
from chalicelib.slack.render import render
from mcd_tools.demo import blocks_to_text, by_account, from_stream, show
from mcd_tools.story import MEMBER_ACCOUNT, demo_org_story

PAYLOAD = {"text": "fallback", "blocks": [
    {"type": "header", "text": {"type": "plain_text", "text": "Manual change &amp; more &lt;1&gt;"}},
    {"type": "section", "text": {"type": "mrkdwn", "text": "*sg-0abc* changed\nby <https://console/x|alice>"},
     "fields": [{"type": "mrkdwn", "text": "*When*\n<!date^1714564800^{date_short} {time}|1 May 12:00>"},
                {"type": "mrkdwn", "text": "```0.0.0.0/0```"}]},
    {"type": "divider"},
    {"type": "context", "elements": [{"type": "mrkdwn", "text": "<https://example.com/raw>"},
                                     {"type": "mrkdwn", "text": "ci:abc"}]},
    {"type": "image", "image_url": "https://x"},
]}


def test_blocks_read_as_lines_with_links_dates_and_escapes_resolved() -> None:
    assert blocks_to_text(PAYLOAD).splitlines() == [
        "# Manual change & more <1>",
        "*sg-0abc* changed",
        "by alice",
        "  *When* 1 May 12:00",
        "  0.0.0.0/0",
        "-" * 40,
        "  https://example.com/raw  ·  ci:abc",
    ]


@pytest.mark.parametrize(("payload", "text"), [
    ({"text": "only <https://a|text> here"}, "only text here"),
    ({"blocks": [], "text": "&lt;!channel&gt;"}, "<!channel>"),
    ({}, ""),
])
def test_a_message_without_blocks_shows_its_text(payload: dict, text: str) -> None:
    assert blocks_to_text(payload) == text


def test_a_rendered_alert_reads_as_text() -> None:
    outcome = Outcome(kind="manual_change", outcome_id="ci:abc", at="2024-05-01T12:00:00Z", account="123456789012",
                      region="eu-west-1", resource_type="AWS::EC2::SecurityGroup", resource_id="sg-0demo",
                      principal_arn="arn:aws:iam::123456789012:user/alice")
    text = blocks_to_text(render([outcome]))
    assert "sg-0demo" in text and "<https://" not in text and "&lt;" not in text


def test_show_prints_outcomes_in_time_order_then_each_message(capsys: pytest.CaptureFixture[str]) -> None:
    result = SimpleNamespace(
        outcomes=[{"at": "2024-05-01T12:05:00Z", "kind": "suppressed", "resource_type": "AWS::S3::Bucket",
                   "resource_id": "b", "principal_arn": "arn:aws:sts::1:assumed-role/tf/s"},
                  {"at": "2024-05-01T12:01:00Z", "kind": "console_signin", "event_name": "ConsoleLogin"}],
        slack=[{"at": "2024-05-01T12:02:00Z", "destination": "default", "payload": {"text": "hello"}}])
    show(result)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Outcomes (simulated time):"
    assert lines[1].split() == ["2024-05-01T12:01:00Z", "console_signin", "ConsoleLogin", "-"]
    assert lines[2].split() == ["2024-05-01T12:05:00Z", "suppressed", "AWS::S3::Bucket", "b",
                                "arn:aws:sts::1:assumed-role/tf/s"]
    assert "Slack messages posted (1):" in lines
    assert "[2024-05-01T12:02:00Z → default]" in lines and "hello" in lines


def test_each_account_of_the_organisation_gets_a_line_saying_how_its_history_was_read() -> None:
    story = {"home_account": "111111111111", "settings": {"accounts": ["222222222222", "333333333333"]}}
    result = SimpleNamespace(outcomes=[
        {"account": "111111111111", "kind": "suppressed",
         "principal_arn": "arn:aws:sts::111111111111:assumed-role/tf/s"},
        {"account": "111111111111", "kind": "unattributed_change", "principal_arn": None},
        {"account": "222222222222", "kind": "manual_change",
         "principal_arn": "arn:aws:sts::222222222222:assumed-role/AWSReservedSSO_Admin_1/ana@example.com"},
        {"account": "444444444444", "kind": "manual_change", "principal_arn": "arn:aws:iam::444444444444:user/x"}])
    assert by_account(story, result) == [
        "  111111111111 (home account, its own CloudTrail): 1 alert, 1 suppressed",
        "  222222222222 (member, CloudTrail read as role mcd-lookup): 1 alert, 0 suppressed; authors: ana@example.com",
        "  333333333333 (member, CloudTrail read as role mcd-lookup): 0 alerts, 0 suppressed",
    ]
    story["settings"]["lookup_role"] = "org-reader"
    assert "read as role org-reader" in by_account(story, result)[1]


def test_the_demo_s_organisation_story_is_told_rightly_with_the_member_s_author() -> None:
    """On the fakes (the embedded run is ``tests/tools/test_embedded.py``): each account's history its own."""
    from memory_world import replay
    from scenario_check import SlackMessage, check_expectations

    story = demo_org_story()
    assert story["settings"]["accounts"] == [MEMBER_ACCOUNT] and story["home_account"] != MEMBER_ACCOUNT
    result = replay(story)
    check_expectations(story["expect"], result.outcomes,
                       [SlackMessage(c.payload, edit=c.method == "chat.update") for c in result.slack], None)
    streamed = from_stream(story, SimpleNamespace(outcomes=result.outcomes))
    assert len(streamed) == 1 and streamed[0].startswith("  sg-0f7e11c0ffee5f7a9 by mateo.silva@example.com: told at ")
    lines = by_account(story, SimpleNamespace(outcomes=result.outcomes))
    assert lines[1] == (f"  {MEMBER_ACCOUNT} (member, CloudTrail read as role mcd-lookup): 2 alerts, 2 suppressed; "
                        "authors: mateo.silva@example.com")
