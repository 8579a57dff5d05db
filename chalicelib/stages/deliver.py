"""The Slack sender: route alerts, group them, pace them, post them once, and never let one be buried.

* Routing (``core.routing``): an alert no route matches is not sent (logged). An alert routed to
  several destinations becomes one queued job per destination. With no destinations configured and no
  default secret either, alerts are kept in S3 (``dead-letter/slack/...``) rather than dropped.
* Grouping: alerts of one principal received together become one message; a principal who keeps
  changing things within ``burst_window_seconds`` of a post gets one digest when the window ends.
  With a bot token, later alerts of the burst instead update the first message (``chat.update``)
  with a digest of the whole burst so far and a counter; if that message cannot be updated any more,
  they are posted as a new one.
* Escalation: alerts more severe than what the burst's message already shows are never held and
  never only edited in: they are posted at once as a NEW message (for a bot, a reply in an earlier
  alert's thread is broadcast to the channel then). The burst continues from that message.
* Pacing: at most one call per second per destination. HTTP 429 leaves the alerts on the queue for
  Retry-After seconds (not counted as a failed attempt) and stops calls to that destination for the
  rest of the run. Slack being unavailable (5xx, timeouts, refused connections, an unreadable secret)
  is never final: the alerts wait on the queue, backing off from 30 s to at most 15 minutes between
  tries, for as long as the queue would keep them (``RETRY_FOR_SECONDS``), and that destination is
  paused for the run. An error answer this module does not know is tried ``MAX_ATTEMPTS`` times.
  Permanent refusals are dead-lettered to S3 with an error log line; a refusal of the destination
  itself (revoked webhook, bad token, unknown channel, a URL that is not Slack's) dead-letters its
  other alerts of the run without further calls. When the stage's time budget is spent, the rest
  goes back on the queue. Every wait is a NEW copy of the job sent with ``DelaySeconds`` (the old one
  is deleted), so a job never reaches the queue's ``maxReceiveCount`` by waiting.
* Once: a marker per destination and alert, written after the post, keeps redeliveries silent, and
  copies of one alert received in the same run are posted once.
* Early alerts (``rules.early_outcome``; destinations with ``early_alerts``): an untrusted person's write,
  from the live stream, posted at once, never held by a burst nor part of one; one message per principal
  and run. The ``manual_change`` that follows completes it: a bot's early message is updated in place
  into the full alert (its record ``post#<destination>#msg:<ts>`` keeps what it shows); a webhook gets a
  follow-up message that names the call. An early alert not posted within ``EARLY_MAX_AGE_SECONDS`` is
  dropped: it is no longer early, and the Config path tells the change.
* Follow-ups: a change whose call had its own alert on this destination (an ``api_call``, or an early
  alert) goes under it on a bot (a thread reply; broadcast when more severe) and names it on a webhook;
  on a destination with ``early_alerts`` a webhook follow-up is posted at once, not held by the burst.
* State read back (burst records, post markers) is checked before use: a time that is not a finite
  number at most ``MAX_CLOCK_SKEW_SECONDS`` in the future, or a field of the wrong shape, makes the
  item count as absent (logged as ``slack_state_ignored``); it never holds alerts and never crashes.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

from chalicelib.core.archive_keys import dead_letter_key
from chalicelib.core.logs import log_json
from chalicelib.core.metrics import ALERT_DELAY_FROM_CALL, ALERT_DELAY_FROM_NOTIFICATION, SECONDS, SLACK_RATE_LIMITED
from chalicelib.core.organization import account_name
from chalicelib.core.outcomes import UNATTRIBUTED_CHANGE, Outcome
from chalicelib.core.routing import destinations_for, early_destinations, find_destination
from chalicelib.core.rules import is_early
from chalicelib.core.settings import Destination, Settings
from chalicelib.core.severity import SEVERITY_RANK, severity
from chalicelib.core.timeutil import parse_time
from chalicelib.ports import Delivery, ReceivedMessage, StageDeps
from chalicelib.stages.shared.dead_letter_notices import surface
from chalicelib.stages.shared.queues import SLACK_QUEUE
from chalicelib.stages.shared.state_keys import LAST, POSTED, burst_marker, post_marker

log = logging.getLogger("mcd.slack")

MAX_ATTEMPTS = 8  # tries when Slack keeps giving an error answer this module does not know
RETRY_FOR_SECONDS = 14 * 86_400  # how long alerts wait for Slack to come back (the slack queue's retention)
TICK_EARLY_SECONDS = 5  # a job waiting the longest backoff becomes visible this much early, to meet its tick
MAX_CLOCK_SKEW_SECONDS = 300  # state times further in the future than this are not believed
MAX_COUNTER = 1_000_000
GATHER_SECONDS = 45
MIN_POST_INTERVAL = 1.0
MAX_COLLECT = 500
VISIBILITY_SECONDS = 120
BACKOFF_FIRST_SECONDS = 30.0
BACKOFF_MAX_SECONDS = 900.0
BURST_STORE_CHARS = 150_000  # outcomes kept with a bot message's burst record (a DynamoDB item is <= 400 KB)
_SLACK_TS = re.compile(r"^[0-9]{1,12}\.[0-9]{1,9}$")
_CHANNEL = re.compile(r"^[#@]?[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$")
_COUNT = re.compile(r"^[0-9]{1,7}$")
EARLY_MAX_AGE_SECONDS = 600  # an early alert that could not be posted by then is dropped (the Config path tells)
EARLY_GROUP = "early:"  # group keys of early alerts: never a burst
SHOWN = "shown"  # sk of an early bot message's record (what it shows, for completing it in place)


@dataclass
class _Entry:
    outcome: Outcome
    destination: str
    attempt: int
    message: ReceivedMessage
    since: float | None = None  # when Slack was first found unavailable for this alert
    odd_answers: int = 0  # error answers this module did not know


@dataclass(frozen=True)
class _Burst:
    """A validated ``burst#<destination>#<principal>`` record: the last message posted for a principal."""

    at: float  # when that message was posted (the window runs from here)
    level: str  # the highest severity the message shows
    count: int = 0
    updates: int = 0
    ts: str = ""  # bot messages: Slack's ts and channel id, for chat.update
    channel: str = ""
    outcomes: str = ""  # bot messages: the outcomes shown (JSON)


