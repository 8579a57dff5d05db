"""``slack_send`` on the in-memory fakes and a recording Slack: once-only posts, failures, pacing, bursts, routing.

Each run takes milliseconds: the clock is ``deps.manual_clock`` (the stage's pacing sleeps move it), and
Slack's answers are scripted on ``deps.slack``. ``tests/e2e/test_delivery.py`` checks the same stage end to end
on moto and the local Slack stand-in over HTTP.
"""

from __future__ import annotations

import itertools
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from memory_world import WEBHOOK, replay, world

from chalicelib.adapters.memory import SlackCall
from chalicelib.core.outcomes import MANUAL_CHANGE, EventSummary, Outcome
from chalicelib.core.timeutil import iso, parse_time
from chalicelib.memory_deps import MemoryDeps
from chalicelib.ports import Delivery
from chalicelib.slack.render import render
from chalicelib.stages.deliver import BACKOFF_MAX_SECONDS, MAX_ATTEMPTS, RETRY_FOR_SECONDS, slack_send
from mcd_tools.story import ACCOUNT as STORY_ACCOUNT
from mcd_tools.story import demo_story

ACCOUNT = "360172948513"
BOT_TOKEN = "xoxb-1111-2222-" + "t0k3n" * 4
BOT_CHANNEL = "C0ALERTS"
UNAVAILABLE = Delivery("retry", "webhook answered 503", code="503", unavailable=True)


def hook(name: str) -> str:
    return f"https://hooks.slack.com/services/T000/B000/{name}"


def bench(settings: dict[str, Any] | None = None, **options: Any) -> MemoryDeps:
    """A Slack sender's world: the default webhook, ``ops``/``sec``/``audit`` webhooks and a bot token."""
    secrets = {name: json.dumps({"url": hook(name)}) for name in ("ops", "sec", "audit")}
    secrets["bot-token"] = json.dumps({"token": BOT_TOKEN})
    return world(settings=settings, secrets=secrets, **options)


def use_bot(deps: MemoryDeps, **settings: Any) -> None:
    deps.settings_document = {"destinations": [{"name": "alerts-bot", "type": "bot", "secret": "bot-token",
                                                "channel": BOT_CHANNEL}], **settings}
    deps._settings = None  # a new container reads the new settings; the queues and table stay


def alert(deps: MemoryDeps, principal: str = "alice", resource: str = "sg-0a1", *, kind: str = MANUAL_CHANGE,
          account: str = ACCOUNT, outcome_id: str | None = None, event_name: str = "ModifySecurityGroupRules",
          **extra: Any) -> Outcome:
    """A plausible alert by IAM user ``principal`` about ``resource``, decided now."""
    arn = f"arn:aws:iam::{account}:user/{principal}"
    when = iso(deps.now()) or ""
    event = EventSummary(f"ev-{resource}", event_name, when, "ec2.amazonaws.com", "eu-west-1", "203.0.113.9",
                         "aws-cli/2.15.0")
    values: dict[str, Any] = {
        "kind": kind, "outcome_id": outcome_id or f"ci:{account}:{resource}:{principal}", "at": when,
        "account": account, "region": "eu-west-1", "principal_arn": arn,
        "principal": {"type": "IAMUser", "arn": arn, "display_name": principal},
        "event_ids": (f"ev-{resource}",), "events": (event,)}
    if kind == MANUAL_CHANGE:
        values.update(resource_type="AWS::EC2::SecurityGroup", resource_id=resource, change_type="UPDATE")
    elif kind == "api_call":
        values.update(event_name=event_name)
    elif kind == "console_signin":
        values.update(signin=extra.pop("signin", "no_mfa"), events=(EventSummary(
            f"ev-{resource}", "ConsoleLogin", when, "signin.amazonaws.com", "us-east-1", "203.0.113.9", "Mozilla"),))
    values.update(extra)
    return Outcome(**values)


WORLD_OPEN_SSH = {
    "path": "Configuration.IpPermissions.0", "change_type": "UPDATE",
    "previous": {"ipProtocol": "tcp", "fromPort": 22, "toPort": 22, "ipv4Ranges": [{"cidrIp": "10.0.0.0/16"}]},
    "updated": {"ipProtocol": "tcp", "fromPort": 22, "toPort": 22,
                "ipv4Ranges": [{"cidrIp": "10.0.0.0/16"}, {"cidrIp": "0.0.0.0/0"}]},
}


def world_open(deps: MemoryDeps, principal: str = "alice", resource: str = "sg-0open") -> Outcome:
    return alert(deps, principal, resource, event_name="AuthorizeSecurityGroupIngress",
                 changed_properties=(WORLD_OPEN_SSH,))


def failed_signin(deps: MemoryDeps, principal: str = "alice", attempt: int = 1) -> Outcome:
    return alert(deps, principal, f"signin-{attempt}", kind="console_signin", signin="failure",
                 outcome_id=f"ct:failed-signin-{principal}-{attempt}")


def enqueue(deps: MemoryDeps, *outcomes: Outcome, **extra: Any) -> None:
    deps.queue("slack_queue").send_many([{"outcome": {**o.to_json(), "revision": 0}, **extra} for o in outcomes])


