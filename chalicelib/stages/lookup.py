"""The lookup stage: find each waiting item's CloudTrail author, decide, and emit the outcome.

Jobs are grouped by account and the region where CloudTrail records their calls. For a group the
stage chooses the cheapest way to see the candidate calls: a job's ``relatedEvents`` by event id;
several jobs at once by one sweep of all write calls in their common window (a Terraform apply of
200 changes costs a few pages, not 200 lookups); one or two jobs by ``ResourceName``, falling back
to the resources named in the item's relationship diff. Jobs whose author is not visible yet go
back on the queue with a delay; after ``give_up_minutes`` the change is reported unattributed.
An untrusted call is alerted at once; a suppression waits until every call in the item's window was
read, across runs if a flood makes that long (D20). After an alert, two follow-up lookups add calls
on the same resource that became visible later; a suppression is checked again until the give-up
time in case a person's call on the item shows up after the trusted one.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from chalicelib.core import attribution as attr
from chalicelib.core.change_outcomes import build_outcome
from chalicelib.core.jobs import MAX_CARRIED, READ_TO_END, LookupJob
from chalicelib.core.logs import log_json
from chalicelib.core.metrics import LOOKUP_CALLS, LOOKUP_THROTTLES
from chalicelib.core.model import TrailEvent
from chalicelib.core.outcomes import MANUAL_CHANGE, SUPPRESSED, UNATTRIBUTED_CHANGE
from chalicelib.core.settings import Settings
from chalicelib.core.timeutil import iso, parse_time
from chalicelib.parsing.cloudtrail import parse_lookup_event
from chalicelib.ports import ReceivedMessage, StageDeps
from chalicelib.stages.shared.captures import previous_capture
from chalicelib.stages.shared.emit import emit
from chalicelib.stages.shared.queues import LOOKUP_DLQ, LOOKUP_QUEUE, dead_letter
from chalicelib.stages.shared.recent_calls import recall

log = logging.getLogger("mcd.lookup")

MAX_SWEEP_PAGES = 20
SWEEP_PAUSE = timedelta(minutes=10)
WATCH_EVERY = timedelta(minutes=1)  # while a pass over a flooded resource reads on
WATCH_CHECKS = (timedelta(minutes=15),)  # after capture, when most late calls are visible; then at the give-up time
LOOKUPS_FAILED = "CloudTrail lookups kept failing (throttled or unavailable) until the give-up time"
EARLY = timedelta(seconds=5)  # re-queued jobs become visible this much before they are due, to meet the tick
FOLLOWUP_DELAYS = (timedelta(minutes=3), timedelta(minutes=5))
FOLLOWUP_GRID = timedelta(minutes=5)
MAX_JOBS_PER_RUN = 2000
MAX_NAMES = 3
PAGES_PER_JOB_PER_RUN = 40  # a flooded resource reads on over later runs instead of starving the others
FOLLOWUP_PAGES = 8
RETRY_STEPS: tuple[tuple[timedelta | None, timedelta], ...] = (
    (timedelta(minutes=20), timedelta(minutes=1)),  # (while the job is younger than, look every)
    (timedelta(minutes=45), timedelta(minutes=2)),
    (None, timedelta(minutes=5)),
)
"""How often an item whose calls are not yet visible is looked up again, by time since it arrived."""
SETTLED_AFTER = timedelta(minutes=15)  # CloudTrail's event history shows a call within this of its capture
PASS_STARTED = "pass-started"
CARRIED_RECORD_CHARS = 4000


class _Pool:
    """Events fetched during one run, de-duplicated, with their identifier sets cached."""

    def __init__(self) -> None:
        self.events: dict[str, TrailEvent] = {}
        self.keys: dict[str, frozenset[str]] = {}
        self.fetched: set[tuple[str, str, str, str]] = set()

    def add(self, events: list[TrailEvent]) -> None:
        for event in events:
            self.events.setdefault(event.event_id or str(id(event)), event)

    def add_carried(self, job: LookupJob) -> None:
        """Candidate calls an earlier run of this job found, with the identifiers they were matched on."""
        for entry in job.carried:
            event = parse_lookup_event(entry, "carried")
            if isinstance(event, TrailEvent) and event.event_id:
                self.events.setdefault(event.event_id, event)
                keys = entry.get("keys")
                if isinstance(keys, list) and event.event_id not in self.keys:
                    self.keys[event.event_id] = frozenset(str(k) for k in keys) | attr.event_keys(event)


def lookup(deps: StageDeps) -> dict[str, int]:
    deadline = deps.deadline()
    queue = deps.queue(LOOKUP_QUEUE)
    counts = {"jobs": 0, "decided": 0, "waiting": 0, "unattributed": 0, "followups": 0}
    messages = _drain(queue)
    if not messages:
        return counts
    settings = deps.settings()
    now = deps.now()
    calls_before, throttled_before = deps.lookups.stats.calls, deps.lookups.stats.throttled
    groups: dict[tuple[str, str], list[tuple[LookupJob, ReceivedMessage]]] = defaultdict(list)
    for message in messages:
        job = _read_job(message, deps)
        if job is None:
            queue.delete([message])
            continue
        counts["jobs"] += 1
        if job.not_before and job.not_before > now + timedelta(seconds=5):
            _requeue(deps, job, job.not_before, message, now)
            continue
        region = attr.lookup_region(job.change, deps.env.home_region)
        groups[(job.change.account or "", region)].append((job, message))
    for (_account, region), members in groups.items():
        if deps.clock() >= deadline:
            for job, message in members:
                _requeue(deps, job, now + timedelta(seconds=30), message, now)
            continue
        try:
            _resolve_group(deps, settings, region, members, counts, deadline)
        except Exception as error:  # throttled, CloudTrail unavailable, a region it refuses
            log_json(log, logging.WARNING, "lookup_group_failed", region=region, jobs=len(members),
                     error=f"{type(error).__name__}: {str(error)[:200]}")
            _after_failure(deps, settings, members, counts)
    counts["lookup_calls"] = deps.lookups.stats.calls
    deps.metrics.record(LOOKUP_CALLS, deps.lookups.stats.calls - calls_before)
    deps.metrics.record(LOOKUP_THROTTLES, deps.lookups.stats.throttled - throttled_before)
    return counts


def _after_failure(deps: StageDeps, settings: Settings, members: list[tuple[LookupJob, ReceivedMessage]],
                   counts: dict[str, int]) -> None:
    """Try again on the usual schedule; a change whose lookups keep failing is still reported at give-up."""
    now = deps.now()
    queue = deps.queue(LOOKUP_QUEUE)
    for job, message in members:
        if job.is_watch:
            if now >= job.arrived_at + timedelta(minutes=settings.give_up_minutes):
                emit(deps, build_outcome(job, UNATTRIBUTED_CHANGE, now, None, unverified=LOOKUPS_FAILED),
                     revision=job.revision + 1)
                queue.delete([message])
            else:
                _requeue(deps, job, next_attempt(job, now, settings), message, now)
        elif job.is_followup:
            queue.delete([message])  # an alert was emitted; the calls it might add are not worth a loop
        elif now >= job.arrived_at + timedelta(minutes=settings.give_up_minutes):
            counts["unattributed"] += 1
            emit(deps, build_outcome(job, UNATTRIBUTED_CHANGE, now, None, unverified=LOOKUPS_FAILED))
            queue.delete([message])
        else:
            _requeue(deps, job.retried(next_attempt(job, now, settings)), None, message, now)


@dataclass
class _Reading:
    """How much of one job's evidence has been read: per lookup, how far back (or ``READ_TO_END``).

    A pass that needs several runs reads CloudTrail as it was when the pass began: a call that became
    visible since, newer than where the pass had got to, is not in it. Such a pass proves nothing
    until it began late enough for every call of the window to be visible (``SETTLED_AFTER`` past
    the capture); before that, a finished pass starts over, keeping the calls it found.
    """

    window_key: str
    cursors: dict[str, str]
    started: datetime
    carried_over: bool = False  # the pass began in an earlier run
    pages: int = 0
    swept: bool = False  # a sweep of every write call in its window was read to the end in this run
    streamed: bool = False  # the live stream holds every call of the window (core.stream): no lookup needed

    @classmethod
    def of(cls, job: LookupJob, window: tuple[datetime, datetime], now: datetime) -> _Reading:
        key = f"{iso(window[0])}|{iso(window[1])}"
        # Alert follow-ups look afresh each time for calls that became visible later; a watched
        # suppression reads on like an undecided item; a changed window reads anew.
        keep = (job.is_watch or not job.is_followup) and job.cursor_window == key
        cursors = dict(job.cursors) if keep else {}
        began = parse_time(cursors.pop(PASS_STARTED, None))
        return cls(window_key=key, cursors=cursors, started=began or now, carried_over=began is not None)

    def done(self, job: LookupJob, names: tuple[str, ...]) -> bool:
        if self.swept or self.streamed:
            return True  # one sweep, read to the end within this run; or the stream's complete evidence
        complete = all(self.cursors.get(_query(n)) == READ_TO_END for n in names)
        if complete and self.carried_over and not self.settled(job):
            self.cursors = {}  # a pass over several runs, begun too early: read again from the newest call
            return False
        return complete

    def settled(self, job: LookupJob) -> bool:
        """Begun when every call of the item's window was visible: a complete pass is final."""
        capture = job.change.capture_time
        return self.streamed or capture is None or self.started >= capture + SETTLED_AFTER

    def saved(self) -> dict[str, str]:
        if not self.cursors:
            return {}
        return {**self.cursors, PASS_STARTED: iso(self.started) or ""}


