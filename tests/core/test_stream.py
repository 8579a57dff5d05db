"""``core.stream``: which rows keep a streamed call findable, and when the stream is complete evidence."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from chalicelib.core import stream
from chalicelib.parsing.cloudtrail import parse_record

T = datetime(2025, 1, 14, 6, 3, 37, tzinfo=timezone.utc)


def call(**overrides: object) -> dict:
    record = {"eventVersion": "1.09", "eventTime": "2025-01-14T06:03:37Z", "eventSource": "s3.amazonaws.com",
              "eventName": "PutBucketPolicy", "awsRegion": "ap-south-1", "eventID": "e-1", "readOnly": False,
              "recipientAccountId": "274619038852",
              "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::274619038852:user/alice",
                               "accountId": "274619038852"},
              "requestParameters": {"bucketName": "bazaar-catalog-images", "policy": "x" * 50_000}}
    return {**record, **overrides}


def test_a_write_is_kept_under_each_identifier_it_names_in_its_account_and_region() -> None:
    rows = stream.call_rows(parse_record(call(), "eventbridge"))
    assert {r.pk for r in rows} == {"ix#274619038852#ap-south-1#bazaar-catalog-images"}
    (row,) = rows
    assert row.sk.startswith("2025-01-14T06:03:37#e-1#"), "by call and record"
    assert stream.call_rows(parse_record(call(), "cloudwatch_logs")) == rows, "a second delivery: the same row"
    other = stream.call_rows(parse_record(call(userIdentity={"type": "AssumedRole", "accountId": "274619038852",
                                                             "arn": "arn:aws:sts::274619038852:assumed-role/t/x"}),
                                          "cloudwatch_logs"))
    assert other[0].sk != row.sk, "another record claiming the same eventID is kept beside it, not over it"
    kept = json.loads(row.attrs["record"])
    assert "requestParameters" not in kept and kept["eventID"] == "e-1" and len(row.attrs["record"]) < 4000
    assert json.loads(row.attrs["keys"]) == ["bazaar-catalog-images"]


def test_reads_failures_and_records_without_an_id_are_not_kept() -> None:
    for record in (call(readOnly=True, eventName="GetBucketPolicy"), call(errorCode="AccessDenied"),
                   call(eventName="ListBuckets"), call(eventID=None)):
        assert stream.call_rows(parse_record(record, "eventbridge")) == []
    assert stream.flow_row(parse_record(call(readOnly=True), "eventbridge")).pk == "flow#274619038852#ap-south-1"


def test_a_call_stuffed_with_identifiers_is_also_kept_where_every_query_looks() -> None:
    ids = {f"k{n}": f"sg-{n:017d}" for n in range(100)}
    rows = stream.call_rows(parse_record(call(requestParameters={"groupId": "sg-0real0000000000001", **ids}),
                                         "eventbridge"))
    partitions = {r.pk.rsplit("#", 1)[1] for r in rows}
    assert len(partitions) == stream.MAX_KEYS + 1 and stream.OVERFLOW in partitions


def test_an_oversized_identity_is_cut_down_to_who() -> None:
    huge = call(userAgent="u" * 20_000, userIdentity={
        "type": "AssumedRole", "arn": "arn:aws:sts::1:assumed-role/r/s", "accountId": "274619038852",
        "sessionContext": {"sessionIssuer": {"arn": "arn:aws:iam::1:role/r"}, "attributes": {"x": "y" * 9000}}})
    kept = json.loads(stream.stored_record(huge))
    assert kept["userIdentity"]["sessionContext"]["sessionIssuer"]["arn"] == "arn:aws:iam::1:role/r"
    assert len(kept["userAgent"]) == 200


def test_the_stream_is_complete_two_minutes_after_capture_or_on_a_later_record_if_it_flows() -> None:
    flowing = stream.Flow(before=True, after=False)
    assert not stream.stream_complete(T, T + timedelta(seconds=119), flowing)
    assert stream.stream_complete(T, T + timedelta(minutes=2), flowing)
    assert stream.stream_complete(T, T + timedelta(seconds=5), stream.Flow(before=True, after=True))
    assert not stream.stream_complete(T, T + timedelta(hours=1), stream.Flow(before=False, after=True)), (
        "nothing delivered in the hour before: the stream was not flowing, the history decides")


def test_the_index_covers_only_what_has_not_expired() -> None:
    assert stream.within_index(T, T + timedelta(hours=5))
    assert not stream.within_index(T, T + timedelta(hours=6))
    low, high = stream.window_keys(T, T + timedelta(seconds=2))
    assert low <= "2025-01-14T06:03:37#e-1" <= high and not high >= "2025-01-14T06:03:40#e"


def test_a_record_with_a_forged_location_or_id_is_not_indexed() -> None:
    """A record from a log group anyone can write to may carry keys DynamoDB would refuse for the whole batch."""
    for record in (call(recipientAccountId="x" * 2000), call(awsRegion="eu-west-1" * 200),
                   call(recipientAccountId="27461903885")):
        event = parse_record(record, "cloudwatch_logs")
        assert stream.call_rows(event) == [] and stream.flow_row(event) is None
    assert stream.call_rows(parse_record(call(eventID="e" * 2000), "cloudwatch_logs")) == []
    assert stream.call_rows(parse_record(call(awsRegion="us-gov-west-1"), "cloudwatch_logs"))
