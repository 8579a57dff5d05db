"""``adapters.queues.Queue`` on moto: batching by count and bytes, delays, attributes, receive counts, deletes."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws

from chalicelib.adapters.aws import ClientFactory
from chalicelib.adapters.queues import MAX_BATCH_BYTES, MAX_DELAY_SECONDS, Message, Queue


@pytest.fixture(scope="module")
def sqs() -> Iterator[Any]:
    with mock_aws():
        yield ClientFactory("us-east-1").client("sqs")


@pytest.fixture
def queue(sqs: Any) -> Queue:
    url = sqs.create_queue(QueueName=f"q-{uuid.uuid4().hex[:12]}", Attributes={"VisibilityTimeout": "30"})["QueueUrl"]
    return Queue(sqs, url)


def calls_to(sqs: Any, operation: str) -> list[dict[str, Any]]:
    """The parameters of every ``operation`` call made on ``sqs`` from now on."""
    seen: list[dict[str, Any]] = []

    def spy(params: dict[str, Any], **_: Any) -> None:
        seen.append(params)

    sqs.meta.events.register(f"provide-client-params.sqs.{operation}", spy)
    return seen


def test_bodies_are_json_encoded_unless_already_text(queue: Queue) -> None:
    queue.send({"a": 1})
    queue.send('{"b": 2}')
    queue.send("plain text")
    bodies = sorted(m.body for m in queue.receive(10))
    assert bodies == ['plain text', '{"a": 1}', '{"b": 2}']


def test_send_many_splits_batches_at_ten_messages(sqs: Any, queue: Queue) -> None:
    batches = calls_to(sqs, "SendMessageBatch")
    queue.send_many([{"n": n} for n in range(25)])
    assert [len(b["Entries"]) for b in batches] == [10, 10, 5]
    assert [e["Id"] for e in batches[2]["Entries"]] == ["0", "1", "2", "3", "4"]
    received: list[Message] = []
    while batch := queue.receive(10):
        received += batch
    assert sorted(m.json()["n"] for m in received) == list(range(25))


def test_send_many_splits_batches_before_sqs_byte_limit(sqs: Any, queue: Queue) -> None:
    batches = calls_to(sqs, "SendMessageBatch")
    body = "x" * (MAX_BATCH_BYTES // 2 - 10)
    queue.send_many([body, body, body])
    assert [len(b["Entries"]) for b in batches] == [2, 1]
    assert all(sum(len(e["MessageBody"]) for e in b["Entries"]) <= MAX_BATCH_BYTES for b in batches)


@pytest.mark.parametrize(("asked", "sent"), [(0, 0), (2.6, 3), (-5, 0), (10_000, MAX_DELAY_SECONDS)])
def test_delay_is_rounded_and_clamped_to_what_sqs_takes(sqs: Any, queue: Queue, asked: float, sent: int) -> None:
    batches = calls_to(sqs, "SendMessageBatch")
    queue.send({"n": 1}, delay_seconds=asked)
    assert batches[0]["Entries"][0]["DelaySeconds"] == sent


def test_attributes_travel_as_strings_and_come_back(queue: Queue) -> None:
    queue.send({"n": 1}, attributes={"mcd-reason": "why", "mcd-redrives": "2"})
    (message,) = queue.receive()
    assert message.attributes == {"mcd-reason": "why", "mcd-redrives": "2"}
    assert message.message_id and message.receipt


def test_receive_counts_every_receive(queue: Queue) -> None:
    queue.send({"n": 1})
    assert [m.receive_count for m in queue.receive(visibility_timeout=0)] == [1]
    assert [m.receive_count for m in queue.receive(visibility_timeout=0)] == [2]


def test_receive_never_waits_and_asks_for_at_most_ten(sqs: Any, queue: Queue) -> None:
    asked = calls_to(sqs, "ReceiveMessage")
    assert queue.receive(50) == []
    queue.receive(0)
    assert [(a["MaxNumberOfMessages"], a["WaitTimeSeconds"]) for a in asked] == [(10, 0), (1, 0)]
    assert all(a["AttributeNames"] == ["ApproximateReceiveCount"] for a in asked)
    assert all("VisibilityTimeout" not in a for a in asked)


def test_a_received_message_stays_hidden_for_its_visibility_timeout(queue: Queue) -> None:
    queue.send({"n": 1})
    assert len(queue.receive(visibility_timeout=300)) == 1
    assert queue.receive() == []


def test_delete_goes_in_batches_of_ten(sqs: Any, queue: Queue) -> None:
    queue.send_many([{"n": n} for n in range(15)])
    received: list[Message] = []
    while batch := queue.receive(10, visibility_timeout=30):
        received += batch
    deletes = calls_to(sqs, "DeleteMessageBatch")
    queue.delete(received)
    assert [len(d["Entries"]) for d in deletes] == [10, 5]
    attrs = sqs.get_queue_attributes(QueueUrl=queue.url, AttributeNames=["All"])["Attributes"]
    assert attrs["ApproximateNumberOfMessages"] == attrs["ApproximateNumberOfMessagesNotVisible"] == "0"


def test_delete_of_nothing_makes_no_call(sqs: Any, queue: Queue) -> None:
    deletes = calls_to(sqs, "DeleteMessageBatch")
    queue.delete([])
    assert deletes == []


class RefusingSqs:
    """SQS answering a batch with one failed entry (moto never does)."""

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        return {"Successful": [], "Failed": [{"Id": "0", "Code": "InternalError", "SenderFault": False}]}


def test_a_refused_entry_raises_so_nothing_is_lost_silently() -> None:
    with pytest.raises(RuntimeError, match="SQS refused 1 message"):
        Queue(RefusingSqs(), "https://sqs/q").send({"n": 1})


def test_message_json_decodes_the_body() -> None:
    assert Message(json.dumps({"a": [1]}), "r", "m", 1, {}).json() == {"a": [1]}
