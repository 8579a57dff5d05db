"""Tests of the pure Slack renderer: every kind, digests, limits, escaping, links, severity, clients."""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.core.outcomes import (
    API_CALL,
    CONSOLE_SIGNIN,
    MANUAL_CHANGE,
    SUPPRESSED,
    UNATTRIBUTED_CHANGE,
    EventSummary,
    Outcome,
)
from chalicelib.slack.render import (
    LIMITS,
    check_limits,
    cloudtrail_event_url,
    cloudtrail_history_url,
    config_timeline_url,
    describe_client,
    escape_mrkdwn,
    format_property_change,
    render,
    resource_console_url,
    s3_object_url,
    severity,
    severity_reason,
)

# --------------------------------------------------------------------------------------------
# Builders (values modelled on the public replay scenarios)

TERRAFORM_UA = (
    "APN/1.0 HashiCorp/1.0 Terraform/1.7.5 (+https://www.terraform.io) terraform-provider-aws/5.40.0 "
    "(+https://registry.terraform.io/providers/hashicorp/aws) aws-sdk-go-v2/1.30.5 ua/2.1 os/linux"
)
CLI_UA = "aws-cli/2.15.0 Python/3.11.6 Linux/5.10.205-195.807.amzn2.x86_64 exe/x86_64.amzn.2 prompt/off"


def perm(port: int, *cidrs: str, protocol: str = "tcp") -> dict[str, Any]:
    return {
        "fromPort": port,
        "ipProtocol": protocol,
        "ipv6Ranges": [],
        "prefixListIds": [],
        "toPort": port,
        "userIdGroupPairs": [],
        "ipv4Ranges": [{"cidrIp": c} for c in cidrs],
        "ipRanges": list(cidrs),
    }


SSH_WORLD = {
    "path": "Configuration.IpPermissions.0",
    "change_type": "UPDATE",
    "previous": perm(22, "10.20.0.0/16"),
    "updated": perm(22, "10.20.0.0/16", "0.0.0.0/0"),
}


def event(**overrides: Any) -> EventSummary:
    values: dict[str, Any] = {
        "event_id": "1d43528d-3fba-4882-9a8a-fe43f958db7c",
        "event_name": "AuthorizeSecurityGroupIngress",
        "event_time": "2024-03-12T14:02:11Z",
        "event_source": "ec2.amazonaws.com",
        "region": "us-east-2",
        "source_ip": "203.0.113.54",
        "user_agent": "console.ec2.amazonaws.com",
        "request_parameters": {"groupId": "sg-0b1467d0992aec890"},
    }
    values.update(overrides)
    return EventSummary(**values)


def manual(**overrides: Any) -> Outcome:
    values: dict[str, Any] = {
        "kind": MANUAL_CHANGE,
        "outcome_id": "oc-manual-1",
        "at": "2024-03-12T14:10:00Z",
        "account": "318472906155",
        "region": "us-east-2",
        "resource_type": "AWS::EC2::SecurityGroup",
        "resource_id": "sg-0b1467d0992aec890",
        "resource_name": "bastion-sg",
        "resource_arn": "arn:aws:ec2:us-east-2:318472906155:security-group/sg-0b1467d0992aec890",
        "change_type": "UPDATE",
        "capture_time": "2024-03-12T14:03:40Z",
        "principal_arn": "arn:aws:iam::318472906155:user/dmitri.volkov",
        "principal": {
            "type": "IAMUser",
            "arn": "arn:aws:iam::318472906155:user/dmitri.volkov",
            "account": "318472906155",
            "display_name": "dmitri.volkov",
            "mfa": False,
        },
        "event_ids": ("1d43528d-3fba-4882-9a8a-fe43f958db7c",),
        "events": (event(),),
        "event_name": "AuthorizeSecurityGroupIngress",
        "changed_properties": (SSH_WORLD,),
        "archive_bucket": "mcd-archive-318472906155",
        "archive_key": "notifications/2024/03/12/7f0c.json",
    }
    values.update(overrides)
    return Outcome(**values)


def unattributed(**overrides: Any) -> Outcome:
    values: dict[str, Any] = {
        "kind": UNATTRIBUTED_CHANGE,
        "outcome_id": "oc-unattr-1",
        "at": "2024-08-14T18:00:00Z",
        "account": "583920174636",
        "region": "ca-central-1",
        "resource_type": "AWS::EC2::Instance",
        "resource_id": "i-062624d3bded74dd8",
        "change_type": "UPDATE",
        "capture_time": "2024-08-14T16:21:03Z",
        "reason": "no CloudTrail event within 90 minutes",
        "changed_properties": (
            {"path": "Configuration.State.Name", "change_type": "UPDATE", "previous": "running", "updated": "stopped"},
            {"path": "Configuration.State.Code", "change_type": "UPDATE", "previous": 16, "updated": 80},
        ),
    }
    values.update(overrides)
    return Outcome(**values)


def signin(**overrides: Any) -> Outcome:
    values: dict[str, Any] = {
        "kind": CONSOLE_SIGNIN,
        "outcome_id": "oc-signin-1",
        "at": "2024-05-02T08:00:00Z",
        "account": "111122223333",
        "region": "us-east-1",
        "principal_arn": "arn:aws:iam::111122223333:root",
        "principal": {"type": "Root", "arn": "arn:aws:iam::111122223333:root", "display_name": "root", "mfa": True},
        "event_ids": ("ab12cd34-0000-4000-8000-000000000001",),
        "events": (
            event(
                event_id="ab12cd34-0000-4000-8000-000000000001",
                event_name="ConsoleLogin",
                event_time="2024-05-02T07:58:01Z",
                event_source="signin.amazonaws.com",
                region="us-east-1",
                user_agent="Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
                request_parameters=None,
            ),
        ),
        "event_name": "ConsoleLogin",
        "signin": "root",
    }
    values.update(overrides)
    return Outcome(**values)


def api_call(**overrides: Any) -> Outcome:
    values: dict[str, Any] = {
        "kind": API_CALL,
        "outcome_id": "oc-api-1",
        "at": "2024-06-01T10:00:00Z",
        "account": "604918273645",
        "region": "eu-central-1",
        "principal_arn": "arn:aws:sts::604918273645:assumed-role/AWSReservedSSO_Admin_0a1b/nina.petrov@example.com",
        "principal": {
            "type": "AssumedRole",
            "arn": "arn:aws:sts::604918273645:assumed-role/AWSReservedSSO_Admin_0a1b/nina.petrov@example.com",
            "account": "604918273645",
            "display_name": "nina.petrov",
            "session_name": "nina.petrov@example.com",
        },
        "event_ids": ("5e6f7a8b-0000-4000-8000-000000000002",),
        "events": (
            event(
                event_id="5e6f7a8b-0000-4000-8000-000000000002",
                event_name="StopLogging",
                event_time="2024-06-01T09:58:30Z",
                event_source="cloudtrail.amazonaws.com",
                region="eu-central-1",
                user_agent=CLI_UA,
                request_parameters={"name": "arn:aws:cloudtrail:eu-central-1:604918273645:trail/org-trail"},
            ),
        ),
        "event_name": "StopLogging",
    }
    values.update(overrides)
    return Outcome(**values)


