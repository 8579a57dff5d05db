"""The lookup stage across an organisation's accounts (FORMAT.md, Accounts): a member it cannot reach."""

from __future__ import annotations

from datetime import timedelta

from memory_world import ACCOUNT, CAPTURE, lookup_job, slack_outcomes, trail_entry, world

from chalicelib.core.metrics import ACCOUNTS_UNREACHABLE
from chalicelib.stages.lookup import lookup

MEMBER = "222233334444"


def test_a_change_in_an_unreachable_account_is_reported_at_once_and_the_account_counted_once_a_day() -> None:
    deps = world(trail=[trail_entry("sg-0m01", CAPTURE - timedelta(seconds=30), visible_after=60)],
                 home_account=ACCOUNT, settings={"accounts": []})
    lookups = deps.lookups
    for group in ("sg-0m01", "sg-0m02"):
        job = lookup_job(group)
        deps.queue("lookup_queue").send(job.to_json() | {"change": job.to_json()["change"] | {"account": MEMBER}})
    deps.manual_clock.advance((CAPTURE + timedelta(minutes=1)).timestamp() - deps.clock())
    counts = lookup(deps)
    assert counts["unattributed"] == 2 and lookups.stats.calls == 0
    outcomes = slack_outcomes(deps)
    assert [o["kind"] for o in outcomes] == ["unattributed_change"] * 2
    assert all(o["principal_arn"] is None and MEMBER in str(o["extra"]["unverified"]) for o in outcomes)
    assert deps.metrics.total(ACCOUNTS_UNREACHABLE) == 1, "one operational count per account, not per change"

    job = lookup_job("sg-0m03")
    deps.queue("lookup_queue").send(job.to_json() | {"change": job.to_json()["change"] | {"account": MEMBER}})
    lookup(deps)
    assert deps.metrics.total(ACCOUNTS_UNREACHABLE) == 1, "the same day: counted already"
    deps.manual_clock.advance(timedelta(days=1).total_seconds())
    job = lookup_job("sg-0m04")
    deps.queue("lookup_queue").send(job.to_json() | {"change": job.to_json()["change"] | {"account": MEMBER}})
    lookup(deps)
    assert deps.metrics.total(ACCOUNTS_UNREACHABLE) == 2, "and again the next day, while it lasts"


def test_a_reachable_member_is_read_through_its_own_history() -> None:
    person = trail_entry("sg-0m05", CAPTURE - timedelta(seconds=30), visible_after=60)
    person["record"]["recipientAccountId"] = MEMBER
    person["record"]["userIdentity"]["accountId"] = MEMBER
    person["record"]["userIdentity"]["arn"] = f"arn:aws:iam::{MEMBER}:user/alice"
    deps = world(trail=[person], home_account=ACCOUNT, settings={"accounts": [MEMBER]})
    job = lookup_job("sg-0m05")
    deps.queue("lookup_queue").send(job.to_json() | {"change": job.to_json()["change"] | {"account": MEMBER}})
    deps.manual_clock.advance((CAPTURE + timedelta(minutes=2)).timestamp() - deps.clock())
    lookup(deps)
    assert [(o["kind"], o["principal_arn"]) for o in slack_outcomes(deps)] == [
        ("manual_change", f"arn:aws:iam::{MEMBER}:user/alice")]
    assert deps.metrics.total(ACCOUNTS_UNREACHABLE) == 0
