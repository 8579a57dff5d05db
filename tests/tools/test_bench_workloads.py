"""The shapes of real accounts in make bench (mcd_tools.bench_workloads), on small versions of each."""

from __future__ import annotations

from datetime import timedelta

from mcd_tools import bench_workloads as bw


def test_each_shape_builds_its_changes_records_and_stream() -> None:
    shape = bw.Shape("t", 12, 0.25, timedelta(minutes=20), regions=bw.SIXTEEN_REGIONS[:3], background_per_minute=2)
    load = bw.build(shape, seed=3)
    assert len(load.changes) == 12 and sum(c.human for c in load.changes) == 3
    assert len(load.cloudtrail) == 12 + 40, "the changes' calls and the services' background writes"
    assert {e["record"]["awsRegion"] for e in load.cloudtrail} == set(bw.SIXTEEN_REGIONS[:3])
    streamed = [d for d in load.deliveries if d["via"] == "eventbridge"]
    assert len(streamed) == len(load.cloudtrail), "every call also reaches api_call"
    iam = bw.build(bw.Shape("i", 4, 0.0, timedelta(minutes=2), iam=True, quiet_person=True), seed=3)
    assert [c.human for c in iam.changes] == [False] * 4 + [True]
    assert {e["record"]["awsRegion"] for e in iam.cloudtrail} == {"us-east-1", bw.QUIET_REGION}


def test_a_small_background_shape_is_decided_rightly_and_cheaper_with_the_stream() -> None:
    shape = bw.Shape("small", 6, 0.5, timedelta(minutes=10), background_per_minute=20)
    history, stream = (bw.shape_figures(shape, mode, seed=2) for mode in (False, True))
    assert history["workload_small_wrong_verdicts"] == stream["workload_small_stream_wrong_verdicts"] == 0
    assert stream["workload_small_stream_lookup_calls_per_change"] < history["workload_small_lookup_calls_per_change"]
    assert stream["workload_small_stream_time_to_tell_p95_s"] > 0 and history["workload_small_time_to_tell_p95_s"] > 0


def test_the_quiet_regions_person_and_one_persons_messages_are_reported() -> None:
    quiet = bw.shape_figures(bw.Shape("q", 30, 0.0, timedelta(minutes=2), iam=True, quiet_person=True), True, 1)
    assert quiet["workload_q_stream_quiet_tell_s"] is not None and quiet["workload_q_stream_wrong_verdicts"] == 0
    one = bw.shape_figures(bw.Shape("o", 10, 0.5, timedelta(minutes=5), one_person=True), True, 1)
    assert 1 <= one["workload_o_stream_slack_messages"] <= 5, "one person's changes are grouped"
