"""Create the detector's supporting resources in an emulated AWS (moto), as the CloudFormation stack would.

Used by ``mcd replay``, ``make bench``, the tests and the demo. Queues get a redrive policy to their dead-letter
queue like the real stack, so a consumer that keeps failing on a message moves it there. The async-failed queue,
Lambda's on-failure destination of the asynchronous functions (``dl_retry`` drains it), is there too, so an idle
round costs what it costs on AWS; ``async_failed_queue=False`` makes resources as a stack from before it.
"""

from __future__ import annotations

import json
import os
from typing import Any

from chalicelib.bootstrap import Environment

MAX_RECEIVE_COUNT = 5
# As infra/stack.yaml: longer than the consuming function's timeout.
VISIBILITY_TIMEOUTS = {"dispatch": 180, "lookup": 360, "slack": 180}
QUEUES = tuple(VISIBILITY_TIMEOUTS)
ASYNC_FAILED_VISIBILITY_TIMEOUT = 180  # dl_retry: a 120 s function (its failed reruns set their own wait)
RETENTION_SECONDS = 1_209_600  # 14 days, as in infra/stack.yaml: alerts wait this long for Slack


def fake_credentials(region: str) -> None:
    """Point boto3 at nothing real: fake keys, no profile, a region."""
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                      AWS_SECURITY_TOKEN="testing", AWS_SESSION_TOKEN="testing", AWS_DEFAULT_REGION=region)
    for key in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
        os.environ.pop(key, None)


def create_resources(client: Any, region: str, *, prefix: str = "mcd-replay",
                     settings: dict[str, Any] | None = None, slack_secret_value: str | None = None,
                     visibility_timeout: int | None = None, async_failed_queue: bool = True) -> Environment:
    """Create queues, bucket, table, secret and settings parameter; return the stage environment."""
    sqs = client("sqs")
    urls: dict[str, str] = {}
    for name in QUEUES:
        dlq = sqs.create_queue(QueueName=f"{prefix}-{name}-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        url = sqs.create_queue(QueueName=f"{prefix}-{name}", Attributes={
            "VisibilityTimeout": str(visibility_timeout or VISIBILITY_TIMEOUTS[name]),
            "MessageRetentionPeriod": str(RETENTION_SECONDS),
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVE_COUNT}),
        })["QueueUrl"]
        urls[name], urls[f"{name}_dlq"] = url, dlq
    if async_failed_queue:
        urls["async_failed"] = sqs.create_queue(QueueName=f"{prefix}-async-failed", Attributes={
            "VisibilityTimeout": str(visibility_timeout or ASYNC_FAILED_VISIBILITY_TIMEOUT),
            "MessageRetentionPeriod": str(RETENTION_SECONDS)})["QueueUrl"]
    bucket = f"{prefix}-archive"
    s3 = client("s3")
    if region == "us-east-1":
        s3.create_bucket(Bucket=bucket)
    else:
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
    table = f"{prefix}-state"
    client("dynamodb").create_table(
        TableName=table, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                              {"AttributeName": "sk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
    )
    secret_name = f"{prefix}/slack-webhook"
    if slack_secret_value is not None:
        client("secretsmanager").create_secret(Name=secret_name, SecretString=slack_secret_value)
    settings_name = f"/{prefix}/settings"
    client("ssm").put_parameter(Name=settings_name, Type="String", Value=json.dumps(settings or {}))
    return Environment(
        home_region=region,
        dispatch_queue_url=urls["dispatch"], dispatch_dlq_url=urls["dispatch_dlq"],
        lookup_queue_url=urls["lookup"], lookup_dlq_url=urls["lookup_dlq"],
        slack_queue_url=urls["slack"], slack_dlq_url=urls["slack_dlq"],
        async_failed_queue_url=urls.get("async_failed", ""),
        archive_bucket=bucket, state_table=table,
        slack_secret=secret_name if slack_secret_value is not None else "",
        settings_ref=f"ssm:{settings_name}",  # the budget: DEFAULT_BUDGET_SECONDS, as without a Lambda context
    )
