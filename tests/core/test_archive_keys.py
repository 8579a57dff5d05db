"""The archive's key layout, and ``key_part``: text from outside can neither add a folder nor hide one."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from chalicelib.core.archive_keys import dead_letter_key, key_part, notification_key, split_s3_location

WHEN = datetime(2024, 3, 7, 23, 59, tzinfo=timezone.utc)
HOSTILE = ["../../etc/passwd", "a/b/c", "/", "//", "..", ".", "", "...", "\\..\\x", "évil name", "a\x00b",
           "sg-1\nAWSLogs/", "%2F..%2F", "..\u2215..", " ", "ok/../../" * 40]


def test_notification_key_follows_configs_own_layout() -> None:
    assert notification_key("123456789012", "eu-west-1", WHEN, "0a1b-2c3d") == (
        "AWSLogs/123456789012/Config/eu-west-1/2024/3/7/ConfigNotifications/0a1b-2c3d.json")


def test_dead_letter_key_is_per_queue_and_day() -> None:
    assert dead_letter_key("lookup_queue", WHEN, "msg-1") == "dead-letter/lookup_queue/2024/3/7/msg-1.json"


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_neither_adds_nor_hides_a_folder(text: str) -> None:
    part = key_part(text)
    assert "/" not in part and "\\" not in part
    assert part not in ("", ".", "..")
    assert set(part) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")
    for key in (notification_key(text, text, WHEN, text), dead_letter_key(text, WHEN, text)):
        segments = key.split("/")
        assert len(segments) == (9 if key.startswith("AWSLogs/") else 6), key
        assert all(s not in ("", ".", "..") for s in segments), key


@pytest.mark.parametrize(("text", "expected"), [
    ("sg-0abc_1.json", "sg-0abc_1.json"),  # safe characters are kept as they are
    ("a/b", "a_b"),
    ("../x", ".._x"),  # not a parent folder any more: one segment named ".._x"
    ("café", "caf_"),
    ("", "unknown"),
    (".", "unknown"),
    ("..", "unknown"),
    ("....", "unknown"),
])
def test_key_part_replaces_every_unsafe_character(text: str, expected: str) -> None:
    assert key_part(text) == expected


def test_key_part_limits_the_length() -> None:
    assert key_part("x" * 500) == "x" * 200
    assert key_part("x" * 500, 64) == "x" * 64
    assert key_part("." * 10 + "a", 10) == "unknown", "cut to dots only: still never a dot segment"
    long_key = notification_key("1" * 300, "r" * 300, WHEN, "m" * 300)
    assert long_key.split("/")[1] == "1" * 64 and long_key.split("/")[3] == "r" * 64
    assert long_key.split("/")[-1] == "m" * 200 + ".json"
    assert dead_letter_key("q" * 100, WHEN, "n").split("/")[1] == "q" * 64


# Moved from tests/adapters/test_archive.py: the function lives with the key rules in core.
@pytest.mark.parametrize(("location", "expected"), [
    ("config-bucket/AWSLogs/1/Config/x.json.gz", ("config-bucket", "AWSLogs/1/Config/x.json.gz")),
    ("s3://config-bucket/a/b", ("config-bucket", "a/b")),
    ("arn:aws:s3:::config-bucket/a/b", ("config-bucket", "a/b")),
    ("  s3://b/k  ", ("b", "k")),
    ("config-bucket", None),
    ("s3://config-bucket/", None),
    ("", None),
])
def test_split_s3_location(location: str, expected: tuple[str, str] | None) -> None:
    assert split_s3_location(location) == expected
