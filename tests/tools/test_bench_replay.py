"""The replay harness of ``make bench``: workloads, the metered state table, the heap queue, and what replays tell.

Small workloads (tens of changes) replay in well under a second; ``make bench`` runs the same code at
hundreds and thousands.
"""

from __future__ import annotations

import json
import math
from datetime import timedelta
from typing import Any

import pytest

from chalicelib.adapters.memory import ManualClock, MemoryQueue
from chalicelib.core.timeutil import parse_time
from mcd_tools import bench_replay as br
from mcd_tools.story import burst_story

SMALL = 30


@pytest.fixture(scope="module")
def small() -> br.Workload:
    return br.workload(SMALL, seed=3, spread=timedelta(minutes=10))


@pytest.fixture(scope="module")
def runs(small: br.Workload) -> dict[str, br.Replay]:
    return {"stream": br.replay(small, stream=True), "history": br.replay(small, stream=False),
            "stream_only": br.replay(br.without_history(small), stream=True)}


def seconds(a: str, b: str) -> float:
    return (parse_time(a) - parse_time(b)).total_seconds()  # type: ignore[operator]


# --------------------------------------------------------------------------------------------
# Workloads


def test_the_workload_is_seeded_mixed_and_delayed_as_the_issue_says(small: br.Workload) -> None:
    again = br.workload(SMALL, seed=3, spread=timedelta(minutes=10))
    assert again.deliveries == small.deliveries and again.cloudtrail == small.cloudtrail
    assert sum(c.human for c in small.changes) == round(SMALL * br.HUMAN_SHARE)
    called = {e["record"]["eventID"]: e["record"]["eventTime"] for e in small.cloudtrail}
    for entry in small.cloudtrail:
        assert 3 * 60 <= seconds(entry["visible_at"], entry["record"]["eventTime"]) <= 20 * 60
    streamed = [d for d in small.deliveries if d["via"] == "eventbridge"]
    assert len(streamed) == SMALL
    for delivery in streamed:
        assert delivery["event"]["detail-type"] == "AWS API Call via CloudTrail"
        assert 5 <= seconds(delivery["at"], called[delivery["event"]["detail"]["eventID"]]) <= 60
    for change in small.changes:
        assert change.notified_at is not None
        assert 60 <= (change.notified_at - change.called_at).total_seconds() <= 15 * 60
    notified = sorted(parse_time(d["at"]) for d in small.deliveries if d["via"] == "sns")  # type: ignore[type-var]
    expected = sorted(change.notified_at for change in small.changes)  # type: ignore[type-var]
    assert all(abs((a - b).total_seconds()) < 0.001 for a, b in zip(notified, expected, strict=True))  # type: ignore[operator]


def test_a_story_becomes_a_workload_with_each_call_also_streamed() -> None:
    scenario = burst_story(12, humans=2)
    load = br.from_scenario(scenario, seed=1)
    assert sorted(c.resource_id for c in load.changes if c.human) == sorted(
        o["resource_id"] for o in scenario["expect"]["outcomes"] if o["kind"] == "manual_change")
    assert sum(d["via"] == "eventbridge" for d in load.deliveries) == 12
    assert [d for d in load.deliveries if d["via"] == "sns"] == scenario["deliveries"]
    last = max(parse_time(d["at"]) for d in load.deliveries)  # type: ignore[type-var]
    assert all(parse_time(e["visible_at"]) > last + timedelta(days=1)  # type: ignore[operator]
               for e in br.without_history(load).cloudtrail)


# --------------------------------------------------------------------------------------------
# DynamoDB, metered


def test_item_size_is_names_plus_values_with_the_ttl_as_a_number() -> None:
    assert br.item_bytes({"pk": "ab", "sk": "c"}) == 2 + 2 + 2 + 1
    assert br.item_bytes({"expires_at": "1732900000"}) == len("expires_at") + 5 + 1
    assert br.item_bytes({"x": "é"}) == 1 + 2


