"""Labels: who acted for each principal type, the role and CloudTrail user name, the resource, and dates."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from slack_fixtures import api_call, event, manual, signin, unattributed

from chalicelib.core.model import Principal
from chalicelib.core.outcomes import API_CALL, Outcome
from chalicelib.slack.labels import (
    distinct,
    event_ids,
    resource_label,
    session_role,
    slack_date,
    times,
    trail_username,
    when,
    who,
)

ROLE_ARN = "arn:aws:sts::771203958412:assumed-role/NetworkAdmin/terraform"
SSO_ARN = "arn:aws:sts::771203958412:assumed-role/AWSReservedSSO_Admin_0123456789abcdef/priya@example.com"
MOMENT = datetime(2024, 3, 12, 14, 2, 11, tzinfo=timezone.utc)
TOKEN = "<!date^1710252131^{date_short_pretty} {time_secs}|2024-03-12 14:02:11 UTC>"
LATER = "<!date^1710252431^{date_short_pretty} {time_secs}|2024-03-12 14:07:11 UTC>"


def call(principal_arn: str | None = None, **principal: str | None) -> Outcome:
    return Outcome(kind=API_CALL, outcome_id="ct:x", at="2024-09-03T15:23:30Z", principal_arn=principal_arn,
                   principal=Principal(**principal) if principal else None)


def test_who_names_an_iam_user_and_an_sso_person_by_their_display_name() -> None:
    assert who(manual()) == "dmitri.volkov"
    assert who(api_call()) == "nina.petrov"
    assert who(call(SSO_ARN, arn=SSO_ARN, display_name="priya@example.com", session_name="priya@example.com")) == (
        "priya@example.com"
    )


@pytest.mark.parametrize("outcome", [
    call(ROLE_ARN, arn=ROLE_ARN, display_name="terraform", session_name="terraform"),
    call(ROLE_ARN, session_name="terraform"),
    call(None, arn=ROLE_ARN, session_name="terraform"),  # the role is read from the principal's own ARN too
    call(ROLE_ARN, display_name="  ", session_name="terraform"),  # a blank display name counts as none
])
def test_who_shows_a_bare_session_name_with_its_role(outcome: Outcome) -> None:
    assert who(outcome) == "NetworkAdmin/terraform"


@pytest.mark.parametrize(("outcome", "expected"), [
    (signin(), "root"),
    (call(None, type="Root"), "root"),
    (call("arn:aws:iam::111122223333:root"), "root"),
    (call(None, type="AWSService", display_name="ec2.amazonaws.com", invoked_by="ec2.amazonaws.com"),
     "ec2.amazonaws.com"),
    (call("arn:aws:iam::111122223333:user/ops/alice"), "alice"),
    (call("not-an-arn"), "not-an-arn"),
    (call(None, type="Unknown"), "Someone"),
    (unattributed(), "Someone"),
])
def test_who_names_root_services_bare_arns_and_unknown_principals(outcome: Outcome, expected: str) -> None:
    assert who(outcome) == expected


def test_who_is_raw_text_left_for_the_caller_to_escape() -> None:
    assert who(call(None, display_name="<!channel> & @here")) == "<!channel> & @here"


@pytest.mark.parametrize(("arn", "role", "username"), [
    (ROLE_ARN, "NetworkAdmin", "terraform"),
    (SSO_ARN, "AWSReservedSSO_Admin_0123456789abcdef", "priya@example.com"),
    ("arn:aws:sts::1:assumed-role/NoSession", None, None),
    ("arn:aws:iam::1:user/ops/alice", None, "alice"),
    ("arn:aws:iam::1:root", None, "root"),
    ("arn:aws:sts::1:federated-user/bob", None, None),
    (None, None, None),
])
def test_session_role_and_trail_username_read_the_principal_arn(arn: str | None, role: str | None,
                                                                username: str | None) -> None:
    outcome = call(arn)
    assert session_role(outcome) == role
    assert trail_username(outcome) == username


def test_event_ids_are_distinct_non_blank_and_in_order() -> None:
    outcome = manual(event_ids=("a", " ", "b"), events=(event(event_id="b"), event(event_id="c"), event(event_id=None)))
    assert event_ids(outcome) == ["a", "b", "c"]
    assert event_ids(unattributed()) == []


@pytest.mark.parametrize(("overrides", "expected"), [
    ({}, "sg-0b1467d0992aec890 (bastion-sg)"),
    ({"resource_name": "sg-0b1467d0992aec890"}, "sg-0b1467d0992aec890"),
    ({"resource_name": None}, "sg-0b1467d0992aec890"),
    ({"resource_id": None}, "bastion-sg"),
    ({"resource_id": " ", "resource_name": None}, "AWS::EC2::SecurityGroup"),
    ({"resource_id": None, "resource_name": None, "resource_type": None}, "a resource"),
    ({"resource_id": "a\nb\u202ec", "resource_name": None}, "a bc"),
])
def test_resource_label_prefers_id_and_name_then_either_then_the_type(overrides: dict[str, str | None],
                                                                      expected: str) -> None:
    assert resource_label(manual(**overrides)) == expected


def test_resource_label_clips_a_long_id_and_name() -> None:
    assert resource_label(manual(resource_id="i" * 100, resource_name="n" * 100)) == f"{'i' * 59}… ({'n' * 49}…)"
    assert resource_label(manual(resource_id="i" * 100, resource_name=None)) == "i" * 89 + "…"


def test_times_are_the_sorted_readable_event_times() -> None:
    outcome = manual(events=(event(event_time="2024-03-12T14:05:00Z"), event(event_time="garbage"),
                             event(event_time="2024-03-12T16:01:00+02:00")))
    assert times(outcome) == [datetime(2024, 3, 12, 14, 1, tzinfo=timezone.utc),
                              datetime(2024, 3, 12, 14, 5, tzinfo=timezone.utc)]


@pytest.mark.parametrize(("overrides", "expected"), [
    ({}, [datetime(2024, 8, 14, 16, 21, 3, tzinfo=timezone.utc)]),
    ({"capture_time": "not a time"}, [datetime(2024, 8, 14, 18, 0, tzinfo=timezone.utc)]),
    ({"capture_time": None, "at": "never"}, []),
])
def test_without_events_times_fall_back_to_capture_then_decision_time(overrides: dict[str, str | None],
                                                                      expected: list[datetime]) -> None:
    assert times(unattributed(**overrides)) == expected


def test_slack_date_is_a_date_token_with_a_utc_fallback() -> None:
    assert slack_date(MOMENT) == TOKEN


def test_when_is_unknown_one_date_or_a_range() -> None:
    later = MOMENT + timedelta(minutes=5)
    assert when([]) == "unknown"
    assert when([MOMENT]) == when([MOMENT, MOMENT]) == TOKEN
    assert when([MOMENT, later]) == f"{TOKEN} → {LATER}"


def test_distinct_keeps_the_first_of_each_one_line_value() -> None:
    assert distinct(["a", None, "", "a", "b\nc", "b c", "\u200b", "x\u202e"]) == ["a", "b c", "x"]
