"""The DynamoDB state table: idempotency markers and per-resource capture history.

One table, keys ``pk`` and ``sk`` (strings), ``expires_at`` as the TTL attribute, so every record
ages out on its own.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

DAY = 86_400
BATCH = 25  # BatchWriteItem's limit
BATCH_TRIES = 6


class StateTable:
    def __init__(self, client: Any, table: str) -> None:
        self._ddb = client
        self.table = table

    def put(self, pk: str, sk: str, now: float, ttl_days: int = 14, **attrs: str) -> None:
        item = {"pk": {"S": pk}, "sk": {"S": sk}, "expires_at": {"N": str(int(now) + ttl_days * DAY)}}
        item.update({k: {"S": v} for k, v in attrs.items()})
        self._ddb.put_item(TableName=self.table, Item=item)

    def get(self, pk: str, sk: str) -> dict[str, str] | None:
        found = self._ddb.get_item(TableName=self.table, Key={"pk": {"S": pk}, "sk": {"S": sk}},
                                   ConsistentRead=True).get("Item")
        return {k: v.get("S", v.get("N", "")) for k, v in found.items()} if found else None

    def latest_before(self, pk: str, prefix: str, before_sk: str) -> str | None:
        """The greatest sort key under ``prefix`` that is below ``before_sk``."""
        result = self._ddb.query(
            TableName=self.table,
            KeyConditionExpression="pk = :pk AND sk BETWEEN :lo AND :hi",
            ExpressionAttributeValues={":pk": {"S": pk}, ":lo": {"S": prefix}, ":hi": {"S": before_sk}},
            ScanIndexForward=False, Limit=2, ConsistentRead=True,
        )
        for item in result.get("Items", []):
            sk = item["sk"]["S"]
            if sk < before_sk:
                return sk
        return None

    def put_many(self, rows: Sequence[tuple[str, str, dict[str, str]]], now: float, ttl_seconds: int) -> None:
        """Write rows 25 at a time; what DynamoDB leaves unprocessed is sent again, and raises if it stays."""
        unique = {(pk, sk): attrs for pk, sk, attrs in rows}  # a batch may not name one key twice
        requests = [{"PutRequest": {"Item": {"pk": {"S": pk}, "sk": {"S": sk},
                                             "expires_at": {"N": str(int(now) + ttl_seconds)},
                                             **{k: {"S": v} for k, v in attrs.items()}}}}
                    for (pk, sk), attrs in unique.items()]
        for start in range(0, len(requests), BATCH):
            pending = {self.table: requests[start:start + BATCH]}
            for attempt in range(BATCH_TRIES):
                pending = self._ddb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
                if not pending:
                    break
                time.sleep(0.05 * 2**attempt)
            if pending:
                raise RuntimeError(f"DynamoDB left {len(pending.get(self.table, []))} index rows unwritten")

    def between(self, pk: str, low: str, high: str, *, limit: int = 1000) -> list[dict[str, str]]:
        rows: list[dict[str, str]] = []
        request: dict[str, Any] = {
            "TableName": self.table, "KeyConditionExpression": "pk = :pk AND sk BETWEEN :lo AND :hi",
            "ExpressionAttributeValues": {":pk": {"S": pk}, ":lo": {"S": low}, ":hi": {"S": high}},
            "ConsistentRead": True}
        while len(rows) < limit:
            result = self._ddb.query(**request, Limit=limit - len(rows))
            rows += [{k: v.get("S", v.get("N", "")) for k, v in item.items()} for item in result.get("Items", [])]
            if "LastEvaluatedKey" not in result:
                break
            request["ExclusiveStartKey"] = result["LastEvaluatedKey"]
        return rows