def _query(name: str) -> str:
    return f"ResourceName={name}"


def _resolve_group(deps: StageDeps, settings: Settings, region: str, members: list[tuple[LookupJob, ReceivedMessage]],
                   counts: dict[str, int], deadline: float) -> None:
    lookback = timedelta(minutes=settings.lookback_minutes)
    previous = {job.change_key: previous_capture(deps, job.change) for job, _ in members}
    pool = _Pool()
    for job, _ in members:
        pool.add_carried(job)

    def decide(job: LookupJob) -> attr.Attribution | None:
        return attr.attribute(job.change, pool.events.values(), previous_capture=previous[job.change_key],
                              lookback=lookback, trusted_patterns=settings.trusted_principals,
                              trust_aws_services=settings.trust_aws_services, keys_of=pool.keys)

    jobs = [job for job, _ in members]
    now = deps.now()
    by_stream: dict[str, _Reading] = {}
    for job in jobs:
        settled = _streamed(deps, region, job, pool, previous, lookback, decide)
        if settled is not None:
            window = attr.window(job.change, previous[job.change_key], lookback)
            by_stream[job.change_key] = replace(_Reading.of(job, window, now), streamed=settled)
    readings = _gather(deps, region, [j for j in jobs if j.change_key not in by_stream], pool, previous, lookback,
                       decide, deadline)
    readings.update(by_stream)
    now = deps.now()
    for job, message in members:
        try:
            _conclude(deps, settings, job, message, decide(job), readings[job.change_key], pool, counts, now)
        except Exception as error:  # one item's failure never re-handles or loses the group's others
            log_json(log, logging.ERROR, "lookup_job_failed", change_key=job.change_key,
                     error=f"{type(error).__name__}: {str(error)[:200]}")
            _after_failure(deps, settings, [(job, message)], counts)