@dataclass
class _Run:
    deps: StageDeps
    deadline: float
    started: float = 0.0
    counts: dict[str, int] = field(default_factory=lambda: {
        "posted": 0, "messages": 0, "updates": 0, "held": 0, "retried": 0, "deferred": 0, "dead_lettered": 0,
        "duplicates": 0, "early": 0, "completed": 0})
    blocked: dict[str, float] = field(default_factory=dict)  # destination -> clock until which it is not called
    refused: dict[str, str] = field(default_factory=dict)  # destination -> why it refuses every message
    last_call: dict[str, float] = field(default_factory=dict)
    _settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        """Read on first use: an idle run costs one ReceiveMessage and nothing else."""
        if self._settings is None:
            self._settings = self.deps.settings()
        return self._settings


def group_key(outcome: Outcome) -> str:
    """Alerts of one key become one message (and one burst); tampering is never folded into a digest."""
    if outcome.extra.get("tamper"):
        return f"tamper:{outcome.outcome_id}"
    if outcome.kind == UNATTRIBUTED_CHANGE:
        return "unattributed"
    display_name = outcome.principal.display_name if outcome.principal else None
    key = outcome.principal_arn or display_name or f"{outcome.kind}:{outcome.signin}"
    return EARLY_GROUP + key if is_early(outcome) else key


def slack_send(deps: StageDeps) -> dict[str, int]:
    run = _Run(deps, deps.deadline(), deps.clock())
    groups: dict[tuple[str, str], list[_Entry]] = defaultdict(list)
    for entry in _collect(run):
        groups[(entry.destination, group_key(entry.outcome))].append(entry)
    for (dest_name, key), members in sorted(groups.items(), key=lambda g: min(str(e.outcome.at) for e in g[1])):
        _send_group(run, dest_name, key, members)
    return run.counts


# --------------------------------------------------------------------------------------------
# Collecting jobs


def _collect(run: _Run) -> list[_Entry]:
    queue = run.deps.queue(SLACK_QUEUE)
    entries: list[_Entry] = []
    seen: set[tuple[str, str]] = set()
    while len(entries) < MAX_COLLECT:
        batch = queue.receive(10, visibility_timeout=VISIBILITY_SECONDS)
        if not batch:
            break
        finished = []
        for message in batch:
            entry = _entry_for(run, message, seen)
            if entry is None:
                finished.append(message)
            else:
                seen.add((entry.destination, entry.outcome.outcome_id))
                entries.append(entry)
        queue.delete(finished)
    return entries


