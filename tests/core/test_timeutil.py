"""Times: every spelling AWS uses read as an aware UTC instant, ``None`` for anything else; ``iso`` writes ``Z``."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from chalicelib.core.timeutil import iso, parse_time

INSTANT = datetime(2024, 3, 12, 14, 2, 11, tzinfo=timezone.utc)


@pytest.mark.parametrize("value", [
    "2024-03-12T14:02:11Z",
    "2024-03-12T14:02:11z",
    "2024-03-12t14:02:11z",
    "2024-03-12T14:02:11+00:00",
    "2024-03-12T14:02:11+0000",
    "2024-03-12T16:02:11+02:00",
    "2024-03-12T09:02:11-05:00",
    "2024-03-12 14:02:11 UTC",
    "2024-03-12T14:02:11UTC",
    "2024-03-12T14:02:11 GMT",
    "2024-03-12T14:02:11Z UTC",
    "2024-03-12T15:02:11+01:00 UTC",
    "20240312T140211Z",
    "  2024-03-12T14:02:11Z  ",
    "2024-03-12T14:02:11",  # naive: UTC
    "Mar 12, 2024 2:02:11 PM",
    "Mar 12, 2024, 2:02:11 PM",
    "Mar 12, 2024 2:02:11 PM UTC",
    1710252131,
    1710252131000,  # epoch milliseconds
    1710252131.0,
])
def test_every_spelling_of_one_instant(value: object) -> None:
    parsed = parse_time(value)
    assert parsed == INSTANT
    assert parsed is not None and parsed.utcoffset() == timedelta(0)


def test_fractions_are_kept() -> None:
    assert parse_time("2017-01-09T22:50:14.328UTC") == datetime(2017, 1, 9, 22, 50, 14, 328_000, tzinfo=timezone.utc)
    assert parse_time("2024-03-12T14:02:11.123456Z") == INSTANT.replace(microsecond=123_456)
    assert parse_time(1710252131.5) == INSTANT.replace(microsecond=500_000)
    assert parse_time(1710252131500) == INSTANT.replace(microsecond=500_000)


def test_a_date_alone_is_its_midnight_utc() -> None:
    assert parse_time("2024-03-12") == datetime(2024, 3, 12, tzinfo=timezone.utc)


def test_datetimes_pass_through_and_naive_ones_are_utc() -> None:
    assert parse_time(datetime(2024, 3, 12, 14, 2, 11)) == INSTANT
    assert parse_time(datetime(2024, 3, 12, 14, 2, 11)).tzinfo is timezone.utc  # type: ignore[union-attr]
    aware = datetime(2024, 3, 12, 16, 2, 11, tzinfo=timezone(timedelta(hours=2)))
    assert parse_time(aware) == INSTANT, "the same instant"


@pytest.mark.parametrize("value", [
    None, True, False, "", "   ", "junk", "2024-13-40T00:00:00Z", "2024-03-12T25:00:00Z", "Mar 32, 2024 9:00:00 PM",
    "UTC", "yesterday", 1e20, float("nan"), float("inf"), [], {}, b"2024-03-12T14:02:11Z", object(),
])
def test_anything_unreadable_is_none(value: object) -> None:
    assert parse_time(value) is None


@pytest.mark.parametrize(("value", "expected"), [
    (None, None),
    (INSTANT, "2024-03-12T14:02:11Z"),
    (INSTANT.replace(microsecond=123_456), "2024-03-12T14:02:11.123Z"),  # milliseconds, cut not rounded
    (INSTANT.replace(microsecond=999_999), "2024-03-12T14:02:11.999Z"),
    (INSTANT.replace(microsecond=500), "2024-03-12T14:02:11.000Z"),  # present, though under a millisecond
    (datetime(2024, 3, 12, 16, 2, 11, tzinfo=timezone(timedelta(hours=2))), "2024-03-12T14:02:11Z"),
    (datetime(2024, 3, 12, 14, 2, 11), "2024-03-12T14:02:11Z"),  # naive: taken as UTC
])
def test_iso(value: datetime | None, expected: str | None) -> None:
    assert iso(value) == expected


@pytest.mark.parametrize("value", [
    INSTANT, INSTANT.replace(microsecond=123_000), datetime(1999, 12, 31, 23, 59, 59, tzinfo=timezone.utc),
])
def test_iso_reads_back_as_the_same_instant(value: datetime) -> None:
    assert parse_time(iso(value)) == value