def _streamed(deps: StageDeps, region: str, job: LookupJob, pool: _Pool, previous: dict[str, datetime | None],
              lookback: timedelta, decide) -> bool | None:
    """Add the calls the live stream delivered for ``job`` to the pool. ``True``: they settle it with no lookup;
    ``False``: the stream flows but is not complete yet, so wait for it rather than ask the history; ``None``:
    ask the history (``LookupEvents``).

    A first decision is settled by an untrusted call (an alert needs no completeness), or by any decision once
    the stream is complete evidence; an alert's follow-up once it is complete. A watched suppression always
    reads the history: that is where a person's call the stream missed shows.
    """
    change = job.change
    if change.capture_time is None:
        return None
    window = attr.window(change, previous[job.change_key], lookback)
    names = (*attr.resource_keys(change), *attr.related_keys(change))
    found = recall(deps, change.account or "", region, names, window, change.capture_time)
    for event in found.events:
        event_id = event.event_id or ""
        pool.events.setdefault(event_id, event)
        pool.keys[event_id] = pool.keys.get(event_id, frozenset()) | found.keys.get(event_id, frozenset())
        pool.keys[event_id] |= attr.event_keys(event)
    if job.is_watch:
        return None
    decision = None if job.is_followup else decide(job)
    if found.complete:
        return True if job.is_followup or decision is not None else None
    if decision is not None and decision.verdict is None:
        return True
    return False if found.flowing else None