def _entry_for(run: _Run, message: ReceivedMessage, seen: set[tuple[str, str]]) -> _Entry | None:
    """The message's entry, or ``None`` when it needs no posting (done before, fanned out, unusable)."""
    deps, settings = run.deps, run.settings
    try:
        body = message.json()
        outcome = Outcome.from_json(body["outcome"])
        dest = body.get("destination")
        attempt = _counter(body.get("attempt"))
        odd_answers = _counter(body.get("odd_answers"))
        since = _past_time(body.get("since"), deps.clock())
        if dest is not None and not isinstance(dest, str):
            raise TypeError("destination is not a string")
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        _keep_unusable(run, message, f"unreadable Slack job: {type(error).__name__}")
        return None
    if not outcome.is_alert:
        _keep_unusable(run, message, f"not an alert: kind {str(outcome.kind)[:40]!r}")
        return None
    early = is_early(outcome)
    if early and _too_late(deps, outcome):
        log_json(log, logging.INFO, "early_alert_expired", outcome_id=outcome.outcome_id, destination=dest,
                 action=f"dropped: not posted within {EARLY_MAX_AGE_SECONDS} s; the Config path tells the change")
        return None
    if dest is None:
        directory = deps.organization.directory() if settings.routes_need_directory else None  # routes by OU
        targets = (early_destinations(outcome, settings, directory) if early
                   else destinations_for(outcome, settings, deps.env.slack_secret, directory))
        if not targets:
            if early:
                log_json(log, logging.INFO, "early_alert_not_routed", outcome_id=outcome.outcome_id)
            elif not settings.destinations:
                _keep_unusable(run, message, "no Slack destination: settings name none and MCD_SLACK_SECRET is unset")
            else:
                log_json(log, logging.WARNING, "alert_not_routed", outcome_id=outcome.outcome_id, kind=outcome.kind)
            return None
        if len(targets) > 1:
            deps.queue(SLACK_QUEUE).send_many([{**body, "destination": t.name} for t in targets])
            log_json(log, logging.INFO, "slack_fanned_out", outcome_id=outcome.outcome_id,
                     destinations=[t.name for t in targets])
            return None
        dest = targets[0].name
    if (dest, outcome.outcome_id) in seen or deps.state.get(post_marker(dest, outcome.outcome_id), POSTED):
        run.counts["duplicates"] += 1
        return None
    return _Entry(outcome, dest, attempt, message, since, odd_answers)


def _too_late(deps: StageDeps, outcome: Outcome) -> bool:
    """An early alert decided more than ``EARLY_MAX_AGE_SECONDS`` ago (or at a time that cannot be read)."""
    decided = parse_time(outcome.at)
    return decided is None or deps.clock() - decided.timestamp() > EARLY_MAX_AGE_SECONDS