def posts(deps: MemoryDeps, target: str | None = None) -> list[SlackCall]:
    """What Slack accepted, to one webhook URL or bot token if given."""
    return [c for c in deps.slack.delivered() if target is None or c.target == target]


def text(call: SlackCall) -> str:
    return json.dumps(call.payload)


def depth(deps: MemoryDeps, name: str = "slack_queue") -> int:
    return len(deps.queue(name))


def stored(deps: MemoryDeps) -> list[dict[str, Any]]:
    """Alerts kept in the archive (without the operational alerts about them)."""
    def operational(body: str) -> bool:
        try:
            return json.loads(body).get("outcome", {}).get("kind") == "dead_letter"
        except (ValueError, AttributeError):
            return False

    found = [deps.archive.json(k) for k in deps.archive.list_keys("dead-letter/slack/")]
    return [s for s in found if not operational(s["body"])]


def every_minute(deps: MemoryDeps, minutes: int) -> None:
    for _ in range(minutes):
        deps.manual_clock.advance(60)
        slack_send(deps)


def marker(deps: MemoryDeps, dest: str, outcome_id: str) -> dict[str, str] | None:
    return deps.state.get(f"post#{dest}#{outcome_id}", "posted")


# --------------------------------------------------------------------------------------------
# Once


def test_a_post_is_made_once_and_marked() -> None:
    deps = bench()
    outcome = alert(deps)
    enqueue(deps, outcome)
    counts = slack_send(deps)
    assert counts["posted"] == 1 and counts["messages"] == 1
    [call] = posts(deps)
    assert (call.method, call.target) == ("webhook", WEBHOOK)
    assert call.payload["text"] == render([outcome])["text"]
    assert marker(deps, "default", outcome.outcome_id) is not None
    assert depth(deps) == 0


def test_two_copies_in_one_run_and_later_redeliveries_post_once() -> None:
    deps = bench()
    outcome = alert(deps)
    enqueue(deps, outcome, outcome)
    assert slack_send(deps)["duplicates"] == 1
    assert posts(deps)[0].payload["text"] == render([outcome])["text"], "not a digest of the alert twice"
    deps.manual_clock.advance(60)
    enqueue(deps, outcome)
    enqueue(deps, outcome, destination="default", attempt=1)
    counts = slack_send(deps)
    assert (counts["duplicates"], counts["posted"], len(posts(deps)), depth(deps)) == (2, 0, 1, 0)


# --------------------------------------------------------------------------------------------
# Failures


@pytest.mark.parametrize("kind", ["webhook", "bot"])
def test_rate_limit_waits_retry_after_and_drops_nothing(kind: str) -> None:
    deps = bench()
    if kind == "bot":
        use_bot(deps)
    deps.slack.script(BOT_TOKEN if kind == "bot" else WEBHOOK,
                      Delivery("retry", "rate limited (429)", 120.0, code="ratelimited", unavailable=True))
    start = deps.clock()
    enqueue(deps, alert(deps, "alice"), alert(deps, "bob", "sg-0b2"), alert(deps, "carol", "sg-0c3"))
    counts = slack_send(deps)
    assert len(deps.slack.calls) == 1, "no further call to a rate-limited destination in the same run"
    assert counts["retried"] == 3 and depth(deps) == 3
    deps.manual_clock.advance(119)
    assert slack_send(deps)["posted"] == 0 and len(deps.slack.calls) == 1
    deps.manual_clock.advance(1)
    assert slack_send(deps)["posted"] == 3
    assert len(posts(deps)) == 3 and min(c.at for c in posts(deps)) >= start + 120
    assert depth(deps) == 0 and stored(deps) == []


def test_server_errors_back_off_then_post(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="mcd")
    deps = bench()
    deps.slack.script(WEBHOOK, UNAVAILABLE, UNAVAILABLE)
    enqueue(deps, alert(deps))
    assert slack_send(deps)["retried"] == 1
    deps.manual_clock.advance(29)
    slack_send(deps)
    assert len(deps.slack.calls) == 1, "backed off 30 s"
    deps.manual_clock.advance(1)
    assert slack_send(deps)["retried"] == 1 and len(deps.slack.calls) == 2
    deps.manual_clock.advance(59)
    slack_send(deps)
    assert len(deps.slack.calls) == 2, "then 60 s"
    deps.manual_clock.advance(1)
    assert slack_send(deps)["posted"] == 1 and depth(deps) == 0
    retries = [json.loads(r.getMessage()) for r in caplog.records if '"slack_retry"' in r.getMessage()]
    assert [(r["attempt"], r["delay_seconds"]) for r in retries] == [(1, 30.0), (2, 60.0)]


