"""Settings validation (``core.settings``): defaults, errors that name the key, nothing secret in settings."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from chalicelib.core.errors import ConfigurationError
from chalicelib.core.settings import DEFAULT_IGNORED_RESOURCE_TYPES, Destination, Route, Settings

ACCT = "123456789012"
ROLE = f"arn:aws:iam::{ACCT}:role/terraform-apply"


def error_of(data: Any) -> str:
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_dict(data)
    return str(caught.value)


# --- defaults -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("data", [None, {}, {"$comment": "nothing set"}])
def test_empty_settings_are_the_defaults(data: Any):
    assert Settings.from_dict(data) == Settings()


def test_defaults_follow_the_documented_meaning():
    settings = Settings()
    assert settings.trusted_principals == ()
    assert settings.trust_aws_services is True
    assert settings.ignored_resource_types == {t.lower() for t in DEFAULT_IGNORED_RESOURCE_TYPES}
    assert {t.lower() for t in DEFAULT_IGNORED_RESOURCE_TYPES} == {
        "aws::ssm::managedinstanceinventory", "aws::config::resourcecompliance", "aws::ssm::patchcompliance",
        "aws::ssm::associationcompliance"}
    assert 0 < settings.give_up_minutes <= 90  # the detector gives up at most 90 minutes after delivery
    assert settings.lookback_minutes >= 5
    assert settings.destinations == () and settings.routes == ()


def test_bundled_default_settings_file_is_valid():
    path = Path(__file__).resolve().parents[2] / "chalicelib" / "default_settings.json"
    settings = Settings.from_dict(json.loads(path.read_text()))
    assert settings.trust_aws_services is True
    assert settings.trusted_principals == ()


def test_a_full_document_is_read():
    settings = Settings.from_dict({
        "trusted_principals": [ROLE, f"arn:aws:iam::{ACCT}:user/jenkins", f"arn:aws:iam::{ACCT}:role/ci/*"],
        "trust_aws_services": False,
        "ignored_resource_types": ["AWS::EC2::NetworkInterface"],
        "lookback_minutes": 30,
        "give_up_minutes": 90,
        "burst_window_seconds": 0,
        "destinations": [{"name": "sec", "type": "bot", "secret": "mcd/slack-bot", "channel": "C0123456789"},
                         {"name": "ops", "secret": "ssm:/mcd/ops-webhook"}],
        "routes": [{"kinds": ["console_signin"], "destinations": ["sec"]},
                   {"accounts": [ACCT], "min_severity": "medium", "destinations": ["ops", "sec"]}],
        "direct_rules": {"include": ["*SecurityGroup*"]},
        "account_aliases": {ACCT: "prod"},
    })
    assert settings.trusted_principals[0] == ROLE
    assert settings.trust_aws_services is False
    assert settings.ignored_resource_types == frozenset({"aws::ec2::networkinterface"})
    assert (settings.lookback_minutes, settings.give_up_minutes, settings.burst_window_seconds) == (30, 90, 0)
    assert settings.destinations == (Destination("sec", "bot", "mcd/slack-bot", "C0123456789"),
                                     Destination("ops", "webhook", "ssm:/mcd/ops-webhook"))
    assert settings.routes[0] == Route(destinations=("sec",), kinds=("console_signin",))
    assert settings.routes[1].destinations == ("ops", "sec") and settings.routes[1].min_severity == "medium"
    assert settings.account_aliases == {ACCT: "prod"}


def test_ignored_resource_types_replace_the_defaults_and_compare_case_insensitively():
    types = ["AWS::SSM::ManagedInstanceInventory", "aws::ec2::VOLUME"]
    settings = Settings.from_dict({"ignored_resource_types": types})
    assert settings.ignored_resource_types == frozenset({"aws::ssm::managedinstanceinventory", "aws::ec2::volume"})
    assert Settings.from_dict({"ignored_resource_types": []}).ignored_resource_types == frozenset()


# --- trusted principals -------------------------------------------------------------------------------------


@pytest.mark.parametrize("pattern", [
    ROLE,
    f"arn:aws:iam::{ACCT}:role/terraform-*",
    f"arn:aws:iam::{ACCT}:role/ci/terraform-apply",
    f"arn:aws:iam::{ACCT}:role/ci/*",
    f"arn:aws-us-gov:iam::{ACCT}:role/platform/terraform-*",
    f"arn:aws-cn:iam::{ACCT}:role/deployer",
    f"arn:aws:iam::{ACCT}:user/jenkins-deployer",
    f"arn:aws:iam::{ACCT}:user/ci-*",
    "arn:aws:iam::*:role/OrganizationAccountAccessRole",
])
def test_role_and_user_patterns_are_accepted(pattern: str):
    assert Settings.from_dict({"trusted_principals": [pattern]}).trusted_principals == (pattern,)


@pytest.mark.parametrize("pattern", [
    f"arn:aws:sts::{ACCT}:assumed-role/terraform-apply/aws-go-sdk-1725376752631404304",
    f"arn:aws:sts::{ACCT}:assumed-role/terraform-apply/*",
    f"arn:aws-us-gov:sts::{ACCT}:assumed-role/break-glass/k.mbeki",
    f"arn:aws-cn:sts::{ACCT}:assumed-role/deployer/ci",
])
def test_session_arns_are_rejected(pattern: str):
    message = error_of({"trusted_principals": [pattern]})
    assert pattern in message
    assert "session" in message


@pytest.mark.parametrize("pattern", [
    "terraform",
    f"arn:aws:sts::{ACCT}:federated-user/r.iyer",
    f"arn:aws:s3:::bucket-{ACCT}",
    f"arn:aws:iam::{ACCT}:policy/AdministratorAccess",
    f"arn:aws:iam::{ACCT}:group/admins",
    f"arn:aws:iam::{ACCT}:role/",
    f"arn:aws-iso-x:iam::{ACCT}:role/x",
    f"AROA6ILCDDF4YDZ7I5RK6:{ACCT}",
])
def test_anything_but_an_iam_role_user_or_root_pattern_is_rejected(pattern: str):
    message = error_of({"trusted_principals": [pattern]})
    assert pattern in message and "trusted principal" in message


BORROWABLE = [
    (f"arn:aws:iam::{ACCT}:role/*", "every role"),
    (f"arn:aws:iam::{ACCT}:role/*/*", "every role"),
    ("arn:aws:iam::*:role/*", "every role"),
    (f"arn:aws:iam::{ACCT}:user/*", "every user"),
    (f"arn:aws:iam::{ACCT}:*", "every principal"),
    (f"arn:aws:iam::{ACCT}:root", "root"),
    (f"arn:aws:iam::{ACCT}:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_Admin_*", "Identity Center"),
    (f"arn:aws:iam::{ACCT}:role/aws-reserved/sso.amazonaws.com/eu-west-1/AWSReservedSSO_Admin_0a1b2c3d4e5f6071",
     "Identity Center"),
    (f"arn:aws:iam::{ACCT}:role/AWSReservedSSO_*", "Identity Center"),
]


@pytest.mark.parametrize("pattern, words", BORROWABLE)
def test_patterns_anyone_could_borrow_are_refused_by_name(pattern: str, words: str):
    message = error_of({"trusted_principals": [pattern]})
    assert pattern in message and words in message


@pytest.mark.parametrize("pattern, words", BORROWABLE)
def test_at_run_time_a_borrowable_pattern_is_logged_and_skipped_and_the_rest_kept(
        pattern: str, words: str, caplog: pytest.LogCaptureFixture):
    data = {"trusted_principals": [pattern, ROLE, f"arn:aws:iam::{ACCT}:role/ci/*"]}
    with caplog.at_level(logging.ERROR, logger="mcd.settings"):
        settings = Settings.from_dict(data, lenient=True)
    assert settings.trusted_principals == (ROLE, f"arn:aws:iam::{ACCT}:role/ci/*")
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "mcd.settings"]
    assert len(lines) == 1
    assert lines[0]["event"] == "trusted_principal_skipped" and lines[0]["pattern"] == pattern
    assert words in lines[0]["reason"]


@pytest.mark.parametrize("value", [ROLE, [ROLE, ""], [ROLE, 7], {"role": ROLE}])
def test_trusted_principals_must_be_a_list_of_strings(value: Any):
    assert "trusted_principals" in error_of({"trusted_principals": value})


# --- errors name the key ------------------------------------------------------------------------------------


@pytest.mark.parametrize("data, key", [
    ({"trusted_principal": [ROLE]}, "trusted_principal"),
    ({"slack_webhook_url": "https://hooks.slack.com/services/T000/B000/XXXX"}, "slack_webhook_url"),
    ({"trust_aws_services": "false"}, "trust_aws_services"),
    ({"trust_aws_services": 0}, "trust_aws_services"),
    ({"ignored_resource_types": "AWS::EC2::Volume"}, "ignored_resource_types"),
    ({"ignored_resource_types": [""]}, "ignored_resource_types"),
    ({"lookback_minutes": 0}, "lookback_minutes"),
    ({"lookback_minutes": "15"}, "lookback_minutes"),
    ({"give_up_minutes": 91}, "give_up_minutes"),
    ({"give_up_minutes": True}, "give_up_minutes"),
    ({"give_up_minutes": 45.5}, "give_up_minutes"),
    ({"burst_window_seconds": -1}, "burst_window_seconds"),
    ({"destinations": {"name": "x"}}, "destinations"),
    ({"routes": "all"}, "routes"),
    ({"direct_rules": ["*Policy*"]}, "direct_rules"),
    ({"account_aliases": [ACCT]}, "account_aliases"),
])
def test_errors_name_the_key(data: dict[str, Any], key: str):
    assert key in error_of(data)


def test_unknown_keys_are_all_named():
    message = error_of({"trusted_principals": [ROLE], "trusted_princpals": [], "slack": {}})
    assert "trusted_princpals" in message and "slack" in message


def test_give_up_may_not_exceed_ninety_minutes_but_may_equal_it():
    assert Settings.from_dict({"give_up_minutes": 90}).give_up_minutes == 90
    assert "give_up_minutes" in error_of({"give_up_minutes": 120})


# --- destinations and routes; no secrets in settings ---------------------------------------------------------


@pytest.mark.parametrize("secret", [
    "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX",
    "http://hooks.example/slack",
    "xoxb-1234567890-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
    "xoxp-1234-5678-90ab",
])
def test_webhook_urls_and_tokens_are_refused_in_settings(secret: str):
    message = error_of({"destinations": [{"name": "alerts", "secret": secret}]})
    assert "alerts" in message and "secret" in message
    assert secret not in message  # the error itself must not echo the secret into logs


@pytest.mark.parametrize("secret", [
    "mcd/slack-webhook", "arn:aws:secretsmanager:us-east-1:123456789012:secret:mcd-AbC123", "ssm:/mcd/slack/webhook",
])
def test_secret_references_are_accepted(secret: str):
    settings = Settings.from_dict({"destinations": [{"name": "alerts", "secret": secret}]})
    assert settings.destinations[0].secret == secret


@pytest.mark.parametrize("destination, words", [
    ({"secret": "mcd/x"}, ["name"]),
    ({"name": "", "secret": "mcd/x"}, ["name"]),
    ({"name": "alerts"}, ["alerts", "secret"]),
    ({"name": "alerts", "secret": ""}, ["alerts", "secret"]),
    ({"name": "alerts", "type": "email", "secret": "mcd/x"}, ["type", "email"]),
    ({"name": "alerts", "type": "bot", "secret": "mcd/x"}, ["alerts", "channel"]),
    ("alerts", ["destination"]),
])
def test_bad_destinations_are_explained(destination: Any, words: list[str]):
    message = error_of({"destinations": [destination]})
    for word in words:
        assert word in message


@pytest.mark.parametrize("route, words", [
    ({"destinations": ["nowhere"]}, ["nowhere"]),
    ({"destinations": []}, ["destination"]),
    ({"destinations": ["ops"], "min_severity": "critical"}, ["min_severity"]),
    ({"destinations": ["ops"], "kinds": "console_signin"}, ["routes[].kinds"]),
    ({"destinations": ["ops"], "accounts": [123456789012]}, ["routes[].accounts"]),
    ("ops", ["route"]),
])
def test_bad_routes_are_explained(route: Any, words: list[str]):
    message = error_of({"destinations": [{"name": "ops", "secret": "mcd/ops"}], "routes": [route]})
    for word in words:
        assert word in message


def test_a_route_without_destinations_configured_names_the_unknown_destination():
    assert "ops" in error_of({"routes": [{"destinations": ["ops"]}]})


def test_lenient_loading_keeps_what_is_usable() -> None:
    """The run-time loader falls back to this after logging the strict error: alerts keep flowing."""
    data = {"trusted_principals": [f"arn:aws:iam::{ACCT}:role/terraform",
                                   f"arn:aws:sts::{ACCT}:assumed-role/terraform/ci"],
            "future_option": True}
    with pytest.raises(ConfigurationError):
        Settings.from_dict(data)
    settings = Settings.from_dict(data, lenient=True)
    assert settings.trusted_principals == (f"arn:aws:iam::{ACCT}:role/terraform",)


def test_lenient_loading_with_every_pattern_refused_trusts_nobody_and_keeps_the_rest():
    data = {"trusted_principals": [f"arn:aws:iam::{ACCT}:role/*", f"arn:aws:iam::{ACCT}:root"],
            "give_up_minutes": 60}
    settings = Settings.from_dict(data, lenient=True)
    assert settings.trusted_principals == () and settings.give_up_minutes == 60


def test_the_organisations_accounts_and_the_lookup_role_are_validated() -> None:
    from chalicelib.core.settings import DEFAULT_LOOKUP_ROLE, Settings

    assert (Settings().accounts, Settings().lookup_role) == ((), DEFAULT_LOOKUP_ROLE) == ((), "mcd-lookup")
    loaded = Settings.from_dict({"accounts": ["603829174455"], "lookup_role": "audit-reader"})
    assert (loaded.accounts, loaded.lookup_role) == (("603829174455",), "audit-reader")
    for bad in ({"accounts": ["6038291744"]}, {"accounts": "603829174455"},
                {"lookup_role": "arn:aws:iam::603829174455:role/mcd-lookup"}, {"lookup_role": ""}):
        with pytest.raises(ConfigurationError):
            Settings.from_dict(bad)


# --- early alerts: per destination, off by default -------------------------------------------------------------


def test_early_alerts_are_off_unless_a_destination_turns_them_on():
    settings = Settings.from_dict({"destinations": [
        {"name": "sec", "secret": "mcd/sec"},
        {"name": "ops", "type": "bot", "secret": "mcd/bot", "channel": "C0OPS", "early_alerts": True,
         "$comment": "measured first"}]})
    assert [d.early_alerts for d in settings.destinations] == [False, True]
    assert Destination("sec", "webhook", "mcd/sec").early_alerts is False


@pytest.mark.parametrize("destination, words", [
    ({"name": "ops", "secret": "mcd/ops", "early_alerts": "yes"}, ["ops", "early_alerts", "true or false"]),
    ({"name": "ops", "secret": "mcd/ops", "early_alert": True}, ["ops", "unknown key", "early_alert"]),
])
def test_a_bad_destination_key_is_named_and_when_lenient_skipped_without_silencing_alerts(
        destination: dict[str, Any], words: list[str], caplog: pytest.LogCaptureFixture):
    message = error_of({"destinations": [destination]})
    assert all(word in message for word in words)
    with caplog.at_level(logging.ERROR, logger="mcd.settings"):
        settings = Settings.from_dict({"destinations": [destination], "routes": [{"destinations": ["ops"]}]},
                                      lenient=True)
    assert settings.destinations == (Destination("ops", "webhook", "mcd/ops"),), "still a destination, no early alerts"
    (line,) = [json.loads(r.getMessage()) for r in caplog.records]
    assert line["event"] == "destination_key_skipped" and line["destination"] == "ops"