def _counter(value: Any) -> int:
    """A job's counter: a non-negative int (absent: 0), capped; anything else is unreadable."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise TypeError("counter is not a number")
    number = int(value)
    if number < 0:
        raise ValueError("negative counter")
    return min(number, MAX_COUNTER)


def _past_time(value: Any, now: float) -> float | None:
    """An epoch time that is finite and not in the future (beyond clock skew); otherwise ``None``."""
    if value is None or isinstance(value, bool):
        return None
    try:
        moment = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(moment) or moment <= 0 or moment > now + MAX_CLOCK_SKEW_SECONDS:
        return None
    return moment


# --------------------------------------------------------------------------------------------
# Sending one group (one destination, one principal)


def _send_group(run: _Run, dest_name: str, key: str, members: list[_Entry]) -> None:
    deps = run.deps
    destination = find_destination(dest_name, run.settings, deps.env.slack_secret)
    if destination is None:
        _dead_letter(run, members, f"destination {dest_name!r} is not configured any more")
        return
    if _stopped(run, dest_name, members):
        return
    if deps.clock() >= run.deadline:
        _requeue(deps, members, 0, retry=False)
        run.counts["deferred"] += len(members)
        return
    if _gathering(deps, members):
        # One call that changed related resources (an instance and its groups) yields several items whose
        # notifications arrive a little apart: give the others one tick to join this message.
        _requeue(deps, members, GATHER_SECONDS, retry=False)
        run.counts["held"] += len(members)
        return
    if key.startswith(EARLY_GROUP):
        _post_early(run, destination, members)
        return
    gone: frozenset[str] = frozenset()
    if destination.type == "bot":
        members, gone = _complete_early(run, destination, members)
        if not members or _stopped(run, dest_name, members):
            return
    window = run.settings.burst_window_seconds
    # The Config diff of a call that already had its own alert goes under that alert, whatever burst is open:
    # with the live stream, the diff follows the call's alert within a minute or two. A webhook cannot thread:
    # its message names the earlier alert, and with early alerts on it is not held by the burst either.
    thread = _earlier_alert(deps, destination, members, gone) if destination.type == "bot" else None
    follows = _followed_calls(deps, destination, members) if destination.type == "webhook" else []
    burst = None if thread or (follows and destination.early_alerts) else _current_burst(deps, dest_name, key, window)
    level = _level(e.outcome for e in members)
    escalation = burst is not None and SEVERITY_RANK[level] > SEVERITY_RANK[burst.level]
    if burst is not None and not escalation:
        if destination.type == "bot" and burst.ts and burst.channel:
            if _update_burst_message(run, destination, key, members, burst):
                return
        else:
            until = burst.at + window
            _requeue(deps, members, until - deps.clock(), retry=False)
            log_json(log, logging.INFO, "slack_held", destination=dest_name, alerts=len(members),
                     until=_iso(until))
            run.counts["held"] += len(members)
            return
    if escalation:
        # Something worse than what the burst's message shows: a new message now, never a silent edit.
        log_json(log, logging.INFO, "slack_escalated", destination=dest_name, severity=level,
                 shown=burst.level if burst else None, outcome_ids=[e.outcome.outcome_id for e in members])
    payload = _payload(run, members, [e.outcome for e in members])
    if payload is None:
        return
    if follows:
        from chalicelib.slack.render import follow_up_note, with_note

        payload = with_note(payload, follow_up_note(follows))
    if thread:
        # A reply under the call's alert; when it is worse than that alert, also shown in the channel.
        ts, shown = thread
        broadcast = escalation or SEVERITY_RANK[level] > SEVERITY_RANK[shown]
        payload = {**payload, "thread_ts": ts, "reply_broadcast": broadcast}
    result = _call(run, destination, payload)
    if result.status == "ok":
        _posted(run, destination, key, members, result, level)
    else:
        _failed(run, destination, members, result)


def _level(outcomes: Any) -> str:
    """The highest severity among ``outcomes`` (``low`` for none; ``high`` if one cannot be rated)."""
    try:
        return max((severity(o) for o in outcomes), key=SEVERITY_RANK.__getitem__, default="low")
    except Exception:  # an alert that cannot be rated is never the one held back
        return "high"


def _stopped(run: _Run, dest_name: str, members: list[_Entry]) -> bool:
    """``True`` after dead-lettering or re-queueing ``members``: their destination refuses every message, or
    is paused for the rest of this run (rate limited, unavailable)."""
    if dest_name in run.refused:
        _dead_letter(run, members, run.refused[dest_name])
        return True
    if dest_name in run.blocked:
        _requeue(run.deps, members, run.blocked[dest_name] - run.deps.clock(), retry=False)
        run.counts["retried"] += len(members)
        return True
    return False


def _earlier_alert(deps: StageDeps, destination: Destination, members: list[_Entry],
                   gone: frozenset[str] = frozenset()) -> tuple[str, str] | None:
    """``(ts, severity)`` of a direct alert (``ct:<eventID>``) posted to this bot destination for one of these calls.

    A marker without a usable ``ts`` is ignored (logged); one written before severities were recorded
    counts as ``low``, so a reply under it is shown in the channel rather than hidden. Messages found
    deleted (``gone``) are not replied under.
    """
    for entry in members:
        if entry.outcome.outcome_id.startswith("ct:"):
            continue
        for event_id in entry.outcome.event_ids:
            found = deps.state.get(post_marker(destination.name, f"ct:{event_id.lower()}"), POSTED)
            if not found:
                continue
            ts, level = found.get("ts"), found.get("level") or "low"
            if not isinstance(ts, str) or not _SLACK_TS.match(ts) or level not in SEVERITY_RANK:
                if ts:  # an empty ts is a webhook post: nothing to thread under
                    _state_ignored(destination.name, "post", "ts or level of the wrong shape")
                continue
            if ts in gone:
                continue
            return ts, level
    return None


def _followed_calls(deps: StageDeps, destination: Destination, members: list[_Entry]) -> list[str]:
    """The event ids of these changes whose call had its own alert (``ct:<eventID>``) on this destination."""
    found = []
    for entry in members:
        if entry.outcome.outcome_id.startswith("ct:"):
            continue
        for event_id in entry.outcome.event_ids:
            if deps.state.get(post_marker(destination.name, f"ct:{event_id.lower()}"), POSTED):
                found.append(event_id)
    return list(dict.fromkeys(found))


# --------------------------------------------------------------------------------------------
# Early alerts: posted at once, completed by the Config path


def _post_early(run: _Run, destination: Destination, members: list[_Entry]) -> None:
    """One principal's early alerts: one message now, never held by nor counted in a burst."""
    deps = run.deps
    outcomes = [e.outcome for e in members]
    payload = _payload(run, members, outcomes)
    if payload is None:
        return
    result = _call(run, destination, payload)
    if result.status != "ok":
        _failed(run, destination, members, result)
        return
    now = deps.clock()
    level = _level(outcomes)
    ts, channel = result.ts or "", result.channel or destination.channel or ""
    if destination.type == "bot" and _SLACK_TS.match(ts) and _CHANNEL.match(channel):
        deps.state.put(_shown_record(destination.name, ts), SHOWN, now, ttl_days=1, channel=channel, level=level,
                       outcomes=_stored(outcomes))
    else:
        ts = ""  # nothing to update in place: the change's alert is a follow-up message
    for entry in members:
        deps.state.put(post_marker(destination.name, entry.outcome.outcome_id), POSTED, now, ts=ts, level=level,
                       early="1")
    _delivered(run, destination, members, "slack_posted_early", "messages")
    run.counts["early"] += len(members)


def _shown_record(dest: str, ts: str) -> str:
    """``pk`` of what an early bot message shows (sk ``shown``): the post marker space, keyed by its ts."""
    return post_marker(dest, f"msg:{ts}")


