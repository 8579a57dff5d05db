"""Links from a central account (issue 16, D33): each console link opens the account that holds what it shows."""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from memory_world import world
from slack_fixtures import assert_safe, event, manual, mrkdwn_texts

from chalicelib.core.outcomes import Outcome
from chalicelib.core.settings import ConsoleAccess
from chalicelib.slack.limits import check_limits
from chalicelib.slack.links import (
    URL_MAX,
    cloudtrail_event_url,
    cloudtrail_history_url,
    config_timeline_url,
    in_account,
    link_setup,
    resource_console_url,
    s3_folder_url,
    s3_object_url,
)
from chalicelib.slack.render import render
from chalicelib.stages.deliver import slack_send

HOME = "318472906155"  # the detector's account; the fixtures' archive bucket is its own
MEMBER = "222233334444"
SWITCH = ConsoleAccess("switch_role", role="ReadOnly")
PORTAL = ConsoleAccess("identity_center", start_url="https://d-1234567890.awsapps.com/start",
                       permission_set="ReadOnlyAccess")
SG_PAGE = "https://eu-west-1.console.aws.amazon.com/ec2/home?region=eu-west-1#SecurityGroup:groupId=sg-0b1467d0992aec890"
WRAPPED_LINK = re.compile(r"<(https://(?:signin\.aws\.amazon\.com/switchrole\?|d-1234567890\.awsapps\.com/start/#/"
                          r"console\?)[^\s<>|`]*)\|([^<>|]*)>")


def member(**overrides: Any) -> Outcome:
    """A manual change in a member account in eu-west-1 (the detector runs in us-east-1)."""
    values: dict[str, Any] = {"account": MEMBER, "region": "eu-west-1", "events": (event(region="eu-west-1"),)}
    return manual(**{**values, **overrides})


def switched(url: str | None) -> tuple[str, dict[str, str]]:
    """The switch-role page's host and its parameters (each given once)."""
    assert url is not None
    parts = urlsplit(url)
    assert parts.scheme == "https" and parts.path == "/switchrole" and not parts.fragment, url
    params = parse_qs(parts.query, strict_parsing=True)
    assert all(len(v) == 1 for v in params.values()), url
    return parts.netloc, {k: v[0] for k, v in params.items()}


def portal(url: str | None) -> tuple[str, dict[str, str]]:
    """The access portal (``https://host/path``) and its shortcut's parameters."""
    assert url is not None
    start, _, fragment = url.partition("/#/console?")
    params = parse_qs(fragment, strict_parsing=True)
    assert all(len(v) == 1 for v in params.values()), url
    return start, {k: v[0] for k, v in params.items()}


def test_switch_role_link_to_a_member_accounts_resource() -> None:
    url = resource_console_url(member(), console_base=link_setup(None, SWITCH, HOME))
    assert url == ("https://signin.aws.amazon.com/switchrole?roleName=ReadOnly&account=222233334444"
                   f"&displayName=222233334444&redirect_uri={quote(SG_PAGE, safe='')}")
    assert switched(url) == ("signin.aws.amazon.com", {"roleName": "ReadOnly", "account": MEMBER,
                                                       "displayName": MEMBER, "redirect_uri": SG_PAGE})


def test_identity_center_link_to_a_member_accounts_resource() -> None:
    url = resource_console_url(member(), console_base=link_setup(None, PORTAL, HOME))
    assert url == ("https://d-1234567890.awsapps.com/start/#/console?account_id=222233334444"
                   f"&role_name=ReadOnlyAccess&destination={quote(SG_PAGE, safe='')}")
    assert portal(url) == ("https://d-1234567890.awsapps.com/start",
                           {"account_id": MEMBER, "role_name": "ReadOnlyAccess", "destination": SG_PAGE})


@pytest.mark.parametrize("access", [SWITCH, PORTAL], ids=["switch_role", "identity_center"])
def test_member_timeline_is_in_its_own_region_and_account(access: ConsoleAccess) -> None:
    setup = link_setup(None, access, HOME)
    url = config_timeline_url(member(), console_base=setup)
    _, params = switched(url) if access is SWITCH else portal(url)
    assert params.get("account", params.get("account_id")) == MEMBER
    destination = params.get("redirect_uri", params.get("destination"))
    assert destination == config_timeline_url(member())
    assert destination.startswith("https://eu-west-1.console.aws.amazon.com/config/home?region=eu-west-1#/resources/")