BUILDERS = {MANUAL_CHANGE: manual, UNATTRIBUTED_CHANGE: unattributed, CONSOLE_SIGNIN: signin, API_CALL: api_call}


# --------------------------------------------------------------------------------------------
# Payload inspection helpers


def mrkdwn_texts(payload: dict[str, Any]) -> list[str]:
    """Every string Slack parses as mrkdwn, including the top-level fallback."""
    texts = [payload["text"]]
    for block in payload["blocks"]:
        if block["type"] == "section":
            if "text" in block:
                assert block["text"]["type"] == "mrkdwn"
                texts.append(block["text"]["text"])
            texts.extend(f["text"] for f in block.get("fields", []))
        elif block["type"] == "context":
            texts.extend(e["text"] for e in block["elements"])
    return texts


def read(text: str) -> str:
    """Text as a person reads it: the look-alike dots and slashes put into event text shown as typed."""
    return text.replace("\u2024", ".").replace("\u2044", "/")


def plain_texts(payload: dict[str, Any]) -> list[str]:
    return [b["text"]["text"] for b in payload["blocks"] if b["type"] == "header"]


def all_texts(payload: dict[str, Any]) -> list[str]:
    return mrkdwn_texts(payload) + plain_texts(payload)


CONSOLE_HOSTS = (
    r"(?:[a-z0-9-]+\.)?console\.aws\.amazon\.com|s3\.console\.aws\.amazon\.com"
    r"|console\.amazonaws-us-gov\.com|console\.amazonaws\.cn|mcd-console\.example\.com"
)
RENDERER_LINK = re.compile(r"<https://(?:" + CONSOLE_HOSTS + r")/[^\s<>|`]*\|[^<>|]*>")
RENDERER_DATE = re.compile(r"<!date\^\d+\^\{date_short_pretty\} \{time_secs\}\|[0-9: -]+UTC>")


def links(payload: dict[str, Any]) -> list[str]:
    return [m.group(0) for t in mrkdwn_texts(payload) for m in RENDERER_LINK.finditer(t)]


# What Slack would turn into a link by itself: a URL scheme, or a dot between a word and a letter (a
# domain name, an e-mail address), in ASCII or in the full-width/ideographic dots browsers accept.
AUTO_LINK = re.compile(r"://|[\w-][.\uff0e\u3002\uff61][^\W\d_]")
# Characters that change how text reads without being seen (format characters, fillers, surrogates).
INVISIBLE = re.compile(
    "[\x00-\x1f\x7f-\x9f\xad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u2028-\u202e"
    "\u2061-\u206f\u3164\ud800-\udfff\ufeff\uffa0\ufff9-\ufffb\U000e0000-\U000e007f]"
)


def assert_safe(payload: dict[str, Any]) -> None:
    """No mrkdwn control sequence, auto-link or invisible character in the payload except what the renderer
    made itself (links, dates, line breaks, the word joiner that defuses ``@channel``)."""
    for text in mrkdwn_texts(payload):
        rest = RENDERER_DATE.sub("", RENDERER_LINK.sub("", text))
        assert "<" not in rest and ">" not in rest, rest
        assert re.search(r"&(?!amp;|lt;|gt;)", rest) is None, rest
        assert re.search(r"@(channel|here|everyone)\b", rest, re.IGNORECASE) is None, rest
        assert "tick`tock" not in text
        assert text.count("```") % 2 == 0, text
        assert AUTO_LINK.search(rest) is None, rest
        assert INVISIBLE.search(rest.replace("\n", " ")) is None, ascii(rest)
        assert re.search("(?<!@)\u2060", rest) is None, ascii(rest)
    for text in plain_texts(payload):
        assert "<" not in text and ">" not in text, text
        assert re.search(r"@(channel|here|everyone)\b", text, re.IGNORECASE) is None, text
        assert AUTO_LINK.search(text) is None and INVISIBLE.search(text) is None, ascii(text)
    for block in payload["blocks"]:
        for item in [block.get("text"), *block.get("fields", []), *block.get("elements", [])]:
            if isinstance(item, dict) and item.get("type") == "mrkdwn":
                assert item.get("verbatim") is True, "Slack must not pre-process mrkdwn into links or mentions"


def assert_valid(payload: dict[str, Any]) -> None:
    assert check_limits(payload) == []
    assert_safe(payload)
    assert json.loads(json.dumps(payload)) == payload


# --------------------------------------------------------------------------------------------
# Every kind


@pytest.mark.parametrize("kind", sorted(BUILDERS))
def test_every_kind_renders_within_limits(kind: str) -> None:
    payload = render([BUILDERS[kind]()])
    assert_valid(payload)
    assert payload["text"].strip()
    assert payload["blocks"][0]["type"] == "header"


@pytest.mark.parametrize("kind", sorted(BUILDERS))
def test_blocks_pass_slack_sdk_validation(kind: str) -> None:
    from slack_sdk.models.blocks import Block

    for block in render([BUILDERS[kind]()])["blocks"]:
        parsed = Block.parse(block)
        assert parsed is not None
        parsed.validate_json()


def test_manual_change_alert_content() -> None:
    payload = render([manual()])
    header = read(plain_texts(payload)[0])
    assert header == ":rotating_light: dmitri.volkov changed sg-0b1467d0992aec890 (bastion-sg) by hand"
    body = read("\n".join(mrkdwn_texts(payload)))
    assert "Configuration.IpPermissions.0: + tcp 22 from 0.0.0.0/0" in body
    assert "*Person*\ndmitri.volkov (IAMUser)\n`arn:aws:iam::318472906155:user/dmitri.volkov`" in body
    assert "*How*\nAWS console" in body
    assert "203.0.113.54" in body
    assert "<!date^1710252131^{date_short_pretty} {time_secs}|2024-03-12 14:02:11 UTC>" in body
    assert "AuthorizeSecurityGroupIngress" in body
    assert "Archived notification" in body and "archived in S3" in body
    assert read(payload["text"]).startswith("[high] dmitri.volkov changed sg-0b1467d0992aec890")


