"""The DynamoDB state table: idempotency markers and per-resource capture history.

One table, keys ``pk`` and ``sk`` (strings), ``expires_at`` as the TTL attribute, so every record
ages out on its own.
"""

from __future__ import annotations

from typing import Any

DAY = 86_400


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