def _complete_early(run: _Run, destination: Destination,
                    members: list[_Entry]) -> tuple[list[_Entry], frozenset[str]]:
    """Update each early bot message these changes complete into their full alert.

    Returns the changes left for the usual path (none of their calls had an early message; its record is
    unusable; or they are more severe than it showed: never only edited in, so a reply in its thread, also
    sent to the channel) and the ts of early messages found deleted (not replied under).
    """
    by_message: dict[str, list[_Entry]] = defaultdict(list)
    rest: list[_Entry] = []
    for entry in members:
        ts = _early_message(run.deps, destination.name, entry.outcome)
        (by_message[ts] if ts else rest).append(entry)
    gone: set[str] = set()
    for ts, group in by_message.items():
        if _stopped(run, destination.name, group):
            continue
        result = _update_early(run, destination, ts, group)
        if result != "done":
            rest.extend(group)
        if result == "gone":
            gone.add(ts)
    return rest, frozenset(gone)


def _early_message(deps: StageDeps, dest: str, outcome: Outcome) -> str | None:
    """The ts of an early bot message posted for one of this change's calls."""
    if outcome.outcome_id.startswith("ct:"):
        return None
    for event_id in outcome.event_ids:
        found = deps.state.get(post_marker(dest, f"ct:{event_id.lower()}"), POSTED)
        ts = found.get("ts") if found and found.get("early") == "1" else None
        if isinstance(ts, str) and _SLACK_TS.match(ts):
            return ts
    return None


def _update_early(run: _Run, destination: Destination, ts: str, group: list[_Entry]) -> str:
    """``done`` (updated, or left to retry), ``thread`` (reply under it instead) or ``gone`` (post anew)."""
    deps = run.deps
    try:
        channel, shown_level, shown = _read_shown(deps.state.get(_shown_record(destination.name, ts), SHOWN))
    except ValueError as error:
        _state_ignored(destination.name, "early message", str(error))
        return "thread"
    level = _level(e.outcome for e in group)
    if SEVERITY_RANK[level] > SEVERITY_RANK[shown_level]:
        return "thread"
    covered = {i.lower() for e in group for i in e.outcome.event_ids}
    new_ids = {e.outcome.outcome_id for e in group}
    kept = [o for o in shown if o.outcome_id not in new_ids
            and not (is_early(o) and covered & {i.lower() for i in o.event_ids})]
    combined = kept + [e.outcome for e in group]
    payload = _payload(run, group, combined)
    if payload is None:
        return "done"
    from chalicelib.slack.render import completed_note, with_note

    payload = with_note(payload, completed_note(_iso(deps.clock())[11:19]))
    result = _call(run, destination, payload, update=(channel, ts))
    if result.message_gone:
        log_json(log, logging.INFO, "slack_update_impossible", destination=destination.name, detail=result.detail)
        return "gone"
    if result.status != "ok":
        _failed(run, destination, group, result)
        return "done"
    now = deps.clock()
    _mark(deps, destination.name, group, now, ts, shown_level)
    deps.state.put(_shown_record(destination.name, ts), SHOWN, now, ttl_days=1, channel=channel, level=shown_level,
                   outcomes=_stored(combined))
    _delivered(run, destination, group, "slack_completed", "updates")
    _record_delays(deps, [e.outcome for e in group], now)
    run.counts["completed"] += len(group)
    return "done"


def _read_shown(found: dict[str, Any] | None) -> tuple[str, str, list[Outcome]]:
    """An early message's record: ``(channel, level, outcomes)``; ``ValueError`` when absent or unusable."""
    if not found:
        raise ValueError("no record of what the early message shows")
    channel, level, outcomes = found.get("channel"), found.get("level"), found.get("outcomes")
    if not isinstance(channel, str) or not _CHANNEL.match(channel):
        raise ValueError("channel has the wrong shape")
    if level not in SEVERITY_RANK:
        raise ValueError("level is not a severity")
    if not isinstance(outcomes, str):
        raise ValueError("outcomes is not text")
    return channel, level, _stored_outcomes(outcomes)


def _gathering(deps: StageDeps, members: list[_Entry]) -> bool:
    """Wait one tick when every alert is fresh and one of them changed relationships."""
    now = deps.clock()
    for entry in members:
        decided = parse_time(entry.outcome.at)
        age = now - decided.timestamp() if decided is not None else math.inf
        if not 0 <= age < GATHER_SECONDS:  # unreadable, old, or (not believable) in the future
            return False
    return any(str(p.get("path", "")).startswith("Relationships") for e in members
               for p in e.outcome.changed_properties if isinstance(p, dict))


def _current_burst(deps: StageDeps, dest: str, key: str, window: int) -> _Burst | None:
    """The burst record of the last post to ``dest`` for ``key``, while its window is open."""
    if window <= 0:
        return None
    found = deps.state.get(burst_marker(dest, key), LAST)
    if not found:
        return None
    now = deps.clock()
    try:
        burst = _read_burst(found, now)
    except ValueError as error:
        _state_ignored(dest, "burst", str(error))
        return None
    return burst if now < burst.at + window else None