def test_manual_create_and_delete_headers() -> None:
    assert "created" in plain_texts(render([manual(change_type="CREATE", changed_properties=())]))[0]
    payload = render([manual(change_type="DELETE", changed_properties=())])
    assert "deleted sg-0b1467d0992aec890" in read(plain_texts(payload)[0])
    assert "Resource deleted." in read("\n".join(mrkdwn_texts(payload)))


def test_unattributed_alert_content() -> None:
    payload = render([unattributed()])
    assert read(plain_texts(payload)[0]) == (
        ":warning: Unattributed change to i-062624d3bded74dd8 — no CloudTrail author found"
    )
    body = read("\n".join(mrkdwn_texts(payload)))
    assert "Configuration.State.Name: running → stopped" in body
    assert "no CloudTrail event within 90 minutes" in body
    assert "Config timeline" in body
    assert "|CloudTrail event>" not in body


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, "Root console sign-in"),
        (
            {
                "signin": "no_mfa",
                "principal_arn": "arn:aws:iam::111122223333:user/ola",
                "principal": {"type": "IAMUser", "display_name": "ola", "mfa": False},
            },
            "ola signed in to the console without MFA",
        ),
        (
            {
                "signin": "failure",
                "principal_arn": None,
                "principal": {"type": "IAMUser", "display_name": "ola"},
                "events": (event(event_name="ConsoleLogin", error_message="Failed authentication"),),
            },
            "Failed console sign-in by ola",
        ),
    ],
)
def test_console_signin_headers(overrides: dict[str, Any], expected: str) -> None:
    payload = render([signin(**overrides)])
    assert_valid(payload)
    assert read(plain_texts(payload)[0]).endswith(expected)


def test_api_call_alert_content() -> None:
    payload = render([api_call()])
    assert read(plain_texts(payload)[0]) == ":rotating_light: nina.petrov called StopLogging"
    body = read("\n".join(mrkdwn_texts(payload)))
    assert "AWS CLI 2.15.0" in body
    assert "*Request parameters*" in body
    assert "succeeded" in body


def test_api_call_failure_is_shown() -> None:
    denied = api_call(
        event_name="AuthorizeSecurityGroupIngress",
        events=(event(error_code="Client.UnauthorizedOperation", error_message="You are not authorized"),),
    )
    payload = render([denied])
    assert "tried to call AuthorizeSecurityGroupIngress (Client.UnauthorizedOperation)" in read(plain_texts(payload)[0])
    assert "You are not authorized" in read("\n".join(mrkdwn_texts(payload)))


def test_suppressed_outcomes_are_skipped_and_nothing_left_raises() -> None:
    suppressed = manual(kind=SUPPRESSED, reason="trusted")
    assert render([suppressed, manual()]) == render([manual()])
    with pytest.raises(ValueError):
        render([suppressed])
    with pytest.raises(ValueError):
        render([])
    with pytest.raises(ValueError):
        render([manual(kind="mystery")])


# --------------------------------------------------------------------------------------------
# Digests


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
    payload = render(burst(3, principal={"display_name": "alice", "type": "AssumedRole"}))
    assert_valid(payload)
    assert read(plain_texts(payload)[0]) == ":rotating_light: alice changed 3 resources by hand"
    body = read("\n".join(mrkdwn_texts(payload)))
    for i in range(3):
        assert f"svc-{i}-sg" in body
    assert payload["text"].startswith("[high] alice changed 3 resources by hand: ")