def _conclude(deps: StageDeps, settings: Settings, job: LookupJob, message: ReceivedMessage,
              found: attr.Attribution | None, reading: _Reading, pool: _Pool, counts: dict[str, int],
              now: datetime) -> None:
    """Decide, wait, watch or give up on one item after this run's reading."""
    complete = reading.done(job, _required_names(job, found))
    if complete:
        reading.cursors = {}  # the next look, if any, is a new pass over what is visible then
    narrowed = job.decided_window is not None and reading.window_key != job.decided_window
    job = _carry(job, reading, found, pool)
    if job.is_watch:
        counts["followups"] += 1
        _watch(deps, settings, job, found, message, now, complete=complete)
    elif job.is_followup:
        counts["followups"] += 1
        _follow_up(deps, settings, job, found, message, now, narrowed=narrowed,
                   settled=complete and reading.settled(job))
    elif found is not None and (found.verdict is None or complete):
        # An untrusted call is alerted at once; silence waits until every call in the window was read.
        counts["decided"] += 1
        _decided(deps, settings, job, found, message, now)
    elif now >= job.arrived_at + timedelta(minutes=settings.give_up_minutes):
        counts["unattributed"] += 1
        emit(deps, build_outcome(job, UNATTRIBUTED_CHANGE, now, None,
                                 unverified=_unverified(found, complete, job)))
        deps.queue(LOOKUP_QUEUE).delete([message])
    else:
        counts["waiting"] += 1
        _requeue(deps, job.retried(next_attempt(job, now, settings)), None, message, now)


def _required_names(job: LookupJob, found: attr.Attribution | None) -> tuple[str, ...]:
    """The lookups whose every page must be read before the item may be suppressed."""
    names = attr.lookup_names(job.change)[:MAX_NAMES]
    if found is None or found.via == "related-resource":
        names += attr.related_keys(job.change)[:MAX_NAMES]
    return names


def _unverified(found: attr.Attribution | None, complete: bool, job: LookupJob) -> str | None:
    """Why an unattributed change could not be checked to the end, for the alert."""
    if complete:
        return None
    if found is not None:
        return (f"only trusted calls were found, but CloudTrail held more calls on this resource than "
                f"could be read before giving up ({job.pages_read} pages read); a person's call may be among them")
    return f"no causing call found in {job.pages_read} pages of CloudTrail; more remained unread when it gave up"


def _carry(job: LookupJob, reading: _Reading, found: attr.Attribution | None, pool: _Pool) -> LookupJob:
    """Keep what this run learned for the next: how far each lookup read, and the candidate calls."""
    carried = job.carried
    if found is not None and not job.is_followup:
        wanted = set(attr.resource_keys(job.change)) | set(attr.related_keys(job.change))
        carried = tuple(_carried_entry(e, pool, wanted) for e in found.events[-MAX_CARRIED:])
    keep = job.is_watch or not job.is_followup
    return replace(job, cursors=reading.saved() if keep else {}, cursor_window=reading.window_key,
                   carried=carried, pages_read=job.pages_read + reading.pages)


def _carried_entry(event: TrailEvent, pool: _Pool, wanted: set[str]) -> dict[str, object]:
    """A candidate call small enough to travel in the job: its record without large parts, and the item's
    identifiers it was matched on (whatever else the caller wrote into the request stays behind)."""
    record = event.raw
    text = json.dumps(record, default=str)
    if len(text) > CARRIED_RECORD_CHARS:
        slim = {k: v for k, v in record.items()
                if k in ("eventVersion", "userIdentity", "eventTime", "eventSource", "eventName", "awsRegion",
                         "sourceIPAddress", "eventID", "readOnly", "eventType", "recipientAccountId",
                         "sessionCredentialFromConsole", "errorCode")}
        text = json.dumps(slim, default=str)[:CARRIED_RECORD_CHARS]
    keys = sorted(pool.keys.get(event.event_id or "", frozenset()) & wanted)[:20]
    return {"EventId": event.event_id, "CloudTrailEvent": text, "keys": keys,
            "Resources": [{"ResourceType": r.type, "ResourceName": r.name} for r in event.indexed_resources][:10]}


