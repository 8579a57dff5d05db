"""Builders for adversarial replay scenarios too large to keep as files (floods of CloudTrail calls)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

ACCOUNT = "111122223333"
REGION = "eu-west-3"
BUCKET = "acme-customer-exports"
TERRAFORM = f"arn:aws:iam::{ACCOUNT}:role/ci/terraform-runner"
PERSON = f"arn:aws:iam::{ACCOUNT}:user/l.moreau"
T0 = datetime(2025, 3, 4, 16, 34, 12, tzinfo=timezone.utc)


def at(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def user(name: str) -> dict[str, Any]:
    return {"type": "IAMUser", "principalId": f"AIDA{name.upper()[:8]}", "arn": f"arn:aws:iam::{ACCOUNT}:user/{name}",
            "accountId": ACCOUNT, "userName": name}


def terraform_session() -> dict[str, Any]:
    return {"type": "AssumedRole", "principalId": "AROATF:terraform-7f3a",
            "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/terraform-runner/terraform-7f3a", "accountId": ACCOUNT,
            "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": "AROATF", "arn": TERRAFORM,
                                                 "accountId": ACCOUNT, "userName": "terraform-runner"}}}


def call(event_id: str, name: str, seconds: float, identity: dict[str, Any], *, error: str | None = None,
         read_only: bool = False, visible_after: float = 240) -> dict[str, Any]:
    record: dict[str, Any] = {
        "eventVersion": "1.09", "userIdentity": identity, "eventTime": at(seconds)[:-5] + "Z",
        "eventSource": "s3.amazonaws.com", "eventName": name, "awsRegion": REGION,
        "sourceIPAddress": "198.51.100.7", "userAgent": "aws-cli/2.15", "requestParameters": {"bucketName": BUCKET},
        "responseElements": None, "eventID": event_id, "readOnly": read_only, "eventType": "AwsApiCall",
        "managementEvent": True, "recipientAccountId": ACCOUNT,
    }
    if error:
        record["errorCode"] = error
        record["errorMessage"] = "Access Denied"
    return {"visible_at": at(seconds + visible_after),
            "resources": [{"ResourceType": "AWS::S3::Bucket", "ResourceName": BUCKET}], "record": record}


def bucket_item(capture_seconds: float) -> dict[str, Any]:
    return {
        "configurationItemDiff": {"changeType": "UPDATE", "changedProperties": {
            "SupplementaryConfiguration.AccessControlList": {
                "previousValue": "{\"grantList\":[]}", "changeType": "UPDATE",
                "updatedValue": "{\"grantList\":[{\"grantee\":\"AllUsers\",\"permission\":\"Read\"}]}"}}},
        "configurationItem": {
            "relatedEvents": [], "relationships": [], "configuration": {"name": BUCKET},
            "supplementaryConfiguration": {}, "tags": {"team": "data"}, "configurationItemVersion": "1.3",
            "configurationItemCaptureTime": at(capture_seconds), "configurationStateId": 1741106117000,
            "awsAccountId": ACCOUNT, "configurationItemStatus": "OK", "resourceType": "AWS::S3::Bucket",
            "resourceId": BUCKET, "resourceName": BUCKET, "ARN": f"arn:aws:s3:::{BUCKET}", "awsRegion": REGION,
            "availabilityZone": "Regional", "configurationStateMd5Hash": "", "resourceCreationTime": None},
        "notificationCreationTime": at(capture_seconds + 2), "messageType": "ConfigurationItemChangeNotification",
        "recordVersion": "1.3"}


def flooded_bucket(reads: int, failed: int, *, trusted_write: bool, trusted_at: float = 41) -> dict[str, Any]:
    """A person makes a bucket public; ``reads`` GetBucketAcl and ``failed`` denied writes bury the call,
    all newer than it, and (optionally) the trusted Terraform role tags the bucket ``trusted_at`` s later."""
    trail = [call("00000000-0000-4000-8000-000000000001", "PutBucketAcl", 0, user("l.moreau"))]
    reader = user("monitoring-lambda")
    for i in range(reads):
        trail.append(call(f"10000000-0000-4000-8000-{i:012d}", "GetBucketAcl", 1 + (i % 50), reader,
                          read_only=True))
    for i in range(failed):
        trail.append(call(f"20000000-0000-4000-8000-{i:012d}", "PutBucketAcl", 1 + (i % 50), user("ci-readonly"),
                          error="AccessDenied"))
    if trusted_write:
        trail.append(call("00000000-0000-4000-8000-000000000002", "PutBucketTagging", trusted_at, terraform_session()))
    expected = [{"kind": "manual_change", "resource_type": "AWS::S3::Bucket", "resource_id": BUCKET,
                 "principal_arn": PERSON, "event_ids": ["00000000-0000-4000-8000-000000000001"]}]
    return {
        "name": f"flooded-bucket-{reads}-{failed}-{trusted_write}",
        "description": "a person's PutBucketAcl buried under reads and denied writes",
        "start": at(-60), "end": at(3 * 3600), "home_region": REGION,
        "settings": {"trusted_principals": [f"arn:aws:iam::{ACCOUNT}:role/ci/*"]},
        "deliveries": [{"at": at(65), "via": "sns", "message": bucket_item(63)}],
        "cloudtrail": trail,
        "expect": {"outcomes": expected, "max_slack_messages": 1},
    }