def test_digest_of_several_people_names_them() -> None:
    outcomes = [
        manual(principal={"display_name": "alice"}),
        manual(outcome_id="b", resource_id="sg-2", principal={"display_name": "bob"}, changed_properties=()),
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
    payload = render(burst(100, principal={"display_name": "alice"}))
    assert_valid(payload)
    assert len(payload["blocks"]) <= LIMITS["blocks"]
    assert "alice changed 100 resources by hand" in read(plain_texts(payload)[0])
    assert re.search(r"… and \d+ more: ", read("\n".join(mrkdwn_texts(payload))))


# --------------------------------------------------------------------------------------------
# Long inputs


def test_two_hundred_rule_security_group_diff_is_truncated() -> None:
    changes = tuple(
        {
            "path": f"Configuration.IpPermissions.{i}",
            "change_type": "CREATE",
            "previous": None,
            "updated": perm(1000 + i, f"10.{i // 256}.{i % 256}.0/24"),
        }
        for i in range(200)
    )
    payload = render([manual(changed_properties=changes)])
    assert_valid(payload)
    body = read("\n".join(mrkdwn_texts(payload)))
    assert "Configuration.IpPermissions.0: + tcp 1000 from 10.0.0.0/24" in body
    assert re.search(r"… and \d+ more changes", body)


def test_one_property_with_two_hundred_permissions() -> None:
    updated = [perm(2000 + i, "0.0.0.0/0", f"10.0.{i}.0/24") for i in range(200)]
    change = {"path": "Configuration.IpPermissions", "change_type": "UPDATE", "previous": [], "updated": updated}
    payload = render([manual(changed_properties=(change,))])
    assert_valid(payload)
    assert "… and" in read("\n".join(mrkdwn_texts(payload)))


def test_six_kilobyte_policy_is_summarised() -> None:
    statements = [
        {
            "Sid": f"S{i}",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{i:012d}:root"},
            "Action": ["s3:GetObject", "s3:PutObject"],
            "Resource": f"arn:aws:s3:::bucket/prefix-{i}/*",
        }
        for i in range(40)
    ]
    policy = json.dumps({"Version": "2012-10-17", "Statement": statements})
    assert len(policy) > 6000
    change = {
        "path": "SupplementaryConfiguration.BucketPolicy",
        "change_type": "UPDATE",
        "previous": {"policyText": policy},
        "updated": {"policyText": policy.replace("PutObject", "DeleteObject")},
    }
    lines = format_property_change(change)
    assert lines[0].startswith("SupplementaryConfiguration.BucketPolicy: updated Allow")
    assert re.search(r"; \+3\d more statements$", lines[0])
    payload = render([manual(resource_type="AWS::S3::Bucket", changed_properties=(change,))])
    assert_valid(payload)


def test_very_long_strings_everywhere_stay_within_limits() -> None:
    long = "x" * 20000
    outcome = hostile_outcome(MANUAL_CHANGE, long)
    assert_valid(render([outcome]))
    assert_valid(render([outcome] * 60))


# --------------------------------------------------------------------------------------------
# Hostile input in every event-sourced field

HOSTILE = (
    "<!channel> <!here> @channel <https://evil.example|click> &amp; & <@U123> <#C1> "
    "tick`tock ```x``` \u202eevil\u202c \u200b é漢🙂 \n*bold* _it_ ~s~ > quote"
)


def hostile_value(text: str) -> Any:
    return {"key": text, "value": text, "nested": [text, {text: text}]}


def hostile_outcome(kind: str, text: str = HOSTILE, partition: str = "aws") -> Outcome:
    """An outcome of ``kind`` with ``text`` in every string field that can come from an event."""
    policy = json.dumps({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": text, "Resource": text}]})
    ev = EventSummary(
        event_id=text,
        event_name=text,
        event_time=text,
        event_source=text,
        region=text,
        source_ip=text,
        user_agent=text,
        error_code=text,
        error_message=text,
        request_parameters={"groupId": text, text: [text, {"cidrIp": "0.0.0.0/0"}]},
    )
    changes = (
        {"path": text, "change_type": text, "previous": text, "updated": text},
        {"path": f"Tags.{text}", "change_type": "UPDATE", "previous": text, "updated": hostile_value(text)},
        {
            "path": "Configuration.IpPermissions.0",
            "change_type": "UPDATE",
            "previous": None,
            "updated": {
                "ipProtocol": text,
                "fromPort": text,
                "toPort": text,
                "ipv4Ranges": [{"cidrIp": text, "description": text}],
                "userIdGroupPairs": [{"groupId": text}],
            },
        },
        {
            "path": "Relationships.0",
            "change_type": "CREATE",
            "previous": None,
            "updated": {"resourceId": text, "resourceName": text, "resourceType": text, "name": text},
        },
        {
            "path": "SupplementaryConfiguration.BucketPolicy",
            "change_type": "UPDATE",
            "previous": {"policyText": text},
            "updated": {"policyText": policy},
        },
    )
    return Outcome(
        kind=kind,
        outcome_id=text,
        at=text,
        account=text,
        region=text,
        resource_type="AWS::EC2::SecurityGroup",
        resource_id=text,
        resource_name=text,
        resource_arn=text,
        change_type=text,
        capture_time=text,
        principal_arn=text,
        principal={
            "type": text,
            "arn": text,
            "account": text,
            "display_name": text,
            "session_name": text,
            "source_identity": text,
            "invoked_by": None,
        },
        event_ids=(text,),
        events=(ev, ev),
        event_name=text,
        reason=text,
        signin="root" if kind == CONSOLE_SIGNIN else None,
        changed_properties=changes,
        archive_bucket=text,
        archive_key=text,
        partition=partition,
    )


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


def test_hostile_resource_and_region_never_change_the_link_host() -> None:
    outcome = hostile_outcome(MANUAL_CHANGE, "evil.example/#<x>|y")
    for url in (
        resource_console_url(outcome),
        config_timeline_url(outcome),
        cloudtrail_event_url("evil.example/#<x>|y", "evil.example/#"),
        s3_object_url("evil.example/#", "a b|<c>"),
    ):
        assert url is not None
        assert re.match(r"^https://(" + CONSOLE_HOSTS + r")/", url), url
        assert not re.search(r"[\s<>|`]", url), url
    for link in links(render([outcome])):
        assert "evil.example/" not in link.split("|")[0]


def test_escape_mrkdwn() -> None:
    assert escape_mrkdwn("<!here> & <x|y>") == "&lt;!here&gt; &amp; &lt;x|y&gt;"


NASTY = [
    "<!channel>", "<https://evil.example|x>", "&", "`", "```", "\u202e", "@here", ">" * 50, "<@U0123ABC>", "<!here>",
    "<!subteam^S1>", "&amp", "&am", "&lt", "&#60;", "&lt;!here&gt;", "\u00ad", "\u061c", "\u200d", "\u2066x\u2069",
    "\U000e0041", "\ud800", "\ufffe", "\u3164", "https://evil.example/login", "http://127.0.0.1:8080",
    "www.evil.zip", "evil.zip", "mallory@evil.example", "EVIL.COM", "evil\uff0eexample", "evil\u3002example",
    "slack://open?team=T1", "mailto:a@b.example", "hooks.slack.com/services/T/B/X", "@\u200bhere", "@\u00adchannel",
]
ANY_TEXT = st.one_of(
    st.text(max_size=300),
    st.sampled_from(NASTY),
    st.lists(st.sampled_from([*NASTY, "a", " ", ".", "/", ":", "&", "x" * 40]), max_size=80).map("".join),
    st.text(alphabet="<>&`|!@*_~\n.:/\u00ad\u061c\u2024", max_size=3000),
)


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


# --------------------------------------------------------------------------------------------
# Leftovers of escaping: invisible characters, auto-links, cut entities


def test_every_format_character_and_invisible_filler_is_removed() -> None:
    import sys
    import unicodedata

    from chalicelib.slack.render import _clean

    invisible = [chr(c) for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c)) in ("Cf", "Cs")]
    invisible += ["\u034f", "\u115f", "\u1160", "\u17b4", "\u17b5", "\u180b", "\u3164", "\uffa0", "\ufffe"]
    assert "\u00ad" in invisible and "\u061c" in invisible
    assert _clean("".join(invisible)) == ""
    assert _clean("ad\u00admin\u061c-role") == "admin-role"
    payload = render([hostile_outcome(MANUAL_CHANGE, "ro\u00adot \u061c\u202eexe.txt\u202c \u2066@\u00adhere\u2069")])
    assert_valid(payload)
    assert "root" in read(plain_texts(payload)[0])


@pytest.mark.parametrize(("text", "shown"), [
    ("https://evil.example/login", "https:\u2044\u2044evil\u2024example/login"),
    ("see www.evil.zip now", "see www\u2024evil\u2024zip now"),
    ("mallory@evil.example", "mallory@evil\u2024example"),
    ("EVIL.COM", "EVIL\u2024COM"),
    ("evil\uff0eexample", "evil\u2024example"),
    ("slack://open", "slack:\u2044\u2044open"),
    ("10.0.0.0/16 and v2.15.0", "10.0.0.0/16 and v2.15.0"),  # numbers keep their dots
    ("arn:aws:s3:::logs", "arn:aws:s3:::logs"),
])
def test_event_text_never_becomes_a_link(text: str, shown: str) -> None:
    from chalicelib.slack.render import _esc, _plain

    assert _esc(text, 200) == shown
    assert _plain(text, 200) == shown
    assert len(shown) == len(text), "same length: budgets are unchanged"
    assert read(shown) == text.replace("\uff0e", "."), "reads as typed"


def test_links_the_renderer_builds_keep_their_real_dots() -> None:
    payload = render([manual(resource_name="evil.example")])
    assert_valid(payload)
    assert any("https://us-east-2.console.aws.amazon.com/ec2/home" in link for link in links(payload))
    assert "evil\u2024example" in "\n".join(mrkdwn_texts(payload))


def test_cut_never_leaves_half_an_entity_a_link_or_a_code_span() -> None:
    from chalicelib.slack.render import _cut

    assert _cut("abc &amp; def", 8) == "abc …"
    assert _cut("abc &lt;!here&gt;", 7) == "abc …"
    assert _cut("x <https://a.example|b> y", 10) == "x …"
    assert _cut("a `code` b", 6) == "a …"
    assert _cut("```abc``` tail", 8) == "…"
    assert _cut("short", 10) == "short"


@settings(max_examples=300, deadline=None)
@given(text=st.text(alphabet="ab &<>`|", max_size=60).map(escape_mrkdwn), limit=st.integers(1, 60))
def test_property_cut_text_is_still_well_formed(text: str, limit: int) -> None:
    from chalicelib.slack.render import _cut

    cut = _cut(text, limit)
    assert len(cut) <= max(limit, 1)
    assert re.search(r"&(?!amp;|lt;|gt;)", cut) is None, cut
    assert "<" not in cut and ">" not in cut


@pytest.mark.parametrize("field", ["display_name", "resource_name", "principal_arn", "user_agent"])
def test_truncation_at_any_point_leaves_no_partial_entity(field: str) -> None:
    for size in range(430, 470):
        text = "&" * size + "<" * 5
        if field == "user_agent":
            outcome = manual(events=(event(user_agent=text),))
        elif field == "display_name":
            outcome = manual(principal={"display_name": text, "type": "IAMUser"})
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
# Digests never drop what matters


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


def test_cloudtrail_history_url() -> None:
    assert cloudtrail_history_url("nina.petrov@example.com", "eu-central-1") == (
        "https://eu-central-1.console.aws.amazon.com/cloudtrail/home?region=eu-central-1"
        "#/events?Username=nina.petrov%40example.com")
    assert cloudtrail_history_url("x" * 300, "eu-central-1") is None
    assert cloudtrail_history_url("a/b", "evil.example/#", "aws-us-gov") == (
        "https://console.amazonaws-us-gov.com/cloudtrail/home?region=us-gov-west-1#/events?Username=a%2Fb")


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


# --------------------------------------------------------------------------------------------
# Links


def test_links_for_a_security_group_in_aws() -> None:
    found = links(render([manual()]))
    assert any(
        "https://us-east-2.console.aws.amazon.com/ec2/home?region=us-east-2"
        "#SecurityGroup:groupId=sg-0b1467d0992aec890|" in link
        for link in found
    )
    assert any(
        "https://us-east-2.console.aws.amazon.com/config/home?region=us-east-2#/resources/details"
        "?resourceId=sg-0b1467d0992aec890&amp;resourceType=AWS%3A%3AEC2%3A%3ASecurityGroup|" in link
        for link in found
    )
    assert any(
        "https://us-east-2.console.aws.amazon.com/cloudtrail/home?region=us-east-2"
        "#/events/1d43528d-3fba-4882-9a8a-fe43f958db7c|" in link
        for link in found
    )
    assert any(
        "https://s3.console.aws.amazon.com/s3/object/mcd-archive-318472906155"
        "?prefix=notifications%2F2024%2F03%2F12%2F7f0c.json|" in link
        for link in found
    )


@pytest.mark.parametrize(
    ("partition", "region", "host"),
    [
        ("aws-us-gov", "us-gov-west-1", "https://console.amazonaws-us-gov.com"),
        ("aws-cn", "cn-northwest-1", "https://console.amazonaws.cn"),
    ],
)
def test_links_are_partition_correct(partition: str, region: str, host: str) -> None:
    outcome = manual(partition=partition, region=region, events=(event(region=region),))
    assert resource_console_url(outcome) == (
        f"{host}/ec2/home?region={region}#SecurityGroup:groupId=sg-0b1467d0992aec890"
    )
    assert config_timeline_url(outcome).startswith(f"{host}/config/home?region={region}#/resources/details")
    assert cloudtrail_event_url("e-1", region, partition) == f"{host}/cloudtrail/home?region={region}#/events/e-1"
    assert s3_object_url("b", "k/1", partition) == f"{host}/s3/object/b?prefix=k%2F1"
    for link in links(render([outcome])):
        assert link.startswith(f"<{host}/")


@pytest.mark.parametrize(
    ("partition", "console", "home"),
    [
        ("aws", "https://console.aws.amazon.com", "us-east-1"),
        ("aws-us-gov", "https://console.amazonaws-us-gov.com", "us-gov-west-1"),
        ("aws-cn", "https://console.amazonaws.cn", "cn-north-1"),
    ],
)
def test_global_iam_role_links(partition: str, console: str, home: str) -> None:
    role = manual(
        partition=partition,
        region="global",
        resource_type="AWS::IAM::Role",
        resource_id="AROA6ILCDDF4YDZ7I5RK6",
        resource_name="reporting-lambda-role",
        resource_arn=f"arn:{partition}:iam::452190837766:role/reporting-lambda-role",
    )
    assert resource_console_url(role) == f"{console}/iam/home#/roles/details/reporting-lambda-role"
    timeline = config_timeline_url(role)
    assert f"/config/home?region={home}#/resources/details?resourceId=AROA6ILCDDF4YDZ7I5RK6" in timeline
    assert "resourceType=AWS%3A%3AIAM%3A%3ARole" in timeline


def test_iam_timeline_uses_the_recording_region_when_known() -> None:
    role = manual(resource_type="AWS::IAM::Role", region="eu-west-1", resource_name="r")
    assert config_timeline_url(role).startswith("https://eu-west-1.console.aws.amazon.com/config/home?region=eu-west-1")


@pytest.mark.parametrize(
    ("resource_type", "rid", "name", "fragment"),
    [
        (
            "AWS::EC2::Instance",
            "i-0f0d43ac29b4c1c1f",
            None,
            "/ec2/home?region=us-east-2#InstanceDetails:instanceId=i-0f0d",
        ),
        (
            "AWS::EC2::RouteTable",
            "rtb-0961",
            None,
            "/vpcconsole/home?region=us-east-2#RouteTableDetails:RouteTableId=rtb-0961",
        ),
        ("AWS::EC2::NetworkAcl", "acl-1", None, "#NetworkAclDetails:networkAclId=acl-1"),
        ("AWS::EC2::VPC", "vpc-1", None, "#VpcDetails:VpcId=vpc-1"),
        ("AWS::EC2::Subnet", "subnet-1", None, "#SubnetDetails:subnetId=subnet-1"),
        (
            "AWS::S3::Bucket",
            "my-bucket",
            "my-bucket",
            "https://s3.console.aws.amazon.com/s3/buckets/my-bucket?region=us-east-2",
        ),
        ("AWS::IAM::User", "AIDA1", "ola", "https://console.aws.amazon.com/iam/home#/users/details/ola"),
        ("AWS::Lambda::Function", "fn", "fn", "/lambda/home?region=us-east-2#/functions/fn"),
        (
            "AWS::RDS::DBInstance",
            "db-ABC",
            "orders-db",
            "/rds/home?region=us-east-2#database:id=orders-db;is-cluster=false",
        ),
    ],
)
def test_resource_console_urls(resource_type: str, rid: str, name: str | None, fragment: str) -> None:
    url = resource_console_url(manual(resource_type=resource_type, resource_id=rid, resource_name=name))
    assert url is not None and fragment in url


def test_policy_and_trail_links_use_the_arn() -> None:
    policy = manual(resource_type="AWS::IAM::Policy", resource_arn="arn:aws:iam::1:policy/p", resource_id="ANPA")
    assert resource_console_url(policy) == (
        "https://console.aws.amazon.com/iam/home#/policies/details/arn%3Aaws%3Aiam%3A%3A1%3Apolicy%2Fp"
    )
    trail = manual(resource_type="AWS::CloudTrail::Trail", resource_arn="arn:aws:cloudtrail:us-east-2:1:trail/t")
    assert "/cloudtrail/home?region=us-east-2#/trails/arn%3Aaws%3Acloudtrail" in resource_console_url(trail)


def test_unknown_resource_type_or_partition_gives_no_link() -> None:
    assert resource_console_url(manual(resource_type="AWS::Foo::Bar")) is None
    assert resource_console_url(manual(partition="aws-iso")) is None
    assert_valid(render([manual(partition="aws-iso")]))


def test_console_base_override_and_validation() -> None:
    payload = render([manual()], console_base="https://mcd-console.example.com/aws/")
    assert all(link.startswith("<https://mcd-console.example.com/aws/") for link in links(payload))
    with pytest.raises(ValueError):
        render([manual()], console_base="javascript:alert(1)")
    with pytest.raises(ValueError):
        render([manual()], console_base="https://x.example/<!here>")


# --------------------------------------------------------------------------------------------
# Severity


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [
        (manual(), "high"),  # 0.0.0.0/0 added to tcp/22
        (manual(changed_properties=({**SSH_WORLD, "updated": perm(22, "10.20.0.0/16", "::/0")},)), "high"),
        (manual(changed_properties=({**SSH_WORLD, "updated": perm(22, "10.20.0.0/16", "10.9.0.0/16")},)), "medium"),
        # already open before: not newly opened
        (
            manual(
                changed_properties=(
                    {**SSH_WORLD, "previous": perm(443, "0.0.0.0/0"), "updated": perm(443, "0.0.0.0/0", "10.4.0.0/16")},
                )
            ),
            "medium",
        ),
        # egress to the world is not ingress
        (manual(changed_properties=({**SSH_WORLD, "path": "Configuration.IpPermissionsEgress.0"},)), "medium"),
        # world-open ingress in the request of a (possibly denied) call
        (
            api_call(
                event_name="AuthorizeSecurityGroupIngress",
                events=(
                    event(
                        request_parameters={
                            "ipPermissions": {"items": [{"ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]}}]}
                        }
                    ),
                ),
            ),
            "high",
        ),
        (signin(), "high"),
        (signin(signin="failure", principal={"type": "Root"}), "high"),
        (api_call(), "high"),  # StopLogging
        (api_call(event_name="DeleteConfigurationRecorder", events=()), "high"),
        (
            api_call(
                event_name="PutRolePolicy",
                events=(event(event_name="PutRolePolicy", event_source="iam.amazonaws.com"),),
            ),
            "high",
        ),
        (api_call(event_name="AttachUserPolicy", events=()), "high"),
        (api_call(event_name="CreatePolicyVersion", events=()), "high"),
        (manual(resource_type="AWS::IAM::Role", changed_properties=()), "high"),
        (api_call(event_name="CreateVpc", events=(event(event_name="CreateVpc"),)), "medium"),
        (
            api_call(
                event_name="PutBucketPolicy",
                events=(
                    event(
                        event_name="PutBucketPolicy",
                        event_source="s3.amazonaws.com",
                        request_parameters={"bucketPolicy": {"Statement": [{"Effect": "Allow", "Principal": "*"}]}},
                    ),
                ),
            ),
            "high",
        ),
        (
            api_call(
                event_name="PutBucketPolicy",
                events=(
                    event(
                        event_name="PutBucketPolicy",
                        event_source="s3.amazonaws.com",
                        request_parameters={
                            "bucketPolicy": {"Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:x"}}]}
                        },
                    ),
                ),
            ),
            "medium",
        ),
        (
            manual(
                resource_type="AWS::S3::Bucket",
                events=(event(event_name="PutBucketPolicy"),),
                changed_properties=(
                    {
                        "path": "SupplementaryConfiguration.BucketPolicy",
                        "change_type": "UPDATE",
                        "previous": {"policyText": None},
                        "updated": {
                            "policyText": json.dumps(
                                {"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject"}]}
                            )
                        },
                    },
                ),
            ),
            "high",
        ),
        (manual(changed_properties=(), events=(event(event_name="ModifyInstanceAttribute"),)), "medium"),
        (unattributed(), "medium"),
        (unattributed(change_type="DELETE"), "low"),
        (
            unattributed(
                changed_properties=(
                    {
                        "path": "Relationships.0",
                        "change_type": "DELETE",
                        "previous": {"resourceId": "i-1"},
                        "updated": None,
                    },
                )
            ),
            "low",
        ),
        (signin(signin="no_mfa", principal={"type": "IAMUser"}, principal_arn="arn:aws:iam::1:user/u"), "medium"),
        (signin(signin="failure", principal={"type": "IAMUser"}, principal_arn=None), "low"),
    ],
)
def test_severity(outcome: Outcome, expected: str) -> None:
    assert severity(outcome) == expected