def test_writes_bill_a_unit_per_kilobyte_of_each_row_and_a_request_per_25_rows() -> None:
    state = br.MeteredState()
    rows = [(f"ix#a#r#k{i}", f"s{i}", {"record": "x" * 1500}) for i in range(30)]
    state.put_many(rows, 1e9, 3600)
    assert state.index.writes == 2, "BatchWriteItem takes 25 rows a request"
    assert state.index.rows_written == 30
    assert state.index.write_units == 30 * 2, "a 1.5 KB row is two write units"
    state.put("out#1", "outcome", 1e9, marker="1")
    assert (state.other.writes, state.other.write_units) == (1, 1)
    assert state.index.writes == 2


def test_reads_bill_a_unit_per_4_kb_returned_and_at_least_one_per_query() -> None:
    state = br.MeteredState()
    state.put_many([("ix#a#r#k", f"s{i}", {"record": "x" * 2000}) for i in range(3)], 1e9, 3600)
    assert [r["sk"] for r in state.between("ix#a#r#k", "s0", "s1")] == ["s0", "s1"]
    assert state.index.read_units == 1, "two rows of about 2 KB: one 4 KB unit"
    state.between("ix#a#r#k", "s0", "s2")
    assert state.index.read_units == 1 + 2
    assert state.between("ix#a#r#other", "a", "z") == []
    assert (state.index.reads, state.index.read_units) == (3, 4), "an empty query still costs a unit"
    assert state.get("cap#x", "1") is None and state.other.read_units == 1


def test_the_metered_state_answers_ranges_as_the_memory_state_does() -> None:
    from chalicelib.adapters.memory import MemoryState

    plain, metered = MemoryState(), br.MeteredState()
    for store in (plain, metered):
        for sk in ("2024-01-01T00:00:05#b", "2024-01-01T00:00:01#a", "2024-01-01T00:00:09#c", "other"):
            store.put("p", sk, 1e9, v=sk)
    for low, high in (("2024", "2024-01-01T00:00:05#~"), ("a", "z"), ("2024-01-01T00:00:02", "2025")):
        assert metered.between("p", low, high) == plain.between("p", low, high)
        assert metered.between("p", low, high, limit=1) == plain.between("p", low, high, limit=1)
    assert metered.latest_before("p", "2024", "2024-01-01T00:00:09") == plain.latest_before(
        "p", "2024", "2024-01-01T00:00:09")
    assert metered.latest_before("p", "2030", "2031") is None


# --------------------------------------------------------------------------------------------
# SQS, in O(log n)


def queue_script(queue: MemoryQueue, clock: ManualClock) -> list[Any]:
    """Sends, delays, receives, stale and fresh deletes, redrive: what each receive returned."""
    seen: list[Any] = []
    queue.send("late", delay_seconds=30)
    for i in range(12):
        queue.send(f"m{i}")
    first = queue.receive(10, visibility_timeout=5)
    seen.append([m.body for m in first])
    queue.delete(first[:3])
    clock.advance(6)
    again = queue.receive(10, visibility_timeout=60)
    seen.append([(m.body, m.receive_count) for m in again])
    queue.delete([first[3]])  # an old receipt: ignored
    clock.advance(30)
    seen.append([m.body for m in queue.receive(10)])
    for _ in range(6):
        clock.advance(61)
        seen.append([(m.body, m.receive_count) for m in queue.receive(10, visibility_timeout=60)])
    seen.append((len(queue), sorted(queue.dead_letter.bodies()) if queue.dead_letter else None))
    return seen


def test_the_heap_queue_behaves_as_the_memory_queue() -> None:
    def make(kind: type[MemoryQueue]) -> tuple[MemoryQueue, ManualClock]:
        clock = ManualClock()
        dead = kind("dlq", clock)
        return kind("q", clock, dead_letter=dead, max_receive_count=3), clock

    assert queue_script(*make(br.HeapQueue)) == queue_script(*make(MemoryQueue))


def test_heap_queues_keep_each_queue_s_settings_and_dead_letter_queue() -> None:
    from chalicelib.memory_deps import MemoryDeps

    deps = MemoryDeps()
    made = br.heap_queues(deps.queues, deps.manual_clock)
    assert set(made) == set(deps.queues)
    for name, queue in deps.queues.items():
        assert isinstance(made[name], br.HeapQueue)
        assert made[name].visibility_timeout == queue.visibility_timeout
        assert (made[name].dead_letter is None) == (queue.dead_letter is None)
    assert made["lookup_queue"].dead_letter is made["lookup_dlq"]


