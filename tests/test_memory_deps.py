"""``MemoryDeps``: a ``Deps`` on the fakes, wired like the stack, refusing AWS, reading settings the real way."""

from __future__ import annotations

import logging

import pytest

from chalicelib import memory_deps
from chalicelib.adapters.memory import MemoryLookups
from chalicelib.memory_deps import MemoryDeps
from mcd_tools import sandbox


def test_memory_deps_refuse_every_aws_client() -> None:
    deps = MemoryDeps()
    with pytest.raises(AssertionError, match="no AWS client"):
        deps.clients.client("s3")


def test_memory_deps_queues_are_configured_like_the_stack() -> None:
    deps = MemoryDeps()
    for stage, hidden_for in sandbox.VISIBILITY_TIMEOUTS.items():
        queue = deps.queue(f"{stage}_queue")
        assert queue.visibility_timeout == hidden_for
        assert queue.dead_letter is deps.queue(f"{stage}_dlq")
        assert queue.max_receive_count == sandbox.MAX_RECEIVE_COUNT
    assert memory_deps.VISIBILITY_TIMEOUTS == sandbox.VISIBILITY_TIMEOUTS
    with pytest.raises(AttributeError):
        deps.queue("no_such_queue")


def test_memory_deps_read_settings_through_the_real_validation(caplog: pytest.LogCaptureFixture) -> None:
    assert MemoryDeps().settings().give_up_minutes == MemoryDeps(settings={}).settings().give_up_minutes
    deps = MemoryDeps(settings={"give_up_minutes": 30, "no_such_setting": 1})
    with caplog.at_level(logging.ERROR, logger="mcd.bootstrap"):
        assert deps.settings().give_up_minutes == 30
    assert "settings_invalid" in caplog.text


def test_a_fresh_container_shares_the_world_but_nothing_cached() -> None:
    deps = MemoryDeps(settings={"give_up_minutes": 30}, lookups=MemoryLookups())
    deps.settings()
    deps.lookups.lookup("us-east-1", "EventId", "x")
    deps.queue("lookup_queue").send("job")
    deps.state.put("a", "b", deps.clock())
    deps.archive.put("k", "v")
    deps.settings_document = {"give_up_minutes": 40}
    cold = deps.fresh()
    assert deps.settings().give_up_minutes == 30, "cached for a minute in the warm container"
    assert cold.settings().give_up_minutes == 40
    assert cold.lookups.stats.calls == 0 and deps.lookups.stats.calls == 1
    assert cold.queue("lookup_queue") is deps.queue("lookup_queue")
    assert cold.state.get("a", "b") is not None and cold.archive.get_text("k") == "v"
    assert cold.clock is deps.clock and cold.slack is deps.slack
    deps.manual_clock.advance(60)
    assert cold.now() == deps.now()
