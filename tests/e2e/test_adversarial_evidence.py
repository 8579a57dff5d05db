"""Silence needs complete evidence, through the real shell: a flood of reads and denied calls longer than one
run cannot hide a person's change, and LookupEvents stays paced.

The variations (the flood alone, an unfinished read, a later partial read) run on the fakes in
``tests/stages/test_lookup_stage.py``; this one runs the whole path: moto, the handlers, botocore paging
against the file-backed CloudTrail, and the Slack stand-in.
"""

from __future__ import annotations

from adversary import PERSON, flooded_bucket
from scenario_check import differences

from mcd_tools.replay import run


def test_a_flood_longer_than_one_run_still_finds_the_person() -> None:
    # 3,000 newer calls on the bucket: 60 pages, more than one run reads for one item.
    scenario = flooded_bucket(reads=2500, failed=500, trusted_write=True)
    result = run(scenario)
    assert differences(scenario["expect"]["outcomes"], result.outcomes) == []
    (outcome,) = result.outcomes
    assert outcome["principal_arn"] == PERSON
    assert len(result.slack) == 1
    assert result.throttled == 0
