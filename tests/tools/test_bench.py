"""``make bench``'s figures from their parts: the naive baseline, the assembly of the replays, the goals, the
pipeline's CPU, the cold start per handler and the lookup stage's memory.

The measurements themselves replay thousands of changes (minutes); these parts run in seconds.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from mcd_tools import bench, bench_replay
from mcd_tools.story import burst_story


def message(at: str, destination: str = "default") -> dict[str, Any]:
    return {"at": at, "destination": destination, "payload": {}}


# --------------------------------------------------------------------------------------------
# The naive baseline


def test_the_naive_method_is_one_resource_type_page_per_item() -> None:
    small = burst_story(9, humans=2)
    assert bench.naive_calls(small) == 9, "history visible before the first look (16 minutes): one call each"
    crowded = burst_story(90, humans=2)  # 60 security groups: their type's window holds more than a page
    assert bench.naive_calls(crowded) == 90, "the PoC reads one page and never follows NextToken"


def test_the_naive_method_asks_once_more_when_the_first_page_is_empty() -> None:
    late = burst_story(6, humans=1, min_delay=40, max_delay=40)  # visible only after both looks
    assert bench.naive_calls(late) == 12
    midway = burst_story(6, humans=1, min_delay=20, max_delay=20)  # visible for the dead-letter look
    assert bench.naive_calls(midway) == 12
    streamed = bench_replay.from_scenario(burst_story(6, humans=1), seed=1)
    assert bench.naive_calls(bench._scenario_of(streamed)) == 6, "EventBridge deliveries are not Config items"


def test_unreadable_or_timeless_items_cost_nothing() -> None:
    scenario = {"cloudtrail": [], "deliveries": [{"message": "{not json"}, {"message": '{"messageType": "x"}'}]}
    assert bench.naive_calls(scenario) == 0


# --------------------------------------------------------------------------------------------
# Assembling the replays


def fake_results() -> list[tuple[str, Any]]:
    series = []
    for n in bench.SERIES:
        for prefix in ("", "stream_"):
            point: dict[str, Any] = {f"{prefix}lookup_calls_per_change_n{n}": 0.5 if prefix else 1.0,
                                     f"{prefix}time_to_tell_p95_s_n{n}": 60.0,
                                     f"{prefix}attribution_cpu_ms_per_change_n{n}": 2.0,
                                     f"{prefix}wrong_verdicts_n{n}": 0}
            if not prefix:
                point.update({f"decide_minutes_after_visible_max_n{n}": n / 100, f"slack_messages_n{n}": 3,
                              f"max_posts_per_second_n{n}": 1})
            series.append(("series_point", point))
    series[-1] = ("series_point", {"lookup_calls_per_change_n5000": None,
                                   "over_budget_n5000": "5000 changes: over 100 CPU seconds"})
    return [*series, ("lookup_memory", {"lookup_batch_peak_rss_mb": 90.0}),
            ("tell_samples", [10.0, 20.0, 30.0]), ("tell_samples", [40.0])]


def test_assemble_keeps_the_series_keys_and_adds_the_naive_baseline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bench, "naive_calls", lambda scenario: len(scenario["deliveries"]))
    figures = bench.assemble(fake_results())
    for n in (10, 200, 1000):
        for key in ("lookup_calls_per_change", "time_to_tell_p95_s", "attribution_cpu_ms_per_change"):
            assert f"{key}_n{n}" in figures and f"stream_{key}_n{n}" in figures
        assert figures[f"naive_lookup_calls_per_change_n{n}"] == 1.0
    assert figures["lookup_calls_per_change_n5000"] is None
    assert figures["over_budget_n5000"].startswith("5000 changes")
    assert "naive_lookup_calls_per_change_n5000" not in figures, "not measured: no baseline beside it"
    assert figures["decide_minutes_after_visible_max"] == 50.0, "the worst over every N"
    assert figures["slack_messages_burst_n200"] == 3 and figures["max_posts_per_second_per_destination"] == 1
    assert not [k for k in figures if k.startswith(("slack_messages_n", "max_posts_per_second_n",
                                                    "decide_minutes_after_visible_max_n"))]
    assert figures["lookup_batch_peak_rss_mb"] == 90.0
    assert (figures["time_to_tell_p50_s"], figures["time_to_tell_p95_s"], figures["time_to_tell_samples"]) == (
        25.0, 40.0, 4)


def test_assemble_puts_the_three_modes_side_by_side(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bench_replay, "COMPARISON_N", 12)
    run = bench_replay.replay(bench_replay.workload(12, seed=5, spread=timedelta(minutes=5)), stream=True)
    parts = [("comparison_run", {f"{mode}_{k[len('stream_'):]}": v
                                 for k, v in bench_replay.mode_figures("stream", run).items()})
             for mode in bench_replay.MODES]
    figures = bench.assemble(parts)
    for mode in bench_replay.MODES:
        assert f"{mode}_call_to_post_p95_s" in figures and f"{mode}_lookup_calls_per_change" in figures
    assert figures["stream_vs_history_lookup_calls"] == 1.0, "the same run under each name: a ratio of 1"
    assert figures["naive_lookup_calls_per_change"] >= 1.0
    table = "\n".join(bench.side_by_side(figures))
    assert "call_to_post_p95_s" in table and "lookups/change" in table


def test_replay_tasks_cover_the_series_with_and_without_the_stream_the_biggest_first() -> None:
    tasks = bench.replay_tasks()
    points = [args for fn, args in tasks if fn is bench_replay.series_point]
    assert {(n, stream) for n, stream, _ in points} == {(n, s) for n in bench.SERIES for s in (True, False)}
    assert all((budget is not None) == (n >= bench.BUDGET_FROM_N) for n, _, budget in points)
    assert points[0][0] == max(bench.SERIES)
    assert [args[0] for fn, args in tasks if fn is bench_replay.comparison_run] == list(bench_replay.MODES)
    assert any(fn is bench.lookup_memory for fn, _ in tasks)


# --------------------------------------------------------------------------------------------
# Goals and the table


def test_goals_are_met_missed_or_not_measured() -> None:
    assert bench.verdict("stream_lookup_calls_per_change", 0.04) == "<= 0.05  met"
    assert bench.verdict("stream_lookup_calls_per_change", 0.2) == "<= 0.05  MISSED"
    assert bench.verdict("notifications_per_s", 2500) == ">= 2000  met"
    assert bench.verdict("cost_vs_json_loads", None) == "<= 10  not measured"
    assert bench.verdict("boto3_import_ms", 300.0) == ""


def test_main_writes_the_figures_and_says_which_goals_are_met(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    steps = {"replays": {"slack_messages_burst_n200": 2, "naive_lookup_calls_per_change_n50": 1.0,
                         "time_to_tell_p95_s": 120.0, "stream_lookup_calls_per_change": 0.02,
                         "lookup_calls_per_change_n5000": None, "over_budget_n5000": "5000 changes: over budget"},
             "cpu": {"notifications_per_s": 2500}, "cold_start": {"cold_start_worst_handler": "lookup"},
             "memory": {}, "idle": {}}
    for step, result in steps.items():
        monkeypatch.setattr(bench, step, lambda result=result: result)
    monkeypatch.setattr(bench, "ROOT", tmp_path)
    assert bench.main([]) == 0
    written = json.loads((tmp_path / "out" / "bench.json").read_text())
    assert written == {k: v for result in steps.values() for k, v in result.items()}
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.strip()}
    assert rows["slack_messages_burst_n200"] == ["2", "<=", "3", "met"]
    assert rows["time_to_tell_p95_s"] == ["120", "<=", "90", "MISSED"]
    assert rows["stream_lookup_calls_per_change"] == ["0.02", "<=", "0.05", "met"]
    assert rows["notifications_per_s"] == ["2500", ">=", "2000", "met"]
    assert rows["naive_lookup_calls_per_change_n50"] == ["1"], "a figure without a goal is shown as it is"
    assert rows["lookup_calls_per_change_n5000"] == ["-", "<=", "0.25", "not", "measured"]
    assert "over_budget_n5000: 5000 changes: over budget" in out
    assert "with the stream, and without" in out


def test_posts_per_second_is_the_worst_one_second_window_of_one_destination() -> None:
    assert bench.max_posts_per_second([]) == 0
    posts = [message("2024-05-01T12:00:00Z"), message("2024-05-01T12:00:00.900Z"), message("2024-05-01T12:00:01Z"),
             message("2024-05-01T12:00:00.500Z", "ops"), message("2024-05-01T12:00:05Z")]
    assert bench.max_posts_per_second(posts) == 2, "12:00:01 is a second after 12:00:00: another window"
    assert bench.max_posts_per_second([message("2024-05-01T12:00:00Z", d) for d in "abc"]) == 1


# --------------------------------------------------------------------------------------------
# CPU, cold start, memory


def test_the_pipeline_s_cpu_covers_every_stage_and_leaves_out_the_fake_history() -> None:
    load = bench_replay.from_scenario(burst_story(12, humans=2), seed=12)
    notifications = [d for d in load.deliveries if d["via"] == "sns"]
    assert 0 < bench.pipeline_cpu_s(load, notifications) < 5
    assert bench._json_loads_s([n["message"].encode() for n in notifications], repeat=2) > 0


def test_every_handler_s_imports_and_clients_come_from_the_app_and_its_role() -> None:
    found = bench.handlers()
    assert {"ingest", "dispatch", "lookup", "slack_send", "api_call", "cloudwatch_logs", "dl_retry"} <= set(found)
    imports, services = found["lookup"]
    assert imports == ["from chalicelib.stages.lookup import lookup as attribute_changes"]
    assert {"cloudtrail", "dynamodb", "sqs", "ssm"} <= set(services)
    assert "sts" not in services, "other accounts' roles only"
    assert "secretsmanager" in found["slack_send"][1]
    assert "cloudtrail" not in found["api_call"][1]


def test_a_cold_start_is_measured_in_a_fresh_interpreter(monkeypatch: pytest.MonkeyPatch) -> None:
    watchdog = bench.handlers()["watchdog"]
    monkeypatch.setattr(bench, "handlers", lambda: {"watchdog": watchdog})
    figures = bench.cold_start(runs=1)
    assert figures["cold_start_worst_handler"] == "watchdog"
    assert figures["cold_start_extra_ms"] == figures["cold_start_ms_watchdog"] > 0
    assert figures["boto3_import_ms"] > 0 and figures["cold_start_clients_ms_worst"] > 0


def test_the_lookup_stage_s_memory_is_measured_over_large_items() -> None:
    (one, size), (three, _) = bench._lookup_peak_bytes(1, cidrs=1500), bench._lookup_peak_bytes(3, cidrs=1500)
    assert size > 40_000, "a job holds a security group of 1,500 CIDRs"
    assert three > one > size


# --------------------------------------------------------------------------------------------
# An AWS Organization (issue 16)


def test_the_org_replays_run_with_the_stream_and_without_at_the_issue_s_size() -> None:
    org = [args for fn, args in bench.replay_tasks() if fn is bench_replay.org_run]
    assert org == [(100, bench_replay.ORG_REGIONS, True), (100, bench_replay.ORG_REGIONS, False)]
    assert len(bench_replay.ORG_REGIONS) == 4
    assert bench.verdict("org_wrong_verdicts", 1) == "<= 0  MISSED"
    assert bench.verdict("org_lookup_calls_per_change", 0.04) == "<= 0.05  met"


def test_the_org_figures_pass_through_and_are_shown_side_by_side() -> None:
    stream = {"org_accounts": 100, "org_regions": 4, "org_lookup_calls_per_change": 0.04,
              "org_wrong_verdicts": 0, "org_monthly_cost_usd": 4.1}
    history = {"org_history_lookup_calls_per_change": 1.7, "org_history_wrong_verdicts": 0}
    figures = bench.assemble([("org_run", stream), ("org_run", history)])
    assert figures == {**stream, **history, "decide_minutes_after_visible_max": 0.0,
                       "max_posts_per_second_per_destination": 0}
    lines = bench.side_by_side(figures)
    at = lines.index(next(line for line in lines if line.startswith("an organisation: 100 accounts x 4 regions")))
    rows = {line.split()[0]: line.split()[1:] for line in lines[at + 1:]}
    assert rows["lookup_calls_per_change"] == ["0.04", "1.7"]
    assert rows["wrong_verdicts"] == ["0", "0"]
    assert lines[-1].split()[-1] == "4.1"
    assert not [line for line in bench.side_by_side({}) if line.startswith("an organisation")]
