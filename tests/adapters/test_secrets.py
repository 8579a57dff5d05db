"""``adapters.secrets.SecretReader`` on moto: Secrets Manager and SSM, JSON or bare values, TTL, stale reads,
and values that never reach a log line or an error."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws

from chalicelib.adapters.aws import ClientFactory
from chalicelib.adapters.memory import ManualClock
from chalicelib.adapters.secrets import STALE_SECONDS, TTL_SECONDS, VALUE_KEYS, Secret, SecretError, SecretReader

HOOK = "https://hooks.slack.com/services/T1/B1/" + "s3cr3t" * 4


@pytest.fixture(scope="module")
def aws() -> Iterator[ClientFactory]:
    with mock_aws():
        yield ClientFactory("us-east-1")


def secret(aws: ClientFactory, value: str) -> str:
    name = f"mcd/{uuid.uuid4().hex[:10]}"
    aws.client("secretsmanager").create_secret(Name=name, SecretString=value)
    return name


def parameter(aws: ClientFactory, value: str) -> str:
    name = f"/mcd/{uuid.uuid4().hex[:10]}"
    aws.client("ssm").put_parameter(Name=name, Type="SecureString", Value=value)
    return f"ssm:{name}"


def reader(aws: ClientFactory, clock: ManualClock | None = None) -> SecretReader:
    return SecretReader(aws.client, clock or ManualClock())


def test_a_bare_secret_value(aws: ClientFactory) -> None:
    assert reader(aws).read(secret(aws, f"  {HOOK}\n")).reveal() == HOOK


@pytest.mark.parametrize("key", VALUE_KEYS)
def test_json_values_under_any_known_key(aws: ClientFactory, key: str) -> None:
    assert reader(aws).read(secret(aws, json.dumps({"other": 1, key: f" {HOOK} "}))).reveal() == HOOK


def test_ssm_secure_string(aws: ClientFactory) -> None:
    assert reader(aws).read(parameter(aws, json.dumps({"token": "xoxb-1-2-abc"}))).reveal() == "xoxb-1-2-abc"


@pytest.mark.parametrize(("value", "reason"), [
    ('{"webhook_url": ""}', "JSON without any of the keys"),
    ('{"url": ', "not valid JSON"),
    ("   ", "holds no text value"),
])
def test_unusable_values_name_the_reference_never_the_value(aws: ClientFactory, value: str, reason: str) -> None:
    ref = secret(aws, value)
    with pytest.raises(SecretError, match=reason) as raised:
        reader(aws).read(ref)
    assert ref in str(raised.value)


def test_a_binary_secret_is_refused(aws: ClientFactory) -> None:
    name = f"mcd/{uuid.uuid4().hex[:10]}"
    aws.client("secretsmanager").create_secret(Name=name, SecretBinary=HOOK.encode())
    with pytest.raises(SecretError, match="holds no text value"):
        reader(aws).read(name)


def test_a_missing_secret_raises(aws: ClientFactory) -> None:
    with pytest.raises(Exception, match="ResourceNotFoundException"):
        reader(aws).read("mcd/absent")


def count_reads(aws: ClientFactory) -> list[str]:
    seen: list[str] = []
    aws.client("secretsmanager").meta.events.register(
        "before-call.secretsmanager.GetSecretValue", lambda **_: seen.append("read"))
    return seen


def test_values_are_cached_for_the_ttl_then_read_again(aws: ClientFactory) -> None:
    ref = secret(aws, HOOK)
    clock = ManualClock()
    secrets = reader(aws, clock)
    reads = count_reads(aws)
    secrets.read(ref)
    clock.advance(TTL_SECONDS - 1)
    secrets.read(ref)
    assert len(reads) == 1
    aws.client("secretsmanager").put_secret_value(SecretId=ref, SecretString=HOOK + "-rotated")
    clock.advance(1)
    assert secrets.read(ref).reveal() == HOOK + "-rotated"
    assert len(reads) == 2


def test_a_failed_re_read_uses_the_previous_value_for_a_while(aws: ClientFactory,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    ref = secret(aws, HOOK)
    clock = ManualClock()
    secrets = reader(aws, clock)
    secrets.read(ref)
    aws.client("secretsmanager").delete_secret(SecretId=ref, ForceDeleteWithoutRecovery=True)
    clock.advance(TTL_SECONDS + STALE_SECONDS - 1)
    with caplog.at_level(logging.WARNING, logger="mcd.secrets"):
        assert secrets.read(ref).reveal() == HOOK
    assert json.loads(caplog.records[-1].getMessage())["event"] == "secret_reread_failed"
    clock.advance(1)
    with pytest.raises(Exception, match="ResourceNotFoundException"):
        secrets.read(ref)


def test_botocore_debug_logging_never_shows_the_value(aws: ClientFactory, caplog: pytest.LogCaptureFixture) -> None:
    ref = secret(aws, HOOK)
    with caplog.at_level(logging.DEBUG):
        reader(aws).read(ref)
        aws.client("sqs").list_queues()  # after the read, botocore logs again
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert HOOK not in text and "s3cr3t" not in text
    assert any(r.name.startswith("botocore") for r in caplog.records)


def test_a_secret_hides_its_value() -> None:
    value = Secret(HOOK)
    assert repr(value) == str(value) == f"{value}" == "Secret(***)"
    assert value.reveal() == HOOK


def test_the_ttl_is_per_reference(aws: ClientFactory) -> None:
    first, second = secret(aws, "a"), secret(aws, "b")
    secrets = reader(aws)
    assert [secrets.read(first).reveal(), secrets.read(second).reveal()] == ["a", "b"]


def test_reads_use_the_client_of_the_service_named(aws: Any) -> None:
    asked: list[str] = []

    def client(service: str) -> Any:
        asked.append(service)
        return aws.client(service)

    SecretReader(client, ManualClock()).read(parameter(aws, "v"))
    assert asked == ["ssm"]
