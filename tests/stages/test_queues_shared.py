"""The queues' names and ``dead_letter``: a message handed to the dead-letter stage carries why, and how often."""

from __future__ import annotations

from memory_world import world

from chalicelib.memory_deps import MemoryDeps
from chalicelib.stages.shared import queues


def only(deps: MemoryDeps, name: str) -> tuple[str, dict[str, str]]:
    (message,) = deps.queue(name).peek()
    return message.body, message.attributes


def test_every_dead_letter_queue_is_redriven_to_its_own_source() -> None:
    assert queues.DEAD_LETTER_QUEUES == {"dispatch_dlq": "dispatch_queue", "lookup_dlq": "lookup_queue",
                                         "slack_dlq": "slack_queue"}
    deps = world()
    for dlq, source in queues.DEAD_LETTER_QUEUES.items():
        assert deps.queue(source).dead_letter is deps.queue(dlq), "the queue's redrive target is its DLQ"


def test_a_transient_dead_letter_carries_its_reason_only() -> None:
    deps = world()
    queues.dead_letter(deps, queues.LOOKUP_DLQ, '{"job": 1}', "CloudTrail throttled", permanent=False)
    assert only(deps, "lookup_dlq") == ('{"job": 1}', {"mcd-reason": "CloudTrail throttled"})
    assert len(deps.queue("lookup_queue")) == 0


def test_a_permanent_one_says_so_and_a_redriven_one_keeps_its_count() -> None:
    deps = world()
    queues.dead_letter(deps, queues.DISPATCH_DLQ, "not json", "not a Config notification", permanent=True,
                       redrives="2")
    assert only(deps, "dispatch_dlq") == ("not json", {
        "mcd-reason": "not a Config notification", "mcd-permanent": "true", "mcd-redrives": "2"})


def test_a_long_reason_is_cut_to_fit_an_attribute_the_body_is_not() -> None:
    deps = world()
    body = "x" * 10_000
    queues.dead_letter(deps, queues.SLACK_DLQ, body, "r" * 5000, permanent=False)
    sent, attributes = only(deps, "slack_dlq")
    assert sent == body
    assert attributes[queues.REASON] == "r" * queues.REASON_LIMIT and queues.REASON_LIMIT == 250