def test_member_global_iam_timeline_is_in_the_partition_home_region() -> None:
    role = member(region="global", resource_type="AWS::IAM::Role", resource_id="AROA6ILCDDF4YDZ7I5RK6",
                  resource_name="ops", resource_arn=f"arn:aws:iam::{MEMBER}:role/ops")
    _, params = switched(config_timeline_url(role, console_base=link_setup(None, SWITCH, HOME)))
    assert params["account"] == MEMBER
    assert params["redirect_uri"].startswith("https://us-east-1.console.aws.amazon.com/config/home?region=us-east-1#")


def test_events_and_history_open_the_member_account_the_archive_the_home_account() -> None:
    setup = link_setup(None, SWITCH, HOME)
    _, event_params = switched(cloudtrail_event_url("e-1", "eu-west-1", console_base=setup, account=MEMBER))
    assert event_params["account"] == MEMBER
    assert event_params["redirect_uri"] == "https://eu-west-1.console.aws.amazon.com/cloudtrail/home?region=eu-west-1#/events/e-1"
    _, history = switched(cloudtrail_history_url("ola", "eu-west-1", console_base=setup, account=MEMBER))
    assert history["account"] == MEMBER and history["redirect_uri"].endswith("#/events?Username=ola")
    for url in (s3_object_url("mcd-archive", "k/1", console_base=setup),
                s3_folder_url("mcd-archive", "k", console_base=setup)):
        _, params = switched(url)
        assert params["account"] == HOME and params["redirect_uri"].startswith("https://s3.console.aws.amazon.com/s3/")


def test_archive_goes_direct_when_the_home_account_is_unknown() -> None:
    setup = link_setup(None, PORTAL, None)
    assert s3_object_url("b", "k", console_base=setup) == "https://s3.console.aws.amazon.com/s3/object/b?prefix=k"
    assert link_setup(None, PORTAL, "not-an-account").home_account is None


def test_unknown_account_goes_direct_a_malformed_one_gives_no_link() -> None:
    setup = link_setup(None, SWITCH, HOME)
    assert resource_console_url(member(account=None), console_base=setup) == SG_PAGE
    for odd in ("2222", "222233334444/x", "222233334444\n", "evil.example", "２２２２３３３３４４４４"):
        assert resource_console_url(member(account=odd), console_base=setup) is None, odd
        assert cloudtrail_event_url("e-1", "eu-west-1", console_base=setup, account=odd) is None


@pytest.mark.parametrize(
    ("partition", "region", "signin", "console"),
    [
        ("aws-us-gov", "us-gov-west-1", "signin.amazonaws-us-gov.com", "https://console.amazonaws-us-gov.com"),
        ("aws-cn", "cn-northwest-1", "signin.amazonaws.cn", "https://console.amazonaws.cn"),
    ],
)
def test_switch_role_uses_the_partitions_sign_in_host(partition: str, region: str, signin: str, console: str) -> None:
    outcome = member(partition=partition, region=region, events=(event(region=region),))
    host, params = switched(resource_console_url(outcome, console_base=link_setup(None, SWITCH, HOME)))
    assert host == signin
    assert params["redirect_uri"].startswith(f"{console}/ec2/home?region={region}#")
    assert resource_console_url(member(partition="aws-iso"), console_base=link_setup(None, SWITCH, HOME)) is None


def test_a_region_with_a_trailing_newline_is_no_host_name() -> None:
    url = config_timeline_url(member(region="eu-west-1\n"))
    assert url is not None and url.startswith("https://us-east-1.console.aws.amazon.com/config/home?region=us-east-1#")


def test_a_console_proxy_is_never_wrapped() -> None:
    setup = link_setup("https://mcd-console.example.com/aws", SWITCH, HOME)
    assert resource_console_url(member(), console_base=setup).startswith("https://mcd-console.example.com/aws/ec2/")


def test_the_reader_sees_the_account_alias_as_the_switch_role_display_name() -> None:
    hostile = "payments & <prod>|x" + "y" * 100
    url = resource_console_url(member(extra={"account_alias": hostile}), console_base=link_setup(None, SWITCH, HOME))
    assert switched(url)[1]["displayName"] == hostile[:64]
    assert not re.search(r"[\s<>|`]", url or "")


