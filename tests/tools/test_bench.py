"""``make bench``'s figures from their parts: the naive method's call count, posting rate, visibility times.

The measurements themselves replay whole bursts (minutes); these parts run in milliseconds.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from mcd_tools import bench
from mcd_tools.story import burst_story


def message(at: str, destination: str = "default") -> dict[str, Any]:
    return {"at": at, "destination": destination, "payload": {}}


def test_the_naive_method_costs_a_call_per_item_and_more_when_a_type_pages() -> None:
    small = burst_story(9, humans=2)
    assert bench.naive_calls(small) == 9, "one ResourceType lookup per item, each answered in one page"
    crowded = burst_story(90, humans=2)  # 60 security groups: later items' windows hold more than a page
    assert bench.naive_calls(crowded) > 90


def test_unreadable_or_timeless_items_cost_nothing() -> None:
    scenario = {"cloudtrail": [], "deliveries": [{"message": "{not json"}, {"message": '{"messageType": "x"}'}]}
    assert bench.naive_calls(scenario) == 0


def test_posts_per_second_is_the_worst_one_second_window_of_one_destination() -> None:
    assert bench.max_posts_per_second([]) == 0
    posts = [message("2024-05-01T12:00:00Z"), message("2024-05-01T12:00:00.900Z"), message("2024-05-01T12:00:01Z"),
             message("2024-05-01T12:00:00.500Z", "ops"), message("2024-05-01T12:00:05Z")]
    assert bench.max_posts_per_second(posts) == 2, "12:00:01 is a second after 12:00:00: another window"
    assert bench.max_posts_per_second([message("2024-05-01T12:00:00Z", d) for d in "abc"]) == 1


def test_visible_at_maps_each_event_id_to_when_lookups_can_see_it() -> None:
    scenario = burst_story(6, humans=1, min_delay=3, max_delay=3)
    visible = bench._visible_at(scenario)
    assert set(visible) == {e["record"]["eventID"] for e in scenario["cloudtrail"]}
    for entry in scenario["cloudtrail"]:
        called = bench.parse_time(entry["record"]["eventTime"])
        assert visible[entry["record"]["eventID"]] - called == timedelta(minutes=3)  # type: ignore[operator]


def test_best_of_runs_the_function_each_time_and_keeps_the_fastest() -> None:
    calls: list[int] = []
    assert bench._best_of(lambda: calls.append(1), runs=4) >= 0
    assert len(calls) == 4


def test_main_writes_the_figures_and_says_which_goals_are_met(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    figures = {"bursts": {"slack_messages_burst_n200": 2, "naive_lookup_calls_per_change_n50": 1.0},
               "time_to_tell": {"time_to_tell_p95_s": 120.0}, "cpu": {"notifications_per_s": 2500},
               "cold_start": {}, "memory": {}, "idle": {}}
    for step, result in figures.items():
        monkeypatch.setattr(bench, step, lambda result=result: result)
    monkeypatch.setattr(bench, "ROOT", tmp_path)
    assert bench.main([]) == 0
    assert json.loads((tmp_path / "out" / "bench.json").read_text()) == {
        "slack_messages_burst_n200": 2, "naive_lookup_calls_per_change_n50": 1.0, "time_to_tell_p95_s": 120.0,
        "notifications_per_s": 2500}
    rows = {line.split()[0]: line.split()[1:] for line in capsys.readouterr().out.splitlines() if line.strip()}
    assert rows["slack_messages_burst_n200"] == ["2", "<=", "3", "met"]
    assert rows["time_to_tell_p95_s"] == ["120.0", "<=", "90", "MISSED"]
    assert rows["notifications_per_s"] == ["2500", ">=", "2000", "met"]
    assert rows["naive_lookup_calls_per_change_n50"] == ["1.0"], "a figure without a goal is shown as it is"
