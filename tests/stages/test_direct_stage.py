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


# --------------------------------------------------------------------------------------------
# Early alerts (issue 15): an untrusted person's write to what AWS Config records, queued at once

EARLY_ACCOUNT = "123456789012"
TRUSTED = f"arn:aws:iam::{EARLY_ACCOUNT}:role/terraform"
EARLY_ON = {"trusted_principals": [TRUSTED],
            "destinations": [{"name": "ops", "type": "webhook", "secret": "ops", "early_alerts": True}]}


def session(role: str, name: str, **context: Any) -> dict[str, Any]:
    """An assumed-role identity: a session called ``name`` of role ``role``."""
    return {"type": "AssumedRole", "arn": f"arn:aws:sts::{EARLY_ACCOUNT}:assumed-role/{role}/{name}",
            "accountId": EARLY_ACCOUNT, "sessionContext": {"sessionIssuer": {
                "type": "Role", "arn": f"arn:aws:iam::{EARLY_ACCOUNT}:role/{role}", "userName": role}}, **context}


ALICE = {"type": "IAMUser", "arn": f"arn:aws:iam::{EARLY_ACCOUNT}:user/alice", "accountId": EARLY_ACCOUNT,
         "userName": "alice"}


def write(name: str = "CreateTags", source: str = "ec2.amazonaws.com", *, identity: dict[str, Any] | None = None,
          event_id: str = "0b7e5c2a-1111-4d2e-9a3b-5c6d7e8f9a01", **fields: Any) -> dict[str, Any]:
    """A streamed CloudTrail record: by default IAM user alice tags a security group."""
    return {"eventVersion": "1.09", "userIdentity": identity or ALICE, "eventTime": "2024-05-01T11:59:40Z",
            "eventSource": source, "eventName": name, "awsRegion": "us-east-1", "sourceIPAddress": "198.51.100.7",
            "userAgent": "aws-cli/2.15.0", "readOnly": False, "eventType": "AwsApiCall", "eventID": event_id,
            "recipientAccountId": EARLY_ACCOUNT,
            "requestParameters": {"resourcesSet": {"items": [{"resourceId": "sg-0e1a2b3c4d5e6f708"}]},
                                  "tagSet": {"items": [{"key": "env", "value": "prod"}]}}, **fields}


def bridged(record: dict[str, Any]) -> dict[str, Any]:
    return {"version": "0", "id": "e1", "detail-type": "AWS API Call via CloudTrail", "source": "aws.ec2",
            "account": EARLY_ACCOUNT, "time": record["eventTime"], "region": "us-east-1", "resources": [],
            "detail": record}


def test_early_alerts_are_off_unless_a_destination_asks_for_them() -> None:
    deps = world(settings={"trusted_principals": [TRUSTED]})
    counts = direct(bridged(write()), deps, "eventbridge")
    assert "early" not in counts and slack_outcomes(deps) == []
    assert not deps.state.with_prefix("out#")


def test_an_untrusted_write_is_queued_early_once_and_is_no_outcome(caplog: pytest.LogCaptureFixture) -> None:
    deps = world(settings=EARLY_ON)
    record = write()
    # Importing app (another test on this worker) stops the "mcd" loggers propagating: listen on them directly.
    levels = {name: logging.getLogger(name).level for name in ("mcd", "mcd.outcome", "mcd.direct")}
    for name in levels:
        logging.getLogger(name).setLevel(logging.INFO)
    for name in ("mcd.outcome", "mcd.direct"):
        logging.getLogger(name).addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.INFO):
            assert direct(bridged(record), deps, "eventbridge")["early"] == 1
            assert direct(as_cloudwatch_logs(record), deps, "cloudwatch_logs")["early"] == 0, "the other path"
            assert direct(bridged(record), deps, "eventbridge")["early"] == 0, "a redelivery"
    finally:
        for name in ("mcd.outcome", "mcd.direct"):
            logging.getLogger(name).removeHandler(caplog.handler)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
    (job,) = slack_outcomes(deps)
    assert job["outcome_id"] == f"ct:{record['eventID']}" and job["kind"] == "manual_change"
    assert job["extra"]["early"] is True and job["extra"]["config_types"] == ["AWS::EC2::*"]
    assert job["extra"]["names"][0] == "sg-0e1a2b3c4d5e6f708", "which resource: the request names no known key"
    assert job["principal_arn"] == ALICE["arn"] and job["events"][0]["event_name"] == "CreateTags"
    records = list({id(r): r for r in caplog.records}.values())  # heard once or twice, as propagation goes
    assert not [r for r in records if r.name == "mcd.outcome"], "FORMAT.md: nothing else is an outcome"
    assert [json.loads(r.getMessage())["event"] for r in records if r.name == "mcd.direct"] == ["early_alert"]


