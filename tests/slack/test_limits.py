"""Message size limits: huge values stay within them, and ``check_limits`` reports every violation."""

from __future__ import annotations

from slack_fixtures import assert_valid, hostile_outcome

from chalicelib.core.outcomes import MANUAL_CHANGE
from chalicelib.slack.limits import check_limits
from chalicelib.slack.render import render


def test_very_long_strings_everywhere_stay_within_limits() -> None:
    long = "x" * 20000
    outcome = hostile_outcome(MANUAL_CHANGE, long)
    assert_valid(render([outcome]))
    assert_valid(render([outcome] * 60))


def test_check_limits_reports_violations() -> None:
    bad = {
        "text": "",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": "h" * 151}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "s" * 3001}},
            {"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11},
            {"type": "section", "fields": [{"type": "mrkdwn", "text": "f" * 2001}]},
            *[{"type": "section", "text": {"type": "mrkdwn", "text": "t" * 2900}}] * 4,
            *[{"type": "divider"}] * 44,
        ],
    }
    problems = check_limits(bad)
    joined = "\n".join(problems)
    for needle in (
        "text fallback",
        "header text",
        "section text length 3001",
        "11 fields",
        "field 0 length 2001",
        "blocks > 50",
        "total block text",
    ):
        assert needle in joined, joined
    assert check_limits({"text": "ok", "blocks": [{"type": "divider"}]}) == []
