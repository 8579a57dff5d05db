"""Containers: decoding awslogs/Kinesis data, JSON with preambles, and recognising shapes."""

from __future__ import annotations

import base64
import gzip
import io
import json
import zlib

import pytest

from chalicelib.core.errors import MalformedInput
from chalicelib.parsing import envelopes as env

LOGS = {"messageType": "DATA_MESSAGE", "owner": "210987654321", "logGroup": "trail", "logStream": "s",
        "subscriptionFilters": ["f"], "logEvents": [{"id": "1", "timestamp": 1, "message": "{}"}]}
RAW = json.dumps(LOGS).encode()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def gzip_with_name(data: bytes) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(filename="batch.json", mode="wb", fileobj=buf, mtime=0) as fh:
        fh.write(data)
    return buf.getvalue()


def raw_deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


@pytest.mark.parametrize("encode", [
    lambda d: gzip.compress(d, mtime=0),
    gzip_with_name,
    zlib.compress,
    raw_deflate,
    lambda d: gzip.compress(d[:40], mtime=0) + gzip.compress(d[40:], mtime=0),
    lambda d: d,
], ids=["gzip", "gzip-fname", "zlib", "raw-deflate", "gzip-two-members", "uncompressed"])
def test_decode_awslogs_every_compression(encode):
    assert env.decode_awslogs(b64(encode(RAW))) == LOGS


def test_decode_awslogs_tolerates_missing_padding_newlines_and_urlsafe_alphabet():
    data = b64(gzip.compress(RAW, mtime=0))
    assert env.decode_awslogs(data.rstrip("=")) == LOGS
    assert env.decode_awslogs("\n".join(data[i:i + 76] for i in range(0, len(data), 76))) == LOGS
    urlsafe = base64.urlsafe_b64encode(gzip.compress(RAW, mtime=0)).decode()
    assert env.decode_awslogs(urlsafe) == LOGS


@pytest.mark.parametrize("data, fragment", [
    ("", "empty"),
    ("!!!not base64!!!", "base64"),
    ("ünïcode", "non-ASCII"),
    (b64(gzip.compress(RAW, mtime=0)[:-12]), "truncated"),
    (b64(b"\x1f\x8b\x08\x00garbage-garbage"), "gzip"),
    (b64(gzip.compress(b"[1, 2]", mtime=0)), "expected an object"),
    (b64(gzip.compress(b"{\"a\": ", mtime=0)), "truncated"),
])
def test_decode_awslogs_raises_malformed_input_with_a_reason(data, fragment):
    with pytest.raises(MalformedInput) as caught:
        env.decode_awslogs(data)
    assert fragment in str(caught.value)


def test_decode_awslogs_rejects_non_string():
    with pytest.raises(MalformedInput):
        env.decode_awslogs(None)  # type: ignore[arg-type]


def test_decompression_bombs_are_refused(monkeypatch):
    monkeypatch.setattr(env, "MAX_INFLATED_BYTES", 1000)
    with pytest.raises(MalformedInput, match="inflates beyond"):
        env.decompress(gzip.compress(b"0" * 5000))
    with pytest.raises(MalformedInput, match="inflates beyond"):
        env.maybe_decompress(zlib.compress(b"0" * 5000))
    assert env.decompress(gzip.compress(b"0" * 1000)) == b"0" * 1000


def test_decode_kinesis_data_inflates_only_when_compressed():
    assert env.decode_kinesis_data(b64(gzip.compress(b"{}", mtime=0))) == b"{}"
    assert env.decode_kinesis_data(b64(b'{"plain": true}')) == b'{"plain": true}'


def test_maybe_decompress_leaves_text_that_merely_looks_like_a_zlib_header():
    assert env.maybe_decompress(b"x^ not compressed") == b"x^ not compressed"
    with pytest.raises(MalformedInput):
        env.maybe_decompress(b"\x1f\x8b\x08\x00broken")


