"""The metrics the stages record (``deps.metrics``): outcomes by kind, suppressions by pattern, alert delays,
LookupEvents calls and throttles, dead letters and Slack rate limits, as a replay on the fakes produces them."""

from __future__ import annotations

import json

from memory_world import WEBHOOK, replay, world

from chalicelib.core.metrics import (
    ALERT_DELAY_FROM_CALL,
    ALERT_DELAY_FROM_NOTIFICATION,
    LOOKUP_CALLS,
    OUTCOMES,
    SLACK_RATE_LIMITED,
    SUPPRESSIONS,
)
from chalicelib.core.outcomes import MANUAL_CHANGE, EventSummary, Outcome
from chalicelib.core.timeutil import iso
from chalicelib.ports import Delivery
from chalicelib.stages.deliver import slack_send
from chalicelib.stages.shared.emit import emit
from mcd_tools.story import demo_story


def test_a_replay_counts_its_outcomes_suppressions_lookups_and_delays() -> None:
    story = demo_story()
    result = replay(story)
    metrics = result.deps.metrics
    kinds = [o["kind"] for o in result.outcomes]
    assert metrics.total(OUTCOMES) == len(kinds)
    for kind in set(kinds):
        assert metrics.total(OUTCOMES, Kind=kind) == kinds.count(kind), kind
    [pattern] = story["settings"]["trusted_principals"]
    assert metrics.total(SUPPRESSIONS, Pattern=pattern) == kinds.count("suppressed") > 0
    assert metrics.total(LOOKUP_CALLS) == result.deps.lookups.stats.calls > 0
    alerts = [o for o in result.outcomes if o["kind"] != "suppressed"]
    from_call = [v for name, v, unit, _ in metrics.points if name == ALERT_DELAY_FROM_CALL]
    from_notification = [v for name, v, unit, _ in metrics.points if name == ALERT_DELAY_FROM_NOTIFICATION]
    attributed = [o for o in alerts if o.get("event_ids")]
    assert len(from_call) == len(attributed) and len(from_notification) == len(alerts), "unattributed: no call"
    assert all(0 < v < 2 * 3600 for v in from_call + from_notification), "an unattributed one waits ~90 min"
    assert min(from_call) > min(from_notification), "a call happens before Config notices it"


def test_a_rate_limited_post_is_counted_and_the_alert_waits() -> None:
    deps = world()
    deps.slack.script(WEBHOOK, Delivery("retry", "webhook rate limited (429)", 30.0, code="ratelimited",
                                        unavailable=True))
    called = iso(deps.now())
    emit(deps, Outcome(kind=MANUAL_CHANGE, outcome_id="ci:1", at=called or "", account="123456789012",
                       principal_arn="arn:aws:iam::123456789012:user/alice", resource_id="sg-1",
                       resource_type="AWS::EC2::SecurityGroup",
                       events=(EventSummary("e1", "AuthorizeSecurityGroupIngress", called),)))
    assert slack_send(deps)["retried"] == 1
    assert deps.metrics.total(SLACK_RATE_LIMITED) == 1
    deps.manual_clock.advance(31)
    assert slack_send(deps)["posted"] == 1
    [(_, delay, unit, _dims)] = [p for p in deps.metrics.points if p[0] == ALERT_DELAY_FROM_CALL]
    assert unit == "Seconds" and delay == 31
    assert json.dumps(deps.metrics.points)  # plain data
