"""The entry point: kinds it refuses, and hostile or wrongly typed values anywhere never breaking escaping or limits."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from slack_fixtures import (
    ANY_TEXT,
    BUILDERS,
    HOSTILE,
    all_texts,
    assert_valid,
    event,
    hostile_outcome,
    manual,
    mrkdwn_texts,
    read,
)

from chalicelib.core.model import Principal
from chalicelib.core.outcomes import MANUAL_CHANGE, SUPPRESSED, EventSummary, Outcome
from chalicelib.core.severity import severity
from chalicelib.slack.render import completed_note, follow_up_note, render, with_note


def test_suppressed_outcomes_are_skipped_and_nothing_left_raises() -> None:
    suppressed = manual(kind=SUPPRESSED, reason="trusted")
    assert render([suppressed, manual()]) == render([manual()])
    with pytest.raises(ValueError):
        render([suppressed])
    with pytest.raises(ValueError):
        render([])
    with pytest.raises(ValueError):
        render([manual(kind="mystery")])


@pytest.mark.parametrize("kind", sorted(BUILDERS))
def test_hostile_text_never_reaches_mrkdwn_unescaped(kind: str) -> None:
    payload = render([hostile_outcome(kind)])
    assert_valid(payload)
    joined = "\n".join(mrkdwn_texts(payload))
    assert "&lt;!channel&gt;" in joined
    assert "&lt;https:\u2044\u2044evil\u2024example|click&gt;" in joined  # escaped, and no bare URL either
    assert "\u202e" not in "\n".join(all_texts(payload))


def test_hostile_text_in_a_digest() -> None:
    payload = render([hostile_outcome(k) for k in sorted(BUILDERS)] * 3)
    assert_valid(payload)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(sorted(BUILDERS)), text=ANY_TEXT, count=st.integers(1, 4))
def test_property_random_text_never_breaks_limits_or_escaping(kind: str, text: str, count: int) -> None:
    payload = render([hostile_outcome(kind, text)] * count)
    assert_valid(payload)


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(
        st.one_of(
            st.none(),
            st.integers(),
            st.text(max_size=200),
            st.dictionaries(st.text(max_size=20), st.text(max_size=50), max_size=5),
        ),
        min_size=4,
        max_size=4,
    ),
)
def test_property_random_field_values(values: list[Any]) -> None:
    outcome = dataclasses.replace(
        manual(),
        resource_name=values[0] if isinstance(values[0], str) else None,
        changed_properties=(
            {"path": "Configuration.X", "change_type": "UPDATE", "previous": values[1], "updated": values[2]},
        ),
        principal={"display_name": values[3]},
    )
    assert_valid(render([outcome]))


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


OUTCOME_FIELDS = [f.name for f in dataclasses.fields(Outcome) if f.name != "kind"]


EVENT_FIELDS = [f"events.{f.name}" for f in dataclasses.fields(EventSummary)]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(sorted(BUILDERS)), field=st.sampled_from(OUTCOME_FIELDS + EVENT_FIELDS), value=JSON_VALUES)
def test_property_wrongly_typed_fields_never_crash(kind: str, field: str, value: Any) -> None:
    outcome = BUILDERS[kind]()
    if field.startswith("events."):
        outcome = dataclasses.replace(outcome, events=(dataclasses.replace(event(), **{field[7:]: value}),))
    else:
        outcome = dataclasses.replace(outcome, **{field: value})
    assert_valid(render([outcome]))
    assert_valid(render([outcome, outcome]))
    assert severity(outcome) in {"high", "medium", "low"}


@pytest.mark.parametrize("field", ["display_name", "resource_name", "principal_arn", "user_agent"])
def test_truncation_at_any_point_leaves_no_partial_entity(field: str) -> None:
    for size in range(430, 470):
        text = "&" * size + "<" * 5
        if field == "user_agent":
            outcome = manual(events=(event(user_agent=text),))
        elif field == "display_name":
            outcome = manual(principal=Principal(display_name=text, type="IAMUser"))
        else:
            outcome = manual(**{field: text})
        assert_valid(render([outcome]))
        assert_valid(render([outcome, outcome]))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts=st.lists(ANY_TEXT, min_size=2, max_size=6))
def test_property_no_event_text_anywhere_produces_markup(texts: list[str]) -> None:
    """Different hostile text in every field of several outcomes of every kind, singly and as a digest."""
    outcomes = [hostile_outcome(kind, text) for kind, text in zip(sorted(BUILDERS) * 2, texts)]
    for outcome in outcomes:
        assert_valid(render([outcome]))
    assert_valid(render(outcomes))


# --------------------------------------------------------------------------------------------
# Early alerts (a call streamed before its Config item) and the notes the sender adds


def early(text: str | None = None, **overrides: Any) -> Outcome:
    """An early alert: the call of ``manual()`` before AWS Config recorded it (no diff, no change type)."""
    extra = {"early": True, "config_types": ["AWS::EC2::*"], "names": ["sg-0b1467d0992aec890"]}
    if text is not None:
        extra.update(config_types=[text], names=[text, text])
    values: dict[str, Any] = {"outcome_id": "ct:1d43528d-3fba-4882-9a8a-fe43f958db7c", "change_type": None,
                              "changed_properties": (), "archive_bucket": None, "archive_key": None,
                              "capture_time": None, "event_name": None, "extra": extra}
    return manual(**{**values, **overrides})


def test_an_early_alert_says_who_what_call_and_which_resource_and_what_follows() -> None:
    payload = render([early()])
    assert_valid(payload)
    assert read(payload["text"]) == ("[medium] dmitri.volkov called AuthorizeSecurityGroupIngress on "
                                     "sg-0b1467d0992aec890 (bastion-sg) (account 318472906155, us-east-2)")
    joined = "\n".join(mrkdwn_texts(payload))
    assert "*Early alert* from the live CloudTrail stream" in joined and "`AWS::EC2::*`" in joined
    assert "*Request parameters*" in joined and "What changed" not in joined
    assert "Names:" not in joined, "the resource is known: no need to list what the call names"


def test_an_early_alert_of_an_unknown_resource_lists_what_the_call_names() -> None:
    payload = render([early(resource_id=None, resource_name=None, resource_type=None, resource_arn=None)])
    assert read(payload["text"]).startswith("[medium] dmitri.volkov called AuthorizeSecurityGroupIngress (account")
    assert "Names: `sg-0b1467d0992aec890`" in "\n".join(mrkdwn_texts(payload))


def test_hostile_text_in_an_early_alert_and_its_notes_is_escaped() -> None:
    hostile = hostile_outcome(MANUAL_CHANGE)
    taken = {f.name: getattr(hostile, f.name) for f in dataclasses.fields(hostile)
             if f.name not in ("kind", "extra", "changed_properties", "resource_id", "resource_name")}
    payload = render([early(HOSTILE, **taken, resource_id=None, resource_name=None)])
    assert_valid(payload)
    assert "&lt;!channel&gt;" in "\n".join(mrkdwn_texts(payload))
    for note in (follow_up_note([HOSTILE, "ev-2", "ev-3", "ev-4"]), completed_note(HOSTILE)):
        noted = with_note(render([manual()]), note)
        assert_valid(noted)
        assert noted["blocks"][-1]["elements"][0]["text"] == note and "<!channel>" not in note


def test_a_digest_of_early_alerts_says_the_diffs_are_pending() -> None:
    second = early(outcome_id="ct:2", resource_id="sg-0c2", resource_name=None, event_ids=("ev-2",))
    payload = render([early(), second])
    assert_valid(payload)
    assert read(payload["blocks"][0]["text"]["text"]).endswith(
        "dmitri.volkov made 2 changes by hand (AWS Config diffs pending)")
    assert "\n".join(mrkdwn_texts(payload)).count("early alert: AWS Config diff pending") == 2
    mixed = render([manual(), second])  # an early message being completed: one entry still pending
    assert "dmitri.volkov changed 2 resources by hand" in read(mixed["text"])
    assert "\n".join(mrkdwn_texts(mixed)).count("AWS Config diff pending") == 1


def test_a_note_that_would_break_a_limit_is_left_out() -> None:
    payload = render([manual()])
    full = {**payload, "blocks": payload["blocks"] + [{"type": "divider"}] * (50 - len(payload["blocks"]))}
    assert with_note(full, follow_up_note(["ev-1"])) == full