def test_severity_reason_is_shown() -> None:
    level, reason = severity_reason(api_call())
    assert (level, reason) == ("high", "audit trail tampering (StopLogging)")
    assert "audit trail tampering (StopLogging)" in read("\n".join(mrkdwn_texts(render([api_call()]))))


# --------------------------------------------------------------------------------------------
# describe_client


@pytest.mark.parametrize(
    ("user_agent", "invoked_by", "expected"),
    [
        ("console.amazonaws.com", None, "AWS console"),
        ("console.ec2.amazonaws.com", None, "AWS console"),
        ("[S3Console/0.4, aws-internal/3]", None, "AWS console"),
        ("[S3Console/0.4, aws-internal/3 aws-sdk-java/1.12.750 Linux/5.10]", None, "AWS console"),
        ("AWSConsole", None, "AWS console"),
        ("signin.amazonaws.com", None, "AWS console"),
        (TERRAFORM_UA, None, "Terraform 1.7.5 (aws provider 5.40.0)"),
        (CLI_UA, None, "AWS CLI 2.15.0"),
        ("aws-cli/1.11.83 Python/2.7.12 Linux/4.4.0-1016-aws botocore/1.5.46", None, "AWS CLI 1.11.83"),
        ("aws-cli/2.15.0 md/awscrt#0.19 exec-env/CloudShell", None, "AWS CLI 2.15.0 in CloudShell"),
        ("Boto3/1.34 md/Botocore#1.34.131 ua/2.0 Botocore/1.34.131", None, "SDK (Python boto3 1.34)"),
        ("Botocore/1.34.131", None, "SDK (Python botocore)"),
        ("aws-sdk-go/1.50.8 (go1.21.6; linux; amd64)", None, "SDK (Go)"),
        ("Datadog/1.0 aws-sdk-go/1.50.8 (go1.21.6; linux; amd64)", None, "SDK (Go)"),
        ("aws-sdk-go-v2/1.30.5 os/linux", None, "SDK (Go)"),
        ("aws-sdk-java/1.12.750 Linux/5.10", None, "SDK (Java)"),
        ("aws-sdk-nodejs/2.1632.0 linux/v20.13.1 promise", None, "SDK (JavaScript)"),
        ("cloudformation.amazonaws.com", "cloudformation.amazonaws.com", "CloudFormation"),
        (None, "cloudformation.amazonaws.com", "CloudFormation"),
        ("autoscaling.amazonaws.com", "autoscaling.amazonaws.com", "AWS Auto Scaling"),
        ("guardduty.amazonaws.com", "guardduty.amazonaws.com", "AWS service (guardduty.amazonaws.com)"),
        ("elasticloadbalancing.amazonaws.com", None, "AWS service (elasticloadbalancing.amazonaws.com)"),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/124.0.0.0 Safari/537.36",
            None,
            "Browser (Chrome)",
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0",
            None,
            "Browser (Edge)",
        ),
        ("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0", None, "Browser (Firefox)"),
        ("AWS Internal", None, "AWS internal"),
        ("stratus-red-team_1b2c", None, "Other client (stratus-red-team_1b2c)"),
        ("", None, "unknown"),
        (None, None, "unknown"),
    ],
)
def test_describe_client(user_agent: str | None, invoked_by: str | None, expected: str) -> None:
    assert describe_client(user_agent, invoked_by) == expected


