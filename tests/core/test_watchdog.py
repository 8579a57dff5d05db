"""The dead-man's switch's judgement: when silence or a stalled schedule is an outage."""

from __future__ import annotations

from chalicelib.core.watchdog import SCHEDULES, STALL_SECONDS, duration_text, outage_keys, troubles

DAY = 24 * 3600
NOW = 1_750_000_000.0


def alive(**ages: float) -> dict[str, float | None]:
    """Every schedule ran a minute ago, deliveries an hour ago, except what ``ages`` says (seconds ago)."""
    seen: dict[str, float | None] = {name: NOW - 60 for name in SCHEDULES}
    seen.update(config=NOW - 3600, cloudtrail=NOW - 3600)
    seen.update({name: None if age is None else NOW - age for name, age in ages.items()})
    return seen


def test_a_healthy_detector_has_no_trouble() -> None:
    assert troubles(NOW, alive(), NOW - 30 * DAY, DAY) == []


def test_silence_is_one_outage_when_neither_source_was_heard_for_the_window() -> None:
    assert troubles(NOW, alive(config=2 * DAY), NOW - 30 * DAY, DAY) == [], "CloudTrail still talks"
    [silence] = troubles(NOW, alive(config=2 * DAY, cloudtrail=DAY + 60), NOW - 30 * DAY, DAY)
    assert silence.key == "silence" and silence.since == NOW - DAY - 60
    assert silence.summary == "no AWS Config notification and no CloudTrail delivery for 24 hours"


def test_a_schedule_that_has_not_completed_for_fifteen_minutes_is_stalled() -> None:
    assert troubles(NOW, alive(lookup=STALL_SECONDS), NOW - DAY, DAY) == []
    [stalled] = troubles(NOW, alive(lookup=STALL_SECONDS + 1), NOW - DAY, DAY)
    assert stalled.key == "stalled:lookup"
    assert "lookup schedule has not completed a run for 15 minutes" in stalled.summary


def test_what_was_never_seen_counts_from_the_watchdogs_first_run() -> None:
    never = alive(**{name: None for name in (*SCHEDULES, "config", "cloudtrail")})
    assert troubles(NOW, never, NOW - 60, DAY) == [], "just installed"
    keys = {t.key for t in troubles(NOW, never, NOW - 2 * DAY, DAY)}
    assert keys == set(outage_keys())


def test_durations_read_as_people_say_them() -> None:
    assert [duration_text(s) for s in (59, 47 * 60, 5 * 3600, 4 * DAY, -5)] == [
        "0 minutes", "47 minutes", "5 hours", "4 days", "0 minutes"]
