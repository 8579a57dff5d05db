"""Builders and payload checks shared by the Slack room's tests (values modelled on the public replay scenarios)."""

from __future__ import annotations

import json
import re
from typing import Any

from hypothesis import strategies as st

from chalicelib.core.model import Principal
from chalicelib.core.outcomes import API_CALL, CONSOLE_SIGNIN, MANUAL_CHANGE, UNATTRIBUTED_CHANGE, EventSummary, Outcome
from chalicelib.slack.limits import check_limits

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
        "principal": Principal(
            type="IAMUser",
            arn="arn:aws:iam::318472906155:user/dmitri.volkov",
            account="318472906155",
            display_name="dmitri.volkov",
            mfa=False,
        ),
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
        "principal": Principal(type="Root", arn="arn:aws:iam::111122223333:root", display_name="root", mfa=True),
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
        "principal": Principal(
            type="AssumedRole",
            arn="arn:aws:sts::604918273645:assumed-role/AWSReservedSSO_Admin_0a1b/nina.petrov@example.com",
            account="604918273645",
            display_name="nina.petrov",
            session_name="nina.petrov@example.com",
        ),
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


AUTO_LINK = re.compile(r"://|[\w-][.\uff0e\u3002\uff61][^\W\d_]")


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
        principal=Principal(
            type=text,
            arn=text,
            account=text,
            display_name=text,
            session_name=text,
            source_identity=text,
            invoked_by=None,
        ),
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