def test_a_sensitive_call_is_its_own_early_alert() -> None:
    deps = world(settings=EARLY_ON)
    record = write("AuthorizeSecurityGroupIngress", requestParameters={"groupId": "sg-0e1a2b3c4d5e6f708"})
    counts = direct(bridged(record), deps, "eventbridge")
    assert (counts["alerts"], counts["early"]) == (1, 0)
    (job,) = slack_outcomes(deps)
    assert job["kind"] == "api_call" and "early" not in job["extra"]


@pytest.mark.parametrize("record", [
    pytest.param(write(identity=session("terraform", "plan-42")), id="trusted role"),
    pytest.param(write(identity=session("terraform", "alice@example.com")), id="trusted role, any session name"),
    pytest.param(write(identity={**ALICE, "invokedBy": "autoscaling.amazonaws.com"}), id="invoked by a service"),
    pytest.param(write(identity={"type": "AWSService", "invokedBy": "ec2.amazonaws.com"}), id="AWS service"),
    pytest.param(write(identity={**session("AWSServiceRoleForAutoScaling", "AutoScaling"), "sessionContext": {
        "sessionIssuer": {"type": "Role", "arn": f"arn:aws:iam::{EARLY_ACCOUNT}:role/aws-service-role/"
                          "autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"}}}), id="service-linked"),
    pytest.param(write("DescribeTags", readOnly=True), id="read"),
    pytest.param(write("GetConsoleScreenshot"), id="read-like name"),
    pytest.param(write(errorCode="Client.InvalidGroup.NotFound", errorMessage="no such group"), id="failed"),
    pytest.param(write("SendCommand", "ssm.amazonaws.com"), id="a service Config does not record"),
    pytest.param(write("PutObject", "s3.amazonaws.com", requestParameters={"bucketName": "b", "key": "k"}),
                 id="data plane"),
    pytest.param(write("CreateAccessKey", "iam.amazonaws.com", requestParameters={"userName": "bob"}),
                 id="a credential Config does not record"),
    pytest.param(write(eventType="AwsServiceEvent"), id="not an API call"),
])
def test_who_and_what_never_get_an_early_alert(record: dict[str, Any]) -> None:
    deps = world(settings=EARLY_ON)
    assert direct(bridged(record), deps, "eventbridge")["early"] == 0
    assert slack_outcomes(deps) == []


@pytest.mark.parametrize("record", [
    pytest.param(write(identity=session("ops-admin", "terraform")), id="session named like the trusted role"),
    pytest.param(write(identity=session("terraform-x", "ci")), id="role named like the trusted one"),
    pytest.param(write(identity=session("terraform", "alice"), sessionCredentialFromConsole="true"),
                 id="console session of the trusted role"),
])
def test_trust_is_decided_on_the_issuing_role_never_the_session_name(record: dict[str, Any]) -> None:
    deps = world(settings=EARLY_ON)
    assert direct(bridged(record), deps, "eventbridge")["early"] == 1
    (job,) = slack_outcomes(deps)
    assert job["principal_arn"] == record["userIdentity"]["arn"]


def test_an_early_alert_of_a_person_editing_a_trusted_role_names_the_pattern() -> None:
    deps = world(settings=EARLY_ON)
    record = write("TagRole", "iam.amazonaws.com", requestParameters={"roleName": "terraform", "tags": []})
    assert direct(bridged(record), deps, "eventbridge")["early"] == 1
    (job,) = slack_outcomes(deps)
    assert (job["resource_type"], job["resource_name"]) == ("AWS::IAM::Role", "terraform")
    assert job["extra"]["trusted_pattern"] == TRUSTED


def test_a_huge_request_gives_way_in_the_early_alerts_job() -> None:
    deps = world(settings=EARLY_ON)
    record = write(requestParameters={"resourcesSet": {"items": [{"resourceId": "sg-0e1a2b3c4d5e6f708"}]},
                                      "tagSet": {"items": [{"key": f"k{n}", "value": "v" * 200} for n in range(600)]}})
    assert direct(bridged(record), deps, "eventbridge")["early"] == 1
    (job,) = slack_outcomes(deps)
    assert job["events"][0]["request_parameters"] == {"omitted": "too large; see CloudTrail"}
