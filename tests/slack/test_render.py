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
    all_texts,
    assert_valid,
    event,
    hostile_outcome,
    manual,
    mrkdwn_texts,
)

from chalicelib.core.model import Principal
from chalicelib.core.outcomes import SUPPRESSED, EventSummary, Outcome
from chalicelib.core.severity import severity
from chalicelib.slack.render import render


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
