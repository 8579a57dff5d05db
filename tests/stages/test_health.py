"""Signs of life: a heartbeat per signal at most every five minutes per container, and only after success."""

from __future__ import annotations

from memory_world import world

from chalicelib.stages.shared.health import HEARTBEAT_EVERY_SECONDS, alive
from chalicelib.stages.shared.state_keys import HEARTBEAT, health_marker


def test_a_heartbeat_is_written_at_most_every_five_minutes_and_the_result_passes_through() -> None:
    deps = world()
    assert alive(deps, "dispatch", {"queued": 3}) == {"queued": 3}
    first = deps.state.get(health_marker("dispatch"), HEARTBEAT)
    assert first is not None and float(first["at"]) == deps.clock()
    deps.manual_clock.advance(HEARTBEAT_EVERY_SECONDS - 1)
    alive(deps, "dispatch", None)
    assert deps.state.get(health_marker("dispatch"), HEARTBEAT)["at"] == first["at"], "no write yet"
    deps.manual_clock.advance(1)
    alive(deps, "dispatch", None)
    assert float(deps.state.get(health_marker("dispatch"), HEARTBEAT)["at"]) == deps.clock()


def test_a_new_container_writes_its_first_heartbeat_at_once_and_signals_are_kept_apart() -> None:
    deps = world()
    alive(deps, "config", None)
    cold = deps.fresh()
    cold.manual_clock.advance(10)
    alive(cold, "cloudtrail", None)
    alive(cold, "config", None)
    assert float(cold.state.get(health_marker("config"), HEARTBEAT)["at"]) == cold.clock()
    assert cold.state.get(health_marker("cloudtrail"), HEARTBEAT) is not None