def test_describe_client_of_a_spoofed_terraform_agent_keeps_the_raw_agent_visible_and_escaped() -> None:
    agent = "APN/1.0 HashiCorp/1.0 Terraform/1.9.5 (+https://www.terraform.io) <!here> <https://evil.example/ok|ok>"
    assert describe_client(agent, None) == "Terraform 1.9.5"
    payload = render([manual(events=(event(user_agent=agent),))])
    assert_valid(payload)
    assert "&lt;!here&gt;" in read("\n".join(mrkdwn_texts(payload)))


# --------------------------------------------------------------------------------------------
# Property diffs


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (SSH_WORLD, ["Configuration.IpPermissions.0: + tcp 22 from 0.0.0.0/0"]),
        (
            {
                "path": "Configuration.IpPermissions.0",
                "change_type": "UPDATE",
                "previous": perm(22, "10.20.0.0/16", "81.2.69.160/32"),
                "updated": perm(22, "10.20.0.0/16", "0.0.0.0/0"),
            },
            [
                "Configuration.IpPermissions.0: + tcp 22 from 0.0.0.0/0",
                "Configuration.IpPermissions.0: − tcp 22 from 81.2.69.160/32",
            ],
        ),
        (
            {
                "path": "Configuration.IpPermissionsEgress.0",
                "change_type": "UPDATE",
                "previous": {"ipProtocol": "-1", "ipv4Ranges": [{"cidrIp": "0.0.0.0/0"}]},
                "updated": perm(443, "0.0.0.0/0"),
            },
            [
                "Configuration.IpPermissionsEgress.0: + tcp 443 to 0.0.0.0/0",
                "Configuration.IpPermissionsEgress.0: − all traffic to 0.0.0.0/0",
            ],
        ),
        (
            {
                "path": "Configuration.IpPermissions.1",
                "change_type": "DELETE",
                "updated": None,
                "previous": {
                    "ipProtocol": "tcp",
                    "fromPort": 5432,
                    "toPort": 5432,
                    "userIdGroupPairs": [{"groupId": "sg-0bc7", "userId": None}],
                    "ipv6Ranges": [{"cidrIpv6": "::/0"}],
                    "prefixListIds": [{"prefixListId": "pl-1"}],
                },
            },
            ["Configuration.IpPermissions.1: − tcp 5432 from ::/0, sg-0bc7, pl-1"],
        ),
        (
            {
                "path": "Configuration.IpPermissions.0",
                "change_type": "CREATE",
                "previous": None,
                "updated": {
                    "ipProtocol": "tcp",
                    "fromPort": 8000,
                    "toPort": 8100,
                    "ipv4Ranges": [{"cidrIp": "86.12.201.77/32", "description": "priya temp"}],
                },
            },
            ["Configuration.IpPermissions.0: + tcp 8000-8100 from 86.12.201.77/32 (priya temp)"],
        ),
        ({"path": "Tags.env", "change_type": "UPDATE", "previous": "prod", "updated": "dev"}, ["Tags.env: prod → dev"]),
        ({"path": "Tags.owner", "change_type": "CREATE", "previous": None, "updated": "ola"}, ["Tags.owner: + ola"]),
        (
            {
                "path": "Configuration.Tags.2",
                "change_type": "CREATE",
                "previous": None,
                "updated": {"key": "Backup", "value": "daily"},
            },
            ["Configuration.Tags.2: + Backup=daily"],
        ),
        (
            {
                "path": "Relationships.0",
                "change_type": "DELETE",
                "updated": None,
                "previous": {
                    "resourceId": "i-0f0d43ac29b4c1c1f",
                    "resourceName": None,
                    "resourceType": "AWS::EC2::Instance",
                    "name": "Is associated with Instance",
                },
            },
            ["Relationships.0: − Is associated with Instance i-0f0d43ac29b4c1c1f"],
        ),
        (
            {
                "path": "SupplementaryConfiguration.BucketPolicy",
                "change_type": "UPDATE",
                "previous": {"policyText": None},
                "updated": {
                    "policyText": '{"Version":"2012-10-17","Statement":[{"Sid":"PublicReadExports",'
                    '"Effect":"Allow","Principal":"*","Action":"s3:GetObject",'
                    '"Resource":"arn:aws:s3:::ca-exports/exports/*"}]}'
                },
            },
            [
                "SupplementaryConfiguration.BucketPolicy: + Allow everyone (*) s3:GetObject on "
                "arn:aws:s3:::ca-exports/exports/*"
            ],
        ),
        (
            {
                "path": "Configuration.RolePolicyList.0",
                "change_type": "CREATE",
                "previous": None,
                "updated": {
                    "policyName": "s3-export-all",
                    "policyDocument": "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect"
                    "%22%3A%22Allow%22%2C%22Action%22%3A%5B%22s3%3AGetObject%22%2C%22s3%3AListBucket%22%5D%2C"
                    "%22Resource%22%3A%22%2A%22%7D%5D%7D",
                },
            },
            ["Configuration.RolePolicyList.0: + s3-export-all: Allow s3:GetObject,s3:ListBucket on *"],
        ),
        (
            {
                "path": "Configuration.AttachedManagedPolicies.1",
                "change_type": "CREATE",
                "previous": None,
                "updated": {
                    "policyName": "AmazonS3FullAccess",
                    "policyArn": "arn:aws:iam::aws:policy/AmazonS3FullAccess",
                },
            },
            [
                "Configuration.AttachedManagedPolicies.1: + AmazonS3FullAccess "
                "(arn:aws:iam::aws:policy/AmazonS3FullAccess)"
            ],
        ),
        (
            {
                "path": "SupplementaryConfiguration.BucketTaggingConfiguration",
                "change_type": "UPDATE",
                "previous": {"tagSets": [{"tags": {"ManagedBy": "terraform"}}]},
                "updated": {"tagSets": [{"tags": {"ManagedBy": "terraform", "cost-center": "cc-4410"}}]},
            },
            ["SupplementaryConfiguration.BucketTaggingConfiguration.tagSets.0.tags.cost-center: + cc-4410"],
        ),
        (
            {
                "path": "Configuration.StateReason",
                "change_type": "CREATE",
                "previous": None,
                "updated": {"code": "Server.ScheduledStop", "message": "Stopped"},
            },
            ['Configuration.StateReason: + {"code":"Server.ScheduledStop","message":"Stopped"}'],
        ),
        (
            {"path": "Configuration.State.Code", "change_type": "UPDATE", "previous": 16, "updated": 80},
            ["Configuration.State.Code: 16 → 80"],
        ),
        (
            {"path": "Configuration.PublicDnsName", "change_type": "UPDATE", "previous": "ec2-1", "updated": ""},
            ['Configuration.PublicDnsName: ec2-1 → ""'],
        ),
    ],
)
def test_format_property_change(change: dict[str, Any], expected: list[str]) -> None:
    assert format_property_change(change) == expected