@pytest.mark.parametrize(
    "access",
    [
        ConsoleAccess("switch_role", role="Read&Only"),
        ConsoleAccess("switch_role", role=""),
        ConsoleAccess("switch_role", role="x" * 65),
        ConsoleAccess("switch_role", role="ReadOnly\n"),
        ConsoleAccess("identity_center", start_url="https://portal.example/start\n", permission_set="ReadOnly"),
        ConsoleAccess("identity_center", start_url="javascript:alert(1)", permission_set="ReadOnly"),
        ConsoleAccess("identity_center", start_url="https://portal.example/start#x", permission_set="ReadOnly"),
        ConsoleAccess("identity_center", start_url="https://a@portal.example/start", permission_set="ReadOnly"),
        ConsoleAccess("identity_center", start_url="https://portal.example/start", permission_set="Read Only"),
        ConsoleAccess("sideways"),
    ],
)
def test_a_setting_that_fails_validation_gives_no_link_not_a_wrong_one(access: ConsoleAccess) -> None:
    assert resource_console_url(member(), console_base=link_setup(None, access, HOME)) is None


def test_a_link_longer_than_slack_takes_is_left_out() -> None:
    setup = link_setup(None, PORTAL, HOME)
    page = "https://console.aws.amazon.com/" + "a/" * 1000
    assert in_account(page, setup, None, "aws") == page  # direct, within the limit
    assert in_account(page, setup, MEMBER, "aws") is None  # wrapped: each quoted "/" takes three characters
    assert 0 < len(in_account(page[:900], setup, MEMBER, "aws") or "") <= URL_MAX
    assert in_account(page + "a" * URL_MAX, link_setup(), None, "aws") is None


def _wrapped_links(payload: dict[str, Any]) -> list[tuple[str, str]]:
    return [m.groups() for t in mrkdwn_texts(payload) for m in WRAPPED_LINK.finditer(t)]


def _without_wrapped_links(payload: dict[str, Any]) -> dict[str, Any]:
    """The payload with each wrapped link replaced by its label (for the shared safety check)."""
    return json.loads(WRAPPED_LINK.sub(lambda m: m.group(2), json.dumps(payload)))


@pytest.mark.parametrize("access", [SWITCH, PORTAL], ids=["switch_role", "identity_center"])
def test_a_member_accounts_alert_links_through_the_central_account(access: ConsoleAccess) -> None:
    payload = render([member(extra={"account_alias": "payments-prod"})], console_access=access, home_account=HOME)
    assert check_limits(payload) == []
    assert_safe(_without_wrapped_links(payload))
    found = _wrapped_links(payload)
    labels = {label for _, label in found}
    assert {"Open in console", "Config timeline", "CloudTrail event", "Archived notification"} <= labels
    assert "https://" not in WRAPPED_LINK.sub("", "\n".join(mrkdwn_texts(payload)))  # every link is wrapped
    for url, label in found:
        assert "&amp;" in url and "&account" not in url and "&role_name" not in url  # escaped for mrkdwn
        plain = url.replace("&amp;", "&")
        _, params = switched(plain) if access is SWITCH else portal(plain)
        account = params.get("account", params.get("account_id"))
        assert account == (HOME if "S3" in label or "Archived" in label else MEMBER), label
        if access is SWITCH:
            assert params["displayName"] == (HOME if account == HOME else "payments-prod")


def test_the_slack_sender_links_a_member_account_through_switch_role() -> None:
    deps = world(settings={"console_access": {"mode": "switch_role", "role": "ReadOnly"},
                           "account_aliases": {MEMBER: "payments-prod"}}, home_region="us-east-1")
    deps.env = dataclasses.replace(deps.env, account=HOME)
    deps.queue("slack_queue").send_many([{"outcome": {**member().to_json(), "revision": 0}}])
    slack_send(deps)
    (call,) = deps.slack.delivered()
    found = dict((label, url.replace("&amp;", "&")) for url, label in _wrapped_links(call.payload))
    _, timeline = switched(found["Config timeline"])
    assert timeline["account"] == MEMBER and timeline["displayName"] == "payments-prod"
    assert timeline["redirect_uri"].startswith("https://eu-west-1.console.aws.amazon.com/config/home?region=eu-west-1#")
    assert switched(found["Archived notification"])[1]["account"] == HOME
