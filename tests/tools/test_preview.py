"""The Slack preview page shows messages as Slack would and never turns event text into markup."""

from __future__ import annotations

from chalicelib.core.outcomes import EventSummary, Outcome
from chalicelib.slack.render import render
from mcd_tools.preview import mrkdwn_to_html, render_preview_html


def _hostile_outcome() -> Outcome:
    evil = '<script>alert(1)</script> <https://evil.example|click> <!channel> "quoted" & more'
    return Outcome(
        kind="manual_change", outcome_id="ci:1", at="2024-05-01T12:00:00Z", account="123456789012",
        region="us-east-1", resource_type="AWS::EC2::SecurityGroup", resource_id="sg-0123456789abcdef0",
        resource_name=evil, principal_arn="arn:aws:iam::123456789012:user/mallory",
        principal={"type": "IAMUser", "display_name": evil, "arn": "arn:aws:iam::123456789012:user/mallory"},
        event_ids=("e-1",), event_name="AuthorizeSecurityGroupIngress",
        events=(EventSummary("e-1", "AuthorizeSecurityGroupIngress", "2024-05-01T11:59:00Z",
                             "ec2.amazonaws.com", "us-east-1", "198.51.100.1", evil),),
        changed_properties=({"path": "Tags.owner", "change_type": "UPDATE", "previous": "a", "updated": evil},),
    )


def test_event_text_never_becomes_markup() -> None:
    page = render_preview_html([{"at": "2024-05-01T12:00:00Z", "destination": "d",
                                 "payload": render([_hostile_outcome()])}])
    assert "<script>" not in page
    assert 'href="https://evil.example"' not in page
    assert "&lt;script&gt;" in page


def test_mrkdwn_links_bold_code_and_dates() -> None:
    html = mrkdwn_to_html("*Who* `sg-1` <https://console.aws.amazon.com/x|open> <!date^1714564800^{date}|1 May>")
    assert "<b>Who</b>" in html and "<code>sg-1</code>" in html
    assert '<a href="https://console.aws.amazon.com/x">open</a>' in html and "1 May" in html


def test_empty_preview_says_so() -> None:
    assert "No messages." in render_preview_html([])
