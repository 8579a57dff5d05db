"""Headlines for each outcome kind, the escaped error text of a failed call, and the message's fallback text."""

from __future__ import annotations

from typing import Any

import pytest
from slack_fixtures import api_call, event, manual, signin, unattributed

from chalicelib.core.model import Principal
from chalicelib.slack.titles import error_text, fallback, title

OLA = {"principal_arn": "arn:aws:iam::111122223333:user/ola",
       "principal": Principal(type="IAMUser", display_name="ola")}


@pytest.mark.parametrize(("change_type", "verb"), [
    ("CREATE", "created"), ("create", "created"), ("DELETE", "deleted"), ("UPDATE", "changed"), (None, "changed"),
])
def test_a_manual_change_title_names_person_verb_and_resource(change_type: str | None, verb: str) -> None:
    assert title(manual(change_type=change_type)) == f"dmitri.volkov {verb} sg-0b1467d0992aec890 (bastion-sg) by hand"


@pytest.mark.parametrize(("change_type", "noun"), [
    ("CREATE", "creation of"), ("delete", "deletion of"), ("UPDATE", "change to"), (None, "change to"),
])
def test_an_unattributed_title_says_no_author_was_found(change_type: str | None, noun: str) -> None:
    expected = f"Unattributed {noun} i-062624d3bded74dd8 — no CloudTrail author found"
    assert title(unattributed(change_type=change_type)) == expected


@pytest.mark.parametrize(("overrides", "expected"), [
    ({}, "Root console sign-in"),
    ({"events": (event(event_name="ConsoleLogin", error_message="Failed authentication"),)},
     "Failed root console sign-in"),
    ({"signin": None, "principal_arn": "arn:aws:iam::111122223333:root", "principal": None}, "Root console sign-in"),
    ({"signin": "failure", **OLA, "events": ()}, "Failed console sign-in by ola"),
    ({"signin": "no_mfa", **OLA, "events": (event(error_message="Failed authentication"),)},
     "Failed console sign-in by ola"),
    ({"signin": "no_mfa", **OLA}, "ola signed in to the console without MFA"),
    ({"signin": "no_mfa", **OLA, "events": (event(error_code="\u200b"),)}, "ola signed in to the console without MFA"),
])
def test_console_signin_titles(overrides: dict[str, Any], expected: str) -> None:
    assert title(signin(**overrides)) == expected


@pytest.mark.parametrize(("overrides", "expected"), [
    ({}, "nina.petrov called StopLogging"),
    ({"events": (event(event_name="StopLogging", error_code="AccessDenied"),)},
     "nina.petrov tried to call StopLogging (AccessDenied)"),
    ({"events": (event(event_name="StopLogging", error_code="Client.UnauthorizedOperation" * 3),)},
     "nina.petrov tried to call StopLogging (Client.UnauthorizedOperationC…)"),
    ({"event_name": None, "events": ()}, "nina.petrov called an API"),
])
def test_an_api_call_title_says_whether_the_call_failed(overrides: dict[str, Any], expected: str) -> None:
    assert title(api_call(**overrides)) == expected


def test_a_title_is_one_line_with_the_name_and_call_clipped() -> None:
    outcome = api_call(principal=Principal(display_name="x" * 80), event_name="Put\nBucket\u202ePolicy" + "y" * 80)
    assert title(outcome) == f"{'x' * 49}… called Put BucketPolicy{'y' * 43}…"
    assert title(manual(principal=Principal(display_name="eve\nmallory\u200b"))).startswith("eve mallory changed ")


def test_error_text_is_none_when_every_call_succeeded() -> None:
    assert error_text(api_call()) is None
    assert error_text(unattributed()) is None


def test_error_text_is_the_first_failure_escaped_and_defused() -> None:
    outcome = api_call(events=(event(), event(error_code="AccessDenied", error_message="<b>no & @here</b>"),
                               event(error_code="Second")))
    assert error_text(outcome) == "AccessDenied: &lt;b&gt;no &amp; @\u2060here&lt;/b&gt;"
    assert error_text(api_call(events=(event(error_message="Failed authentication"),))) == (
        "failed: Failed authentication"
    )
    assert error_text(api_call(events=(event(error_code="Throttling"),))) == "Throttling"


def test_error_text_clips_the_message_to_its_limit() -> None:
    outcome = api_call(events=(event(error_code="E" * 100, error_message="m" * 500),))
    assert error_text(outcome, 20) == f"{'E' * 79}…: {'m' * 19}…"
    assert len(error_text(outcome) or "") == 80 + 2 + 300


@pytest.mark.parametrize(("outcome", "expected"), [
    (None, "[high] root signed in"),
    (signin(), "[high] root signed in (account 111122223333, us-east-1)"),
    (signin(account=None), "[high] root signed in (account ?, us-east-1)"),
    (signin(region=None), "[high] root signed in (account 111122223333, ?)"),
    (signin(account=None, region=None), "[high] root signed in"),
])
def test_fallback_is_level_headline_and_place(outcome: Any, expected: str) -> None:
    assert fallback("high", "root signed in", outcome) == expected


def test_fallback_escapes_markup_defuses_broadcasts_and_keeps_one_line() -> None:
    text = fallback("medium", "<!here> alice\nchanged <x|y> & @channel", signin(account="1\n2"))
    assert text == "[medium] &lt;!here&gt; alice changed &lt;x|y&gt; &amp; @\u2060channel (account 1 2, us-east-1)"


def test_fallback_never_exceeds_3000_characters() -> None:
    text = fallback("low", "&" * 5000, signin())
    assert len(text) <= 3000
    assert text.startswith("[low] &amp;") and text.endswith("&amp;…")