# --------------------------------------------------------------------------------------------
# Replays


def test_every_change_is_told_rightly_with_the_stream_and_without(runs: dict[str, br.Replay]) -> None:
    for mode, run in runs.items():
        told = br.told(run)
        assert len(told) == SMALL
        assert all(t.right for t in told), (mode, [t for t in told if not t.right])


def test_with_the_stream_lookups_drop_well_below_the_history_path(runs: dict[str, br.Replay]) -> None:
    stream, history = runs["stream"], runs["history"]
    assert history.lookup_calls > 0
    assert stream.lookup_calls <= 0.5 * history.lookup_calls, (stream.lookup_calls, history.lookup_calls)
    assert stream.streamed == SMALL and history.streamed == 0
    assert stream.index.rows_written > 0 and history.index.rows_written == 0
    assert history.index.reads > 0, "the lookup stage asks the index even when nothing streams"


def test_the_stream_alone_decides_every_change_soon_after_its_notification(runs: dict[str, br.Replay]) -> None:
    """LookupEvents never shows a call: every change must still be told rightly, within minutes of its Config
    notification. A stream path that silently fell back to LookupEvents would wait to the give-up time."""
    for told in br.told(runs["stream_only"]):
        assert told.right
        after = told.after(told.change.notified_at)
        assert after is not None and after <= 5 * 60, told
    assert runs["history"].lookup_calls > runs["stream_only"].lookup_calls


def test_the_stream_tells_people_s_changes_sooner(runs: dict[str, br.Replay]) -> None:
    def alerts(run: br.Replay) -> list[float]:
        return br._seconds([t.after(t.change.called_at) for t in br.told(run) if t.change.human])

    assert max(alerts(runs["stream"])) <= max(alerts(runs["history"]))
    assert sum(alerts(runs["stream"])) < sum(alerts(runs["history"]))


def test_cpu_figures_leave_out_the_fakes_and_count_the_index_writes(runs: dict[str, br.Replay]) -> None:
    stream = runs["stream"]
    assert 0 < stream.lookup_cpu_s < stream.cpu_s
    assert 0 < stream.remember_cpu_s < stream.cpu_s
    assert runs["history"].remember_cpu_s == 0


def test_a_replay_over_its_cpu_budget_stops(small: br.Workload) -> None:
    with pytest.raises(br.OverBudget):
        br.replay(small, stream=False, budget_s=0.0)
    point = br.series_point(10, stream=True, budget_s=0.0)
    assert point["stream_lookup_calls_per_change_n10"] is None
    assert "over" in point["stream_over_budget_n10"]


# --------------------------------------------------------------------------------------------
# Figures


def test_a_series_point_has_the_issue_s_keys() -> None:
    history, stream = br.series_point(10, stream=False), br.series_point(10, stream=True)
    for key in ("lookup_calls_per_change_n10", "time_to_tell_p95_s_n10", "attribution_cpu_ms_per_change_n10"):
        assert isinstance(history[key], float) and isinstance(stream[f"stream_{key}"], float)
    assert history["wrong_verdicts_n10"] == stream["stream_wrong_verdicts_n10"] == 0
    assert history["slack_messages_n10"] == 3, "3 people's changes, each posted"
    assert stream["stream_lookup_calls_per_change_n10"] < history["lookup_calls_per_change_n10"]


