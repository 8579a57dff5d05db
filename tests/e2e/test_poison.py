"""Poison cannot take others down (issue 11, part 5): bombs, crashes and foreign buckets, end to end.

Against moto and the Slack stand-in (the ``world`` of tests/e2e/test_pipeline.py): a gzip bomb behind an
oversized notification, an exception on one message of a batch, a run that dies twice on the same
message, and an ``s3BucketLocation`` outside Config's delivery bucket. In every case the other
notifications are reported, and the poison itself ends as a dead letter that is still reported.
"""

from __future__ import annotations

import gzip
import json
import tracemalloc
import zlib
from datetime import timedelta
from typing import Any

import pytest
from test_pipeline import ACCOUNT, CAPTURE, START, World, sg_notification, trail_entry
from test_pipeline import oversized_notification as oversized
from test_pipeline import world as world  # the fixture, re-exported

from chalicelib.adapters import archive
from chalicelib.core.errors import MalformedInput
from chalicelib.stages import dispatch

GROUPS = [f"sg-0p{i:02d}" for i in range(12)]
CONFIG_BUCKET = "config-delivery"


def multi_member_bomb(members: int = 40) -> bytes:
    """A ~0.6 MB gzip object that inflates to 640 MiB (concatenated 16 MiB members, as gzip allows)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = b"A" * 2**20
    member = packer.compress(b'{"configurationItem": {"x": "') + b"".join(packer.compress(chunk) for _ in range(16))
    return (member + packer.compress(b'"}}') + packer.flush()) * members


BOMB = multi_member_bomb()


def config_key(group: str, account: str = ACCOUNT) -> str:
    return f"AWSLogs/{account}/Config/us-east-1/2024/5/1/OversizedChangeNotification/{group}.json.gz"


def set_settings(world: World, settings: dict[str, Any]) -> None:
    world.aws.client("ssm").put_parameter(Name=world.deps.env.settings_ref[4:], Type="String", Overwrite=True,
                                          Value=json.dumps(settings))
    world.deps._settings = None


def s3_reads(world: World) -> list[tuple[str, str]]:
    reads: list[tuple[str, str]] = []
    world.aws.client("s3").meta.events.register(
        "before-parameter-build.s3.GetObject", lambda params, **_: reads.append((params["Bucket"], params["Key"])))
    return reads


def posted_text(world: World) -> str:
    return json.dumps([m["payload"] for m in world.standin.messages])


@pytest.fixture
def twelve_open_groups() -> list[dict[str, Any]]:
    return [trail_entry(group, START + timedelta(seconds=5)) for group in GROUPS]


# --------------------------------------------------------------------------------------------
# Size caps


def test_read_object_refuses_a_bomb_with_bounded_memory() -> None:
    class Body:
        def __init__(self, data: bytes) -> None:
            self.data, self.offset, self.closed = data, 0, False

        def read(self, amount: int = -1) -> bytes:
            end = len(self.data) if amount < 0 else self.offset + amount
            piece, self.offset = self.data[self.offset:end], min(end, len(self.data))
            return piece

        def close(self) -> None:
            self.closed = True

    body = Body(BOMB)
    s3 = type("S3", (), {"get_object": lambda self, **_: {"Body": body, "ContentLength": len(BOMB)}})()
    tracemalloc.start()
    try:
        with pytest.raises(MalformedInput, match="inflates beyond 16 MiB"):
            archive.read_object(s3, CONFIG_BUCKET, config_key("sg-bomb"))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(BOMB) < 700_000
    assert peak < 48 * 2**20, f"peak {peak / 2**20:.0f} MiB"  # was 1.2 GB: the whole bomb, then its text
    assert body.closed


def test_read_object_reads_at_most_the_byte_cap() -> None:
    class Body:
        requested: list[int] = []  # noqa: RUF012

        def read(self, amount: int = -1) -> bytes:
            self.requested.append(amount)
            return b"{" * max(amount, 0)

        def close(self) -> None:
            pass

    s3 = type("S3", (), {"get_object": lambda self, **_: {"Body": Body()}})()  # no ContentLength
    with pytest.raises(MalformedInput, match="over the 1000 byte limit"):
        archive.read_object(s3, "b", "k", max_bytes=1000)
    assert sum(Body.requested) <= 1001
    big = type("S3", (), {"get_object": lambda self, **_: {"Body": Body(), "ContentLength": 10**9}})()
    with pytest.raises(MalformedInput, match="not read"):
        archive.read_object(big, "b", "k")


def test_read_object_still_reads_plain_and_gzip_objects() -> None:
    import io

    for data in (b'{"a": 1}', gzip.compress(b'{"a": 1}'), gzip.compress(b'{"a":') + gzip.compress(b' 1}')):
        s3 = type("S3", (), {"get_object": lambda self, d=data, **_: {"Body": io.BytesIO(d),
                                                                          "ContentLength": len(d)}})()
        assert archive.read_object(s3, "b", "k") == '{"a": 1}'
    truncated = gzip.compress(b'{"a": 1}' * 100)[:-20]
    s3 = type("S3", (), {"get_object": lambda self, **_: {"Body": io.BytesIO(truncated)}})()
    with pytest.raises(MalformedInput, match="truncated or corrupt"):
        archive.read_object(s3, "b", "k")


@pytest.mark.parametrize("world", [[trail_entry(g, START + timedelta(seconds=5)) for g in GROUPS]], indirect=True)
def test_a_gzip_bomb_behind_one_oversized_notification_loses_no_neighbour(world: World) -> None:
    """The issue's incident: 12 world-open groups, one of them oversized with a bomb in Config's bucket."""
    s3 = world.aws.client("s3")
    s3.create_bucket(Bucket=CONFIG_BUCKET)
    s3.put_object(Bucket=CONFIG_BUCKET, Key=config_key(GROUPS[0]), Body=BOMB)
    world.deliver(oversized(GROUPS[0], f"{CONFIG_BUCKET}/{config_key(GROUPS[0])}"), "bomb")
    for n, group in enumerate(GROUPS[1:]):
        world.deliver(sg_notification(group, CAPTURE), f"m-{n}")
    tracemalloc.start()
    try:
        counts = world.tick("dispatch")["dispatch"]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert counts["changes"] == 12 and counts["dead_lettered"] == 0, counts
    assert peak < 120 * 2**20, f"dispatch peaked at {peak / 2**20:.0f} MiB"
    world.run_minutes(12)
    text = posted_text(world)
    assert all(group in text for group in GROUPS), "every change is reported, the bombed one from its summary"


# --------------------------------------------------------------------------------------------
# Foreign buckets


@pytest.mark.parametrize("world", [[trail_entry("sg-0far", START + timedelta(seconds=5))]], indirect=True)
def test_a_location_outside_the_config_buckets_is_not_read_and_still_reported(world: World) -> None:
    set_settings(world, {"trusted_principals": [f"arn:aws:iam::{ACCOUNT}:role/terraform"],
                         "config_buckets": [CONFIG_BUCKET]})
    s3 = world.aws.client("s3")
    s3.create_bucket(Bucket="someone-elses-bucket")
    full = json.loads(sg_notification("sg-0far", CAPTURE))
    s3.put_object(Bucket="someone-elses-bucket", Key=config_key("sg-0far"),
                  Body=gzip.compress(json.dumps(full).encode()))
    reads = s3_reads(world)
    world.deliver(oversized("sg-0far", f"someone-elses-bucket/{config_key('sg-0far')}"), "far-1")
    world.run_minutes(10)
    assert not [r for r in reads if r[0] == "someone-elses-bucket"]
    assert len(world.standin.messages) == 1 and "sg-0far" in posted_text(world)


@pytest.mark.parametrize("world", [[trail_entry("sg-0own", START + timedelta(seconds=5))]], indirect=True)
def test_without_config_buckets_only_configs_own_layout_for_the_items_account_is_read(world: World) -> None:
    s3 = world.aws.client("s3")
    s3.create_bucket(Bucket=CONFIG_BUCKET)
    full = json.loads(sg_notification("sg-0own", CAPTURE))
    for key in (config_key("sg-0own"), config_key("sg-0own", account="999999999999"), "exports/sg-0own.json.gz"):
        s3.put_object(Bucket=CONFIG_BUCKET, Key=key, Body=gzip.compress(json.dumps(full).encode()))
    reads = s3_reads(world)
    world.deliver(oversized("sg-0own", f"{CONFIG_BUCKET}/{config_key('sg-0own', account='999999999999')}"), "o-1")
    world.deliver(oversized("sg-0own", f"{CONFIG_BUCKET}/exports/sg-0own.json.gz"), "o-2")
    world.tick("dispatch")
    assert [r for r in reads if r[0] == CONFIG_BUCKET] == []
    world.deliver(oversized("sg-0own", f"{CONFIG_BUCKET}/{config_key('sg-0own')}"), "o-3")
    world.tick("dispatch")
    assert [r[1] for r in reads if r[0] == CONFIG_BUCKET] == [config_key("sg-0own")]


@pytest.mark.parametrize("bucket, key, account, buckets, refused", [
    ("cfg", "AWSLogs/1/Config/us-east-1/2024/1/1/OversizedChangeNotification/x.json.gz", "1", None, None),
    ("cfg", "prefix/AWSLogs/1/Config/us-east-1/2024/1/1/OversizedChangeNotification/x.json.gz", "1", None, None),
    ("cfg", "AWSLogs/2/Config/us-east-1/2024/1/1/OversizedChangeNotification/x.json.gz", "1", None, "layout"),
    ("cfg", "xAWSLogs/1/Config/us-east-1/OversizedChangeNotification/x", "1", None, "layout"),
    ("cfg", "AWSLogs/1/Config/us-east-1/2024/1/1/ConfigHistory/x.json.gz", "1", None, "layout"),
    ("cfg", "AWSLogs/1/Config/us-east-1/OversizedChangeNotification/x", None, None, "no account"),
    ("cfg", "anything", "1", ("cfg",), None),
    ("other", "AWSLogs/1/Config/us-east-1/OversizedChangeNotification/x", "1", ("cfg",), "config_buckets"),
    ("cfg", "AWSLogs/1/Config/us-east-1/OversizedChangeNotification/x", "1", (), "config_buckets"),
    ("Bad_Bucket", "k", "1", None, "not an S3 bucket name"),
])
def test_config_bucket_refusal(bucket: str, key: str, account: str | None, buckets: Any, refused: str | None) -> None:
    reason = dispatch.config_bucket_refusal(bucket, key, account, buckets)
    if refused is None:
        assert reason is None
    else:
        assert reason is not None and (refused in reason), reason


# --------------------------------------------------------------------------------------------
# One message's failure


@pytest.mark.parametrize("world", [[trail_entry(g, START + timedelta(seconds=5)) for g in GROUPS[:10]]],
                         indirect=True)
def test_an_exception_on_one_message_dead_letters_it_and_the_batch_goes_on(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    for n, group in enumerate(GROUPS[:10]):
        world.deliver(sg_notification(group, CAPTURE + timedelta(seconds=n)), f"m-{n}")
    original = dispatch.parse_config_message

    def poisoned(message: Any, source: str) -> Any:
        if GROUPS[4] in str(message):
            raise RecursionError("a parser bug met its input")
        return original(message, source)

    monkeypatch.setattr(dispatch, "parse_config_message", poisoned)
    counts = world.tick("dispatch")["dispatch"]
    assert counts["changes"] == 9 and counts["dead_lettered"] == 1
    stored_count = 0
    for _ in range(5):  # redriven three times (1, 2, 4 minutes), still failing, then stored
        stored_count += world.tick("dl_retry")["dl_retry"]["stored"]
        world.traveller.shift(250)
        world.tick("dispatch")
    assert stored_count == 1
    stored = world.s3_keys("dead-letter/dispatch_queue/")
    assert len(stored) == 1
    body = json.loads(world.aws.client("s3").get_object(Bucket=world.deps.env.archive_bucket,
                                                        Key=stored[0])["Body"].read())
    assert "RecursionError: a parser bug met its input" in body["reason"]
    world.run_minutes(12)
    text = posted_text(world)
    assert all(group in text for group in GROUPS[:10]), "the poisoned change is reported too, without an author"
    assert "dead letter" in text and "RecursionError" in text and stored[0].replace("/", "%2F") in text


class Killed(BaseException):
    """What an out-of-memory kill or a timeout looks like from inside: nothing after it runs."""


@pytest.mark.parametrize("world", [[trail_entry(g, START + timedelta(seconds=5)) for g in GROUPS[:6]]],
                         indirect=True)
def test_a_message_a_run_died_on_twice_is_dead_lettered_unread(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    for n, group in enumerate(GROUPS[:6]):
        world.deliver(sg_notification(group, CAPTURE + timedelta(seconds=n)), f"m-{n}")
    original = dispatch.parse_config_message
    attempts = {"n": 0}

    def deadly(message: Any, source: str) -> Any:
        if GROUPS[2] in str(message):
            attempts["n"] += 1
            raise Killed()
        return original(message, source)

    monkeypatch.setattr(dispatch, "parse_config_message", deadly)
    for _ in range(2):
        with pytest.raises(Killed):
            world.tick("dispatch")
        world.traveller.shift(31)  # the test queues' visibility timeout is 30 s
    counts = world.tick("dispatch")["dispatch"]
    assert attempts["n"] == 2 and counts["dead_lettered"] == 1
    sqs = world.aws.client("sqs")
    dlq = sqs.receive_message(QueueUrl=world.deps.env.dispatch_dlq_url, MessageAttributeNames=["All"])["Messages"]
    assert dlq[0]["MessageAttributes"]["mcd-permanent"]["StringValue"] == "true"
    assert "stopped twice" in dlq[0]["MessageAttributes"]["mcd-reason"]["StringValue"]
    markers = [g for g in GROUPS[:6] if g != GROUPS[2]]
    jobs = []
    while True:
        got = sqs.receive_message(QueueUrl=world.deps.env.lookup_queue_url, MaxNumberOfMessages=10,
                                  VisibilityTimeout=600).get("Messages", [])
        if not got:
            world.traveller.shift(60)
            got = sqs.receive_message(QueueUrl=world.deps.env.lookup_queue_url, MaxNumberOfMessages=10,
                                      VisibilityTimeout=600).get("Messages", [])
            if not got:
                break
        jobs.extend(json.loads(m["Body"])["change"]["resource_id"] for m in got)
    assert sorted(set(jobs)) == sorted(markers), "every neighbour was dispatched"



def test_config_buckets_setting() -> None:
    from chalicelib.core.errors import ConfigurationError
    from chalicelib.core.settings import Settings

    assert Settings.from_dict({}).config_buckets is None
    assert Settings.from_dict({"config_buckets": None}).config_buckets is None
    assert Settings.from_dict({"config_buckets": []}).config_buckets == ()
    assert Settings.from_dict({"config_buckets": ["cfg-a", "cfg-b"]}).config_buckets == ("cfg-a", "cfg-b")
    for bad in ("cfg-a", [""], [1]):
        with pytest.raises(ConfigurationError, match="config_buckets"):
            Settings.from_dict({"config_buckets": bad})
