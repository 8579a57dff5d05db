"""``adapters.archive`` on moto: bytes kept as received, reads capped and gunzipped."""

from __future__ import annotations

import gzip
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws

from chalicelib.adapters.archive import Archive, read_object
from chalicelib.adapters.aws import ClientFactory
from chalicelib.core.errors import MalformedInput


@pytest.fixture(scope="module")
def s3() -> Iterator[Any]:
    with mock_aws():
        yield ClientFactory("us-east-1").client("s3")


@pytest.fixture
def archive(s3: Any) -> Archive:
    bucket = f"archive-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    return Archive(s3, bucket)


def test_put_keeps_the_body_exactly_as_received(s3: Any, archive: Archive) -> None:
    text = '{"a": "caf\u00e9 \ud83d"}'  # a lone surrogate, as a broken sender might write
    archive.put("k.json", text, metadata={"topic": "arn:aws:sns:x", "odd": "caf\u00e9\n" + "x" * 600})
    stored = s3.get_object(Bucket=archive.bucket, Key="k.json")
    assert stored["Body"].read() == text.encode("utf-8", "surrogatepass")
    assert stored["ContentType"] == "application/json"
    assert stored["Metadata"]["topic"] == "arn:aws:sns:x"
    assert stored["Metadata"]["odd"] == "caf__" + "x" * 507, "printable ASCII only, at most 512 characters"


def test_get_text_reads_this_bucket_or_another(s3: Any, archive: Archive) -> None:
    archive.put("a.json", "{}")
    s3.create_bucket(Bucket="config-delivery-x")
    s3.put_object(Bucket="config-delivery-x", Key="b.json.gz", Body=gzip.compress(b'{"big": true}'))
    assert archive.get_text("a.json") == "{}"
    assert archive.get_text("b.json.gz", "config-delivery-x") == '{"big": true}'


def test_a_missing_object_raises(archive: Archive) -> None:
    with pytest.raises(Exception, match="NoSuchKey"):
        archive.get_text("absent.json")


def test_an_object_over_the_byte_limit_is_not_read(s3: Any, archive: Archive) -> None:
    archive.put("big.json", "x" * 2000)
    with pytest.raises(MalformedInput, match="over the 1000 byte limit"):
        read_object(s3, archive.bucket, "big.json", max_bytes=1000)


def test_a_gzip_bomb_is_not_inflated_past_the_text_limit(s3: Any, archive: Archive) -> None:
    archive.put("bomb.json.gz", gzip.compress(b"0" * 5_000_000))
    with pytest.raises(MalformedInput, match=f"s3://{archive.bucket}/bomb.json.gz"):
        read_object(s3, archive.bucket, "bomb.json.gz", max_text=100_000)


def test_corrupt_gzip_is_malformed_input(s3: Any, archive: Archive) -> None:
    whole = gzip.compress(b'{"a": 1}' * 100)
    archive.put("bad.json.gz", whole[:len(whole) // 2])
    with pytest.raises(MalformedInput, match="truncated or corrupt"):
        archive.get_text("bad.json.gz")


def test_invalid_utf8_is_replaced_not_raised(archive: Archive) -> None:
    archive.put("latin.json", b'{"a": "caf\xe9"}')
    assert archive.get_text("latin.json") == '{"a": "caf\ufffd"}'


def test_every_put_carries_a_checksum_as_object_lock_requires(s3: Any) -> None:
    bucket = f"locked-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    s3.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}}})
    Archive(s3, bucket).put("k.json", "{}")
    head = s3.head_object(Bucket=bucket, Key="k.json", ChecksumMode="ENABLED")
    assert head.get("ChecksumSHA256"), "the upload named its SHA-256"
