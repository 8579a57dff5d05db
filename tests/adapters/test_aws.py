"""``adapters.aws.ClientFactory``: lazy, cached per service and region, short timeouts, few retries."""

from __future__ import annotations

from typing import Any

from chalicelib.adapters.aws import ClientFactory


def test_clients_are_created_once_per_service_and_region() -> None:
    created: list[tuple[str, str | None]] = []
    factory = ClientFactory("eu-west-1", on_create=lambda service, region, client: created.append((service, region)))
    assert created == [], "nothing is created before it is asked for"
    sqs = factory.client("sqs")
    assert factory.client("sqs") is sqs and factory.client("sqs", "eu-west-1") is sqs
    other = factory.client("sqs", "us-east-1")
    assert other is not sqs
    assert created == [("sqs", "eu-west-1"), ("sqs", "us-east-1")]
    assert sqs.meta.region_name == "eu-west-1" and other.meta.region_name == "us-east-1"


def test_every_client_has_short_timeouts() -> None:
    config = ClientFactory("us-east-1").client("s3").meta.config
    assert (config.connect_timeout, config.read_timeout) == (3, 10)


def test_cloudtrail_gets_one_botocore_retry_the_others_four() -> None:
    """CloudTrail's throttling is handled by ``LookupClient``'s own backoff; botocore's ``max_attempts`` counts
    retries, so a LookupEvents call is sent at most twice by botocore, any other call at most five times."""
    factory = ClientFactory("us-east-1")

    def retries(service: str) -> Any:
        return factory.client(service).meta.config.retries

    assert retries("cloudtrail") == {"total_max_attempts": 2, "mode": "standard"}
    assert retries("dynamodb") == {"total_max_attempts": 5, "mode": "standard"}


def test_on_create_sees_the_client_before_it_is_used() -> None:
    seen: list[Any] = []
    factory = ClientFactory("us-east-1", on_create=lambda service, region, client: seen.append(client))
    client = factory.client("cloudtrail", "us-west-2")
    assert seen == [client]