def test_the_comparison_costs_the_index_from_its_rows(runs: dict[str, br.Replay]) -> None:
    stream, history = br.mode_figures("stream", runs["stream"]), br.mode_figures("history", runs["history"])
    units = stream["stream_ddb_write_units_per_change"]
    assert units >= stream["stream_index_rows_per_call"] >= 1
    expected = 1000 * (units * br.PRICE_PER_WRITE_UNIT + stream["stream_ddb_read_units_per_change"]
                       * br.PRICE_PER_READ_UNIT)
    assert stream["stream_cost_per_1000_changes_usd"] == pytest.approx(expected, rel=0.05)
    assert stream["stream_index_cost_per_million_calls_usd"] == pytest.approx(
        1e6 * units * br.PRICE_PER_WRITE_UNIT, rel=0.05), "one streamed call per change here"
    both = br.comparison_figures({"stream": stream, "history": history,
                                  "stream_only": br.mode_figures("stream_only", runs["stream_only"])})
    assert both["stream_vs_history_lookup_calls"] == pytest.approx(
        stream["stream_lookup_calls_per_change"] / history["history_lookup_calls_per_change"], abs=0.001)
    assert {"stream_call_to_post_p50_s", "stream_call_to_post_p95_s", "history_call_to_post_p95_s",
            "stream_lookup_calls_per_change", "stream_ddb_requests_per_change",
            "stream_cost_per_1000_changes_usd", "stream_only_wrong_verdicts"} <= set(both)
    assert len(br.comparison_workload(12, 3).changes) == 12
    assert stream["stream_evidence_to_decision_p95_s"] <= 75, "decided on the tick after the stream is complete"
    assert history["history_evidence_to_decision_p95_s"] > 120, "the history shows calls minutes later"


def test_tell_samples_measure_alerts_from_when_they_could_be_known() -> None:
    samples = br.tell_samples(100)
    assert len(samples) == 6, "6 people's changes"
    assert all(0 <= s <= 5 * 60 for s in samples)


def test_told_judges_people_s_changes_by_their_first_alert() -> None:
    person = br.Change("r", br.START, True)
    trusted = br.Change("t", br.START, False)
    assert br.Told(person, 100.0, None).right and not br.Told(person, None, 50.0).right
    assert not br.Told(person, 100.0, 50.0).right, "suppressed before the alert"
    assert br.Told(trusted, None, 70.0).right and not br.Told(trusted, 80.0, 70.0).right
    assert br.Told(trusted, None, br.START.timestamp() + 70).after(br.START) == 70


def test_percentile_is_the_nearest_rank() -> None:
    assert br.percentile([], 0.95) == 0.0
    values = list(range(1, 101))
    assert br.percentile(values, 0.95) == 95 and br.percentile(values, 0.5) == 50
    assert br.percentile([3.0], 0.95) == 3.0


def test_posts_per_second_is_the_worst_one_second_window_of_one_destination() -> None:
    assert br.max_posts_per_second([]) == 0
    assert br.max_posts_per_second([(0.0, "a"), (0.9, "a"), (1.0, "a"), (0.5, "b")]) == 2
    assert br.max_posts_per_second([(0.0, d) for d in "abc"]) == 1


def test_lambda_memory_comes_from_the_chalice_config() -> None:
    config = json.loads((br.ROOT / ".chalice" / "config.json").read_text())
    assert br.lambda_memory_gb("api_call") == config["lambda_functions"]["api_call"]["lambda_memory_size"] / 1024
    assert math.isclose(br.lambda_memory_gb("no-such-function"), config["lambda_memory_size"] / 1024)


# --------------------------------------------------------------------------------------------
# An AWS Organization (issue 16)


ORG_SMALL = {"apply": 24, "humans": 6, "background": 40, "spread": timedelta(minutes=20)}
ORG_REGIONS = ("eu-west-1", "us-east-1")


@pytest.fixture(scope="module")
def org() -> br.Workload:
    return br.org_workload(5, ORG_REGIONS, seed=4, **ORG_SMALL)


def account_of(entry: dict[str, Any]) -> str:
    return entry["record"]["recipientAccountId"]


def test_the_org_workload_is_one_apply_in_one_member_and_people_elsewhere(org: br.Workload) -> None:
    members = org.settings["accounts"]
    assert len(members) == 4 and org.home_account not in members and len(set(members)) == 4
    assert org.settings["trusted_principals"] == ["arn:aws:iam::*:role/ci/terraform-apply"]
    trusted = [c for c in org.changes if not c.human]
    assert len(trusted) == 24 and len({c.account for c in trusted}) == 1 and trusted[0].account in members
    assert max(c.called_at for c in trusted) - min(c.called_at for c in trusted) <= br.ORG_APPLY_SPREAD
    assert sum(c.human for c in org.changes) == 6
    changes = {json.loads(d["message"])["configurationItem"]["resourceId"]: json.loads(d["message"])
               for d in org.deliveries if d["via"] == "sns"}
    by_event = {e["record"]["eventID"]: e for e in org.cloudtrail}
    for change in org.changes:
        item = changes[change.resource_id]["configurationItem"]
        assert item["awsAccountId"] == change.account and item["awsRegion"] in ORG_REGIONS
    streamed = [d["event"] for d in org.deliveries if d["via"] == "eventbridge"]
    assert len(streamed) == len(org.cloudtrail) == 24 + 6 + 40
    for event in streamed:
        entry = by_event[event["id"]]
        assert event["account"] == account_of(entry) == entry["record"]["userIdentity"]["accountId"]
        assert 3 * 60 <= seconds(entry["visible_at"], entry["record"]["eventTime"]) <= 20 * 60
    assert {account_of(e) for e in org.cloudtrail} <= {org.home_account, *members}