def _gather(deps: StageDeps, region: str, jobs: list[LookupJob], pool: _Pool,
            previous: dict[str, datetime | None], lookback: timedelta, decide, deadline: float) -> dict[str, _Reading]:
    lookups = deps.lookups
    windows = {j.change_key: attr.window(j.change, previous[j.change_key], lookback) for j in jobs}
    now = deps.now()
    readings = {j.change_key: _Reading.of(j, windows[j.change_key], now) for j in jobs}
    for job in jobs:
        for event_id in job.change.related_events[:5]:
            _fetch(lookups, pool, region, "EventId", event_id, None, None)

    def unsettled(job: LookupJob) -> bool:
        """Still reading: a follow-up, or nothing found, or only trusted calls (silence needs them all)."""
        found = decide(job)
        return job.is_followup or found is None or found.verdict is not None

    pending = [j for j in jobs if unsettled(j)]
    if not pending:
        return readings
    per_name_cost = sum(len(attr.lookup_names(j.change)[:MAX_NAMES]) for j in pending)
    unprofitable: dict[str, datetime] = deps.memory.setdefault("sweep_unprofitable", {})
    if per_name_cost >= 2 and unprofitable.get(region, now) <= now:
        # One sweep of every write call in the group's window usually costs a page or two, where
        # looking each name up costs a call per name; stop early when it would not be cheaper.
        start = min(windows[j.change_key][0] for j in pending) - timedelta(seconds=1)
        end = max(windows[j.change_key][1] for j in pending)
        calls_before = lookups.stats.calls
        events, complete = lookups.lookup(region, "ReadOnly", "false", start, end,
                                          max_pages=min(MAX_SWEEP_PAGES, per_name_cost - 1))
        deps.memory.setdefault("sweep_pages", {})[region] = lookups.stats.calls - calls_before
        pool.add(events)
        if complete:
            for job in pending:
                readings[job.change_key].swept = True
            return readings
        unprofitable[region] = now + SWEEP_PAUSE
        pending = [j for j in pending if unsettled(j)]
    for job in pending:
        if deps.clock() >= deadline:
            break  # the rest wait for the next run
        _read_names(deps, pool, region, job, windows[job.change_key], readings[job.change_key], decide, deadline)
    return readings


def _read_names(deps: StageDeps, pool: _Pool, region: str, job: LookupJob, window: tuple[datetime, datetime],
                reading: _Reading, decide, deadline: float) -> None:
    """Read the job's lookups on from where the last run stopped, until an untrusted call shows or all is read."""
    start, end = window[0] - timedelta(seconds=1), window[1]
    budget = FOLLOWUP_PAGES if job.is_followup and not job.is_watch else PAGES_PER_JOB_PER_RUN
    for related in (False, True):
        if related and decide(job) is not None and decide(job).via != "related-resource":
            return  # calls on the resource itself decide; linked resources do not matter
        names = attr.related_keys(job.change) if related else attr.lookup_names(job.change)
        for name in names[:MAX_NAMES]:
            if budget <= 0 or deps.clock() >= deadline:
                return
            budget -= _read_on(deps.lookups, pool, region, name, start, end, reading, budget)
            found = decide(job)
            if found is not None and found.verdict is None and not job.is_followup:
                return  # an untrusted call: alert now, follow-ups add the rest


