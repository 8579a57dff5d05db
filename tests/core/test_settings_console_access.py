"""``console_access``: how alert links open a member account from a central account (issue 16, D33)."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from chalicelib.core.errors import ConfigurationError
from chalicelib.core.settings import ConsoleAccess, Settings


def access(value: Any) -> ConsoleAccess:
    return Settings.from_dict({"console_access": value}).console_access


def test_absent_or_direct_links_straight_to_the_console() -> None:
    assert Settings.from_dict({}).console_access == ConsoleAccess() == access({"mode": "direct"})
    assert ConsoleAccess().mode == "direct"


def test_switch_role_and_identity_center() -> None:
    assert access({"mode": "switch_role", "role": "ReadOnly"}) == ConsoleAccess("switch_role", role="ReadOnly")
    portal = access({"mode": "identity_center", "start_url": "https://d-1234567890.awsapps.com/start/",
                     "permission_set": "ReadOnlyAccess", "$comment": "the org's access portal"})
    assert portal == ConsoleAccess("identity_center", start_url="https://d-1234567890.awsapps.com/start",
                                   permission_set="ReadOnlyAccess")


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("switch_role", "must be an object"),
        ({}, "mode must be 'direct', 'switch_role' or 'identity_center'"),
        ({"mode": "SwitchRole", "role": "ReadOnly"}, "mode must be"),
        ({"mode": "switch_role"}, "console_access.role must be a name"),
        ({"mode": "switch_role", "role": "arn:aws:iam::123456789012:role/ReadOnly"}, "not an ARN"),
        ({"mode": "switch_role", "role": "ops/ReadOnly"}, "console_access.role"),
        ({"mode": "switch_role", "role": "r" * 65}, "at most 64 characters"),
        ({"mode": "switch_role", "role": "Réad"}, "console_access.role"),
        ({"mode": "switch_role", "role": "ReadOnly", "start_url": "https://x.awsapps.com/start"},
         "unknown key(s): start_url"),
        ({"mode": "direct", "role": "ReadOnly"}, "console_access (direct): unknown key(s): role"),
        ({"mode": "identity_center", "permission_set": "ReadOnly"}, "start_url must be the AWS access portal URL"),
        ({"mode": "identity_center", "start_url": "http://d-1234567890.awsapps.com/start",
          "permission_set": "ReadOnly"}, "https://host[/path]"),
        ({"mode": "identity_center", "start_url": "https://d-1234567890.awsapps.com/start?x=1",
          "permission_set": "ReadOnly"}, "start_url"),
        ({"mode": "identity_center", "start_url": "https://d-1234567890.awsapps.com/start#/",
          "permission_set": "ReadOnly"}, "start_url"),
        ({"mode": "identity_center", "start_url": "https://me@evil.example/start", "permission_set": "ReadOnly"},
         "start_url"),
        ({"mode": "identity_center", "start_url": "https://localhost/start", "permission_set": "ReadOnly"},
         "start_url"),
        ({"mode": "identity_center", "start_url": "https://x.awsapps.com/" + "s" * 200, "permission_set": "R"},
         "start_url"),
        ({"mode": "identity_center", "start_url": "https://d-1234567890.awsapps.com/start"},
         "console_access.permission_set must be a name"),
        ({"mode": "identity_center", "start_url": "https://d-1234567890.awsapps.com/start",
          "permission_set": "p" * 33}, "at most 32 characters"),
    ],
)
def test_a_bad_console_access_is_refused_by_name(value: Any, words: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        access(value)
    assert words in str(caught.value)


def test_lenient_loading_links_directly_and_says_why(caplog: pytest.LogCaptureFixture) -> None:
    data = {"console_access": {"mode": "switch_role", "role": "arn:aws:iam::1:role/x"}, "lookback_minutes": 30}
    with caplog.at_level(logging.ERROR, logger="mcd.settings"):
        settings = Settings.from_dict(data, lenient=True)
    assert settings.console_access == ConsoleAccess() and settings.lookback_minutes == 30
    (line,) = [json.loads(r.getMessage()) for r in caplog.records if "console_access_skipped" in r.getMessage()]
    assert "console_access.role" in line["reason"] and "straight to the console" in line["action"]