def _read_burst(found: dict[str, Any], now: float) -> _Burst:
    """A burst record read back from the state table, checked field by field (``ValueError`` if unusable)."""
    at = _past_time(found.get("at"), now)
    if at is None:
        raise ValueError("at is not a finite time up to now")
    fields: dict[str, Any] = {}
    for name in ("count", "updates"):
        value = found.get(name)
        if value not in (None, ""):
            if not isinstance(value, str) or not _COUNT.match(value):
                raise ValueError(f"{name} is not a small count")
            fields[name] = int(value)
    for name, shape in (("ts", _SLACK_TS), ("channel", _CHANNEL)):
        value = found.get(name)
        if value not in (None, ""):
            if not isinstance(value, str) or not shape.match(value):
                raise ValueError(f"{name} has the wrong shape")
            fields[name] = value
    outcomes = found.get("outcomes")
    if outcomes not in (None, ""):
        if not isinstance(outcomes, str):
            raise ValueError("outcomes is not text")
        fields["outcomes"] = outcomes
    level = found.get("level")
    if level in (None, ""):  # written before levels were recorded: what its outcomes show, else the lowest
        stored = _stored_outcomes(fields.get("outcomes"))
        level = _level(stored) if stored else "low"
    elif level not in SEVERITY_RANK:
        raise ValueError("level is not a severity")
    return _Burst(at=at, level=level, **fields)


def _state_ignored(dest: str, item: str, reason: str) -> None:
    log_json(log, logging.WARNING, "slack_state_ignored", destination=dest, item=item, reason=reason[:200],
             action="treated as absent")


def _update_burst_message(run: _Run, destination: Destination, key: str, members: list[_Entry],
                          burst: _Burst) -> bool:
    """Update the burst's bot message with all its alerts; ``False`` when it cannot be updated any more."""
    deps = run.deps
    new_ids = {e.outcome.outcome_id for e in members}
    earlier = [o for o in _stored_outcomes(burst.outcomes) if o.outcome_id not in new_ids]
    combined = earlier + [e.outcome for e in members]
    total = min(max(burst.count + len(members), len(combined)), MAX_COUNTER)
    payload = _payload(run, members, combined)
    if payload is None:
        return True
    payload = _with_counter(payload, total, deps.clock())
    result = _call(run, destination, payload, update=(burst.channel, burst.ts))
    if result.message_gone:
        log_json(log, logging.INFO, "slack_update_impossible", destination=destination.name, detail=result.detail)
        return False
    if result.status != "ok":
        _failed(run, destination, members, result)
        return True
    now = deps.clock()
    level = max(burst.level, _level(e.outcome for e in members), key=SEVERITY_RANK.__getitem__)
    _mark(deps, destination.name, members, now, burst.ts, level)
    deps.state.put(burst_marker(destination.name, key), LAST, now, ttl_days=1, at=f"{burst.at:.3f}", ts=burst.ts,
                   channel=burst.channel, outcomes=_stored(combined), count=str(total),
                   updates=str(min(burst.updates + 1, MAX_COUNTER)), level=level)
    _delivered(run, destination, members, "slack_updated", "updates", burst_alerts=total)
    return True


def _payload(run: _Run, members: list[_Entry], outcomes: list[Outcome]) -> dict[str, Any] | None:
    """The rendered message, or ``None`` after dead-lettering ``members`` when it cannot be rendered."""
    from chalicelib.slack.render import render

    names = _account_names(run, outcomes)
    if names:
        outcomes = [replace(o, extra={**o.extra, "account_alias": names[o.account]}) if o.account in names
                    else o for o in outcomes]
    try:
        # Links open each account through settings' console_access; the archive is in the detector's own account.
        return render(sorted(outcomes, key=lambda o: str(o.at)), console_access=run.settings.console_access,
                      home_account=run.deps.env.account or None)
    except Exception as error:  # one bad alert must not stop the others
        _dead_letter(run, members, f"cannot render the alert: {type(error).__name__}: {str(error)[:200]}")
        return None


def _account_names(run: _Run, outcomes: list[Outcome]) -> dict[str, str]:
    """The name shown beside each account: its ``account_aliases`` entry, else its name in AWS Organizations,
    which is read only when another account than the detector's own has no alias."""
    aliases = run.settings.account_aliases
    accounts = {o.account for o in outcomes if o.account}
    unnamed = {a for a in accounts if a not in aliases and a != run.deps.env.account}
    directory = run.deps.organization.directory() if unnamed else None
    return {a: name for a in accounts if (name := account_name(a, aliases, directory))}


def _with_counter(payload: dict[str, Any], total: int, now: float) -> dict[str, Any]:
    from chalicelib.slack.render import check_limits

    note = {"type": "context", "elements": [{"type": "mrkdwn", "verbatim": True, "text": (
        f":repeat: Updated with later alerts: *{total}* in this burst so far "
        f"(last update {_iso(now)[11:19]} UTC)")}]}
    counted = {**payload, "blocks": [*payload.get("blocks", []), note]}
    return counted if not check_limits(counted) else payload


