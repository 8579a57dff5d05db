"""``direct`` on the in-memory fakes: sign-ins and sensitive calls from EventBridge or CloudWatch Logs are
alerted once per CloudTrail event, whatever path they came by; unreadable input is kept for a person."""

from __future__ import annotations

import base64
import gzip
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from memory_world import slack_outcomes, world

from chalicelib.stages.direct import direct

EVENTS = Path(__file__).resolve().parents[1] / "events"


def event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())


def as_cloudwatch_logs(*records: dict[str, Any]) -> dict[str, Any]:
    """CloudTrail records as a CloudWatch Logs subscription delivers them."""
    data = {"messageType": "DATA_MESSAGE", "owner": "1", "logGroup": "trail", "logStream": "s",
            "subscriptionFilters": ["mcd"],
            "logEvents": [{"id": str(n), "timestamp": 0, "message": json.dumps(r)} for n, r in enumerate(records)]}
    return {"awslogs": {"data": base64.b64encode(gzip.compress(json.dumps(data).encode())).decode()}}


def test_a_failed_console_sign_in_is_alerted_once() -> None:
    deps = world()
    signin = event("eventbridge_console_signin_failure.json")
    counts = direct(signin, deps, "eventbridge")
    assert counts.pop("indexed") >= 1  # its account and region flow (recent_calls)
    assert counts == {"records": 1, "alerts": 1, "duplicates": 0, "unparseable": 0}
    assert direct(signin, deps, "eventbridge")["duplicates"] == 1
    (alert,) = slack_outcomes(deps)
    assert (alert["kind"], alert["signin"]) == ("console_signin", "failure")
    assert deps.state.get(f"out#{alert['outcome_id']}", "outcome")["kind"] == "console_signin"


def test_one_call_arriving_by_eventbridge_and_cloudwatch_logs_is_alerted_once() -> None:
    deps = world()
    call = event("eventbridge_api_call_sso_authorize_sg.json")
    assert direct(call, deps, "eventbridge")["alerts"] == 1
    counts = direct(as_cloudwatch_logs(call["detail"]), deps, "cloudwatch_logs")
    assert counts.pop("indexed") >= 1, "the same rows again: the index is keyed by call"
    assert counts == {"records": 1, "alerts": 0, "duplicates": 1, "unparseable": 0}
    (alert,) = slack_outcomes(deps)
    assert alert["kind"] == "api_call" and alert["outcome_id"] == f"ct:{call['detail']['eventID']}"


def test_calls_the_rules_do_not_select_are_counted_not_alerted() -> None:
    deps = world()
    call = event("eventbridge_api_call_sso_authorize_sg.json")["detail"]
    quiet = {**call, "eventName": "DescribeSecurityGroups", "readOnly": True, "eventID": "quiet-1"}
    assert direct(as_cloudwatch_logs(quiet), deps, "cloudwatch_logs") == {
        "records": 1, "alerts": 0, "duplicates": 0, "unparseable": 0, "indexed": 1}  # a read: the flow row only
    assert slack_outcomes(deps) == []


def test_unreadable_input_is_kept_in_the_archive_with_its_reason() -> None:
    deps = world()
    counts = direct({"awslogs": {"data": "bm90IGd6aXA="}}, deps, "cloudwatch_logs")
    assert counts["unparseable"] == 1 and counts["alerts"] == 0
    (key,) = deps.archive.list_keys("unparseable/cloudwatch_logs/2024/5/1/")
    kept = deps.archive.json(key)
    assert kept["event"] == {"awslogs": {"data": "bm90IGd6aXA="}} and kept["reason"]


def test_invalid_direct_rules_fall_back_to_the_defaults(caplog: pytest.LogCaptureFixture) -> None:
    deps = world(settings={"direct_rules": {"no_such_rule": 1}})
    with caplog.at_level(logging.ERROR, logger="mcd.direct"):
        assert direct(event("eventbridge_console_signin_failure.json"), deps, "eventbridge")["alerts"] == 1
    assert any(json.loads(r.getMessage())["event"] == "direct_rules_invalid" for r in caplog.records)


def test_a_person_editing_a_trusted_role_names_the_pattern() -> None:
    call = event("eventbridge_api_call_sso_authorize_sg.json")
    account = call["detail"]["recipientAccountId"]
    pattern = f"arn:aws:iam::{account}:role/terraform"
    deps = world(settings={"trusted_principals": [pattern]})
    record = {**call["detail"], "eventName": "UpdateAssumeRolePolicy", "eventSource": "iam.amazonaws.com",
              "requestParameters": {"roleName": "terraform", "policyDocument": "{}"}, "eventID": "edit-1",
              "userIdentity": {"type": "IAMUser", "arn": f"arn:aws:iam::{account}:user/alice", "accountId": account,
                               "userName": "alice"}}
    assert direct({**call, "detail": record}, deps, "eventbridge")["alerts"] == 1
    (alert,) = slack_outcomes(deps)
    assert (alert["kind"], alert["extra"].get("trusted_pattern")) == ("api_call", pattern)


def test_every_record_of_a_batch_is_read() -> None:
    deps = world()
    counts = direct(event("cloudtrail_records_array.json"), deps, "eventbridge")
    assert (counts["records"], counts["alerts"]) == (2, 1)
