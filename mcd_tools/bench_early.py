"""Early alerts measured (issue 15, D31): what ``early_alerts`` on a destination gains and what noise it adds.

The stream comparison's workload (``bench_replay.comparison_workload``) is replayed twice with the stream on,
to one webhook destination: with ``early_alerts`` off and on. A share of the people's writes is followed,
a little later, by the same person's no-op re-apply (the same tags again): CloudTrail records a successful
write, AWS Config records no change. Such a call gets an early alert that no ``manual_change`` completes
unless the item of the first call names it too: that is the noise early alerts add.

Figures (``early_…`` in ``bench.json``): early alerts posted, and those no ``manual_change`` completed within
the give-up time, per 1,000 people's writes; extra Slack calls per person's change; the time from the call to
the first post that names it, with and without early alerts.
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import timedelta
from typing import Any

from chalicelib.core.timeutil import parse_time
from mcd_tools import bench_replay as br
from mcd_tools.story import api_call_delivery

DESTINATION = "team"
REAPPLY_SHARE = 0.2  # of people's bucket-tag writes, re-applied unchanged
REAPPLY_AFTER = (timedelta(seconds=20), timedelta(minutes=10))


def workload(n: int = br.COMPARISON_N, seed: int = br.COMPARISON_SEED, *, early: bool) -> br.Workload:
    """The comparison workload to one webhook destination, plus people's no-op re-applies."""
    from mcd_tools.story import Actor, trail

    load = br.comparison_workload(n, seed)
    rng = random.Random(seed)
    deliveries, entries = list(load.deliveries), list(load.cloudtrail)
    for entry in load.cloudtrail:
        record = entry["record"]
        if record["eventName"] != "PutBucketTagging" or _trusted(record) or rng.random() >= REAPPLY_SHARE:
            continue
        called = (parse_time(record["eventTime"]) or load.start) + timedelta(
            seconds=rng.uniform(*(d.total_seconds() for d in REAPPLY_AFTER)))
        actor = Actor(record["userIdentity"], record["userAgent"], record["sourceIPAddress"], entry["username"])
        again = trail(actor, called, "PutBucketTagging", "s3.amazonaws.com",
                      record.get("requestParameters") or {}, [(r["ResourceType"], r["ResourceName"])
                                                             for r in entry["resources"]],
                      delay=timedelta(minutes=rng.uniform(3, 20)))
        entries.append(again)
        deliveries.append(api_call_delivery(again["record"], called + timedelta(seconds=rng.uniform(5, 60))))
    deliveries.sort(key=lambda d: d["at"])
    settings = {**load.settings, "destinations": [
        {"name": DESTINATION, "type": "webhook", "secret": "memory/slack-webhook", "early_alerts": early}]}
    return replace(load, deliveries=deliveries, cloudtrail=entries, settings=settings)


def _trusted(record: dict[str, Any]) -> bool:
    issuer = ((record.get("userIdentity") or {}).get("sessionContext") or {}).get("sessionIssuer") or {}
    return str(issuer.get("arn", "")).endswith("/ci/terraform-apply")


def figures(n: int = br.COMPARISON_N, seed: int = br.COMPARISON_SEED) -> dict[str, Any]:
    """``early_…`` figures: one replay with early alerts off, one with them on, of the same workload."""
    off, on = (br.replay(workload(n, seed, early=early), stream=True) for early in (False, True))
    human_calls = [e["record"] for e in on.load.cloudtrail if not _trusted(e["record"])]
    direct_alerts = {o for o in off.posted if o.startswith("ct:")}  # sensitive calls' own alerts, early or not
    early_posts = {o: at for o, at in on.posted.items() if o.startswith("ct:") and o not in direct_alerts}
    completed = {str(e) for _, outcome in on.outcomes if outcome.get("kind") == "manual_change"
                 for e in outcome.get("event_ids") or ()}
    early_ids = {o.removeprefix("ct:") for o in early_posts}
    people = [t for t in br.told(on) if t.change.human]
    first_posts = {o: at for o, at in on.posted.items() if o.startswith("ct:")}
    with_early = [_first_post(on, t, first_posts) for t in people]
    without = [_first_post(off, t, {o: at for o, at in off.posted.items() if o.startswith("ct:")})
               for t in br.told(off) if t.change.human]
    per_1000 = 1000 / max(1, len(human_calls))
    return {
        "early_human_writes": len(human_calls),
        "early_alerts_per_1000_human_writes": round(len(early_ids) * per_1000, 1),
        "early_alerts_uncompleted_per_1000_human_writes": round(len(early_ids - completed) * per_1000, 1),
        "early_extra_slack_calls_per_change": round((len(on.slack) - len(off.slack)) / max(1, len(people)), 2),
        "early_call_to_post_p50_s": round(br.percentile(br._seconds(with_early), 0.5), 1),
        "early_call_to_post_p95_s": round(br.percentile(br._seconds(with_early), 0.95), 1),
        "early_off_call_to_post_p50_s": round(br.percentile(br._seconds(without), 0.5), 1),
        "early_off_call_to_post_p95_s": round(br.percentile(br._seconds(without), 0.95), 1),
        "early_wrong_verdicts": sum(1 for t in br.told(on) if not t.right),
    }


def _first_post(run: br.Replay, told: br.Told, call_posts: dict[str, float]) -> float | None:
    """Seconds from a person's call to the first post that names it: its early or direct alert, or its alert."""
    called = told.change.called_at.timestamp()
    ids = [e["record"]["eventID"] for e in run.load.cloudtrail
           if any(r["ResourceName"] == told.change.resource_id for r in e["resources"])
           and abs((parse_time(e["record"]["eventTime"]) or told.change.called_at).timestamp() - called) < 1]
    times = [call_posts[f"ct:{i}"] for i in ids if f"ct:{i}" in call_posts]
    if told.alerted_at is not None:
        times.append(told.alerted_at)
    return min(times) - called if times else None
