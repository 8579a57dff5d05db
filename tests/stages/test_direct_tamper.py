"""Tamper protection end to end on the fakes: one replay per class of tampering call, each an alert of its own.

Every class FORMAT.md names (the audit trail, Config, GuardDuty, flow logs, KMS keys, a write naming one
of the detector's resources, a write by the root user) is delivered as EventBridge delivers it, beside
ordinary sensitive calls of the same person; the tampering ones are high severity, say what they
disable, and are posted one message each instead of joining that person's digest.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from memory_world import replay

ACCOUNT = "563014872290"
REGION = "ca-central-1"
PERSON = {"type": "IAMUser", "arn": f"arn:aws:iam::{ACCOUNT}:user/r.tremblay", "accountId": ACCOUNT,
          "userName": "r.tremblay", "principalId": "AIDAEXAMPLE"}
ROOT = {"type": "Root", "arn": f"arn:aws:iam::{ACCOUNT}:root", "accountId": ACCOUNT, "principalId": ACCOUNT}
DETECTOR = {"type": "AssumedRole", "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/mcd-dev/mcd-dev-dl_retry",
            "accountId": ACCOUNT, "sessionContext": {"sessionIssuer": {
                "type": "Role", "arn": f"arn:aws:iam::{ACCOUNT}:role/mcd-dev", "userName": "mcd-dev"}}}

CLASSES = {
    "cloudtrail": ("cloudtrail", "PutEventSelectors", {"trailName": "org-trail", "eventSelectors": []}),
    "config": ("config", "PutConfigurationRecorder", {"configurationRecorder": {"name": "default"}}),
    "guardduty": ("guardduty", "DeleteDetector", {"detectorId": "12abc34d567e8fa901bc2d34e56789f0"}),
    "flow-logs": ("ec2", "DeleteFlowLogs", {"DeleteFlowLogsRequest": {"FlowLogId": {"content": "fl-1"}}}),
    "kms": ("kms", "ScheduleKeyDeletion", {"keyId": "e2b91c47-5a0d-4f83-b6e1-0c9d4a7f2358",
                                            "pendingWindowInDays": 7}),
    "own-function": ("lambda", "PutFunctionConcurrency20171031",
                     {"functionName": "mcd-dev-lookup", "reservedConcurrentExecutions": 0}),
    "own-queue": ("sqs", "PurgeQueue", {"queueUrl": f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/mcd-dev-slack"}),
    "own-settings": ("ssm", "PutParameter", {"name": "/mcd/dev/settings", "overwrite": True, "type": "String"}),
    "own-secret": ("secretsmanager", "PutSecretValue", {"secretId": "mcd/dev/slack-webhook"}),
    "own-subscription": ("logs", "DeleteSubscriptionFilter",
                         {"logGroupName": "aws-cloudtrail-logs", "filterName": "mcd-dev-cloudtrail"}),
    "own-rule": ("events", "DisableRule", {"name": "mcd-dev-api_call"}),
    "root-write": ("s3", "PutBucketVersioning", {"bucketName": "phi-backups"}),
}


def record(n: int, source: str, name: str, parameters: Any, identity: dict[str, Any], **extra: Any) -> dict:
    return {"eventVersion": "1.09", "userIdentity": identity, "eventTime": f"2025-07-22T10:00:{n:02d}Z",
            "eventSource": f"{source}.amazonaws.com", "eventName": name, "awsRegion": REGION,
            "sourceIPAddress": "70.81.142.33", "userAgent": "aws-cli/2.27.50", "requestParameters": parameters,
            "eventID": f"00000000-0000-4000-8000-{n:012d}", "readOnly": False, "eventType": "AwsApiCall",
            "recipientAccountId": ACCOUNT, **extra}


def delivery(detail: dict[str, Any]) -> dict[str, Any]:
    return {"at": "2025-07-22T10:00:30Z", "via": "eventbridge", "event": {
        "version": "0", "id": detail["eventID"], "detail-type": "AWS API Call via CloudTrail",
        "source": "aws." + detail["eventSource"].split(".")[0], "account": ACCOUNT, "time": detail["eventTime"],
        "region": REGION, "resources": [], "detail": detail}}


def story(*details: dict[str, Any]) -> dict[str, Any]:
    return {"home_region": REGION, "start": "2025-07-22T09:59:00Z", "end": "2025-07-22T10:15:00Z",
            "settings": {}, "cloudtrail": [], "deliveries": [delivery(d) for d in details], "expect": {}}


@pytest.mark.parametrize("kind", sorted(CLASSES))
def test_each_class_of_tampering_is_a_high_alert_of_its_own(kind: str) -> None:
    source, name, parameters = CLASSES[kind]
    identity = ROOT if kind == "root-write" else PERSON
    tampering = record(1, source, name, parameters, identity)
    ordinary = [record(2, "ec2", "CreateRoute", {"routeTableId": "rtb-1"}, identity),
                record(3, "ec2", "ReplaceRoute", {"routeTableId": "rtb-2"}, identity)]
    result = replay(story(tampering, *ordinary))
    by_name = {o["event_name"]: o for o in result.outcomes}
    assert set(by_name) == {name, "CreateRoute", "ReplaceRoute"}
    assert {o["kind"] for o in by_name.values()} == {"api_call"}
    [alone] = [c.payload for c in result.slack if name in json.dumps(c.payload)]
    assert alone["text"].startswith("[high]"), alone["text"]
    if kind == "root-write":  # root activity, high, shown with the rest of the root session
        assert alone["text"].startswith("[high] root made 3 sensitive API calls")
        return
    assert "tampering: " in json.dumps(alone)
    assert "CreateRoute" not in json.dumps(alone), "never folded into the person's digest"


def test_the_detectors_own_role_and_a_trusted_principal_may_touch_its_resources() -> None:
    trusted = {**PERSON, "arn": f"arn:aws:iam::{ACCOUNT}:user/terraform", "userName": "terraform"}
    scenario = story(record(1, "sqs", "PurgeQueue", {"queueUrl": "https://sqs/1/mcd-dev-dispatch-dlq"}, DETECTOR),
                     record(2, "ssm", "PutParameter", {"name": "/mcd/dev/settings"}, trusted))
    scenario["settings"] = {"trusted_principals": [trusted["arn"]]}
    result = replay(scenario)
    assert result.outcomes == [] and result.slack == []


def test_a_failed_attempt_counts_only_when_access_was_denied() -> None:
    denied = record(1, "kms", "DisableKey", {"keyId": "k1"}, PERSON, errorCode="AccessDenied")
    typo = record(2, "kms", "DisableKey", {"keyId": "k2"}, PERSON, errorCode="NotFoundException")
    result = replay(story(denied, typo))
    assert [o["event_ids"] for o in result.outcomes] == [[denied["eventID"]]]
