"""``watchdog`` on the fakes: one alert when an outage starts, one when it ends, none twice, none when healthy."""

from __future__ import annotations

from memory_world import world

from chalicelib.core.watchdog import SCHEDULES, STALL_SECONDS
from chalicelib.memory_deps import MemoryDeps
from chalicelib.slack.render import check_limits
from chalicelib.stages.deliver import slack_send
from chalicelib.stages.shared.health import alive
from chalicelib.stages.shared.state_keys import HEARTBEAT, health_marker
from chalicelib.stages.watchdog import watchdog

HOUR = 3600


def beat(deps: MemoryDeps, *signals: str) -> None:
    for signal in signals:
        deps.memory.pop("heartbeats", None)
        alive(deps, signal, None)


def every_five_minutes(deps: MemoryDeps, minutes: int, *signals: str) -> list[dict[str, int]]:
    runs = []
    for _ in range(minutes // 5):
        beat(deps, *signals)
        runs.append(watchdog(deps))
        slack_send(deps)
        deps.manual_clock.advance(300)
    return runs


def texts(deps: MemoryDeps) -> list[str]:
    return [c.payload["text"] for c in deps.slack.delivered()]


def test_a_healthy_detector_posts_nothing() -> None:
    deps = world()
    runs = every_five_minutes(deps, 60, *SCHEDULES, "config")
    assert all(r == {"opened": 0, "ongoing": 0, "recovered": 0} for r in runs)
    assert deps.slack.delivered() == []


def test_a_stalled_schedule_is_alerted_once_then_its_recovery_once() -> None:
    deps = world()
    others = [s for s in SCHEDULES if s != "lookup"]
    every_five_minutes(deps, 10, *SCHEDULES, "config")
    every_five_minutes(deps, 60, *others, "config")  # lookup stops completing
    [hurt] = texts(deps)
    assert hurt.startswith("mcd itself is hurt") and "lookup schedule has not completed a run" in hurt
    every_five_minutes(deps, 30, *SCHEDULES, "config")
    assert len(texts(deps)) == 2 and texts(deps)[1].startswith("mcd recovered: recovered: the lookup schedule")
    for call in deps.slack.delivered():
        assert check_limits(call.payload) == []


def test_silence_of_every_source_for_the_window_is_one_alert() -> None:
    deps = world(settings={"silence_alert_hours": 2})
    every_five_minutes(deps, 10, *SCHEDULES, "config", "cloudtrail")
    every_five_minutes(deps, 3 * 60, *SCHEDULES)
    [deaf] = texts(deps)
    assert "no AWS Config notification and no CloudTrail delivery for 2 hours" in deaf
    every_five_minutes(deps, 10, *SCHEDULES, "cloudtrail")
    assert texts(deps)[-1].startswith("mcd recovered")


def test_a_retried_run_never_posts_twice_and_an_unreadable_heartbeat_is_no_heartbeat() -> None:
    deps = world()
    watchdog(deps)  # first run: the clock starts
    deps.manual_clock.advance(STALL_SECONDS + 60)
    beat(deps, *SCHEDULES)
    deps.state.put(health_marker("lookup"), HEARTBEAT, deps.clock(), at="nan")
    assert watchdog(deps)["opened"] == 1
    deps.state.put("health#outage#stalled:lookup", "outage", deps.clock(), state="closed")  # lost its record
    watchdog(deps)
    slack_send(deps)
    assert len(texts(deps)) == 1, "the alert's id derives from the outage: the same outage is posted once"
    deps.manual_clock.advance(HOUR)