def _call(run: _Run, destination: Destination, payload: dict[str, Any],
          update: tuple[str, str] | None = None) -> Delivery:
    """One paced call to Slack (a post, or an update of ``(channel, ts)``)."""
    deps = run.deps
    try:
        secret = deps.secrets.read(destination.secret)
    except Exception as error:  # our side, not Slack's answer: wait until it is readable again
        return Delivery("retry", f"cannot read the secret of {destination.name}: {type(error).__name__}",
                                  unavailable=True)
    _pace(run, destination.name)
    try:
        if destination.type == "bot":
            channel, ts = update if update else (destination.channel or "", None)
            return deps.slack.post_bot(secret, channel, payload, update_ts=ts)
        return deps.slack.post_webhook(secret, payload)
    finally:
        run.last_call[destination.name] = deps.clock()


def _pace(run: _Run, dest: str) -> None:
    last = run.last_call.get(dest)
    if last is not None:
        wait = MIN_POST_INTERVAL - (run.deps.clock() - last)
        if wait > 0:
            run.deps.sleep(wait)


# --------------------------------------------------------------------------------------------
# Results


def _posted(run: _Run, destination: Destination, key: str, members: list[_Entry],
            result: Delivery, level: str) -> None:
    deps = run.deps
    now = deps.clock()
    _mark(deps, destination.name, members, now, result.ts or "", level)
    record = {"at": f"{now:.3f}", "count": str(len(members)), "level": level}
    channel = result.channel or destination.channel or ""
    if destination.type == "bot" and result.ts and _SLACK_TS.match(result.ts) and _CHANNEL.match(channel):
        record.update(ts=result.ts, channel=channel, outcomes=_stored([e.outcome for e in members]), updates="0")
    deps.state.put(burst_marker(destination.name, key), LAST, now, ttl_days=1, **record)
    _delivered(run, destination, members, "slack_posted", "messages")
    _record_delays(deps, [e.outcome for e in members], now)


def _delivered(run: _Run, destination: Destination, members: list[_Entry], event: str, counted: str,
               **fields: Any) -> None:
    """``members`` are in Slack: off the queue, logged as ``event``, counted as posted and as one ``counted``
    (a message or an update)."""
    run.deps.queue(SLACK_QUEUE).delete([e.message for e in members])
    log_json(log, logging.INFO, event, destination=destination.name, alerts=len(members), **fields,
             outcome_ids=[e.outcome.outcome_id for e in members])
    run.counts["posted"] += len(members)
    run.counts[counted] += 1


def _record_delays(deps: StageDeps, outcomes: list[Outcome], now: float) -> None:
    """How long people waited: from the causing call (its earliest event time), and from the Config
    notification's arrival, to this post. Times that cannot be read are left out, never guessed."""
    for outcome in outcomes:
        called = [t for t in (parse_time(e.event_time) for e in outcome.events) if t is not None]
        if called:
            deps.metrics.record(ALERT_DELAY_FROM_CALL, round(max(now - min(called).timestamp(), 0.0), 3),
                                SECONDS)
        notified = parse_time(outcome.extra.get("notified_at"))
        if notified is not None:
            deps.metrics.record(ALERT_DELAY_FROM_NOTIFICATION, round(max(now - notified.timestamp(), 0.0), 3),
                                SECONDS)


def _mark(deps: StageDeps, dest: str, members: list[_Entry], now: float, ts: str, level: str) -> None:
    for entry in members:
        deps.state.put(post_marker(dest, entry.outcome.outcome_id), POSTED, now, ts=ts, level=level)


def _failed(run: _Run, destination: Destination, members: list[_Entry], result: Delivery) -> None:
    if result.status == "retry":
        _retry(run, destination.name, members, result)
        return
    if result.whole_destination:
        run.refused[destination.name] = f"{destination.name} refuses every message: {result.detail}"
    _dead_letter(run, members, result.detail or "refused by Slack")


def backoff_seconds(attempt: int) -> float:
    """Wait before try ``attempt + 1``: 30 s, 60 s, 120 s … at most ``BACKOFF_MAX_SECONDS``."""
    return min(BACKOFF_MAX_SECONDS, BACKOFF_FIRST_SECONDS * 2 ** min(max(attempt - 1, 0), 16))


