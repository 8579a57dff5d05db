"""The Slack sender against moto and the real local Slack stand-in, on a simulated clock.

The stage's logic is checked on the fakes (``tests/stages/test_deliver_stage.py``: the long outage, the
run budget and the fifty-alert burst live there only); here, through real SQS, DynamoDB, S3 and HTTP,
what is checked: once-only posting, 429/5xx/timeouts/permanent refusals, pacing, grouping, bursts
(digest after the window for webhooks, ``chat.update`` for bot tokens), routing, timeouts on every
call, and that the webhook URL and bot token never leak (logs, outcomes, queue, archive, errors).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import secrets as random_tokens
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from delivery_fixtures import PREFIX, REGION, Bench, alert, failed_signin, open_bench, shared_standin, world_open

from chalicelib.adapters import secrets as secrets_mod
from chalicelib.adapters import slack as slack_api
from chalicelib.adapters.aws import ClientFactory
from chalicelib.adapters.secrets import Secret, SecretError, SecretReader
from chalicelib.core.severity import severity
from chalicelib.slack.render import render
from mcd_tools.slack_standin import SlackStandIn

HOOK = "/hooks/default"
POST = "/api/chat.postMessage"
UPDATE = "/api/chat.update"
BOT_CHANNEL = "C0ALERTS"
BOT_TOKEN = "xoxb-1111-2222-" + "t0k3n" * 4


@pytest.fixture(scope="module")
def standin() -> Iterator[SlackStandIn]:
    server = shared_standin()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def clients() -> ClientFactory:
    return ClientFactory(REGION)


@pytest.fixture
def bench(standin: SlackStandIn, clients: ClientFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[Bench]:
    with open_bench(monkeypatch, standin, clients) as opened:
        yield opened


def slack_events(caplog: pytest.LogCaptureFixture, event: str) -> list[dict[str, Any]]:
    found = []
    for record in caplog.records:
        try:
            data = json.loads(record.getMessage())
        except ValueError:
            continue
        if isinstance(data, dict) and data.get("event") == event:
            found.append({**data, "level": record.levelname})
    return found


def use_bot(bench: Bench, name: str = "alerts-bot", **settings: Any) -> None:
    ref = bench.put_parameter(f"/{PREFIX}/bot-token", json.dumps({"token": BOT_TOKEN}))
    bench.configure({"destinations": [{"name": name, "type": "bot", "secret": ref, "channel": BOT_CHANNEL}],
                     **settings})


def payload_text(message: dict[str, Any]) -> str:
    return json.dumps(message["payload"])


# --------------------------------------------------------------------------------------------
# Posting once


def test_a_post_is_made_once_and_marked(bench: Bench) -> None:
    outcome = alert()
    bench.enqueue(outcome)
    counts = bench.send()
    assert counts["posted"] == 1 and counts["messages"] == 1
    [message] = bench.messages("default")
    assert message["payload"]["text"] == render([outcome])["text"]
    assert bench.marker("default", outcome.outcome_id) is not None
    assert bench.queue_depth() == 0


def test_two_copies_of_one_alert_in_one_run_post_once(bench: Bench) -> None:
    outcome = alert()
    bench.enqueue(outcome, outcome)
    counts = bench.send()
    assert counts["duplicates"] == 1
    [message] = bench.messages()
    assert message["payload"]["text"] == render([outcome])["text"]  # not a digest of the alert twice
    assert bench.queue_depth() == 0


def test_redelivery_after_posting_is_silent(bench: Bench) -> None:
    outcome = alert()
    bench.enqueue(outcome)
    bench.send()
    bench.advance(60)
    bench.enqueue(outcome)  # emit ran again (at-least-once)
    bench.enqueue(outcome, destination="default", attempt=1)  # a requeued copy
    counts = bench.send()
    assert counts["duplicates"] == 2 and counts["posted"] == 0
    assert len(bench.messages()) == 1
    assert bench.queue_depth() == 0


# --------------------------------------------------------------------------------------------
# Failures: 429, 5xx, timeouts, permanent refusals


@pytest.mark.parametrize("kind", ["webhook", "bot"])
def test_rate_limit_waits_retry_after_and_drops_nothing(bench: Bench, kind: str) -> None:
    if kind == "bot":
        use_bot(bench)
        bench.standin.fail(POST, 429, json.dumps({"ok": False, "error": "ratelimited"}), {"Retry-After": "120"})
    else:
        bench.standin.fail(HOOK, 429, "rate_limited", {"Retry-After": "120"})
    start = bench.now()
    bench.enqueue(alert("alice"), alert("bob", "sg-0b2"), alert("carol", "sg-0c3"))
    counts = bench.send()
    assert bench.standin.requests == 1, "no further call to a rate-limited destination in the same run"
    assert counts["retried"] == 3 and not bench.messages()
    assert bench.queue_depth() == 3
    bench.advance(119)
    assert bench.send()["posted"] == 0 and bench.standin.requests == 1
    bench.advance(1)
    assert bench.send()["posted"] == 3
    assert len(bench.messages()) == 3
    assert min(bench.arrivals()) >= start + 120
    assert bench.queue_depth() == 0 and bench.dead_letters() == []


def test_server_errors_back_off_then_post(bench: Bench, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="mcd")
    bench.standin.fail(HOOK, 500, "internal error", times=2)
    bench.enqueue(alert())
    assert bench.send()["retried"] == 1
    bench.advance(29)
    bench.send()
    assert bench.standin.requests == 1, "backed off 30 s"
    bench.advance(1)
    assert bench.send()["retried"] == 1 and bench.standin.requests == 2
    bench.advance(59)
    bench.send()
    assert bench.standin.requests == 2, "then 60 s"
    bench.advance(1)
    assert bench.send()["posted"] == 1
    assert len(bench.messages()) == 1 and bench.queue_depth() == 0
    retries = slack_events(caplog, "slack_retry")
    assert [(r["attempt"], r["delay_seconds"]) for r in retries] == [(1, 30.0), (2, 60.0)]


def test_backoff_doubles_to_fifteen_minutes_and_never_overflows() -> None:
    from chalicelib.stages.deliver import backoff_seconds

    assert [backoff_seconds(n) for n in range(1, 8)] == [30, 60, 120, 240, 480, 900, 900]
    assert backoff_seconds(10_000_000) == 900


def test_unavailable_slack_is_waited_for_as_long_as_the_queue_keeps_alerts(bench: Bench) -> None:
    from chalicelib.stages.deliver import RETRY_FOR_SECONDS

    bench.standin.fail(HOOK, 503, "unavailable", times=5)
    bench.enqueue(alert("alice"), destination="default", attempt=300, since=bench.now() - RETRY_FOR_SECONDS + 120)
    assert bench.send()["retried"] == 1, "attempt 300 is no reason to give up while Slack is merely down"
    bench.advance(900)
    assert bench.send()["dead_lettered"] == 1
    [(_, stored)] = bench.dead_letters()
    assert "Slack was unavailable for 14 days" in stored["reason"]
    assert json.loads(stored["body"])["since"] == pytest.approx(bench.now() - 900 - RETRY_FOR_SECONDS + 120, abs=1)


def test_an_unknown_error_answer_is_tried_a_few_times_then_kept_in_s3(bench: Bench) -> None:
    from chalicelib.stages.deliver import MAX_ATTEMPTS

    use_bot(bench)
    bench.standin.fail(POST, 200, json.dumps({"ok": False, "error": "something_new"}), times=50)
    bench.enqueue(alert())
    for _ in range(20):
        bench.send()
        bench.advance(900)
    # The alert, then the operational alert about its dead letter (which is only stored: no loop).
    assert bench.standin.requests == 2 * MAX_ATTEMPTS
    stored = [s for _, s in bench.dead_letters()]
    assert len(stored) == 2
    assert all(f"gave up after {MAX_ATTEMPTS} unexpected answers" in s["reason"] for s in stored)
    assert all("something_new" in s["reason"] for s in stored)


def test_refused_connections_and_slack_internal_errors_count_as_unavailable() -> None:
    closed = slack_api.post_webhook(Secret("http://127.0.0.1:9/hooks/x"), {"text": "x"})
    assert closed.status == "retry" and closed.unavailable
    assert slack_api._classify_webhook(502, "bad gateway", {}).unavailable
    assert not slack_api._classify_webhook(400, "invalid_blocks", {}).unavailable
    assert slack_api._classify_webhook(429, "", {"Retry-After": "inf"}).retry_after == 30.0
    assert slack_api._classify_webhook(429, "", {"Retry-After": "99999"}).retry_after == 3600.0


@pytest.mark.parametrize("kind", ["webhook", "bot"])
def test_timeout_is_retried_not_lost(bench: Bench, kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(slack_api, "TIMEOUT_SECONDS", 0.2)
    if kind == "bot":
        use_bot(bench)
        bench.standin.fail(POST, 200, json.dumps({"ok": True, "ts": "1.0", "channel": BOT_CHANNEL}), delay=0.5)
    else:
        bench.standin.fail(HOOK, 200, "ok", delay=0.5)
    bench.enqueue(alert())
    counts = bench.send()
    assert counts["retried"] == 1 and not bench.messages()
    assert bench.queue_depth() == 1
    monkeypatch.setattr(slack_api, "TIMEOUT_SECONDS", 5)  # a loaded machine must not time out the retry
    bench.advance(30)
    assert bench.send()["posted"] == 1
    assert len(bench.messages()) == 1 and bench.dead_letters() == []


PERMANENT = [
    ("webhook", HOOK, 404, "no_service", "404 no_service"),
    ("webhook", HOOK, 403, "invalid_token", "403 invalid_token"),
    ("webhook", HOOK, 410, "channel_is_archived", "410 channel_is_archived"),
    ("webhook", HOOK, 400, "invalid_blocks", "400 invalid_blocks"),
    ("bot", POST, 200, json.dumps({"ok": False, "error": "invalid_auth"}), "invalid_auth"),
    ("bot", POST, 200, json.dumps({"ok": False, "error": "channel_not_found"}), "channel_not_found"),
    ("bot", POST, 403, json.dumps({"ok": False, "error": "invalid_token"}), "invalid_token"),
]


@pytest.mark.parametrize(("kind", "path", "status", "body", "shown"), PERMANENT,
                         ids=[f"{p[0]}-{p[2]}-{p[4].split()[-1]}" for p in PERMANENT])
def test_permanent_refusals_are_dead_lettered_not_retried(bench: Bench, caplog: pytest.LogCaptureFixture,
                                                          kind: str, path: str, status: int, body: str,
                                                          shown: str) -> None:
    caplog.set_level(logging.INFO, logger="mcd")
    if kind == "bot":
        use_bot(bench)
    outcome = alert()
    bench.standin.fail(path, status, body)
    bench.enqueue(outcome)
    assert bench.send()["dead_lettered"] >= 1
    [(key, stored)] = bench.alert_dead_letters()
    assert key.startswith("dead-letter/slack/2024/10/29/")
    assert shown in stored["reason"]
    assert json.loads(stored["body"])["outcome"]["outcome_id"] == outcome.outcome_id
    [line] = [e for e in slack_events(caplog, "slack_dead_lettered") if e["outcome_ids"] == [outcome.outcome_id]]
    assert line["level"] == "ERROR" and shown in line["reason"] and line["keys"] == [key]
    bench.advance(3600)
    bench.send()
    # once for the alert, once for the operational alert about its dead letter (refused too: stored only)
    assert bench.standin.requests == 2, "not retried"
    assert bench.queue_depth() == 0
    assert all("dead letter" in m["payload"]["text"] for m in bench.messages()), "only the operational alert"


def test_a_revoked_webhook_is_called_once_per_run(bench: Bench) -> None:
    bench.standin.fail(HOOK, 404, "no_service")
    bench.enqueue(alert("alice"), alert("bob", "sg-0b2"), alert("carol", "sg-0c3"))
    counts = bench.send()
    assert counts["dead_lettered"] == 3 and bench.standin.requests == 1
    assert len(bench.dead_letters()) == 3, "one archive object per alert, none overwritten"


def test_a_refused_payload_does_not_stop_other_alerts(bench: Bench) -> None:
    bench.standin.fail(HOOK, 400, "invalid_blocks")
    bench.enqueue(alert("alice"), alert("bob", "sg-0b2"))
    counts = bench.send()
    assert counts["dead_lettered"] == 1 and counts["posted"] == 1


def test_unreadable_jobs_and_lost_destinations_are_kept_in_s3(bench: Bench) -> None:
    queue = bench.deps.queue("slack_queue")
    queue.send("not json at all")
    queue.send({"outcome": {"kind": "manual_change"}})  # no outcome_id / at
    bench.enqueue(alert(), destination="renamed-since")
    counts = bench.send()
    assert counts["dead_lettered"] >= 3
    reasons = sorted(body["reason"] for _, body in bench.alert_dead_letters())
    assert reasons[0].startswith("destination 'renamed-since' is not configured")
    assert all(r.startswith("unreadable Slack job") for r in reasons[1:])
    bench.every_minute(10)  # the operational alert about them (gathered with the others first)
    assert bench.queue_depth() == 0
    assert any("dead letter" in m["payload"]["text"] for m in bench.messages())


def test_no_destination_at_all_keeps_alerts_in_s3(bench: Bench) -> None:
    bench.env = dataclasses.replace(bench.env, slack_secret="")
    bench.deps = bench.new_deps()
    bench.enqueue(alert())
    assert bench.send()["dead_lettered"] >= 1
    [(_, body)] = bench.alert_dead_letters()
    assert "no Slack destination" in body["reason"]


def test_an_unreadable_secret_is_retried(bench: Bench) -> None:
    bench.configure({"destinations": [{"name": "ops", "type": "webhook", "secret": f"{PREFIX}/missing"}]})
    bench.enqueue(alert())
    assert bench.send()["retried"] == 1
    assert bench.dead_letters() == [] and bench.standin.requests == 0
    bench.put_secret(f"{PREFIX}/missing", json.dumps({"url": bench.standin.webhook_url("ops")}))
    bench.advance(30)
    assert bench.send()["posted"] == 1
    assert len(bench.messages("ops")) == 1


def test_a_render_failure_is_isolated(bench: Bench, monkeypatch: pytest.MonkeyPatch) -> None:
    import chalicelib.slack.render as slack_render

    real = slack_render.render

    def fragile(outcomes: Any, **kwargs: Any) -> Any:
        if any(o.principal_arn.endswith("/mallory") for o in outcomes):
            raise ValueError("boom")
        return real(outcomes, **kwargs)

    monkeypatch.setattr(slack_render, "render", fragile)
    bench.enqueue(alert("mallory"), alert("alice", "sg-0b2"))
    counts = bench.send()
    assert counts["dead_lettered"] == 1 and counts["posted"] == 1


# --------------------------------------------------------------------------------------------
# Pacing, grouping, bursts


def test_pacing_is_one_call_per_second_per_destination(bench: Bench) -> None:
    bench.configure({"destinations": [{"name": "ops", "type": "webhook", "secret": bench.webhook("ops")},
                                      {"name": "sec", "type": "webhook", "secret": bench.webhook("sec")}]})
    bench.enqueue(*(alert(f"user{i}", f"sg-{i}") for i in range(5)))
    counts = bench.send()
    assert counts["messages"] == 10
    for dest in ("ops", "sec"):
        times = bench.arrivals(dest)
        assert len(times) == 5
        assert all(b - a >= 1.0 for a, b in itertools.pairwise(times)), times
    every = bench.arrivals()
    assert max(every) - min(every) < 9, "pacing is per destination, not global"


def test_alerts_of_one_principal_in_one_run_are_one_message(bench: Bench) -> None:
    bench.enqueue(alert("alice", "sg-0a1"), alert("bob", "sg-0b9"), alert("alice", "sg-0a2"),
                  alert("alice", "sg-0a3"))
    counts = bench.send()
    assert counts["posted"] == 4 and counts["messages"] == 2
    digest = next(m for m in bench.messages() if "alice" in m["payload"]["text"])
    assert digest["payload"]["blocks"][0]["text"]["text"].endswith("alice changed 3 resources by hand")
    assert all(r in payload_text(digest) for r in ("sg-0a1", "sg-0a2", "sg-0a3"))


def test_a_burst_is_held_until_the_window_ends_then_digested(bench: Bench) -> None:
    start = bench.now()
    bench.enqueue(alert("alice", "sg-0a1"))
    bench.send()
    bench.advance(60)
    bench.enqueue(alert("alice", "sg-0a2"))
    assert bench.send()["held"] == 1
    bench.advance(60)
    bench.enqueue(alert("alice", "sg-0a3"), alert("bob", "sg-0b1"))
    counts = bench.send()
    assert counts["held"] == 1 and counts["messages"] == 1, "bob is not held by alice's burst"
    bench.every_minute(2)
    assert len(bench.messages()) == 2
    bench.every_minute(1)  # start + 300: the window is over
    assert len(bench.messages()) == 3
    digest = bench.messages()[-1]
    assert bench.arrivals()[-1] >= start + 300
    assert "alice changed 2 resources" in digest["payload"]["text"]
    assert "sg-0a2" in payload_text(digest) and "sg-0a3" in payload_text(digest)


def test_without_a_burst_window_nothing_is_held(bench: Bench) -> None:
    bench.configure({"burst_window_seconds": 0})
    bench.enqueue(alert("alice", "sg-0a1"))
    bench.send()
    bench.advance(60)
    bench.enqueue(alert("alice", "sg-0a2"))
    assert bench.send()["messages"] == 1


# --------------------------------------------------------------------------------------------
# Bot tokens: chat.postMessage, then chat.update during a burst


def test_bot_burst_updates_the_first_message_with_a_counter(bench: Bench) -> None:
    use_bot(bench)
    bench.enqueue(alert("alice", "sg-0a1"))
    bench.send()
    bench.advance(60)
    bench.enqueue(alert("alice", "sg-0a2"))
    assert bench.send()["updates"] == 1
    bench.advance(60)
    bench.enqueue(alert("alice", "sg-0a3"), alert("alice", "sg-0a4"))
    assert bench.send()["updates"] == 1
    first, second, third = bench.messages()
    assert [m["method"] for m in (first, second, third)] == ["chat.postMessage", "chat.update", "chat.update"]
    ts = f"{bench.arrivals()[0]:.6f}"  # the stand-in's ts of the first message
    assert second["payload"]["ts"] == third["payload"]["ts"] == ts
    assert second["payload"]["channel"] == third["payload"]["channel"] == BOT_CHANNEL
    assert "alice changed 2 resources" in second["payload"]["text"]
    assert "*2* in this burst so far" in payload_text(second)
    assert "alice changed 4 resources" in third["payload"]["text"]
    assert all(r in payload_text(third) for r in ("sg-0a1", "sg-0a2", "sg-0a3", "sg-0a4"))
    assert "*4* in this burst so far" in payload_text(third)
    assert bench.queue_depth() == 0
    bench.advance(300)  # the window is over: a new message
    bench.enqueue(alert("alice", "sg-0a5"))
    bench.send()
    assert [m["method"] for m in bench.messages()][-1] == "chat.postMessage"
    assert len(bench.messages()) == 4


def test_bot_update_of_a_deleted_message_posts_a_new_one(bench: Bench) -> None:
    use_bot(bench)
    bench.enqueue(alert("alice", "sg-0a1"))
    bench.send()
    bench.advance(60)
    bench.standin.fail(UPDATE, 200, json.dumps({"ok": False, "error": "message_not_found"}))
    bench.enqueue(alert("alice", "sg-0a2"))
    counts = bench.send()
    assert counts["messages"] == 1 and counts["dead_lettered"] == 0
    assert [m["method"] for m in bench.messages()] == ["chat.postMessage", "chat.postMessage"]
    bench.advance(60)
    bench.enqueue(alert("alice", "sg-0a3"))
    bench.send()
    last = bench.messages()[-1]
    assert last["method"] == "chat.update" and last["payload"]["ts"] == f"{bench.arrivals()[1]:.6f}"


def test_bot_update_rate_limited_is_retried(bench: Bench) -> None:
    use_bot(bench)
    bench.enqueue(alert("alice", "sg-0a1"))
    bench.send()
    bench.advance(60)
    bench.standin.fail(UPDATE, 429, json.dumps({"ok": False, "error": "ratelimited"}), {"Retry-After": "10"})
    bench.enqueue(alert("alice", "sg-0a2"))
    assert bench.send()["retried"] == 1
    bench.advance(10)
    assert bench.send()["updates"] == 1
    assert [m["method"] for m in bench.messages()] == ["chat.postMessage", "chat.update"]


def test_webhook_and_bot_in_one_burst_behave_each_their_way(bench: Bench) -> None:
    ref = bench.put_parameter(f"/{PREFIX}/bot-token", BOT_TOKEN)
    bench.configure({"destinations": [{"name": "hook", "type": "webhook", "secret": bench.webhook("hook")},
                                      {"name": "bot", "type": "bot", "secret": ref, "channel": BOT_CHANNEL}]})
    bench.enqueue(alert("alice", "sg-0a1"))
    bench.send()
    bench.advance(60)
    bench.enqueue(alert("alice", "sg-0a2"))
    counts = bench.send()
    assert counts["held"] == 1 and counts["updates"] == 1
    bench.every_minute(4)
    assert [m["method"] for m in bench.messages("hook")] == ["webhook", "webhook"]
    assert [m["method"] for m in bench.messages(f"bot:{BOT_CHANNEL}")] == ["chat.postMessage", "chat.update"]


# --------------------------------------------------------------------------------------------
# Escalation: something worse than what a burst's message shows is always a new message


def test_webhook_escalation_inside_a_burst_is_posted_at_once(bench: Bench) -> None:
    start = bench.now()
    bench.enqueue(failed_signin("alice", 1), failed_signin("alice", 2))
    bench.send()
    bench.advance(60)
    bench.enqueue(failed_signin("alice", 3))
    assert bench.send()["held"] == 1, "more of the same waits for the burst's digest"
    bench.advance(60)
    high = world_open("alice")
    assert severity(high) == "high"
    bench.enqueue(high)
    counts = bench.send()
    assert counts["messages"] == 1 and counts["held"] == 0
    escalation = bench.messages()[-1]
    assert escalation["payload"]["text"].startswith("[high]") and "sg-0open" in payload_text(escalation)
    assert bench.arrivals()[-1] - start == pytest.approx(120, abs=2), "not held until the window ends"
    bench.advance(60)
    bench.enqueue(alert("alice", "sg-0a4"))  # medium: below what the last message shows, so it waits again
    assert bench.send()["held"] == 1
    bench.every_minute(10)
    assert len(bench.messages()) == 3
    assert all(r in payload_text(bench.messages()[-1]) for r in ("signin-3", "sg-0a4"))
    assert bench.queue_depth() == 0 and bench.dead_letters() == []


def test_bot_escalation_is_a_new_message_not_an_edit(bench: Bench) -> None:
    use_bot(bench)
    bench.enqueue(failed_signin("alice", 1))
    bench.send()
    bench.advance(60)
    bench.enqueue(alert("alice", "sg-0a2"))  # medium > low: a new message too
    bench.send()
    bench.advance(60)
    bench.enqueue(failed_signin("alice", 2))  # low: edits the medium message in
    bench.send()
    bench.advance(60)
    bench.enqueue(world_open("alice"))  # high
    bench.send()
    bench.advance(60)
    bench.enqueue(alert("alice", "sg-0a5"))  # medium: edits the high message
    bench.send()
    methods = [m["method"] for m in bench.messages()]
    assert methods == ["chat.postMessage", "chat.postMessage", "chat.update", "chat.postMessage", "chat.update"]
    posted = [m for m in bench.messages() if m["method"] == "chat.postMessage"]
    assert posted[2]["payload"]["text"].startswith("[high]") and "thread_ts" not in posted[2]["payload"]
    last = bench.messages()[-1]
    high_ts = f"{bench.arrivals()[3]:.6f}"
    assert last["payload"]["ts"] == high_ts, "the burst continues from the escalation"
    assert last["payload"]["text"].startswith("[high]") and "sg-0open" in payload_text(last)
    assert "sg-0a5" in payload_text(last)


def test_a_thread_reply_worse_than_its_parent_is_broadcast(bench: Bench) -> None:
    use_bot(bench, burst_window_seconds=0)
    call = alert("alice", "sg-0open", kind="api_call", event_name="ModifySecurityGroupRules",
                 outcome_id="ct:ev-sg-0open")
    assert severity(call) == "medium"
    bench.enqueue(call)
    bench.send()
    bench.advance(300)
    same = alert("alice", "sg-0same", outcome_id="ci:same", event_ids=("ev-sg-0open",))
    bench.enqueue(same)
    bench.send()
    bench.advance(60)
    worse = world_open("alice", outcome_id="ci:worse", event_ids=("ev-sg-0open",))
    bench.enqueue(worse)
    bench.send()
    _parent, reply, escalation = bench.messages()
    assert reply["payload"]["thread_ts"] == escalation["payload"]["thread_ts"] == f"{bench.arrivals()[0]:.6f}"
    assert reply["payload"]["reply_broadcast"] in (False, "false", "0")
    assert escalation["payload"]["reply_broadcast"] in (True, "true", "1"), "a broadcast reply reaches the channel"


# --------------------------------------------------------------------------------------------
# State read back: an unusable item is ignored as if absent


def burst_key() -> str:
    return f"burst#default#{alert('alice').principal_arn}"


def recent(now: float) -> str:
    return f"{now - 30:.3f}"


BAD_BURSTS: dict[str, Any] = {  # id -> the record's fields, given the clock
    "at-inf": lambda now: {"at": "inf"}, "at-nan": lambda now: {"at": "nan"},
    "at-minus-inf": lambda now: {"at": "-inf"},
    "at-huge": lambda now: {"at": "1e308"}, "at-text": lambda now: {"at": "far-future"},
    "at-empty": lambda now: {"at": ""}, "at-negative": lambda now: {"at": "-5"},
    "at-a-day-ahead": lambda now: {"at": str(now + 86_400)}, "at-an-hour-ahead": lambda now: {"at": str(now + 3600)},
    "count-text": lambda now: {"at": recent(now), "count": "many"},
    "count-negative": lambda now: {"at": recent(now), "count": "-1"},
    "updates-float": lambda now: {"at": recent(now), "updates": "1e9"},
    "level-unknown": lambda now: {"at": recent(now), "level": "critical"},
    "ts-markup": lambda now: {"at": recent(now), "ts": "<!here>", "channel": "C0ALERTS"},
    "channel-space": lambda now: {"at": recent(now), "ts": "1.0", "channel": "C 1"},
}


@pytest.mark.parametrize("record", sorted(BAD_BURSTS))
@pytest.mark.parametrize("kind", ["webhook", "bot"])
def test_an_unusable_burst_record_never_holds_alerts_or_crashes(bench: Bench, caplog: pytest.LogCaptureFixture,
                                                                  record: str, kind: str) -> None:
    caplog.set_level(logging.INFO, logger="mcd")
    if kind == "bot":
        use_bot(bench)
        key = burst_key().replace("#default#", "#alerts-bot#")
    else:
        key = burst_key()
    bench.deps.state.put(key, "last", bench.now(), ttl_days=1, **BAD_BURSTS[record](bench.now()))
    bench.enqueue(alert("alice", "sg-0a2"))
    counts = bench.send()
    assert counts["messages"] == 1 and counts["held"] == 0 and counts["updates"] == 0
    assert [m["method"] for m in bench.messages()] in (["webhook"], ["chat.postMessage"])
    [ignored] = slack_events(caplog, "slack_state_ignored")
    assert ignored["item"] == "burst" and ignored["level"] == "WARNING"
    assert bench.queue_depth() == 0


def test_a_burst_record_from_before_levels_were_kept_still_works(bench: Bench) -> None:
    bench.deps.state.put(burst_key(), "last", bench.now(), ttl_days=1, at=f"{bench.now() - 60:.3f}", count="1")
    bench.enqueue(alert("alice", "sg-0a2"))  # medium above the assumed "low": posted rather than held
    assert bench.send()["messages"] == 1
    bench.advance(60)
    bench.enqueue(alert("alice", "sg-0a3"))
    assert bench.send()["held"] == 1


@pytest.mark.parametrize("field", ["attempt", "odd_answers"])
@pytest.mark.parametrize("value", ["inf", "nan", -1, True, 1.5, "x", [1]])
def test_unusable_job_counters_are_kept_in_s3(bench: Bench, field: str, value: Any) -> None:
    bench.enqueue(alert(), **{field: value})
    assert bench.send()["dead_lettered"] == 1
    [(_, stored)] = bench.dead_letters()
    assert stored["reason"].startswith("unreadable Slack job")


@pytest.mark.parametrize("since", ["inf", "nan", "1e300", "soon", -3, True])
def test_an_unusable_since_is_ignored(bench: Bench, since: Any) -> None:
    bench.standin.fail(HOOK, 503, "unavailable")
    bench.enqueue(alert(), since=since)
    assert bench.send()["retried"] == 1
    bench.advance(30)
    assert bench.send()["posted"] == 1 and bench.dead_letters() == []


def test_a_post_marker_with_an_unusable_ts_is_not_threaded_under(bench: Bench,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="mcd")
    use_bot(bench, burst_window_seconds=0)
    bench.deps.state.put("post#alerts-bot#ct:ev-sg-0a1", "posted", bench.now(), ts="<!channel>")
    bench.enqueue(alert("alice", "sg-0a1", outcome_id="ci:x"))
    assert bench.send()["messages"] == 1
    assert "thread_ts" not in bench.messages()[0]["payload"]
    assert slack_events(caplog, "slack_state_ignored")


# --------------------------------------------------------------------------------------------
# Routing


def routed_settings(bench: Bench) -> dict[str, Any]:
    return {
        "destinations": [{"name": n, "type": "webhook", "secret": bench.webhook(n)} for n in ("ops", "sec", "audit")],
        "routes": [
            {"accounts": ["111111111111"], "destinations": ["ops"]},
            {"kinds": ["console_signin"], "destinations": ["sec"]},
            {"min_severity": "high", "destinations": ["sec", "audit"]},
        ],
    }


def test_routing_by_account_kind_and_severity(bench: Bench, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="mcd")
    bench.configure(routed_settings(bench))
    other = alert("olga", "sg-0f1", account="111111111111")
    signin = alert("carol", "signin-1", kind="console_signin")
    stop = alert("dave", "trail-1", kind="api_call", event_name="StopLogging")
    medium = alert("erin", "sg-0e1")
    assert (severity(stop), severity(medium)) == ("high", "medium")
    bench.enqueue(other, signin, stop, medium)
    bench.send()

    def ids(dest: str) -> list[str]:
        return sorted(o.outcome_id for o in (other, signin, stop, medium) for m in bench.messages(dest)
                      if o.outcome_id in payload_text(m))

    assert ids("ops") == [other.outcome_id]
    assert ids("sec") == sorted([signin.outcome_id, stop.outcome_id])
    assert ids("audit") == [stop.outcome_id]
    assert [e["outcome_id"] for e in slack_events(caplog, "alert_not_routed")] == [medium.outcome_id]
    assert bench.queue_depth() == 0


def test_an_alert_routed_to_two_destinations_is_posted_to_each_once(bench: Bench) -> None:
    bench.configure(routed_settings(bench))
    stop = alert("dave", "trail-1", kind="api_call", event_name="StopLogging")
    bench.standin.fail("/hooks/audit", 429, "rate_limited", {"Retry-After": "30"})
    bench.enqueue(stop)
    bench.send()
    assert len(bench.messages("sec")) == 1 and not bench.messages("audit")
    bench.enqueue(stop)  # a redelivery of the same alert
    bench.every_minute(2)
    assert len(bench.messages("sec")) == 1 and len(bench.messages("audit")) == 1
    assert bench.queue_depth() == 0


# --------------------------------------------------------------------------------------------
# Timeouts on every call


def test_every_slack_and_aws_call_has_a_timeout(bench: Bench, monkeypatch: pytest.MonkeyPatch) -> None:
    import slack_sdk
    import slack_sdk.webhook

    made: list[tuple[str, Any, Any]] = []

    class Webhook(slack_sdk.webhook.WebhookClient):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            made.append(("webhook", self.timeout, self.retry_handlers))

    class Web(slack_sdk.WebClient):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            made.append(("web", self.timeout, self.retry_handlers))

    monkeypatch.setattr(slack_sdk.webhook, "WebhookClient", Webhook)
    monkeypatch.setattr(slack_sdk, "WebClient", Web)
    ref = bench.put_parameter(f"/{PREFIX}/bot-token", BOT_TOKEN)
    bench.configure({"destinations": [{"name": "hook", "type": "webhook", "secret": bench.webhook("hook")},
                                      {"name": "bot", "type": "bot", "secret": ref, "channel": BOT_CHANNEL}]})
    bench.enqueue(alert())
    bench.send()
    assert sorted(kind for kind, _, _ in made) == ["web", "webhook"]
    assert all(timeout == slack_api.TIMEOUT_SECONDS and 0 < timeout <= 10 for _, timeout, _ in made)
    assert all(handlers == [] for _, _, handlers in made), "retries go through the queue, not the SDK"
    for service in ("secretsmanager", "ssm", "sqs", "s3", "dynamodb"):
        config = bench.deps.clients.client(service).meta.config
        assert 0 < config.connect_timeout <= 10 and 0 < config.read_timeout <= 10, service


def test_the_api_url_must_be_slacks_except_locally(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MCD_STAGE", raising=False)
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    monkeypatch.delenv("MCD_SLACK_API_URL", raising=False)
    assert slack_api.api_base_url() == "https://slack.com/api/"
    monkeypatch.setenv("MCD_SLACK_API_URL", "http://127.0.0.1:8080/api")
    assert slack_api.api_base_url() == "http://127.0.0.1:8080/api/"
    monkeypatch.setenv("MCD_SLACK_API_URL", "https://slack-gov.com/api/")
    assert slack_api.api_base_url() == "https://slack-gov.com/api/"
    for bad in ("http://slack.example.com/api/", "ftp://127.0.0.1/", "https://user:pw@slack.com/api/",
                "https://slack.example.com/api/", "https://slack.com.evil.example/api/", "https://slack.com/apix/",
                "http://slack.com/api/", "https://slack.com:8443/api/"):
        monkeypatch.setenv("MCD_SLACK_API_URL", bad)
        with pytest.raises(slack_api.SlackConfigurationError):
            slack_api.api_base_url()
        result = slack_api.post_bot(Secret(BOT_TOKEN), "C1", {"text": "x"})
        assert result.status == "permanent" and result.whole_destination, bad
        assert "MCD_SLACK_API_URL" in result.detail and bad not in result.detail
    monkeypatch.setenv("MCD_SLACK_API_URL", "http://127.0.0.1:8080/api/")
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "mcd-prod-slack_send")
    with pytest.raises(slack_api.SlackConfigurationError):
        slack_api.api_base_url()


GOOD_WEBHOOKS = ["https://hooks.slack.com/services/T000/B000/XXXX", "https://hooks.slack-gov.com/services/T0/B0/X",
                 "https://HOOKS.slack.com/services/T000/B000/XXXX", "https://hooks.slack.com:443/services/T/B/X",
                 "https://hooks.slack.com/workflows/T0/A0/1/x"]
BAD_WEBHOOKS = ["https://evil.example/services/T/B/X", "https://hooks.slack.com.evil.example/services/T/B/X",
                "https://evil.example/https://hooks.slack.com/services/T/B/X", "http://hooks.slack.com/services/T/B/X",
                "https://user@hooks.slack.com/services/T/B/X", "https://hooks.slack.com:8443/services/T/B/X",
                "https://hooks.slack.com\\@evil.example/services/T/B/X", "https://hooks.slack.com/services/T/B/X#x",
                "https://hooks.slack.com /services/T/B/X", "https://slack.com/api/chat.postMessage", "hooks.slack.com",
                "https://hooks.slack.com", "xoxb-1234", ""]


@pytest.mark.parametrize("url", GOOD_WEBHOOKS)
def test_slack_webhook_urls_are_accepted_on_every_stage(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCD_STAGE", "prod")
    assert slack_api.usable_webhook_url(url)


@pytest.mark.parametrize("url", BAD_WEBHOOKS)
def test_other_webhook_urls_are_refused_on_every_stage(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for stage in ("prod", "local"):
        monkeypatch.setenv("MCD_STAGE", stage)
        assert not slack_api.usable_webhook_url(url)
        result = slack_api.post_webhook(Secret(url), {"text": "x"})
        assert result.status == "permanent" and result.whole_destination and result.code == "bad_url"
        assert not url or url not in result.detail


@pytest.mark.parametrize(("stage", "lambda_name", "local"), [
    (None, None, True),  # the replay, the tests, chalice local: not a deployed function
    ("local", None, True), ("LOCAL", "mcd-local-slack_send", True),
    (None, "mcd-prod-slack_send", False), ("prod", None, False), ("dev", None, False), ("replay", None, False),
])
def test_loopback_slack_only_on_the_local_stage(stage: str | None, lambda_name: str | None, local: bool,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in (("MCD_STAGE", stage), ("AWS_LAMBDA_FUNCTION_NAME", lambda_name)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    assert slack_api.local_stage() is local
    for url in ("http://127.0.0.1:8123/hooks/default", "http://localhost:8123/hooks/x", "https://[::1]:8/hooks/x"):
        assert slack_api.usable_webhook_url(url) is local
    assert slack_api.usable_api_url("http://127.0.0.1:8123/api/") is local


def test_a_deployed_function_refuses_a_loopback_webhook_and_keeps_the_alert(
        bench: Bench, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="mcd")
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "mcd-prod-slack_send")
    bench.enqueue(alert("alice"), alert("bob", "sg-0b2"))
    counts = bench.send()
    assert counts["dead_lettered"] == 2 and bench.standin.requests == 0
    reasons = {body["reason"] for _, body in bench.dead_letters()}
    assert all("refused to call the webhook" in r for r in reasons), reasons
    url = bench.standin.webhook_url("default")
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert bench.standin.base_url not in logged and all(url not in r for r in reasons)


def test_a_webhook_secret_that_is_not_a_url_is_refused_without_a_call() -> None:
    result = slack_api.post_webhook(Secret(BOT_TOKEN), {"text": "x"})
    assert result.status == "permanent" and result.whole_destination
    assert BOT_TOKEN not in result.detail
    result = slack_api.post_webhook(Secret("http://hooks.example.com/services/T/B/zzhidden"), {"text": "x"})
    assert result.status == "permanent" and "zzhidden" not in result.detail


# --------------------------------------------------------------------------------------------
# Secrets


def test_secret_repr_and_str_hide_the_value(caplog: pytest.LogCaptureFixture) -> None:
    secret = Secret(BOT_TOKEN)
    assert secret.reveal() == BOT_TOKEN
    shown = [repr(secret), str(secret), f"{secret}", "%s" % (secret,), "{}".format(secret),  # noqa: UP031, UP032 repr([secret]),
             repr({"token": secret})]
    with caplog.at_level(logging.DEBUG, logger="mcd"):
        logging.getLogger("mcd.test").debug("token %s %r", secret, secret)
    shown += [r.getMessage() for r in caplog.records]
    assert all(BOT_TOKEN not in text and "t0k3n" not in text for text in shown), shown
    assert not hasattr(secret, "__dict__")
    with pytest.raises(TypeError):
        json.dumps({"token": secret})


def test_secrets_are_cached_for_the_ttl_then_re_read(bench: Bench) -> None:
    name = bench.put_secret(f"{PREFIX}/rotating", json.dumps({"url": "https://hooks.slack.com/services/T/B/one"}))
    calls: list[str] = []

    def client(service: str) -> Any:
        calls.append(service)
        return bench.client(service)

    reader = SecretReader(client, bench.now)
    assert reader.read(name).reveal().endswith("/one")
    bench.put_secret(name, "https://hooks.slack.com/services/T/B/two")
    bench.advance(secrets_mod.TTL_SECONDS - 1)
    assert reader.read(name).reveal().endswith("/one")
    assert len(calls) == 1
    bench.advance(1)
    assert reader.read(name).reveal().endswith("/two"), "rotation works without a redeploy"
    assert len(calls) == 2


def test_ssm_references_and_json_values(bench: Bench) -> None:
    reader = SecretReader(bench.client, bench.now)
    assert reader.read(bench.put_parameter("/team/bot", BOT_TOKEN)).reveal() == BOT_TOKEN
    as_json = bench.put_parameter("/team/bot-json", json.dumps({"bot_token": BOT_TOKEN}))
    assert reader.read(as_json).reveal() == BOT_TOKEN
    assert reader.read(bench.put_parameter("/team/hook", json.dumps({"webhook_url": "https://h/x"}))).reveal() == (
        "https://h/x")
    bench.put_parameter("/team/odd", json.dumps({"password": BOT_TOKEN}))
    with pytest.raises(SecretError) as raised:
        reader.read("ssm:/team/odd")
    assert BOT_TOKEN not in str(raised.value) and "ssm:/team/odd" in str(raised.value)


def test_a_failed_re_read_keeps_the_previous_value_for_a_while(bench: Bench) -> None:
    name = bench.put_secret(f"{PREFIX}/flaky", BOT_TOKEN)
    reader = SecretReader(bench.client, bench.now)
    reader.read(name)
    bench.client("secretsmanager").delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
    bench.advance(secrets_mod.TTL_SECONDS + 10)
    assert reader.read(name).reveal() == BOT_TOKEN
    bench.advance(secrets_mod.STALE_SECONDS)
    with pytest.raises(Exception) as raised:
        reader.read(name)
    assert BOT_TOKEN not in str(raised.value)


def test_a_rotated_webhook_is_used_after_the_ttl(bench: Bench) -> None:
    bench.enqueue(alert("alice"))
    bench.send()
    bench.put_secret(bench.env.slack_secret, json.dumps({"url": bench.standin.webhook_url("rotated")}))
    bench.advance(secrets_mod.TTL_SECONDS)
    bench.enqueue(alert("bob", "sg-0b2"))
    bench.send()
    assert len(bench.messages("default")) == 1 and len(bench.messages("rotated")) == 1


OWN_SCENARIO: dict[str, Any] = {
    "name": "own-root-signin", "start": "2025-03-18T07:45:00Z", "end": "2025-03-18T08:20:00Z",
    "home_region": "us-east-1", "settings": {}, "cloudtrail": [],
    "deliveries": [
        {"at": f"2025-03-18T08:0{i}:54.000Z", "via": "eventbridge", "event": {
            "version": "0", "id": f"fdd8c5a5-d938-432c-8639-0f090dc528f{i}",
            "detail-type": "AWS Console Sign In via CloudTrail", "source": "aws.signin", "account": "587402196633",
            "time": f"2025-03-18T08:0{i}:13Z", "region": "us-east-1", "resources": [], "detail": {
                "eventVersion": "1.08", "userIdentity": {"type": "Root", "principalId": "587402196633",
                                                         "arn": "arn:aws:iam::587402196633:root",
                                                         "accountId": "587402196633"},
                "eventTime": f"2025-03-18T08:0{i}:13Z", "eventSource": "signin.amazonaws.com",
                "eventName": "ConsoleLogin", "awsRegion": "us-east-1", "sourceIPAddress": "192.0.2.9",
                "userAgent": "Mozilla/5.0", "requestParameters": None,
                "responseElements": {"ConsoleLogin": "Failure" if i else "Success"},
                "additionalEventData": {"MFAUsed": "No"}, "eventID": f"690de331-1674-4d30-b414-0597e75b043{i}",
                "readOnly": False, "eventType": "AwsConsoleSignIn", "recipientAccountId": "587402196633"}}}
        for i in range(3)
    ],
    "expect": {"outcomes": []},
}
PUBLIC_SCENARIO = (Path(__file__).resolve().parents[3] / "shared" / "scenarios"
                   / "public-10-console-signins-and-cloudwatch-logs-batches.json")


def leak_scenario() -> dict[str, Any]:
    """public-10 (sign-ins, API calls), or the demo story without ../shared, plus three root sign-ins a
    minute apart (a burst)."""
    from mcd_tools.story import demo_story

    own = json.loads(json.dumps(OWN_SCENARIO))
    if PUBLIC_SCENARIO.is_file():
        scenario = json.loads(PUBLIC_SCENARIO.read_text())
    else:  # move the sign-ins into the demo story's stretch of time
        scenario = demo_story()
        own = json.loads(json.dumps(OWN_SCENARIO).replace("2025-03-18T08:0", "2024-11-29T10:1"))
    scenario["deliveries"] += own["deliveries"]
    return scenario


class _Everything(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_a_full_replay_never_leaks_the_webhook_url_or_the_bot_token(monkeypatch: pytest.MonkeyPatch) -> None:
    from mcd_tools.replay import run

    scenario = leak_scenario()
    scenario["settings"] = {**scenario.get("settings", {}), "destinations": [
        {"name": "hook", "type": "webhook", "secret": "mcd-replay/slack-webhook"},
        {"name": "bot", "type": "bot", "secret": "ssm:/mcd-replay/slack-bot", "channel": BOT_CHANNEL}]}
    hook_part = "hooksecret" + random_tokens.token_hex(8)
    token = "xoxb-" + random_tokens.token_hex(12)
    needles: list[str] = [hook_part, token, token[5:]]
    handler = _Everything()
    names = ("mcd", "chalicelib", "botocore", "urllib3", "slack_sdk")
    loggers = [logging.getLogger(n) for n in names]
    saved = [(lg.level, lg.propagate) for lg in loggers]
    sent: list[str] = []
    seen: list[SlackStandIn] = []
    monkeypatch.setattr(slack_api, "TIMEOUT_SECONDS", 0.5)  # one scripted call below takes longer

    def prepare(ctx: Any) -> None:
        url = ctx.standin.webhook_url(f"T0LEAK/B0LEAK/{hook_part}")
        needles.append(url)
        clients = ctx.deps.clients
        clients.client("secretsmanager").put_secret_value(SecretId=ctx.deps.env.slack_secret,
                                                          SecretString=json.dumps({"url": url}))
        clients.client("ssm").put_parameter(Name="/mcd-replay/slack-bot", Type="SecureString",
                                            Value=json.dumps({"token": token}))
        monkeypatch.setenv("MCD_SLACK_API_URL", f"{ctx.standin.base_url}/api/")
        for service in ("sqs", "s3", "dynamodb"):
            clients.client(service).meta.events.register(
                f"before-call.{service}", lambda params, **kw: sent.append(repr(params)))
        hook_path = f"/hooks/T0LEAK/B0LEAK/{hook_part}"
        ctx.standin.fail(hook_path, 500, "oops")
        ctx.standin.fail(hook_path, 200, "ok", delay=1.5)  # a timeout
        ctx.standin.fail(hook_path, 400, "invalid_blocks")  # dead-lettered
        ctx.standin.fail(POST, 429, json.dumps({"ok": False, "error": "ratelimited"}), {"Retry-After": "5"})
        ctx.standin.fail(UPDATE, 500, json.dumps({"ok": False, "error": "internal_error"}))
        seen.append(ctx.standin)
        for lg in loggers:
            lg.setLevel(logging.DEBUG)
            lg.addHandler(handler)
            lg.propagate = False  # captured here; pytest's own capture would only slow this down

    try:
        result = run(scenario, prepare=prepare)
    finally:
        for lg, (level, propagate) in zip(loggers, saved):
            lg.removeHandler(handler)
            lg.setLevel(level)
            lg.propagate = propagate
    methods = {m["method"] for m in seen[0].messages}
    assert methods == {"webhook", "chat.postMessage", "chat.update"}, "every kind of call was made"
    assert any(r.name == "botocore.parsers" for r in handler.records), "response bodies were logged (but not those)"
    formatter = logging.Formatter("%(name)s %(message)s")
    logged = []
    for record in handler.records:
        logged.append(formatter.format(record))
        logged.append(repr(record.args))
    archive = [s for s in sent if "PutObject" in s or "dead-letter" in s]
    assert any("dead-letter/slack/" in s for s in archive), "the archive path was exercised"
    places = {"logs": logged, "outcomes": [json.dumps(result.outcomes)], "errors": result.errors,
              "sqs/s3/dynamodb requests": sent}
    for where, texts in places.items():
        for needle in needles:
            leaked = [t[:300] for t in texts if needle in t]
            assert not leaked, f"{needle[:12]}… leaked into {where}: {leaked[:2]}"
