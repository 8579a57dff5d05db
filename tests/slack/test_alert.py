"""One outcome as a full alert: every kind, its content, its headline and its severity footer."""

from __future__ import annotations

import json
from typing import Any

import pytest
from slack_fixtures import (
    BUILDERS,
    api_call,
    assert_valid,
    event,
    manual,
    mrkdwn_texts,
    plain_texts,
    read,
    signin,
    unattributed,
)

from chalicelib.core.model import Principal
from chalicelib.core.outcomes import Outcome
from chalicelib.core.severity import severity, severity_reason
from chalicelib.slack.render import render


@pytest.mark.parametrize("kind", sorted(BUILDERS))
def test_every_kind_renders_within_limits(kind: str) -> None:
    payload = render([BUILDERS[kind]()])
    assert_valid(payload)
    assert payload["text"].strip()
    assert payload["blocks"][0]["type"] == "header"


@pytest.mark.parametrize("kind", sorted(BUILDERS))
def test_blocks_pass_slack_sdk_validation(kind: str) -> None:
    from slack_sdk.models.blocks import Block

    for block in render([BUILDERS[kind]()])["blocks"]:
        parsed = Block.parse(block)
        assert parsed is not None
        parsed.validate_json()


def test_manual_change_alert_content() -> None:
    payload = render([manual()])
    header = read(plain_texts(payload)[0])
    assert header == ":rotating_light: dmitri.volkov changed sg-0b1467d0992aec890 (bastion-sg) by hand"
    body = read("\n".join(mrkdwn_texts(payload)))
    assert "Configuration.IpPermissions.0: + tcp 22 from 0.0.0.0/0" in body
    assert "*Person*\ndmitri.volkov (IAMUser)\n`arn:aws:iam::318472906155:user/dmitri.volkov`" in body
    assert "*How*\nAWS console" in body
    assert "203.0.113.54" in body
    assert "<!date^1710252131^{date_short_pretty} {time_secs}|2024-03-12 14:02:11 UTC>" in body
    assert "AuthorizeSecurityGroupIngress" in body
    assert "Archived notification" in body and "archived in S3" in body
    assert read(payload["text"]).startswith("[high] dmitri.volkov changed sg-0b1467d0992aec890")


def test_manual_create_and_delete_headers() -> None:
    assert "created" in plain_texts(render([manual(change_type="CREATE", changed_properties=())]))[0]
    payload = render([manual(change_type="DELETE", changed_properties=())])
    assert "deleted sg-0b1467d0992aec890" in read(plain_texts(payload)[0])
    assert "Resource deleted." in read("\n".join(mrkdwn_texts(payload)))


def test_unattributed_alert_content() -> None:
    payload = render([unattributed()])
    assert read(plain_texts(payload)[0]) == (
        ":warning: Unattributed change to i-062624d3bded74dd8 — no CloudTrail author found"
    )
    body = read("\n".join(mrkdwn_texts(payload)))
    assert "Configuration.State.Name: running → stopped" in body
    assert "no CloudTrail event within 90 minutes" in body
    assert "Config timeline" in body
    assert "|CloudTrail event>" not in body


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, "Root console sign-in"),
        (
            {
                "signin": "no_mfa",
                "principal_arn": "arn:aws:iam::111122223333:user/ola",
                "principal": Principal(type="IAMUser", display_name="ola", mfa=False),
            },
            "ola signed in to the console without MFA",
        ),
        (
            {
                "signin": "failure",
                "principal_arn": None,
                "principal": Principal(type="IAMUser", display_name="ola"),
                "events": (event(event_name="ConsoleLogin", error_message="Failed authentication"),),
            },
            "Failed console sign-in by ola",
        ),
    ],
)
def test_console_signin_headers(overrides: dict[str, Any], expected: str) -> None:
    payload = render([signin(**overrides)])
    assert_valid(payload)
    assert read(plain_texts(payload)[0]).endswith(expected)


def test_api_call_alert_content() -> None:
    payload = render([api_call()])
    assert read(plain_texts(payload)[0]) == ":rotating_light: nina.petrov called StopLogging"
    body = read("\n".join(mrkdwn_texts(payload)))
    assert "AWS CLI 2.15.0" in body
    assert "*Request parameters*" in body
    assert "succeeded" in body


def test_api_call_failure_is_shown() -> None:
    denied = api_call(
        event_name="AuthorizeSecurityGroupIngress",
        events=(event(error_code="Client.UnauthorizedOperation", error_message="You are not authorized"),),
    )
    payload = render([denied])
    assert "tried to call AuthorizeSecurityGroupIngress (Client.UnauthorizedOperation)" in read(plain_texts(payload)[0])
    assert "You are not authorized" in read("\n".join(mrkdwn_texts(payload)))


def test_severity_reason_is_shown() -> None:
    level, reason = severity_reason(api_call())
    assert (level, reason) == ("high", "tampering: stops a CloudTrail trail logging (StopLogging)")
    shown = read("\n".join(mrkdwn_texts(render([api_call()]))))
    assert "tampering: stops a CloudTrail trail logging (StopLogging)" in shown


def test_a_bare_session_name_is_shown_with_its_role_but_sso_shows_the_person() -> None:
    def header(arn: str, session: str) -> str:
        outcome = Outcome(kind="api_call", outcome_id="ct:x", at="2024-09-03T15:23:30Z", account="771203958412",
                          region="us-west-2", principal_arn=arn, event_name="ReplaceRoute",
                          principal=Principal(type="AssumedRole", arn=arn, display_name=session,
                                     session_name=session))
        return read(render([outcome])["blocks"][0]["text"]["text"])

    assert "NetworkAdmin/terraform called ReplaceRoute" in header(
        "arn:aws:sts::771203958412:assumed-role/NetworkAdmin/terraform", "terraform")
    sso = "arn:aws:sts::771203958412:assumed-role/AWSReservedSSO_Admin_0123456789abcdef/priya@example.com"
    assert "priya@example.com called ReplaceRoute" in header(sso, "priya@example.com")


def test_an_unverified_change_says_why_and_is_never_played_down() -> None:
    why = "only trusted calls were found, but CloudTrail held more calls <b>&"
    outcome = Outcome(kind="unattributed_change", outcome_id="ci:x", at="2025-01-01T00:00:00Z",
                      account="111122223333", region="eu-west-3", resource_type="AWS::S3::Bucket",
                      resource_id="b", change_type="DELETE", extra={"unverified": why})
    text = json.dumps(render([outcome]))
    assert "unverified: only trusted calls were found" in text
    assert "<b>" not in text
    assert severity(outcome) != "low"