def test_deeply_nested_values_do_not_crash() -> None:
    deep: Any = "leaf"
    for _ in range(5000):
        deep = [deep]
    nested: Any = {"a": 1}
    for _ in range(200):
        nested = {"k": nested}
    changes = (
        {"path": "Configuration.Deep", "change_type": "UPDATE", "previous": deep, "updated": [deep]},
        {"path": "Configuration.Nested", "change_type": "UPDATE", "previous": nested, "updated": {"k": nested}},
        {"path": "Configuration.IpPermissions", "change_type": "UPDATE", "previous": deep, "updated": nested},
    )
    assert_valid(render([manual(changed_properties=changes)]))


def test_long_generic_values_are_shortened() -> None:
    (line,) = format_property_change(
        {
            "path": "Configuration.Description",
            "change_type": "UPDATE",
            "previous": "a" * 5000,
            "updated": {"k": "b" * 5000},
        }
    )
    assert len(line) <= 240 and "…" in line


# --------------------------------------------------------------------------------------------
# check_limits itself


def test_check_limits_reports_violations() -> None:
    bad = {
        "text": "",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": "h" * 151}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "s" * 3001}},
            {"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11},
            {"type": "section", "fields": [{"type": "mrkdwn", "text": "f" * 2001}]},
            *[{"type": "section", "text": {"type": "mrkdwn", "text": "t" * 2900}}] * 4,
            *[{"type": "divider"}] * 44,
        ],
    }
    problems = check_limits(bad)
    joined = "\n".join(problems)
    for needle in (
        "text fallback",
        "header text",
        "section text length 3001",
        "11 fields",
        "field 0 length 2001",
        "blocks > 50",
        "total block text",
    ):
        assert needle in joined, joined
    assert check_limits({"text": "ok", "blocks": [{"type": "divider"}]}) == []


