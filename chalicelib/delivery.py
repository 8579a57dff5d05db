"""The Slack sender: route alerts, group them, pace them, post them once.

* Routing: settings name destinations (webhooks or bot tokens) and rules by account, kind and
  severity; with none configured, everything goes to the stage's default webhook secret.
* Grouping: alerts of one principal received together become one message; a principal who keeps
  changing things within ``burst_window_seconds`` of a post gets one digest when the window ends.
* Pacing: at most one post per second per destination; HTTP 429 leaves the alerts on the queue
  for Retry-After seconds; 5xx and timeouts back off; permanent refusals are dead-lettered.
* Once: a marker per destination and alert, written after the post, keeps redeliveries silent.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from chalicelib.adapters import slack as slack_api
from chalicelib.adapters.archive import dead_letter_key
from chalicelib.adapters.queues import Message
from chalicelib.bootstrap import Deps
from chalicelib.logs import log_json
from chalicelib.outcomes import UNATTRIBUTED_CHANGE, Outcome
from chalicelib.settings import Destination, Settings

log = logging.getLogger("mcd.slack")

MAX_ATTEMPTS = 8
MIN_POST_INTERVAL = 1.0
SEVERITY_RANK = {"low": 0, "medium": 1, "high": 2}


@dataclass
class _Entry:
    outcome: Outcome
    destination: str
    attempt: int
    message: Message


def destinations_for(outcome: Outcome, settings: Settings, default_secret: str) -> list[Destination]:
    if not settings.destinations:
        return [Destination("default", "webhook", default_secret)] if default_secret else []
    if not settings.routes:
        return list(settings.destinations)
    from chalicelib.slack_render import severity

    by_name = {d.name: d for d in settings.destinations}
    for route in settings.routes:
        if route.accounts and outcome.account not in route.accounts:
            continue
        if route.kinds and outcome.kind not in route.kinds:
            continue
        if route.min_severity and SEVERITY_RANK[severity(outcome)] < SEVERITY_RANK[route.min_severity]:
            continue
        return [by_name[name] for name in route.destinations]
    return []


def group_key(outcome: Outcome) -> str:
    if outcome.kind == UNATTRIBUTED_CHANGE:
        return "unattributed"
    return outcome.principal_arn or (outcome.principal or {}).get("display_name") or f"{outcome.kind}:{outcome.signin}"


def slack_send(deps: Deps) -> dict[str, int]:
    settings = deps.settings()
    queue = deps.queue("slack_queue")
    counts = {"posted": 0, "messages": 0, "held": 0, "retried": 0, "dead_lettered": 0, "duplicates": 0}
    entries = _collect(deps, settings, queue, counts)
    groups: dict[tuple[str, str], list[_Entry]] = defaultdict(list)
    for entry in entries:
        groups[(entry.destination, group_key(entry.outcome))].append(entry)
    blocked: dict[str, float] = {}
    last_post: dict[str, float] = {}
    window = settings.burst_window_seconds
    for (dest_name, key), members in sorted(groups.items(), key=lambda g: min(e.outcome.at for e in g[1])):
        destination = _find_destination(dest_name, settings, deps.env.slack_secret)
        if dest_name in blocked:
            _requeue(deps, members, blocked[dest_name], retry=False)
            counts["retried"] += len(members)
            continue
        held_until = _burst_hold(deps, dest_name, key, window)
        if held_until is not None:
            _requeue(deps, members, held_until - deps.clock(), retry=False)
            counts["held"] += len(members)
            continue
        _pace(deps, last_post, dest_name)
        result = _post(deps, destination, [e.outcome for e in members])
        last_post[dest_name] = deps.clock()
        if result.status == "ok":
            _mark_posted(deps, dest_name, key, members, result)
            counts["posted"] += len(members)
            counts["messages"] += 1
        elif result.status == "retry":
            if result.retry_after is not None:
                blocked[dest_name] = result.retry_after
            _retry(deps, members, result, counts)
        else:
            _dead_letter(deps, members, result.detail, counts)
    return counts


def _collect(deps: Deps, settings: Settings, queue, counts: dict[str, int]) -> list[_Entry]:
    entries: list[_Entry] = []
    while len(entries) < 500:
        batch = queue.receive(10, visibility_timeout=120)
        if not batch:
            break
        for message in batch:
            entry_list = _entries_for(deps, settings, message, counts)
            if entry_list is None:
                queue.delete([message])
            else:
                entries.extend(entry_list)
    return entries


def _entries_for(deps: Deps, settings: Settings, message: Message, counts: dict[str, int]) -> list[_Entry] | None:
    """The message's entry, or ``None`` when it needs no posting (done before, fanned out, unreadable)."""
    try:
        body = message.json()
        outcome = Outcome.from_json(body["outcome"])
    except (ValueError, KeyError, TypeError) as error:
        _store_dead(deps, message.body, f"unreadable Slack job: {type(error).__name__}")
        counts["dead_lettered"] += 1
        return None
    dest = body.get("destination")
    if dest is None:
        targets = destinations_for(outcome, settings, deps.env.slack_secret)
        if not targets:
            log_json(log, logging.WARNING, "alert_not_routed", outcome_id=outcome.outcome_id, kind=outcome.kind)
            return None
        if len(targets) > 1:
            deps.queue("slack_queue").send_many([{**body, "destination": t.name} for t in targets])
            return None
        dest = targets[0].name
    if deps.state.get(f"post#{dest}#{outcome.outcome_id}", "posted") is not None:
        counts["duplicates"] += 1
        return None
    return [_Entry(outcome, dest, int(body.get("attempt") or 0), message)]