def _read_on(lookups, pool: _Pool, region: str, name: str, start: datetime, end: datetime,
             reading: _Reading, budget: int) -> int:
    """Read up to ``budget`` more pages of one ResourceName lookup; the pages it cost."""
    query = _query(name)
    cursor = reading.cursors.get(query)
    if cursor == READ_TO_END:
        return 0
    upper = parse_time(cursor) or end
    if upper <= start:
        reading.cursors[query] = READ_TO_END
        return 0
    calls_before = lookups.stats.calls
    events, complete = lookups.lookup(region, "ResourceName", name, start, upper, max_pages=budget)
    pool.add(events)
    times = [e.event_time for e in events if e.event_time]
    # Newest first: what is left is no newer than the oldest call read (calls at that second are read again).
    reading.cursors[query] = READ_TO_END if complete else iso(min(times) if times else upper) or READ_TO_END
    pages = max(1, lookups.stats.calls - calls_before)
    reading.pages += pages
    return pages


def _fetch(lookups, pool: _Pool, region: str, attribute: str, value: str,
           start: datetime | None, end: datetime | None) -> None:
    key = (region, attribute, value, f"{iso(start)}|{iso(end)}")
    if key in pool.fetched:
        return
    pool.fetched.add(key)
    events, _complete = lookups.lookup(region, attribute, value, start, end, max_pages=4)
    pool.add(events)


def _followup_time(now: datetime, index: int) -> datetime:
    """At least ``FOLLOWUP_DELAYS[index]`` from now, on a shared grid so alerts' follow-ups share a lookup."""
    return _on_grid(now + FOLLOWUP_DELAYS[index])