def _retry(run: _Run, dest: str, members: list[_Entry], result: Delivery) -> None:
    deps = run.deps
    now = deps.clock()
    if result.retry_after is not None:  # rate limited: wait as told; not a failed attempt
        delay = min(max(result.retry_after, 1.0), BACKOFF_MAX_SECONDS) if math.isfinite(result.retry_after) else (
            BACKOFF_MAX_SECONDS)
        log_json(log, logging.WARNING, "slack_rate_limited", destination=dest, retry_after_seconds=delay,
                 alerts=len(members))
        deps.metrics.record(SLACK_RATE_LIMITED, 1)
        _requeue(deps, members, delay, retry=False)
        run.counts["retried"] += len(members)
        run.blocked[dest] = now + delay
        return
    attempt = max(e.attempt for e in members) + 1
    delay = backoff_seconds(attempt)
    if delay >= BACKOFF_MAX_SECONDS:  # meet the tick at most 15 minutes after this run began, not the one after
        delay = max(delay - TICK_EARLY_SECONDS - (now - run.started), 0.0)
    run.blocked[dest] = now + delay
    if result.unavailable:
        since = min((e.since for e in members if e.since is not None), default=now)
        if now - since >= RETRY_FOR_SECONDS:
            _dead_letter(run, members, f"Slack was unavailable for {(now - since) / 86_400:.0f} days "
                                       f"({attempt} attempts): {result.detail}")
            return
        odd = max(e.odd_answers for e in members)
    else:  # an error answer we do not know: probably permanent, so only a few more tries
        since = None
        odd = max(e.odd_answers for e in members) + 1
        if odd >= MAX_ATTEMPTS:
            _dead_letter(run, members, f"gave up after {odd} unexpected answers: {result.detail}")
            return
    log_json(log, logging.WARNING, "slack_retry", destination=dest, detail=result.detail,
             delay_seconds=backoff_seconds(attempt), attempt=attempt, alerts=len(members),
             unavailable=result.unavailable)
    _requeue(deps, members, delay, retry=True, since=since, odd_answers=odd)
    run.counts["retried"] += len(members)


def _job(entry: _Entry, *, attempt: int | None = None, since: float | None = None,
         odd_answers: int | None = None) -> dict[str, Any]:
    """The queued job of ``entry`` (its counters and first-unavailable time travel with it)."""
    body: dict[str, Any] = {"outcome": entry.outcome.to_json(), "destination": entry.destination,
                            "attempt": entry.attempt if attempt is None else attempt}
    first = entry.since if since is None else min(since, entry.since or since)
    if first is not None:
        body["since"] = round(first, 3)
    odd = entry.odd_answers if odd_answers is None else odd_answers
    if odd:
        body["odd_answers"] = odd
    return body


def _requeue(deps: StageDeps, members: list[_Entry], delay: float, *, retry: bool, since: float | None = None,
             odd_answers: int | None = None) -> None:
    """Send NEW copies that wait ``delay`` seconds (at most SQS's 15 minutes), then delete the received ones.

    A new copy starts with a receive count of zero, so however long alerts wait this way they never
    reach the queue's ``maxReceiveCount`` (only a run that crashes counts towards it).
    """
    queue = deps.queue(SLACK_QUEUE)
    bodies = [_job(e, attempt=e.attempt + 1 if retry else e.attempt, since=since, odd_answers=odd_answers)
              for e in members]
    queue.send_many(bodies, delay_seconds=min(max(0.0, delay), BACKOFF_MAX_SECONDS) if math.isfinite(delay)
                    else BACKOFF_MAX_SECONDS)
    queue.delete([e.message for e in members])


def _dead_letter(run: _Run, members: list[_Entry], reason: str) -> None:
    keys = [
        _store_dead(run.deps, json.dumps(_job(e)), reason, f"{e.destination}-{e.outcome.outcome_id}")
        for e in members
    ]
    log_json(log, logging.ERROR, "slack_dead_lettered", destination=members[0].destination, reason=reason,
             outcome_ids=[e.outcome.outcome_id for e in members], keys=keys)
    run.deps.queue(SLACK_QUEUE).delete([e.message for e in members])
    run.counts["dead_lettered"] += len(members)


def _keep_unusable(run: _Run, message: ReceivedMessage, reason: str) -> None:
    key = _store_dead(run.deps, message.body, reason, message.message_id or "job")
    log_json(log, logging.ERROR, "slack_dead_lettered", reason=reason, message_id=message.message_id, keys=[key])
    run.counts["dead_lettered"] += 1


def _store_dead(deps: StageDeps, body: str, reason: str, name: str) -> str:
    """Keep a job for a person in ``dead-letter/slack/<y>/<m>/<d>/<name>-<time>.json``; returns the key."""
    key = dead_letter_key("slack", deps.now(), f"{name[:150]}-{deps.clock():.6f}")
    deps.archive.put(key, json.dumps({"reason": reason, "queue": SLACK_QUEUE, "body": body}))
    surface(deps, SLACK_QUEUE, key, reason, body)
    return key


# --------------------------------------------------------------------------------------------
# Burst records


def _stored(outcomes: list[Outcome]) -> str:
    """The newest outcomes as a JSON list of at most ``BURST_STORE_CHARS`` (ASCII) characters."""
    kept: list[str] = []
    size = 2
    for outcome in reversed(outcomes):
        text = json.dumps(outcome.to_json(), default=str)
        if size + len(text) + 1 > BURST_STORE_CHARS:
            break
        kept.append(text)
        size += len(text) + 1
    return "[" + ",".join(reversed(kept)) + "]"


def _stored_outcomes(text: str | None) -> list[Outcome]:
    if not text:
        return []
    try:
        return [Outcome.from_json(item) for item in json.loads(text)]
    except (ValueError, KeyError, TypeError, AttributeError):
        return []


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
