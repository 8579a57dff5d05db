"""Attribution over time: what the detector concludes as calls become visible in different orders."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from scenario_check import differences

from mcd_tools.replay import run
from mcd_tools.story import iam_user, ingress, scenario, terraform

T0 = datetime(2024, 7, 3, 9, 0, tzinfo=timezone.utc)


def _one_item_two_authors(human_delay: timedelta, terraform_delay: timedelta) -> tuple[dict, str]:
    tf, person = terraform(), iam_user("sam.oduya")
    delivery, tf_entry = ingress("sg-0abc0abc0abc0abc0", "app-sg", tf, T0, "10.0.0.0/16", 443,
                                 delay=terraform_delay, capture_after=timedelta(seconds=60))
    _, human_entry = ingress("sg-0abc0abc0abc0abc0", "app-sg", person, T0 + timedelta(seconds=20), "0.0.0.0/0",
                             22, delay=human_delay)
    expected = [{"kind": "manual_change", "resource_type": "AWS::EC2::SecurityGroup",
                 "resource_id": "sg-0abc0abc0abc0abc0", "principal_arn": person.identity["arn"],
                 "event_ids": [human_entry["record"]["eventID"]]}]
    story = scenario("one-item-two-authors", "Terraform and a person change one group within one capture.",
                     T0 - timedelta(minutes=2), [delivery], [tf_entry, human_entry], expected, max_slack=1)
    return story, human_entry["record"]["eventID"]


def test_a_person_seen_after_terraform_still_makes_it_a_manual_change() -> None:
    story, _ = _one_item_two_authors(human_delay=timedelta(minutes=8), terraform_delay=timedelta(minutes=3))
    result = run(story)
    assert differences(story["expect"]["outcomes"], result.outcomes) == []
    assert len(result.slack) == 1


def test_a_person_seen_before_terraform_is_alerted_at_once() -> None:
    story, _ = _one_item_two_authors(human_delay=timedelta(minutes=3), terraform_delay=timedelta(minutes=8))
    result = run(story)
    assert differences(story["expect"]["outcomes"], result.outcomes) == []
    posted = result.slack[0]["at"]
    assert posted <= (T0 + timedelta(seconds=20 + 3 * 60 + 90)).strftime("%Y-%m-%dT%H:%M:%SZ")
