"""``adapters.state.StateTable`` on moto: items read back as text, TTL, overwrite, and the range read."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws

from chalicelib.adapters.aws import ClientFactory
from chalicelib.adapters.state import DAY, StateTable

NOW = 1_714_564_800.0


@pytest.fixture(scope="module")
def ddb() -> Iterator[Any]:
    with mock_aws():
        yield ClientFactory("us-east-1").client("dynamodb")


def create_table(ddb: Any) -> str:
    name = f"state-{uuid.uuid4().hex[:12]}"
    ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                           {"AttributeName": "sk", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                                {"AttributeName": "sk", "KeyType": "RANGE"}])
    return name


@pytest.fixture
def table(ddb: Any) -> StateTable:
    return StateTable(ddb, create_table(ddb))


def test_an_item_comes_back_as_text_with_its_expiry(table: StateTable) -> None:
    table.put("post#default#ci:1", "posted", NOW, ttl_days=2, ts="1714564800.000100", level="high")
    assert table.get("post#default#ci:1", "posted") == {
        "pk": "post#default#ci:1", "sk": "posted", "expires_at": str(int(NOW) + 2 * DAY),
        "ts": "1714564800.000100", "level": "high"}


def test_expiry_defaults_to_fourteen_days_and_is_dynamodbs_ttl_number(ddb: Any, table: StateTable) -> None:
    table.put("ci#x", "dispatched", NOW + 0.9)
    raw = ddb.get_item(TableName=table.table, Key={"pk": {"S": "ci#x"}, "sk": {"S": "dispatched"}})["Item"]
    assert raw["expires_at"] == {"N": str(int(NOW) + 14 * DAY)}


def test_a_missing_item_is_none(table: StateTable) -> None:
    assert table.get("nothing", "here") is None


def test_put_overwrites_the_whole_item(table: StateTable) -> None:
    table.put("burst#d#alice", "last", NOW, at="1", ts="1.1")
    table.put("burst#d#alice", "last", NOW, at="2")
    found = table.get("burst#d#alice", "last")
    assert found is not None and found["at"] == "2" and "ts" not in found


def test_reads_are_strongly_consistent(ddb: Any, table: StateTable) -> None:
    asked: list[dict[str, Any]] = []
    for operation in ("GetItem", "Query"):
        ddb.meta.events.register(f"provide-client-params.dynamodb.{operation}",
                                 lambda params, **_: asked.append(params))
    table.get("a", "b")
    table.latest_before("a", "cap#", "cap#z")
    assert [a["ConsistentRead"] for a in asked] == [True, True]


def test_latest_before_is_the_greatest_key_under_the_prefix_below_the_bound(table: StateTable) -> None:
    pk = "res#1#aws::ec2::securitygroup#sg-1"
    for capture in ("2024-05-01T12:00:00Z", "2024-05-01T12:05:00Z", "2024-05-01T12:10:00Z"):
        table.put(pk, f"cap#{capture}", NOW, ttl_days=3)
    table.put(pk, "aaa", NOW)  # below the prefix
    table.put("res#other", "cap#2024-05-01T12:09:00Z", NOW)  # another resource
    assert table.latest_before(pk, "cap#", "cap#2024-05-01T12:10:00Z") == "cap#2024-05-01T12:05:00Z"
    assert table.latest_before(pk, "cap#", "cap#2024-05-01T12:07:00Z") == "cap#2024-05-01T12:05:00Z"
    assert table.latest_before(pk, "cap#", "cap#2024-05-01T12:00:00Z") is None, "never the bound itself"
    assert table.latest_before(pk, "cap#", "cap#2099") == "cap#2024-05-01T12:10:00Z"
    assert table.latest_before("res#none", "cap#", "cap#2099") is None


def test_many_rows_go_in_batches_and_read_back_in_order_within_a_range(table: StateTable) -> None:
    rows = [("ix#1#r#sg-1", f"2024-05-01T12:00:{n:02d}#e{n}", {"record": "{}", "keys": "[]"}) for n in range(60)]
    table.put_many([*rows, rows[0]], NOW, ttl_seconds=3600)  # a key twice in one batch is written once
    found = table.between("ix#1#r#sg-1", "2024-05-01T12:00:10", "2024-05-01T12:00:39#~")
    assert [r["sk"] for r in found] == [f"2024-05-01T12:00:{n:02d}#e{n}" for n in range(10, 40)]
    assert found[0]["expires_at"] == str(int(NOW) + 3600) and found[0]["record"] == "{}"
    assert len(table.between("ix#1#r#sg-1", "0", "~", limit=7)) == 7
    assert table.between("ix#1#r#sg-2", "0", "~") == []


def test_rows_dynamodb_leaves_unprocessed_are_sent_again() -> None:
    class Flaky:
        def __init__(self) -> None:
            self.requests: list[int] = []

        def batch_write_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
            (items,) = RequestItems.values()
            self.requests.append(len(items))
            return {"UnprocessedItems": {"t": items[1:]}} if len(items) > 1 else {}

    flaky = Flaky()
    StateTable(flaky, "t").put_many([("p", str(n), {}) for n in range(3)], NOW, 60)
    assert flaky.requests == [3, 2, 1]