def test_a_bare_session_name_is_shown_with_its_role_but_sso_shows_the_person() -> None:
    def header(arn: str, session: str) -> str:
        outcome = Outcome(kind="api_call", outcome_id="ct:x", at="2024-09-03T15:23:30Z", account="771203958412",
                          region="us-west-2", principal_arn=arn, event_name="ReplaceRoute",
                          principal={"type": "AssumedRole", "arn": arn, "display_name": session,
                                     "session_name": session})
        return read(render([outcome])["blocks"][0]["text"]["text"])

    assert "NetworkAdmin/terraform called ReplaceRoute" in header(
        "arn:aws:sts::771203958412:assumed-role/NetworkAdmin/terraform", "terraform")
    sso = "arn:aws:sts::771203958412:assumed-role/AWSReservedSSO_Admin_0123456789abcdef/priya@example.com"
    assert "priya@example.com called ReplaceRoute" in header(sso, "priya@example.com")


def test_an_unverified_change_says_why_and_is_never_played_down() -> None:
    from chalicelib.core.outcomes import Outcome
    from chalicelib.slack.render import render, severity

    why = "only trusted calls were found, but CloudTrail held more calls <b>&"
    outcome = Outcome(kind="unattributed_change", outcome_id="ci:x", at="2025-01-01T00:00:00Z",
                      account="111122223333", region="eu-west-3", resource_type="AWS::S3::Bucket",
                      resource_id="b", change_type="DELETE", extra={"unverified": why})
    text = json.dumps(render([outcome]))
    assert "unverified: only trusted calls were found" in text
    assert "<b>" not in text
    assert severity(outcome) != "low"