@pytest.fixture(scope="module")
def org_runs(org: br.Workload) -> dict[str, br.Replay]:
    return {"stream": br.replay(org, stream=True), "history": br.replay(org, stream=False)}


def test_every_change_of_the_org_is_told_rightly_from_its_own_account(org_runs: dict[str, br.Replay]) -> None:
    for mode, run in org_runs.items():
        assert all(t.right for t in br.told(run)), mode
        accounts = {c.resource_id: c.account for c in run.load.changes}
        for _, outcome in run.outcomes:
            assert outcome["account"] == accounts[outcome["resource_id"]]
            if outcome["kind"] == "manual_change":
                assert f"::{outcome['account']}:" in outcome["principal_arn"], "the author is in its own account"


def test_without_the_stream_each_member_s_history_is_read_through_its_role(org_runs: dict[str, br.Replay]) -> None:
    history, stream = org_runs["history"], org_runs["stream"]
    members = set(history.load.settings["accounts"])
    read = {a for a, calls in history.calls_by_account.items() if calls}
    assert read & members and read <= members | {history.load.home_account}
    assert sum(history.calls_by_account.values()) == history.lookup_calls
    assert stream.lookup_calls < 0.5 * history.lookup_calls


def test_an_account_without_the_lookup_role_is_reported_unattributed_and_never_read(org: br.Workload) -> None:
    apply_account = next(c.account for c in org.changes if not c.human)
    cut = br.Workload(org.changes, org.deliveries, org.cloudtrail,
                      {**org.settings, "accounts": [a for a in org.settings["accounts"] if a != apply_account]},
                      org.start, home_account=org.home_account)
    run = br.replay(cut, stream=False)
    assert run.calls_by_account.get(apply_account, 0) == 0
    kinds = {o["resource_id"]: o["kind"] for _, o in run.outcomes if o.get("account") == apply_account}
    assert set(kinds.values()) == {"unattributed_change"} and len(kinds) == 24
    assert br.org_figures(run, regions=2)["org_wrong_verdicts"] == 24, "a trusted apply nobody could read is told"


def test_the_org_figures_have_the_issue_s_keys(org_runs: dict[str, br.Replay]) -> None:
    figures = br.org_figures(org_runs["stream"], regions=2, spread=ORG_SMALL["spread"])
    assert (figures["org_accounts"], figures["org_regions"], figures["org_changes"]) == (5, 2, 30)
    assert figures["org_wrong_verdicts"] == 0 == figures["org_untold"]
    assert figures["org_call_to_post_p95_s"] > 0 and 0 < figures["org_notified_to_alert_p95_s"] <= 5 * 60
    assert figures["org_lookup_calls_per_change"] <= figures["org_lookup_calls_per_change_max_account"]
    hours = br.MONTH_HOURS * 3  # a 20-minute workload: three in each hour of the month
    run = org_runs["stream"]
    assert figures["org_monthly_index_writes_usd"] == pytest.approx(
        run.index.write_units * br.PRICE_PER_WRITE_UNIT * hours, rel=0.01)
    assert figures["org_monthly_cost_usd"] == pytest.approx(
        figures["org_monthly_index_writes_usd"] + figures["org_monthly_index_reads_usd"]
        + figures["org_monthly_api_call_cpu_usd"], rel=0.01)
    history = br.org_run(5, ORG_REGIONS, stream=False, seed=4, **ORG_SMALL)
    assert set(history) == {"org_history_" + k[4:] for k in br.ORG_HISTORY_KEYS}
    assert history["org_history_wrong_verdicts"] == 0