@pytest.mark.parametrize("kind", ["webhook", "bot"])
def test_a_two_hour_slack_outage_loses_no_alert(monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    """Slack is unavailable for 120 minutes, then recovers: every alert is posted, none is dead-lettered, the
    destination is tried at least every 15 minutes, and no job reaches the dead-letter queue."""
    deps = bench()
    if kind == "bot":
        use_bot(deps)
    start = deps.clock()
    recovery = start + 120 * 60
    calls: list[float] = []
    recording_webhook, recording_bot = deps.slack.post_webhook, deps.slack.post_bot

    def down_until_recovery(record: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Delivery:
            calls.append(deps.clock())
            return UNAVAILABLE if deps.clock() < recovery else record(*args, **kwargs)
        return call

    monkeypatch.setattr(deps.slack, "post_webhook", down_until_recovery(recording_webhook))
    monkeypatch.setattr(deps.slack, "post_bot", down_until_recovery(recording_bot))
    resources = [f"sg-outage-{i}" for i in range(1, 10)]
    arrivals = {0: resources[:3], 5: resources[3:6], 47: resources[6:]}
    for minute in range(150):
        if minute in arrivals:
            enqueue(deps, *(alert(deps, f"user-{r}", r) for r in arrivals[minute]))
        slack_send(deps)
        deps.manual_clock.advance(60)
    posted = {r for c in posts(deps) for r in resources if r in text(c)}
    assert posted == set(resources) and len(posts(deps)) == 9
    assert stored(deps) == [] and depth(deps) == 0 and depth(deps, "slack_dlq") == 0
    assert max(b - a for a, b in itertools.pairwise(calls)) <= BACKOFF_MAX_SECONDS
    arrived = [c.at for c in posts(deps)]
    assert recovery <= min(arrived) <= recovery + 900 and max(arrived) <= recovery + 960


def test_unavailable_slack_is_waited_for_as_long_as_the_queue_keeps_alerts() -> None:
    deps = bench()
    deps.slack.script(WEBHOOK, *[UNAVAILABLE] * 5)
    enqueue(deps, alert(deps), destination="default", attempt=300, since=deps.clock() - RETRY_FOR_SECONDS + 120)
    assert slack_send(deps)["retried"] == 1
    deps.manual_clock.advance(900)
    assert slack_send(deps)["dead_lettered"] == 1
    [kept] = stored(deps)
    assert "Slack was unavailable for 14 days" in kept["reason"]
    assert json.loads(kept["body"])["since"] == pytest.approx(deps.clock() - 900 - RETRY_FOR_SECONDS + 120, abs=1)


def test_an_unknown_error_answer_is_tried_a_few_times_then_kept() -> None:
    deps = bench()
    use_bot(deps)
    deps.slack.script(BOT_TOKEN, *[Delivery("retry", "chat.postMessage failed: HTTP 200 something_new",
                                            code="something_new")] * 50)
    enqueue(deps, alert(deps))
    for _ in range(20):
        slack_send(deps)
        deps.manual_clock.advance(900)
    # The alert, then the operational alert about its dead letter (only stored: no loop).
    assert len(deps.slack.calls) == 2 * MAX_ATTEMPTS
    kept = [deps.archive.json(k) for k in deps.archive.list_keys("dead-letter/slack/")]
    assert len(kept) == 2
    assert all(f"gave up after {MAX_ATTEMPTS} unexpected answers" in s["reason"] for s in kept)


def test_a_permanent_refusal_is_kept_not_retried() -> None:
    deps = bench()
    outcome = alert(deps)
    deps.slack.script(WEBHOOK, Delivery("permanent", "webhook answered 400 invalid_blocks", code="invalid_blocks"))
    enqueue(deps, outcome, alert(deps, "bob", "sg-0b2"))
    counts = slack_send(deps)
    assert counts["dead_lettered"] == 1 and counts["posted"] == 1, "a refused payload stops no other alert"
    [kept] = stored(deps)
    assert "invalid_blocks" in kept["reason"]
    assert json.loads(kept["body"])["outcome"]["outcome_id"] == outcome.outcome_id
    assert deps.archive.list_keys("dead-letter/slack/")[0].startswith("dead-letter/slack/2024/5/1/")
    deps.manual_clock.advance(3600)
    slack_send(deps)
    assert [c.answer.status for c in deps.slack.calls] == ["permanent", "ok", "ok"], "and the dead letter's alert"
    assert "dead letter" in posts(deps)[-1].payload["text"] and depth(deps) == 0


def test_a_revoked_webhook_is_called_once_per_run() -> None:
    deps = bench()
    deps.slack.script(WEBHOOK, Delivery("permanent", "webhook answered 404 no_service", code="no_service",
                                        whole_destination=True))
    enqueue(deps, alert(deps, "alice"), alert(deps, "bob", "sg-0b2"), alert(deps, "carol", "sg-0c3"))
    counts = slack_send(deps)
    assert counts["dead_lettered"] == 3 and len(deps.slack.calls) == 1
    assert len(deps.archive.list_keys("dead-letter/slack/")) == 3, "one archive object per alert, none overwritten"


def test_unreadable_jobs_and_lost_destinations_are_kept() -> None:
    deps = bench()
    deps.queue("slack_queue").send("not json at all")
    deps.queue("slack_queue").send({"outcome": {"kind": "manual_change"}})
    enqueue(deps, alert(deps), destination="renamed-since")
    enqueue(deps, alert(deps, "bob"), attempt="inf")
    assert slack_send(deps)["dead_lettered"] >= 4
    reasons = sorted(s["reason"] for s in stored(deps))
    assert reasons[0].startswith("destination 'renamed-since' is not configured")
    assert all(r.startswith("unreadable Slack job") for r in reasons[1:])
    every_minute(deps, 10)
    assert depth(deps) == 0 and any("dead letter" in c.payload["text"] for c in posts(deps))


def test_no_destination_at_all_keeps_alerts() -> None:
    deps = bench(slack_secret="")
    enqueue(deps, alert(deps))
    assert slack_send(deps)["dead_lettered"] >= 1
    assert "no Slack destination" in stored(deps)[0]["reason"]


def test_an_unreadable_secret_is_retried() -> None:
    deps = bench(settings={"destinations": [{"name": "ops", "type": "webhook", "secret": "ops"}]})
    deps.secrets.unreadable.add("ops")
    enqueue(deps, alert(deps))
    assert slack_send(deps)["retried"] == 1 and deps.slack.calls == [] and stored(deps) == []
    deps.secrets.unreadable.clear()
    deps.manual_clock.advance(30)
    assert slack_send(deps)["posted"] == 1 and len(posts(deps, hook("ops"))) == 1


# --------------------------------------------------------------------------------------------
# Pacing, budget, grouping, bursts


def test_pacing_is_one_call_per_second_per_destination() -> None:
    deps = bench(settings={"destinations": [
        {"name": "ops", "type": "webhook", "secret": "ops"}, {"name": "sec", "type": "webhook", "secret": "sec"}]})
    enqueue(deps, *(alert(deps, f"user{i}", f"sg-{i}") for i in range(5)))
    assert slack_send(deps)["messages"] == 10
    for name in ("ops", "sec"):
        times = [c.at for c in posts(deps, hook(name))]
        assert len(times) == 5 and all(b - a >= 1.0 for a, b in itertools.pairwise(times)), times
    every = [c.at for c in posts(deps)]
    assert max(every) - min(every) < 9, "pacing is per destination, not global"


def test_a_run_stops_calling_slack_when_its_budget_is_spent() -> None:
    deps = bench()
    enqueue(deps, *(alert(deps, f"user{i}", f"sg-{i}") for i in range(60)))
    first = slack_send(deps)
    assert 0 < first["messages"] < 60 and first["deferred"] == 60 - first["messages"]
    assert depth(deps) == first["deferred"]
    deps.manual_clock.advance(60)
    second = slack_send(deps)
    assert first["messages"] + second["messages"] == 60 and second["duplicates"] == 0
    assert all(b.at - a.at >= 1.0 for a, b in itertools.pairwise(posts(deps)))


def test_alerts_of_one_principal_in_one_run_are_one_message() -> None:
    deps = bench()
    enqueue(deps, alert(deps, "alice", "sg-0a1"), alert(deps, "bob", "sg-0b9"), alert(deps, "alice", "sg-0a2"),
            alert(deps, "alice", "sg-0a3"))
    counts = slack_send(deps)
    assert counts["posted"] == 4 and counts["messages"] == 2
    digest = next(c for c in posts(deps) if "alice" in c.payload["text"])
    assert digest.payload["blocks"][0]["text"]["text"].endswith("alice changed 3 resources by hand")


def test_a_burst_is_held_until_the_window_ends_then_digested() -> None:
    deps = bench()
    start = deps.clock()
    enqueue(deps, alert(deps, "alice", "sg-0a1"))
    slack_send(deps)
    deps.manual_clock.advance(60)
    enqueue(deps, alert(deps, "alice", "sg-0a2"))
    assert slack_send(deps)["held"] == 1
    deps.manual_clock.advance(60)
    enqueue(deps, alert(deps, "alice", "sg-0a3"), alert(deps, "bob", "sg-0b1"))
    counts = slack_send(deps)
    assert counts["held"] == 1 and counts["messages"] == 1, "bob is not held by alice's burst"
    every_minute(deps, 2)
    assert len(posts(deps)) == 2
    every_minute(deps, 1)
    assert len(posts(deps)) == 3 and posts(deps)[-1].at >= start + 300
    assert "alice changed 2 resources" in posts(deps)[-1].payload["text"]


def test_a_burst_of_fifty_alerts_costs_at_most_three_posts() -> None:
    deps = bench()
    ids = []
    for minute in range(10):
        batch = [alert(deps, "terraform-human", f"sg-{minute}-{i}") for i in range(5)]
        ids += [o.outcome_id for o in batch]
        enqueue(deps, *batch)
        slack_send(deps)
        deps.manual_clock.advance(60)
    every_minute(deps, 10)
    assert len(posts(deps)) <= 3
    assert all(marker(deps, "default", i) is not None for i in ids) and depth(deps) == 0


def test_bot_burst_updates_the_first_message_with_a_counter() -> None:
    deps = bench()
    use_bot(deps)
    enqueue(deps, alert(deps, "alice", "sg-0a1"))
    slack_send(deps)
    deps.manual_clock.advance(60)
    enqueue(deps, alert(deps, "alice", "sg-0a2"))
    assert slack_send(deps)["updates"] == 1
    deps.manual_clock.advance(60)
    enqueue(deps, alert(deps, "alice", "sg-0a3"), alert(deps, "alice", "sg-0a4"))
    assert slack_send(deps)["updates"] == 1
    first, second, third = posts(deps)
    assert [c.method for c in (first, second, third)] == ["chat.postMessage", "chat.update", "chat.update"]
    assert second.update_ts == third.update_ts == first.answer.ts
    assert second.channel == third.channel == BOT_CHANNEL
    assert "*2* in this burst so far" in text(second) and "*4* in this burst so far" in text(third)
    assert "alice changed 4 resources" in third.payload["text"]
    deps.manual_clock.advance(300)
    enqueue(deps, alert(deps, "alice", "sg-0a5"))
    slack_send(deps)
    assert [c.method for c in posts(deps)][-1] == "chat.postMessage"


def test_bot_update_of_a_deleted_message_posts_a_new_one() -> None:
    deps = bench()
    use_bot(deps)
    enqueue(deps, alert(deps, "alice", "sg-0a1"))
    slack_send(deps)
    deps.slack.messages.clear()  # someone deleted it in Slack
    deps.manual_clock.advance(60)
    enqueue(deps, alert(deps, "alice", "sg-0a2"))
    counts = slack_send(deps)
    assert counts["messages"] == 1 and counts["dead_lettered"] == 0
    assert [c.method for c in posts(deps)] == ["chat.postMessage", "chat.postMessage"]
    deps.manual_clock.advance(60)
    enqueue(deps, alert(deps, "alice", "sg-0a3"))
    slack_send(deps)
    assert posts(deps)[-1].method == "chat.update" and posts(deps)[-1].update_ts == posts(deps)[1].answer.ts


def test_webhook_escalation_inside_a_burst_is_posted_at_once() -> None:
    deps = bench()
    start = deps.clock()
    enqueue(deps, failed_signin(deps, "alice", 1), failed_signin(deps, "alice", 2))
    slack_send(deps)
    deps.manual_clock.advance(60)
    enqueue(deps, failed_signin(deps, "alice", 3))
    assert slack_send(deps)["held"] == 1
    deps.manual_clock.advance(60)
    enqueue(deps, world_open(deps, "alice"))
    counts = slack_send(deps)
    assert counts["messages"] == 1 and counts["held"] == 0
    assert posts(deps)[-1].payload["text"].startswith("[high]")
    assert posts(deps)[-1].at - start == pytest.approx(120, abs=2), "not held until the window ends"
    deps.manual_clock.advance(60)
    enqueue(deps, alert(deps, "alice", "sg-0a4"))
    assert slack_send(deps)["held"] == 1
    every_minute(deps, 10)
    assert len(posts(deps)) == 3 and all(r in text(posts(deps)[-1]) for r in ("signin-3", "sg-0a4"))


def test_bot_escalation_is_a_new_message_not_an_edit() -> None:
    deps = bench()
    use_bot(deps)
    for outcome in (failed_signin(deps, "alice", 1), alert(deps, "alice", "sg-0a2"), failed_signin(deps, "alice", 2),
                    world_open(deps, "alice"), alert(deps, "alice", "sg-0a5")):
        enqueue(deps, outcome)
        slack_send(deps)
        deps.manual_clock.advance(60)
    assert [c.method for c in posts(deps)] == [
        "chat.postMessage", "chat.postMessage", "chat.update", "chat.postMessage", "chat.update"]
    assert posts(deps)[-1].update_ts == posts(deps)[3].answer.ts, "the burst continues from the escalation"
    assert "thread_ts" not in posts(deps)[3].payload


# --------------------------------------------------------------------------------------------
# Routing


ROUTED = {
    "destinations": [{"name": n, "type": "webhook", "secret": n} for n in ("ops", "sec", "audit")],
    "routes": [{"accounts": ["111111111111"], "destinations": ["ops"]},
               {"kinds": ["console_signin"], "destinations": ["sec"]},
               {"min_severity": "high", "destinations": ["sec", "audit"]}],
}


def test_routing_by_account_kind_and_severity() -> None:
    deps = bench(settings=ROUTED)
    other = alert(deps, "olga", "sg-0f1", account="111111111111")
    signin = alert(deps, "carol", "signin-1", kind="console_signin")
    stop = alert(deps, "dave", "trail-1", kind="api_call", event_name="StopLogging")
    medium = alert(deps, "erin", "sg-0e1")
    enqueue(deps, other, signin, stop, medium)
    slack_send(deps)

    def ids(name: str) -> list[str]:
        return sorted(o.outcome_id for o in (other, signin, stop, medium) for c in posts(deps, hook(name))
                      if o.outcome_id in text(c))

    assert ids("ops") == [other.outcome_id]
    assert ids("sec") == sorted([signin.outcome_id, stop.outcome_id])
    assert ids("audit") == [stop.outcome_id]
    assert depth(deps) == 0


def test_an_alert_routed_to_two_destinations_is_posted_to_each_once() -> None:
    deps = bench(settings=ROUTED)
    stop = alert(deps, "dave", "trail-1", kind="api_call", event_name="StopLogging")
    deps.slack.script(hook("audit"), Delivery("retry", "webhook rate limited (429)", 30.0, code="rate_limited",
                                              unavailable=True))
    enqueue(deps, stop)
    slack_send(deps)
    assert len(posts(deps, hook("sec"))) == 1 and not posts(deps, hook("audit"))
    enqueue(deps, stop)
    every_minute(deps, 2)
    assert len(posts(deps, hook("sec"))) == 1 and len(posts(deps, hook("audit"))) == 1 and depth(deps) == 0


def test_an_idle_run_reads_nothing_but_the_queue() -> None:
    deps = bench()
    assert slack_send(deps)["posted"] == 0
    assert deps.secrets.reads == [] and deps._settings is None and deps.state.items == {}


# --------------------------------------------------------------------------------------------
# Whole timelines on the fakes (the same as tests/test_threading.py, which runs them through the real
# handlers on moto and the Slack stand-in)

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
PUBLIC_03 = Path(__file__).resolve().parents[3] / "shared" / "scenarios" / \
    "public-03-untrusted-role-session-named-terraform.json"


def test_account_aliases_from_settings_appear_in_alerts() -> None:
    story = demo_story()
    story["settings"]["account_aliases"] = {STORY_ACCOUNT: "payments-prod"}
    result = replay(story)
    assert result.slack and all("payments-prod (" + STORY_ACCOUNT in text(c) for c in result.slack)


def new_messages(calls: list[SlackCall]) -> list[SlackCall]:
    """Messages people are notified of: posts, not edits nor thread replies kept out of the channel."""
    return [c for c in calls if c.method != "chat.update"
            and (not c.payload.get("thread_ts") or c.payload.get("reply_broadcast") in (True, "true"))]


@pytest.mark.parametrize("name", ["own-25-world-open-group-inside-a-burst-of-tag-changes",
                                  "own-26-bot-escalation-is-a-new-message-not-an-edit"])
def test_an_escalation_inside_a_burst_is_a_new_message_at_once(name: str) -> None:
    story = json.loads((SCENARIOS / f"{name}.json").read_text())
    result = replay(story)
    fresh = new_messages(result.slack)
    assert len(fresh) >= story["expect"]["min_slack_messages"]
    assert len(result.slack) <= story["expect"]["max_slack_messages"]
    [group] = [o for o in result.outcomes if o["resource_type"] == "AWS::EC2::SecurityGroup"]
    [escalation] = [c for c in fresh if group["resource_id"] in text(c)]
    assert escalation.payload["text"].startswith("[high]")
    decided = parse_time(group["first_at"])
    assert decided is not None and 0 <= escalation.at - decided.timestamp() <= 60, (
        "posted in the tick it was decided, not held for the burst's digest")


@pytest.mark.skipif(not PUBLIC_03.exists(), reason="../shared/scenarios is not beside the clone")
def test_config_diff_of_an_alerted_call_is_threaded_under_it_for_bots() -> None:
    story = json.loads(PUBLIC_03.read_text())
    story["settings"]["destinations"] = [
        {"name": "ops", "type": "bot", "secret": "mcd-test/bot-token", "channel": "C0OPS"}]
    result = replay(story, secrets={"mcd-test/bot-token": "xoxb-test-token"})
    assert len(result.slack) == 2
    first, second = (c.payload for c in result.slack)
    assert "ReplaceRoute" in json.dumps(first) and "thread_ts" not in first
    assert second.get("thread_ts") == result.slack[0].answer.ts, "a reply in the api_call's thread"
    assert "rtb-091287e7d7756da16" in json.dumps(second)


# --------------------------------------------------------------------------------------------
# Early alerts (issue 15): told from the stream, completed by the Config path

TAG_DIFF = {"path": "Tags.env", "change_type": "UPDATE", "previous": "dev", "updated": "prod"}
EARLY_HOOK = {"name": "ops", "type": "webhook", "secret": "ops", "early_alerts": True}


def early(deps: MemoryDeps, principal: str = "alice", resource: str = "sg-0a1", **fields: Any) -> Outcome:
    """The early alert of the call behind ``change(deps, principal, resource)`` (the same event id)."""
    return alert(deps, principal, resource, outcome_id=f"ct:ev-{resource}", event_name="CreateTags",
                 change_type=None, extra={"early": True, "config_types": ["AWS::EC2::*"]}, **fields)


def change(deps: MemoryDeps, principal: str = "alice", resource: str = "sg-0a1", **fields: Any) -> Outcome:
    """The ``manual_change`` the Config path decides for that call: a tag changed."""
    return alert(deps, principal, resource, event_name="CreateTags", changed_properties=(TAG_DIFF,), **fields)


def use_early_bot(deps: MemoryDeps) -> None:
    use_bot(deps)
    deps.settings_document["destinations"][0]["early_alerts"] = True


def test_early_alerts_go_only_to_destinations_that_ask_for_them(caplog: pytest.LogCaptureFixture) -> None:
    deps = bench(settings={"destinations": [EARLY_HOOK, {"name": "sec", "type": "webhook", "secret": "sec"}]})
    enqueue(deps, early(deps))
    assert slack_send(deps)["early"] == 1
    assert len(posts(deps, hook("ops"))) == 1 and posts(deps, hook("sec")) == []
    assert marker(deps, "ops", "ct:ev-sg-0a1")["early"] == "1"
    plain = bench()  # the stage's default webhook only: nothing asks for early alerts
    enqueue(plain, early(plain))
    with caplog.at_level(logging.INFO, logger="mcd.slack"):
        slack_send(plain)
    assert posts(plain) == [] and stored(plain) == [] and depth(plain) == 0
    assert any(json.loads(r.getMessage())["event"] == "early_alert_not_routed" for r in caplog.records)


def test_an_early_alert_is_posted_once_and_never_late() -> None:
    deps = bench(settings={"destinations": [EARLY_HOOK]})
    enqueue(deps, early(deps), early(deps))
    slack_send(deps)
    deps.manual_clock.advance(60)
    enqueue(deps, early(deps))
    assert slack_send(deps)["duplicates"] == 1 and len(posts(deps)) == 1
    late = early(deps, resource="sg-0b2")
    deps.manual_clock.advance(601)  # Slack was away: by now the Config path tells the change
    enqueue(deps, late)
    assert slack_send(deps)["posted"] == 0 and depth(deps) == 0 and stored(deps) == []


def test_webhook_early_alert_is_followed_by_the_change_at_once_even_inside_a_burst() -> None:
    deps = bench(settings={"destinations": [EARLY_HOOK]})
    enqueue(deps, alert(deps, "alice", "sg-0a0"))  # opens alice's burst
    slack_send(deps)
    deps.manual_clock.advance(30)
    enqueue(deps, early(deps))
    assert slack_send(deps)["held"] == 0, "an early alert is never held by a burst"
    deps.manual_clock.advance(60)
    enqueue(deps, change(deps))
    counts = slack_send(deps)
    assert (counts["held"], counts["messages"]) == (0, 1)
    _, told, follow_up = posts(deps)
    assert told.payload["text"] == "[medium] alice called CreateTags on sg-0a1 (account 360172948513, eu-west-1)"
    assert "Early alert" in text(told) and "AWS::EC2::*" in text(told)
    assert "Follow-up" in text(follow_up) and "`ev-sg-0a1`" in text(follow_up) and "dev → prod" in shown(follow_up)


def test_webhook_change_after_its_calls_alert_names_it_and_waits_for_the_burst_when_early_alerts_are_off() -> None:
    deps = bench()
    enqueue(deps, alert(deps, "alice", "sg-0a1", kind="api_call", outcome_id="ct:ev-sg-0a1"))
    slack_send(deps)
    deps.manual_clock.advance(60)
    enqueue(deps, change(deps))
    assert slack_send(deps)["held"] == 1, "as before early alerts: the api_call's post opened alice's burst"
    every_minute(deps, 5)
    assert len(posts(deps)) == 2 and "Follow-up" in text(posts(deps)[-1])


def test_bot_early_alert_is_completed_in_place() -> None:
    deps = bench()
    use_early_bot(deps)
    enqueue(deps, early(deps))
    slack_send(deps)
    deps.manual_clock.advance(90)
    first_item = change(deps)
    enqueue(deps, first_item)
    counts = slack_send(deps)
    assert (counts["completed"], counts["updates"], counts["messages"]) == (1, 1, 0)
    told, completed = posts(deps)
    assert (told.method, completed.method) == ("chat.postMessage", "chat.update")
    assert completed.update_ts == told.answer.ts and "thread_ts" not in completed.payload
    assert "Early alert" not in text(completed) and "dev → prod" in shown(completed) and "Completed" in text(completed)
    assert completed.payload["text"].startswith("[medium] alice changed sg-0a1 by hand")
    assert marker(deps, "alerts-bot", first_item.outcome_id)["ts"] == told.answer.ts
    deps.manual_clock.advance(60)  # another item changed by the same call, a tick later: the same message
    enqueue(deps, change(deps, resource="sg-0a9", event_ids=("ev-sg-0a1",)))
    slack_send(deps)
    assert posts(deps)[-1].method == "chat.update" and posts(deps)[-1].update_ts == told.answer.ts
    assert "alice changed 2 resources by hand" in posts(deps)[-1].payload["text"]
    assert len(new_messages(posts(deps))) == 1


def test_a_completion_more_severe_than_the_early_alert_is_a_reply_shown_in_the_channel() -> None:
    deps = bench()
    use_early_bot(deps)
    enqueue(deps, early(deps))
    slack_send(deps)
    deps.manual_clock.advance(90)
    enqueue(deps, world_open(deps, "alice", "sg-0a1"))
    slack_send(deps)
    told, reply = posts(deps)
    assert reply.method == "chat.postMessage" and reply.payload["text"].startswith("[high]")
    assert (reply.payload["thread_ts"], reply.payload["reply_broadcast"]) == (told.answer.ts, True)


def test_completion_of_a_deleted_early_message_is_a_new_message() -> None:
    deps = bench()
    use_early_bot(deps)
    enqueue(deps, early(deps))
    slack_send(deps)
    deps.slack.messages.clear()  # someone deleted it in Slack
    deps.manual_clock.advance(90)
    completion = change(deps)
    enqueue(deps, completion)
    assert slack_send(deps)["dead_lettered"] == 0
    last = posts(deps)[-1]
    assert last.method == "chat.postMessage" and "thread_ts" not in last.payload and "dev → prod" in shown(last)
    assert marker(deps, "alerts-bot", completion.outcome_id) is not None and depth(deps) == 0


@pytest.mark.parametrize("kind", ["webhook", "bot"])
def test_an_early_alert_with_no_config_item_stands(kind: str) -> None:
    deps = bench(settings={"destinations": [EARLY_HOOK]})
    if kind == "bot":
        use_early_bot(deps)
    enqueue(deps, early(deps))
    slack_send(deps)
    every_minute(deps, 90)  # past the give-up time: no manual_change came
    (told,) = posts(deps)
    assert "Early alert" in text(told) and depth(deps) == 0
    if kind == "bot":
        assert deps.slack.messages[(told.answer.channel, told.answer.ts)] == told.payload


def shown(call: SlackCall) -> str:
    """A message's text as people read it (``text`` escapes non-ASCII characters)."""
    return json.dumps(call.payload, ensure_ascii=False)


# The whole path on the fakes: the call streamed at once, its Config item two minutes later.

STORY_GROUP = "sg-0e1a2b3c4d5e6f708"
STORY_ACCOUNT_ID = "123456789012"
TAGGING = {
    "eventVersion": "1.09", "eventTime": "2024-05-01T12:00:05Z", "eventSource": "ec2.amazonaws.com",
    "eventName": "CreateTags", "awsRegion": "us-east-1", "sourceIPAddress": "198.51.100.7",
    "userAgent": "aws-cli/2.15.0", "readOnly": False, "eventType": "AwsApiCall",
    "eventID": "5d0c1e2f-3a4b-4c5d-8e6f-7a8b9c0d1e2f", "recipientAccountId": STORY_ACCOUNT_ID,
    "userIdentity": {"type": "IAMUser", "arn": f"arn:aws:iam::{STORY_ACCOUNT_ID}:user/alice",
                     "accountId": STORY_ACCOUNT_ID, "userName": "alice"},
    "requestParameters": {"resourcesSet": {"items": [{"resourceId": STORY_GROUP}]},
                          "tagSet": {"items": [{"key": "env", "value": "prod"}]}},
}


def tagging_story(destination: dict[str, Any] | None, *, config_item: bool = True) -> dict[str, Any]:
    """Alice tags a group at 12:00:05; the record streams at 12:00:35; Config tells at 12:01:50 (or never)."""
    from memory_world import sg_item

    item = sg_item(STORY_GROUP, parse_time("2024-05-01T12:00:40Z"))
    item["configurationItemDiff"] = {"changeType": "UPDATE", "changedProperties": {
        "Tags.env": {"previousValue": "dev", "updatedValue": "prod", "changeType": "UPDATE"}}}
    bridged = {"version": "0", "id": "e1", "detail-type": "AWS API Call via CloudTrail", "source": "aws.ec2",
               "account": STORY_ACCOUNT_ID, "time": TAGGING["eventTime"], "region": "us-east-1", "resources": [],
               "detail": TAGGING}
    deliveries = [{"via": "eventbridge", "at": "2024-05-01T12:00:35Z", "event": bridged}]
    if config_item:
        deliveries.append({"via": "sns", "at": "2024-05-01T12:01:50Z", "message": item})
    return {"name": "early-tagging", "start": "2024-05-01T12:00:00Z", "end": "2024-05-01T13:35:00Z",
            "home_region": "us-east-1", "settings": {"destinations": [destination]} if destination else {},
            "deliveries": deliveries,
            "cloudtrail": [{"visible_at": "2024-05-01T12:20:05Z", "record": TAGGING,
                            "resources": [{"ResourceType": "AWS::EC2::SecurityGroup", "ResourceName": STORY_GROUP}]}]}


STORY_HOOK = {"name": "ops", "type": "webhook", "secret": "mcd-replay/slack-webhook"}
STORY_BOT = {"name": "ops", "type": "bot", "secret": "bot-token", "channel": "C0OPS"}


@pytest.mark.parametrize("destination, methods", [
    (None, ["webhook"]),
    (STORY_HOOK, ["webhook"]),
    ({**STORY_HOOK, "early_alerts": True}, ["webhook", "webhook"]),
    ({**STORY_BOT, "early_alerts": True}, ["chat.postMessage", "chat.update"]),
])
def test_early_alerts_change_messages_never_outcomes(destination: dict[str, Any] | None, methods: list[str]) -> None:
    result = replay(tagging_story(destination), secrets={"bot-token": "xoxb-test-token"})
    (outcome,) = result.outcomes
    assert (outcome["kind"], outcome["resource_id"], outcome["event_ids"]) == (
        "manual_change", STORY_GROUP, [TAGGING["eventID"]])
    assert [c.method for c in result.slack] == methods
    assert len(new_messages(result.slack)) == len(methods) - (methods[-1] == "chat.update")
    if len(methods) == 2:
        told, completed = result.slack
        assert "Early alert" in text(told) and told.at - 1714564835 < 60, "told within a minute of the stream"
        assert "dev → prod" in shown(completed) and "Early alert" not in text(completed)


def test_without_a_config_item_the_early_alert_stands_and_nothing_else_is_told() -> None:
    result = replay(tagging_story({**STORY_HOOK, "early_alerts": True}, config_item=False))
    assert result.outcomes == []
    (told,) = result.slack
    assert "alice called CreateTags" in told.payload["text"] and "Early alert" in text(told)