@pytest.mark.parametrize("text, expected", [
    ('{"a": 1}', {"a": 1}),
    ('{"a": 1}\n\n--\nTo unsubscribe click here', {"a": 1}),
    ("New State Record Summary:\n-----\n{\"a\": 1}\nfooter", {"a": 1}),
    ("[AWS Config:us-east-1] summary\n{\"a\": 1}", {"a": 1}),
    (b'\xef\xbb\xbf{"a": 1}', {"a": 1}),
    ("[1, 2]", [1, 2]),
])
def test_load_json_accepts_preamble_trailer_and_bom(text, expected):
    assert env.load_json(text) == expected


@pytest.mark.parametrize("text, fragment", [
    ('[{"a": 1}, {"b"', "truncated"),
    ('{"a": "unterminated', "truncated"),
    ("[ERROR] First test message", "not valid JSON"),
    ("plain words", "not JSON"),
    ("   ", "empty"),
    (b"\xff\xfe\x00garbage", "UTF-8"),
    ("[" * 100_000, "not valid JSON"),
])
def test_load_json_errors_are_actionable_and_never_take_a_prefix(text, fragment):
    with pytest.raises(MalformedInput) as caught:
        env.load_json(text)
    assert fragment in str(caught.value)


@pytest.mark.parametrize("obj, shape", [
    ({"awslogs": {"data": "H4sI"}}, env.AWSLOGS),
    ({"messageType": "DATA_MESSAGE", "logEvents": []}, env.LOGS_DATA),
    ({"messageType": "CONTROL_MESSAGE", "owner": "CloudwatchLogs"}, env.LOGS_DATA),
    ({"logEvents": [], "logGroup": "g"}, env.LOGS_DATA),
    ({"Records": []}, env.RECORDS),
    ({"EventSource": "aws:sns", "Sns": {}}, env.SNS_RECORD),
    ({"eventSource": "aws:sqs", "body": "{}"}, env.SQS_RECORD),
    ({"eventSource": "aws:kinesis", "kinesis": {"data": ""}}, env.KINESIS_RECORD),
    ({"eventSource": "aws:s3", "s3": {}}, env.S3_RECORD),
    ({"Type": "Notification", "Message": "{}"}, env.SNS_ENVELOPE),
    ({"TopicArn": "arn:aws:sns:eu-west-1:1:t", "Message": {}}, env.SNS_ENVELOPE),
    ({"detail-type": "AWS API Call via CloudTrail", "detail": {}}, env.EVENTBRIDGE),
    ({"invokingEvent": "{}", "resultToken": "x", "configRuleName": "r"}, env.CONFIG_RULE_EVENT),
    ({"Events": []}, env.LOOKUP_RESPONSE),
    ({"CloudTrailEvent": "{}"}, env.LOOKUP_EVENT),
    ({"EventId": "e", "EventName": "n"}, env.LOOKUP_EVENT),
    ({"messageType": "ComplianceChangeNotification", "resourceType": "AWS::EC2::SecurityGroup"},
     env.CONFIG_NOTIFICATION),
    ({"MessageType": "ConfigurationItemChangeNotification", "configurationItems": []}, env.CONFIG_NOTIFICATION),
    ({"configurationItemSummary": {}}, env.CONFIG_NOTIFICATION),
    ({"resourceType": "AWS::IAM::Role", "configurationItemCaptureTime": "2024-01-01T00:00:00Z"},
     env.CONFIGURATION_ITEM),
    ({"eventName": "CreateBucket"}, env.CLOUDTRAIL_RECORD),
    ({"eventTime": "2024-01-01T00:00:00Z", "userIdentity": {}}, env.CLOUDTRAIL_RECORD),
    ({"x": 1}, env.UNKNOWN),
    ({}, env.UNKNOWN),
])
def test_classify(obj, shape):
    assert env.classify(obj) == shape


@pytest.mark.parametrize("value", [None, 1, "text", [1], b"bytes", 1.5, True])
def test_classify_non_objects_is_unknown(value):
    assert env.classify(value) == env.UNKNOWN