def _find_destination(name: str, settings: Settings, default_secret: str) -> Destination:
    for dest in settings.destinations:
        if dest.name == name:
            return dest
    return Destination("default", "webhook", default_secret)


def _burst_hold(deps: Deps, dest: str, key: str, window: int) -> float | None:
    if window <= 0:
        return None
    found = deps.state.get(f"burst#{dest}#{key}", "last")
    if not found:
        return None
    last = float(found.get("at", "0"))
    until = last + window
    return until if deps.clock() < until else None


def _pace(deps: Deps, last_post: dict[str, float], dest: str) -> None:
    last = last_post.get(dest)
    if last is not None:
        wait = MIN_POST_INTERVAL - (deps.clock() - last)
        if wait > 0:
            deps.sleep(wait)


def _post(deps: Deps, destination: Destination, outcomes: list[Outcome]) -> slack_api.Delivery:
    from chalicelib.slack_render import render

    payload = render(sorted(outcomes, key=lambda o: o.at))
    try:
        secret = deps.secrets.read(destination.secret)
    except Exception as error:
        return slack_api.Delivery("retry", f"cannot read secret for {destination.name}: {type(error).__name__}")
    if destination.type == "bot":
        return slack_api.post_bot(secret, destination.channel or "", payload)
    return slack_api.post_webhook(secret, payload)


def _mark_posted(deps: Deps, dest: str, key: str, members: list[_Entry], result: slack_api.Delivery) -> None:
    now = deps.clock()
    for entry in members:
        deps.state.put(f"post#{dest}#{entry.outcome.outcome_id}", "posted", now, ts=result.ts or "")
    deps.state.put(f"burst#{dest}#{key}", "last", now, ttl_days=1, at=f"{now:.3f}")
    deps.queue("slack_queue").delete([e.message for e in members])
    log_json(log, logging.INFO, "slack_posted", destination=dest, alerts=len(members),
             outcome_ids=[e.outcome.outcome_id for e in members])


def _retry(deps: Deps, members: list[_Entry], result: slack_api.Delivery, counts: dict[str, int]) -> None:
    attempt = max(e.attempt for e in members) + 1
    if attempt >= MAX_ATTEMPTS:
        _dead_letter(deps, members, f"gave up after {attempt} attempts: {result.detail}", counts)
        return
    delay = result.retry_after if result.retry_after is not None else min(900.0, 30.0 * 2 ** (attempt - 1))
    log_json(log, logging.WARNING, "slack_retry", destination=members[0].destination, detail=result.detail,
             delay_seconds=delay, attempt=attempt)
    _requeue(deps, members, delay, retry=True)
    counts["retried"] += len(members)


def _requeue(deps: Deps, members: list[_Entry], delay: float, *, retry: bool) -> None:
    queue = deps.queue("slack_queue")
    bodies = [{"outcome": e.outcome.to_json(), "destination": e.destination,
               "attempt": e.attempt + (1 if retry else 0)} for e in members]
    queue.send_many(bodies, delay_seconds=max(0.0, delay))
    queue.delete([e.message for e in members])


def _dead_letter(deps: Deps, members: list[_Entry], reason: str, counts: dict[str, int]) -> None:
    log_json(log, logging.ERROR, "slack_dead_lettered", destination=members[0].destination, reason=reason,
             outcome_ids=[e.outcome.outcome_id for e in members])
    for entry in members:
        _store_dead(deps, json.dumps({"outcome": entry.outcome.to_json(), "destination": entry.destination}), reason)
    deps.queue("slack_queue").delete([e.message for e in members])
    counts["dead_lettered"] += len(members)


def _store_dead(deps: Deps, body: Any, reason: str) -> None:
    key = dead_letter_key("slack", deps.now(), f"{deps.clock():.6f}")
    deps.archive.put(key, json.dumps({"reason": reason, "body": body}))