def _on_grid(due: datetime) -> datetime:
    grid = FOLLOWUP_GRID.total_seconds()
    return datetime.fromtimestamp(-(-due.timestamp() // grid) * grid, tz=due.tzinfo)


def next_attempt(job: LookupJob, now: datetime, settings: Settings) -> datetime:
    """The next look for calls not yet visible (``RETRY_STEPS``), never later than the give-up time."""
    age = now - job.arrived_at
    step = next((every for until, every in RETRY_STEPS if until is None or age < until), RETRY_STEPS[-1][1])
    return min(now + step, job.arrived_at + timedelta(minutes=settings.give_up_minutes))


def _decided(deps: StageDeps, settings: Settings, job: LookupJob, found: attr.Attribution, message: ReceivedMessage,
             now: datetime) -> None:
    kind = MANUAL_CHANGE if found.verdict is None else SUPPRESSED
    outcome = build_outcome(job, kind, now, found, trusted_patterns=settings.trusted_principals)
    emit(deps, outcome)
    if kind == MANUAL_CHANGE:
        followup = replace(job, decided_kind=kind, decided_event_ids=outcome.event_ids, attempts=0,
                           not_before=_followup_time(now, 0), decided_window=job.cursor_window)
        _requeue(deps, followup, None, message, now)
    else:  # watched until the give-up time (D20)
        watch = replace(job, decided_kind=kind, attempts=0)
        _requeue(deps, watch, _next_watch(watch, now, settings) or now + WATCH_EVERY, message, now)


def _next_watch(job: LookupJob, now: datetime, settings: Settings) -> datetime | None:
    """The next check of a suppression, on the shared grid so one sweep serves a whole apply; ``None`` after
    the give-up time, when the suppression is final."""
    give_up = job.arrived_at + timedelta(minutes=settings.give_up_minutes)
    capture = job.change.capture_time or job.arrived_at
    checks = [capture + after for after in WATCH_CHECKS if capture + after < give_up]
    for due in (*checks, give_up):
        if due > now + EARLY:
            return _on_grid(due)
    return None


def _watch(deps: StageDeps, settings: Settings, job: LookupJob, found: attr.Attribution | None,
           message: ReceivedMessage, now: datetime, *, complete: bool) -> None:
    """Keep checking a suppression until the give-up time: a person's call seen later makes it an alert;
    evidence that cannot be completed by then makes it an unverified change."""
    queue = deps.queue(LOOKUP_QUEUE)
    if found is not None and found.verdict is None:
        outcome = build_outcome(job, MANUAL_CHANGE, now, found, trusted_patterns=settings.trusted_principals)
        emit(deps, outcome, revision=job.revision + 1)
        job = replace(job, decided_kind=MANUAL_CHANGE, decided_event_ids=outcome.event_ids,
                      revision=job.revision + 1, attempts=0, cursors={})
        _requeue(deps, replace(job, not_before=_followup_time(now, 0)), None, message, now)
        return
    later = _next_watch(job, now, settings)
    if not complete and later is None:
        emit(deps, build_outcome(job, UNATTRIBUTED_CHANGE, now, None, unverified=_unverified(found, False, job)),
             revision=job.revision + 1)
        queue.delete([message])
    elif not complete:
        _requeue(deps, replace(job, not_before=now + WATCH_EVERY), None, message, now)  # read on
    elif later is None:
        queue.delete([message])  # read to the end after the give-up time: final
    else:
        _requeue(deps, replace(job, not_before=later), None, message, now)


def _follow_up(deps: StageDeps, settings: Settings, job: LookupJob, found: attr.Attribution | None,
               message: ReceivedMessage, now: datetime, *, narrowed: bool = False, settled: bool = False) -> None:
    """Revise an emitted outcome with calls that became visible later.

    A suppression becomes a ``manual_change`` (an alert) when a person's call on the same item shows
    up after the trusted one did; an alert gains the calls that appeared after it was sent. An alert
    becomes a suppression only when its window ``narrowed`` (an earlier item of the resource arrived
    late and claims the untrusted calls) and every call in the narrower window was read by a pass
    begun when all were visible (``settled``); it is then watched like any suppression. A later read
    that is merely partial never revises an alert down.
    """
    if narrowed and found is not None and found.verdict is not None:
        give_up = job.arrived_at + timedelta(minutes=settings.give_up_minutes)
        if settled:
            emit(deps, build_outcome(job, SUPPRESSED, now, found), revision=job.revision + 1)
            watch = replace(job, decided_kind=SUPPRESSED, revision=job.revision + 1, attempts=0, cursors={})
            _requeue(deps, watch, _next_watch(watch, now, settings) or now + WATCH_EVERY, message, now)
        elif now < give_up:  # check again once every call of the narrower window is visible
            capture = job.change.capture_time or now
            _requeue(deps, job, max(now + WATCH_EVERY, _on_grid(capture + SETTLED_AFTER)), message, now)
        else:
            deps.queue(LOOKUP_QUEUE).delete([message])  # the alert stands
        return
    if found is not None and found.verdict is None:
        ids = {e.event_id for e in found.events if e.event_id}
        if not ids <= set(job.decided_event_ids):
            merged = tuple(dict.fromkeys((*job.decided_event_ids, *sorted(ids))))
            outcome = build_outcome(job, MANUAL_CHANGE, now, found, trusted_patterns=settings.trusted_principals)
            emit(deps, replace(outcome, event_ids=merged), revision=job.revision + 1)
            job = replace(job, decided_event_ids=merged, revision=job.revision + 1)
    done = job.attempts + 1
    if done >= len(FOLLOWUP_DELAYS):
        deps.queue(LOOKUP_QUEUE).delete([message])
        return
    _requeue(deps, replace(job, attempts=done, not_before=_followup_time(now, done)), None, message, now)


def _read_job(message: ReceivedMessage, deps: StageDeps) -> LookupJob | None:
    try:
        return LookupJob.from_json(message.json())
    except Exception as error:  # any damage to a job dead-letters that job, never the run
        reason = f"unreadable lookup job: {type(error).__name__}: {str(error)[:200]}"
        log_json(log, logging.ERROR, "lookup_job_dead_lettered", message_id=message.message_id, reason=reason)
        dead_letter(deps, LOOKUP_DLQ, message.body, reason, permanent=True)
        return None


def _requeue(deps: StageDeps, job: LookupJob, when: datetime | None, message: ReceivedMessage | None,
             now: datetime) -> None:
    """Send the job back with a delay, then delete the received copy (never the other way round)."""
    if when is not None:
        job = replace(job, not_before=when)
    delay = ((job.not_before or now) - now - EARLY).total_seconds()
    queue = deps.queue(LOOKUP_QUEUE)
    queue.send(job.to_json(), delay_seconds=max(0.0, delay))
    if message is not None:
        queue.delete([message])


def _drain(queue) -> list[ReceivedMessage]:
    messages: list[ReceivedMessage] = []
    while len(messages) < MAX_JOBS_PER_RUN:
        batch = queue.receive(10, visibility_timeout=300)
        if not batch:
            break
        messages.extend(batch)
    return messages