def test_config_message_type_wins_over_logs_key_collision():
    assert env.classify({"messageType": "ConfigurationSnapshotDeliveryStarted"}) == env.CONFIG_NOTIFICATION


def test_sns_messages_from_lambda_event_and_bare_envelope():
    event = {"Records": [{"EventSource": "aws:sns", "EventSubscriptionArn": "arn:sub",
                          "Sns": {"Type": "Notification", "MessageId": "m-1", "TopicArn": "arn:topic",
                                  "Subject": "s", "Timestamp": "t", "Message": "{\"a\":1}"}},
                         {"eventSource": "aws:sqs", "body": "{}"}]}
    [(meta, message)] = env.sns_messages(event)
    assert meta == env.SnsMeta(message_id="m-1", topic_arn="arn:topic", subject="s", timestamp="t",
                               type="Notification", subscription_arn="arn:sub")
    assert message == '{"a":1}'
    assert env.is_sns_lambda_event(event)
    bare = {"Type": "Notification", "MessageId": "m-2", "Message": {"a": 1}}
    assert env.sns_messages(bare) == [(env.SnsMeta(message_id="m-2", type="Notification"), {"a": 1})]
    assert env.sns_messages({"detail-type": "x", "detail": {}}) == []
    assert env.sns_messages("not an event") == []


def test_eventbridge_parts_decodes_a_string_detail():
    assert env.eventbridge_parts({"detail-type": "X", "detail": '{"a": 1}'}) == ("X", {"a": 1})
    assert env.eventbridge_parts({"detail-type": "X", "detail": "{broken"}) == ("X", "{broken")
    assert env.eventbridge_parts({"detail": None}) == (None, None)


def test_text_of_and_friends():
    assert env.text_of("a") == "a"
    assert env.text_of("") is None
    assert env.text_of(123456789012) == "123456789012"
    assert env.text_of(True) is None
    assert env.text_of(1.5) is None
    assert env.as_mapping([1]) == {}
    assert env.as_list({"a": 1}) == []


def test_compressed_input_over_the_cap_is_refused_before_inflating(monkeypatch):
    monkeypatch.setattr(env, "MAX_COMPRESSED_BYTES", 100)
    with pytest.raises(MalformedInput, match="refused uninflated"):
        env.decompress(gzip.compress(bytes(range(256)) * 4, mtime=0))
    with pytest.raises(MalformedInput, match="refused uninflated"):
        env.maybe_decompress(zlib.compress(bytes(range(256)) * 4))


def test_inflate_chunks_streams_members_and_stops_at_the_limit():
    data = gzip.compress(b'{"a": ', mtime=0) + gzip.compress(b"1}", mtime=0) + b"\x00\x00trailing"
    pieces = [data[i:i + 7] for i in range(0, len(data), 7)]
    assert env.inflate_chunks(pieces) == b'{"a": 1}'
    with pytest.raises(MalformedInput, match="inflates beyond 4 bytes"):
        env.inflate_chunks(pieces, limit=4)
    with pytest.raises(zlib.error):
        env.inflate_chunks([gzip.compress(b"x" * 1000, mtime=0)[:-9]])


def test_json_that_would_explode_in_memory_is_refused_unparsed(monkeypatch):
    monkeypatch.setattr(env, "MAX_JSON_CONTAINERS", 100)
    with pytest.raises(MalformedInput, match="memory bomb"):
        env.load_json("[" + "[]," * 100 + "[]]")
    monkeypatch.setattr(env, "MAX_JSON_VALUES", 100)
    with pytest.raises(MalformedInput, match="memory bomb"):
        env.load_json("[" + "0," * 101 + "0]")
    assert env.load_json("[" + "0," * 50 + "0]") == [0] * 51


def test_lone_surrogates_in_ids_become_encodable_text():
    assert env.text_of("sg-\ud800x") == "sg-?x"
    assert env.text_of("café") == "café"
    "".join(env.text_of("\udfff" * 3)).encode()
