"""SQS queues between the stages: batch send, receive, delete, delay."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

MAX_DELAY_SECONDS = 900
MAX_BATCH_BYTES = 240_000  # SQS: 256 KiB for a whole batch


@dataclass(frozen=True)
class Message:
    body: str
    receipt: str
    message_id: str
    receive_count: int
    attributes: dict[str, str]

    def json(self) -> Any:
        return json.loads(self.body)


class Queue:
    def __init__(self, client: Any, url: str) -> None:
        self._sqs = client
        self.url = url

    def send(self, body: Any, *, delay_seconds: float = 0, attributes: dict[str, str] | None = None) -> None:
        self.send_many([body], delay_seconds=delay_seconds, attributes=attributes)

    def send_many(self, bodies: list[Any], *, delay_seconds: float = 0,
                  attributes: dict[str, str] | None = None) -> None:
        """Send JSON bodies in batches (10 messages, 256 KB); raises if any entry failed (nothing is lost)."""
        delay = max(0, min(MAX_DELAY_SECONDS, round(delay_seconds)))
        attrs = {k: {"DataType": "String", "StringValue": v} for k, v in (attributes or {}).items()}
        batch: list[dict[str, Any]] = []
        size = 0
        for body in bodies:
            text = body if isinstance(body, str) else json.dumps(body)
            length = len(text.encode())
            if batch and (len(batch) == 10 or size + length > MAX_BATCH_BYTES):
                self._send_batch(batch)
                batch, size = [], 0
            entry: dict[str, Any] = {"Id": str(len(batch)), "MessageBody": text, "DelaySeconds": delay}
            if attrs:
                entry["MessageAttributes"] = attrs
            batch.append(entry)
            size += length
        if batch:
            self._send_batch(batch)

    def _send_batch(self, entries: list[dict[str, Any]]) -> None:
        result = self._sqs.send_message_batch(QueueUrl=self.url, Entries=entries)
        if result.get("Failed"):
            raise RuntimeError(f"SQS refused {len(result['Failed'])} message(s): {result['Failed'][0]}")

    def receive(self, max_messages: int = 10, visibility_timeout: int | None = None) -> list[Message]:
        kwargs: dict[str, Any] = {
            "QueueUrl": self.url, "MaxNumberOfMessages": max(1, min(10, max_messages)), "WaitTimeSeconds": 0,
            "AttributeNames": ["ApproximateReceiveCount"], "MessageAttributeNames": ["All"],
        }
        if visibility_timeout is not None:
            kwargs["VisibilityTimeout"] = visibility_timeout
        raw = self._sqs.receive_message(**kwargs).get("Messages", [])
        return [
            Message(
                body=m.get("Body", ""),
                receipt=m["ReceiptHandle"],
                message_id=m.get("MessageId", ""),
                receive_count=int(m.get("Attributes", {}).get("ApproximateReceiveCount", "1")),
                attributes={k: v.get("StringValue", "") for k, v in (m.get("MessageAttributes") or {}).items()},
            )
            for m in raw
        ]

    def delete(self, messages: list[Message]) -> None:
        for start in range(0, len(messages), 10):
            entries = [{"Id": str(i), "ReceiptHandle": m.receipt} for i, m in enumerate(messages[start:start + 10])]
            self._sqs.delete_message_batch(QueueUrl=self.url, Entries=entries)
