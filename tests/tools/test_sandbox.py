"""``sandbox``: the stack's resources in moto, configured as ``infra/stack.yaml`` configures them."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest
from moto import mock_aws

from chalicelib.adapters.aws import ClientFactory
from chalicelib.bootstrap import Environment
from mcd_tools import sandbox


@pytest.fixture
def aws() -> Iterator[ClientFactory]:
    with mock_aws():
        yield ClientFactory("eu-west-1")


def test_fake_credentials_point_boto3_at_nothing_real(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
                "AWS_DEFAULT_REGION"):
        monkeypatch.setenv(key, "real-looking")
    monkeypatch.setenv("AWS_PROFILE", "production")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "https://real.example")
    sandbox.fake_credentials("ap-south-1")
    assert (os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"], os.environ["AWS_SESSION_TOKEN"]) == (
        "testing", "testing", "testing")
    assert os.environ["AWS_DEFAULT_REGION"] == "ap-south-1"
    assert "AWS_PROFILE" not in os.environ and "AWS_ENDPOINT_URL" not in os.environ


def queue_attributes(aws: ClientFactory, url: str) -> dict[str, str]:
    return aws.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]


def test_queues_redrive_to_their_dead_letter_queue_after_five_receives(aws: ClientFactory) -> None:
    env = sandbox.create_resources(aws.client, "eu-west-1", prefix="mcd-t")
    assert isinstance(env, Environment) and env.home_region == "eu-west-1"
    for stage, hidden_for in sandbox.VISIBILITY_TIMEOUTS.items():
        url, dlq = getattr(env, f"{stage}_queue_url"), getattr(env, f"{stage}_dlq_url")
        assert url.endswith(f"/mcd-t-{stage}") and dlq.endswith(f"/mcd-t-{stage}-dlq")
        attributes = queue_attributes(aws, url)
        assert attributes["VisibilityTimeout"] == str(hidden_for)
        assert attributes["MessageRetentionPeriod"] == str(14 * 24 * 3600)
        assert json.loads(attributes["RedrivePolicy"]) == {
            "deadLetterTargetArn": queue_attributes(aws, dlq)["QueueArn"], "maxReceiveCount": sandbox.MAX_RECEIVE_COUNT}
    assert sandbox.VISIBILITY_TIMEOUTS == {"dispatch": 180, "lookup": 360, "slack": 180}


def test_the_async_failed_queue_is_there_as_the_stack_makes_it_unless_left_out(aws: ClientFactory) -> None:
    env = sandbox.create_resources(aws.client, "eu-west-1", prefix="mcd-t")
    assert env.async_failed_queue_url.endswith("/mcd-t-async-failed")
    attributes = queue_attributes(aws, env.async_failed_queue_url)
    assert (attributes["VisibilityTimeout"], attributes["MessageRetentionPeriod"]) == ("180", str(14 * 24 * 3600))
    assert "RedrivePolicy" not in attributes, "dl_retry counts the receives of a record itself"
    before = sandbox.create_resources(aws.client, "eu-west-1", prefix="mcd-old", async_failed_queue=False)
    assert before.async_failed_queue_url == ""
    assert not [u for u in aws.client("sqs").list_queues(QueueNamePrefix="mcd-old")["QueueUrls"]
                if u.endswith("async-failed")]


def test_bucket_table_and_settings_exist_and_no_secret_unless_given(aws: ClientFactory) -> None:
    env = sandbox.create_resources(aws.client, "eu-west-1", prefix="mcd-t", settings={"give_up_minutes": 30})
    assert aws.client("s3").get_bucket_location(Bucket=env.archive_bucket)["LocationConstraint"] == "eu-west-1"
    table = aws.client("dynamodb").describe_table(TableName=env.state_table)["Table"]
    assert {k["AttributeName"]: k["KeyType"] for k in table["KeySchema"]} == {"pk": "HASH", "sk": "RANGE"}
    assert env.settings_ref == "ssm:/mcd-t/settings"
    stored = aws.client("ssm").get_parameter(Name="/mcd-t/settings")["Parameter"]["Value"]
    assert json.loads(stored) == {"give_up_minutes": 30}
    assert env.slack_secret == ""
    assert aws.client("secretsmanager").list_secrets()["SecretList"] == []


def test_a_given_slack_secret_is_stored_and_named(aws: ClientFactory) -> None:
    aws = ClientFactory("us-east-1")  # the same moto, another region (its bucket has no location constraint)
    env = sandbox.create_resources(aws.client, "us-east-1", prefix="mcd-s",
                                   slack_secret_value='{"url": "https://hooks.slack.com/services/T/B/x"}',
                                   visibility_timeout=5)
    assert env.slack_secret == "mcd-s/slack-webhook"
    value = aws.client("secretsmanager").get_secret_value(SecretId=env.slack_secret)["SecretString"]
    assert json.loads(value)["url"].startswith("https://hooks.slack.com/")
    assert all(queue_attributes(aws, getattr(env, f"{s}_queue_url"))["VisibilityTimeout"] == "5"
               for s in sandbox.QUEUES), "a test may shorten every visibility timeout"
    assert queue_attributes(aws, env.async_failed_queue_url)["VisibilityTimeout"] == "5"
    assert aws.client("s3").head_bucket(Bucket=env.archive_bucket) is not None


