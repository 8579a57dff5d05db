"""Silence needs complete evidence: floods of reads and denied calls cannot hide a person's change."""

from __future__ import annotations

import adversary
import pytest
from adversary import BUCKET, PERSON, flooded_bucket
from scenario_check import differences

from chalicelib.stages import lookup as lookup_stage
from mcd_tools.replay import run


@pytest.mark.parametrize("trusted_write", [True, False], ids=["with-trusted-write", "alone"])
def test_a_flood_longer_than_one_run_still_finds_the_person(trusted_write: bool) -> None:
    # 3,000 newer calls on the bucket: 60 pages, more than one run reads for one item.
    scenario = flooded_bucket(reads=2500, failed=500, trusted_write=trusted_write)
    result = run(scenario)
    assert differences(scenario["expect"]["outcomes"], result.outcomes) == []
    (outcome,) = result.outcomes
    assert outcome["principal_arn"] == PERSON
    assert len(result.slack) == 1
    assert result.throttled == 0


def test_an_unfinished_read_is_reported_unverified_not_suppressed(monkeypatch: pytest.MonkeyPatch) -> None:
    # Two pages a run and a 5-minute give-up: the 60 pages cannot all be read in time, and the trusted
    # tag seen on the first page must not silence the change.
    monkeypatch.setattr(lookup_stage, "PAGES_PER_JOB_PER_RUN", 2)
    scenario = flooded_bucket(reads=2500, failed=500, trusted_write=True, trusted_at=55)  # newest: page one
    scenario["settings"]["give_up_minutes"] = 5
    scenario["cloudtrail"][-1]["visible_at"] = scenario["start"]  # the trusted tag is on the first page
    result = run(scenario)
    assert [(o["kind"], o["resource_id"]) for o in result.outcomes] == [("unattributed_change", BUCKET)]
    assert "a person's call may be among them" in result.outcomes[0]["unverified"]  # the alert says why
    assert len(result.slack) == 1


def test_a_later_partial_read_never_turns_the_alert_into_a_suppression() -> None:
    # The person's call is visible first and alerted; then 600 newer calls and the trusted tag appear,
    # so the follow-ups, reading a few pages newest first, see only the trusted call.
    scenario = flooded_bucket(reads=500, failed=100, trusted_write=True, trusted_at=55)
    for entry in scenario["cloudtrail"]:
        entry["visible_at"] = adversary.at(400)
    scenario["cloudtrail"][0]["visible_at"] = adversary.at(70)
    result = run(scenario)
    assert differences(scenario["expect"]["outcomes"], result.outcomes) == []
