"""Several outcomes as one digest: its headline, and that it never drops what matters."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from slack_fixtures import (
    SSH_WORLD,
    api_call,
    assert_valid,
    event,
    links,
    manual,
    mrkdwn_texts,
    plain_texts,
    read,
    signin,
    unattributed,
)

from chalicelib.core.model import Principal
from chalicelib.core.outcomes import Outcome
from chalicelib.slack.limits import LIMITS
from chalicelib.slack.render import render


def burst(count: int, **overrides: Any) -> list[Outcome]:
    return [
        manual(
            outcome_id=f"oc-{i}",
            resource_id=f"sg-{i:017x}",
            resource_name=f"svc-{i}-sg",
            resource_arn=None,
            **overrides,
        )
        for i in range(count)
    ]


def test_digest_of_three_changes_by_one_person() -> None:
    payload = render(burst(3, principal=Principal(display_name="alice", type="AssumedRole")))
    assert_valid(payload)
    assert read(plain_texts(payload)[0]) == ":rotating_light: alice changed 3 resources by hand"
    body = read("\n".join(mrkdwn_texts(payload)))
    for i in range(3):
        assert f"svc-{i}-sg" in body
    assert payload["text"].startswith("[high] alice changed 3 resources by hand: ")


def test_digest_of_several_people_names_them() -> None:
    outcomes = [
        manual(principal=Principal(display_name="alice")),
        manual(outcome_id="b", resource_id="sg-2", principal=Principal(display_name="bob"), changed_properties=()),
    ]
    payload = render(outcomes)
    assert_valid(payload)
    assert "2 resources changed by hand (alice, bob)" in read(plain_texts(payload)[0])
    assert "by bob" in read("\n".join(mrkdwn_texts(payload)))


def test_digest_of_mixed_kinds_orders_high_first() -> None:
    low = unattributed(change_type="DELETE", changed_properties=())
    payload = render([low, api_call(), signin()])
    assert_valid(payload)
    assert read(plain_texts(payload)[0]).startswith(":rotating_light: 3 alerts")
    sections = [b["text"]["text"] for b in payload["blocks"] if b["type"] == "section" and "text" in b]
    assert sections[-1].startswith(":information_source:")


def test_hundred_outcomes_make_one_digest_within_limits() -> None:
    payload = render(burst(100, principal=Principal(display_name="alice")))
    assert_valid(payload)
    assert len(payload["blocks"]) <= LIMITS["blocks"]
    assert "alice changed 100 resources by hand" in read(plain_texts(payload)[0])
    assert re.search(r"… and \d+ more: ", read("\n".join(mrkdwn_texts(payload))))


def graded(index: int, level: str, minute: int) -> Outcome:
    """An outcome of a given severity, named ``svc-<index>-sg``, decided ``minute`` minutes into the hour."""
    at = f"2024-03-12T15:{minute:02d}:00Z"
    if level == "low":
        return unattributed(outcome_id=f"oc-{index}", resource_id=f"eni-{index:017x}", change_type="DELETE",
                            changed_properties=(), at=at, resource_name=f"svc-{index}-sg")
    change = SSH_WORLD if level == "high" else {"path": "Tags.owner", "change_type": "UPDATE", "previous": "a",
                                                "updated": "b"}
    return manual(outcome_id=f"oc-{index}", resource_id=f"sg-{index:017x}", resource_name=f"svc-{index}-sg",
                  resource_arn=None, at=at, changed_properties=(change,), events=(event(event_id=f"ev-{index}"),),
                  event_ids=(f"ev-{index}",))


def shown_entries(payload: dict[str, Any]) -> set[int]:
    sections = [b["text"]["text"] for b in payload["blocks"] if b["type"] == "section" and "text" in b]
    return {int(m) for text in sections for m in re.findall(r"svc-(\d+)-sg", text)}


def test_a_long_digest_keeps_the_newest_and_the_most_severe() -> None:
    outcomes = [graded(i, "low", i % 60) for i in range(40)]
    outcomes.insert(3, graded(100, "high", 1))  # an early high among many lows
    outcomes.append(graded(200, "medium", 59))  # the newest
    payload = render(outcomes)
    assert_valid(payload)
    shown = shown_entries(payload)
    assert {100, 200} <= shown
    assert 0 not in shown, "the oldest mild entry is the one left out"
    more = [e["text"] for b in payload["blocks"] if b["type"] == "context" for e in b["elements"]
            if e["text"].startswith("… and ")]
    assert len(more) == 1
    left_out = 42 - len(shown)
    assert more[0].startswith(f"… and {left_out} more: {left_out} low")
    assert read(payload["text"]).startswith("[high] ")


def test_the_more_line_counts_per_severity_and_links_the_full_list() -> None:
    outcomes = [graded(i, ("high", "medium", "medium")[i % 3], i) for i in range(45)]
    payload = render(outcomes)
    assert_valid(payload)
    [line] = [e["text"] for b in payload["blocks"] if b["type"] == "context" for e in b["elements"]
              if e["text"].startswith("… and ")]
    match = re.match(r"… and (\d+) more: (.*?) · <([^|>]+)\|all calls by dmitri․volkov in CloudTrail>", line)
    assert match, line
    rest = int(match.group(1))
    counts = dict(reversed(part.split(" ")) for part in match.group(2).split(", "))
    assert sum(int(n) for n in counts.values()) == rest and list(counts) == [
        lvl for lvl in ("high", "medium", "low") if lvl in counts]
    assert "high" not in counts or int(counts["high"]) <= int(counts.get("medium", 0)), "highs are kept first"
    assert match.group(3) == ("https://us-east-2.console.aws.amazon.com/cloudtrail/home?region=us-east-2"
                              "#/events?Username=dmitri.volkov")


def test_the_full_list_of_unattributed_changes_is_their_archive_folder() -> None:
    outcomes = [graded(i, "low", i) for i in range(45)]
    outcomes = [dataclasses.replace(o, archive_bucket="mcd-archive-1", archive_key=f"AWSLogs/1/Config/x/{i}.json")
                for i, o in enumerate(outcomes)]
    payload = render(outcomes)
    assert_valid(payload)
    assert any("https://s3.console.aws.amazon.com/s3/buckets/mcd-archive-1?prefix=AWSLogs%2F1%2FConfig%2Fx%2F"
               "|all archived notifications>" in link for link in links(payload))


LEVELS = st.sampled_from(["high", "medium", "low"])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=st.lists(st.tuples(LEVELS, st.integers(0, 59)), min_size=2, max_size=120))
def test_property_a_digest_always_shows_its_most_severe_newest_and_newest_entries(
        plan: list[tuple[str, int]]) -> None:
    outcomes = [graded(i, level, minute) for i, (level, minute) in enumerate(plan)]
    payload = render(outcomes)
    assert_valid(payload)
    rank = {"low": 0, "medium": 1, "high": 2}
    top = max(rank[level] for level, _ in plan)
    newest = max(range(len(plan)), key=lambda i: (plan[i][1], i))
    newest_top = max((i for i in range(len(plan)) if rank[plan[i][0]] == top), key=lambda i: (plan[i][1], i))
    shown = shown_entries(payload)
    assert {newest, newest_top} <= shown
    for i in set(range(len(plan))) - shown:  # nothing left out is worse than something shown of its age
        assert all(rank[plan[j][0]] >= rank[plan[i][0]] for j in shown if plan[j][1] < plan[i][1]
                   and rank[plan[j][0]] != rank[plan[i][0]] and j != newest)
