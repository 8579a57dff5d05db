"""Early alerts measured: the same workload with ``early_alerts`` off and on (mcd_tools.bench_early)."""

from __future__ import annotations

import pytest

from mcd_tools import bench_early


@pytest.fixture(scope="module")
def figures() -> dict[str, float]:
    return bench_early.figures(n=80, seed=4)


def test_early_alerts_tell_people_s_writes_sooner_without_a_wrong_verdict(figures: dict[str, float]) -> None:
    assert figures["early_wrong_verdicts"] == 0
    assert figures["early_alerts_per_1000_human_writes"] > 0
    assert figures["early_call_to_post_p50_s"] < figures["early_off_call_to_post_p50_s"]
    assert figures["early_call_to_post_p50_s"] <= 150, "posted on the tick after the stream delivers the call"


def test_noise_is_the_re_applies_config_never_records(figures: dict[str, float]) -> None:
    load = bench_early.workload(80, 4, early=True)
    people = [e for e in load.cloudtrail if not bench_early._trusted(e["record"])]
    re_applies = len(people) - sum(1 for c in load.changes if c.human)
    assert re_applies > 0, "the workload has no-op re-applies"
    assert 0 <= figures["early_alerts_uncompleted_per_1000_human_writes"] <= 1000 * re_applies / len(people)
    assert figures["early_extra_slack_calls_per_change"] > 0, "a webhook's early alert is one more message"


def test_the_destination_has_early_alerts_only_when_asked() -> None:
    off, on = (bench_early.workload(10, 1, early=e).settings["destinations"][0]["early_alerts"] for e in (False, True))
    assert (off, on) == (False, True)
