"""The lookup stage: find each waiting item's CloudTrail author, decide, and emit the outcome.

A run takes the queue in chunks (``CHUNK_JOBS`` jobs at a time, each chunk settled and sent back before
the next is received), so it never holds more than a chunk of jobs. Jobs are grouped by account and the
region where CloudTrail records their calls; each group gets a share of the run (``GROUP_SHARE`` of the
time left when it first shows up), smallest groups first, so a burst in one region cannot starve a quiet
region's alert: its jobs beyond the share wait for the next run. For a group the stage chooses the
cheapest way to see the candidate calls: a job's ``relatedEvents`` by event id; several jobs at once by
a sweep of all write calls in their common window (a Terraform apply of 200 changes costs a few pages,
not 200 lookups), shared by every chunk of the run and never costing more than looking the names up
would; one or two jobs by ``ResourceName``, falling back to the resources named in the item's
relationship diff. The calls read are indexed once per group (``attribution.CallIndex``), so deciding
grows with items plus calls. Jobs whose author is not visible yet go back on the queue with a delay;
after ``give_up_minutes`` the change is reported unattributed. An untrusted call is alerted at once; a
suppression waits until every call in the item's window was read, across runs if a flood makes that long
(D20, D30). After an alert, two follow-up lookups add calls on the same resource that became visible
later; a suppression is checked again until the give-up time in case a person's call on the item shows
up after the trusted one.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone

from chalicelib.core import attribution as attr
from chalicelib.core.change_outcomes import build_outcome
from chalicelib.core.errors import AccountUnreachable
from chalicelib.core.jobs import MAX_CARRIED, READ_TO_END, LookupJob
from chalicelib.core.logs import log_json
from chalicelib.core.metrics import ACCOUNTS_UNREACHABLE, LOOKUP_CALLS, LOOKUP_THROTTLES
from chalicelib.core.model import TrailEvent
from chalicelib.core.outcomes import MANUAL_CHANGE, SUPPRESSED, UNATTRIBUTED_CHANGE
from chalicelib.core.settings import Settings
from chalicelib.core.timeutil import iso, parse_time
from chalicelib.parsing.cloudtrail import parse_lookup_event
from chalicelib.ports import ReceivedMessage, StageDeps
from chalicelib.stages.shared.captures import previous_capture
from chalicelib.stages.shared.emit import emit
from chalicelib.stages.shared.queues import LOOKUP_DLQ, LOOKUP_QUEUE, dead_letter
from chalicelib.stages.shared.recent_calls import Recalled, recall

log = logging.getLogger("mcd.lookup")

CHUNK_JOBS = 100  # received (10 at a time), decided and sent back before more are received
CHUNK_BYTES = 4_000_000  # and at most about this much of them: a chunk of the largest jobs (180 KB) is ~25
RECEIVE_VISIBILITY = 300  # seconds a received job stays hidden: the function's timeout
GROUP_SHARE = 0.5  # of the run's time left when a group first shows up: what it may use of it
SECONDS_PER_PAGE = 0.5  # what a LookupEvents page costs at least (2 calls/s per region)
DENSITY_FOR = timedelta(hours=2)  # how long a count of a region's write calls guides sweeps
DENSITY_MEMORY = "sweep_density"  # deps.memory: (account, region) -> {minute: (write calls read, when read)}
SWEEP = "ReadOnly=false"  # the cursor of a sweep that goes on over several runs
SWEEP_ABOVE = timedelta(minutes=2)  # how far above its newest window a sweep reads when more chunks may follow
PAGE = 50  # calls on a LookupEvents page
WATCH_EVERY = timedelta(minutes=1)  # while a pass over a flooded resource reads on
WATCH_CHECKS = (timedelta(minutes=15),)  # after capture, when most late calls are visible; then at the give-up time
STREAM_WATCH_AFTER = timedelta(minutes=60)  # a suppression decided from the stream: its one history check
STREAM_WATCH_GRID = timedelta(minutes=30)  # ... shared by half an hour's suppressions, so one sweep reads them all
LOOKUPS_FAILED = "CloudTrail lookups kept failing (throttled or unavailable) until the give-up time"
EARLY = timedelta(seconds=5)  # re-queued jobs become visible this much before they are due, to meet the tick
DEFER = timedelta(seconds=30)  # a job its group's share (or the run) had no time for: looked at in the next run
FOLLOWUP_DELAYS = (timedelta(minutes=3), timedelta(minutes=5))
FOLLOWUP_GRID = timedelta(minutes=5)
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
TICK = timedelta(milliseconds=1)  # the resolution of event times (and of cursors)

Member = tuple[LookupJob, ReceivedMessage]


class _Pool:
    """The write calls a group's lookups found in this run, indexed once by the identifiers they name."""

    def __init__(self) -> None:
        self.index = attr.CallIndex()
        self.fetched: set[tuple[str, str, str]] = set()  # EventId lookups made in this run
        self.disputed: dict[str, frozenset[str]] = {}  # change key -> calls two streamed records claim

    @property
    def keys(self) -> dict[str, frozenset[str]]:
        return self.index.keys

    def add(self, events: list[TrailEvent]) -> None:
        for event in events:
            self.index.add(event)

    def add_carried(self, job: LookupJob) -> None:
        """Candidate calls an earlier run of this job found, with the identifiers they were matched on."""
        for entry in job.carried:
            event = parse_lookup_event(entry, "carried")
            if isinstance(event, TrailEvent) and event.event_id:
                keys = entry.get("keys")
                self.index.add(event, [str(k) for k in keys] if isinstance(keys, list) else ())

    def add_streamed(self, found: Recalled) -> None:
        for event in found.events:
            self.index.add(event, found.keys.get(event.event_id or "", frozenset()))


class _Outbox:
    """Jobs to send back and received messages to delete, in SQS batches; a job's copy is sent before the
    message it came in is deleted (never the other way round)."""

    def __init__(self, deps: StageDeps) -> None:
        self.deps = deps
        self.queue = deps.queue(LOOKUP_QUEUE)
        self._sends: list[tuple[datetime | None, dict[str, object], ReceivedMessage | None]] = []
        self._deletes: list[ReceivedMessage] = []

    def requeue(self, job: LookupJob, when: datetime | None, message: ReceivedMessage | None) -> None:
        """Send the job back, due ``when`` (or at its own ``not_before``); the received copy is deleted after."""
        if when is not None:
            job = replace(job, not_before=when)
        self._sends.append((job.not_before, job.to_json(), message))

    def delete(self, message: ReceivedMessage) -> None:
        self._deletes.append(message)

    def flush(self) -> None:
        now = self.deps.now()
        by_delay: dict[int, list[tuple[dict[str, object], ReceivedMessage | None]]] = {}
        for due, body, message in self._sends:
            # At least a second: a job sent back is not received again at once.
            delay = max(1, round(((due or now) - now - EARLY).total_seconds()))
            by_delay.setdefault(delay, []).append((body, message))
        self._sends = []
        for delay, entries in by_delay.items():
            for start in range(0, len(entries), 10):
                batch = entries[start:start + 10]
                self.queue.send_many([body for body, _ in batch], delay_seconds=delay)
                received = [message for _, message in batch if message is not None]
                if received:
                    self.queue.delete(received)
        deletes, self._deletes = self._deletes, []
        if deletes:
            self.queue.delete(deletes)


@dataclass
class _Group:
    """One account and region in this run: its share of the run, the calls read and what sweeps covered."""

    account: str
    region: str
    share_ends: float
    pool: _Pool = field(default_factory=_Pool)
    covered: list[tuple[datetime, datetime]] = field(default_factory=list)
    """``(low, high)``: every write call with ``low < eventTime <= high`` was read in this run."""
    allowance: int = 0
    """Pages sweeps may still cost: what looking up the names of the jobs they serve would have cost."""
    failed: bool = False  # its lookups failed in this run (throttled, refused): its later chunks wait too

    def cover(self, low: datetime, high: datetime) -> None:
        self.covered = _merged([*self.covered, (low, high)])

    def covers(self, low: datetime, high: datetime) -> bool:
        """Whether every write call with ``low < eventTime <= high`` was read."""
        return any(lo <= low and high <= hi for lo, hi in self.covered)

    def read_below(self, high: datetime) -> datetime | None:
        """How far down the calls up to ``high`` were read without a gap: the ``low`` of the span holding it."""
        return next((lo for lo, hi in self.covered if lo < high <= hi), None)

    def gaps(self, low: datetime, high: datetime) -> list[tuple[datetime, datetime]]:
        """The parts of ``(low, high]`` not covered yet, newest first."""
        found: list[tuple[datetime, datetime]] = []
        bottom = low
        for lo, hi in self.covered:
            if hi <= bottom:
                continue
            if lo >= high:
                break
            if lo > bottom:
                found.append((bottom, lo))
            bottom = hi
            if bottom >= high:
                break
        if bottom < high:
            found.append((bottom, high))
        return found[::-1]


class _Run:
    """One invocation: its deadline, settings, counts, outbox, and the groups met so far."""

    def __init__(self, deps: StageDeps, deadline: float) -> None:
        self.deps = deps
        self.deadline = deadline
        self.settings = deps.settings()
        self.outbox = _Outbox(deps)
        self.counts = {"jobs": 0, "decided": 0, "waiting": 0, "unattributed": 0, "followups": 0, "deferred": 0}
        self.groups: dict[tuple[str, str], _Group] = {}
        self.seconds_per_page = SECONDS_PER_PAGE
        self.started = deps.now()
        self.ends = datetime.fromtimestamp(deadline, tz=timezone.utc)
        self.handled: set[str] = set()  # change keys this run decided on or sent back
        self.more = False  # the chunk in hand is full: more jobs may follow in this run
        self.deferred: set[str] = set()  # change keys sent back for want of time: once more, and the run is over

    def group(self, account: str, region: str) -> _Group:
        found = self.groups.get((account, region))
        if found is None:
            now = self.deps.clock()
            found = _Group(account, region, now + max(0.0, self.deadline - now) * GROUP_SHARE)
            self.groups[(account, region)] = found
        return found

    def working(self, group: _Group) -> bool:
        """Whether the group may still take new work: within its share and the run's budget."""
        return self.deps.clock() < min(group.share_ends, self.deadline)

    def pages_left(self, group: _Group) -> int:
        """Pages the group can still read in its share, at the rate pages have cost so far in this run."""
        left = min(group.share_ends, self.deadline) - self.deps.clock()
        return max(0, int(left / self.seconds_per_page)) if left > 0 else 0

    def timed(self, seconds: float, pages: int) -> None:
        if pages > 0:
            self.seconds_per_page = max(SECONDS_PER_PAGE, seconds / pages, self.seconds_per_page * 0.5)

    def take(self, messages: list[ReceivedMessage], *, more: bool = False) -> None:
        """Decide one chunk: read the jobs, group them, resolve each group within its share, send back.
        ``more``: the chunk is full, more jobs may follow in this run."""
        deps = self.deps
        self.more = more
        now = deps.now()
        groups: dict[tuple[str, str], list[Member]] = {}
        try:
            for message in messages:
                job = _read_job(message, deps)
                if job is None:
                    self.outbox.delete(message)
                    continue
                self.counts["jobs"] += 1
                if job.not_before and job.not_before > now + EARLY:
                    self.outbox.requeue(job, job.not_before, message)
                    continue
                if job.change_key in self.handled:
                    # Back in the run that sent it back: it waits for the next run (one this run had no time
                    # for, until this run is over).
                    self.counts["deferred"] += 1
                    again = max(now + DEFER, self.ends) if job.change_key in self.deferred else now + DEFER
                    self.outbox.requeue(job, again, message)
                    continue
                self.handled.add(job.change_key)
                region = attr.lookup_region(job.change, deps.env.home_region)
                groups.setdefault((job.change.account or "", region), []).append((job, message))
            for (account, region), members in sorted(groups.items(), key=lambda item: len(item[1])):
                self._resolve(self.group(account, region), members)
                self.outbox.flush()
        finally:
            self.outbox.flush()

    def _resolve(self, group: _Group, members: list[Member]) -> None:
        members = self._defer_beyond_share(group, members)
        if not members:
            return
        if group.failed:
            _after_failure(self, members)  # one failure a run per region, not one per chunk
            return
        try:
            _resolve_group(self, group, members)
        except AccountUnreachable as error:  # no lookup role there: say so now rather than wait to give up
            _unreachable(self, error, members)
        except Exception as error:  # throttled, CloudTrail unavailable, a region it refuses
            log_json(log, logging.WARNING, "lookup_group_failed", region=group.region, jobs=len(members),
                     error=f"{type(error).__name__}: {str(error)[:200]}")
            group.failed = True
            _after_failure(self, members)

    def _defer_beyond_share(self, group: _Group, members: list[Member]) -> list[Member]:
        """Send back, unchanged, the jobs the group's share (or the run) has no time left for; a job past its
        give-up time is still concluded (without lookups)."""
        if self.working(group):
            return members
        now = self.deps.now()
        give_up = timedelta(minutes=self.settings.give_up_minutes)
        kept = []
        for job, message in members:
            if now >= job.arrived_at + give_up:
                kept.append((job, message))
            else:
                self.deferred.add(job.change_key)
                self.counts["deferred"] += 1
                self.outbox.requeue(job, now + DEFER, message)
        return kept

    def finish(self, calls_before: int, throttled_before: int) -> dict[str, int]:
        lookups = self.deps.lookups
        self.counts["lookup_calls"] = lookups.stats.calls
        self.deps.metrics.record(LOOKUP_CALLS, lookups.stats.calls - calls_before)
        self.deps.metrics.record(LOOKUP_THROTTLES, lookups.stats.throttled - throttled_before)
        return self.counts


def lookup(deps: StageDeps) -> dict[str, int]:
    deadline = deps.deadline()
    queue = deps.queue(LOOKUP_QUEUE)
    calls_before, throttled_before = deps.lookups.stats.calls, deps.lookups.stats.throttled
    run: _Run | None = None
    while deps.clock() < deadline:
        messages, full = _receive(queue)
        if not messages:
            break
        if run is None:
            run = _Run(deps, deadline)
        run.take(messages, more=full)
    if run is None:
        return {"jobs": 0, "decided": 0, "waiting": 0, "unattributed": 0, "followups": 0}
    return run.finish(calls_before, throttled_before)


def _unreachable(run: _Run, error: AccountUnreachable, members: list[Member]) -> None:
    """An account whose history cannot be read: each new change is reported now as unattributed, with the
    reason in the alert (FORMAT.md, Accounts); an earlier decision stands. Logged and counted once per account a
    day: the count's alarm (``mcd-<stage>-account-unreachable``) is the operational alert, on the health topic."""
    deps, now = run.deps, run.deps.now()
    day = now.strftime("%Y-%m-%d")
    if deps.state.get(f"health#account#{error.account}", day) is None:
        log_json(log, logging.ERROR, "account_unreachable", account=error.account, reason=error.reason[:300],
                 fix="deploy infra/region.yaml there (its mcd-lookup role) and list the account in settings.accounts")
        deps.state.put(f"health#account#{error.account}", day, deps.clock(), ttl_days=2)
        deps.metrics.record(ACCOUNTS_UNREACHABLE, 1)
    for job, message in members:
        if not (job.is_watch or job.is_followup):
            run.counts["unattributed"] += 1
            emit(deps, build_outcome(job, UNATTRIBUTED_CHANGE, now, None, unverified=str(error)))
        run.outbox.delete(message)


def _after_failure(run: _Run, members: list[Member]) -> None:
    """Try again on the usual schedule; a change whose lookups keep failing is still reported at give-up."""
    deps, settings, counts = run.deps, run.settings, run.counts
    now = deps.now()
    for job, message in members:
        if job.is_watch:
            if now >= job.arrived_at + timedelta(minutes=settings.give_up_minutes):
                emit(deps, build_outcome(job, UNATTRIBUTED_CHANGE, now, None, unverified=LOOKUPS_FAILED),
                     revision=job.revision + 1)
                run.outbox.delete(message)
            else:
                run.outbox.requeue(job, next_attempt(job, run.started, settings), message)
        elif job.is_followup:
            run.outbox.delete(message)  # an alert was emitted; the calls it might add are not worth a loop
        elif now >= job.arrived_at + timedelta(minutes=settings.give_up_minutes):
            counts["unattributed"] += 1
            emit(deps, build_outcome(job, UNATTRIBUTED_CHANGE, now, None, unverified=LOOKUPS_FAILED))
            run.outbox.delete(message)
        else:
            run.outbox.requeue(job.retried(next_attempt(job, run.started, settings)), None, message)


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
    swept: bool = False  # every write call in its window was read by this run's sweeps
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
        complete = (self.cursors.get(SWEEP) == READ_TO_END  # a sweep over several runs
                    or all(self.cursors.get(_query(n)) == READ_TO_END for n in names))
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


def _resolve_group(run: _Run, group: _Group, members: list[Member]) -> None:
    deps, settings = run.deps, run.settings
    lookback = timedelta(minutes=settings.lookback_minutes)
    previous = {job.change_key: previous_capture(deps, job.change) for job, _ in members}
    keys = {job.change_key: attr.item_keys(job.change) for job, _ in members}
    pool = group.pool
    for job, _ in members:
        pool.add_carried(job)

    decisions: dict[str, tuple[int, attr.Attribution | None]] = {}

    def decide(job: LookupJob) -> attr.Attribution | None:
        """The job's attribution over the calls read so far (worked out again only when more were read)."""
        known = decisions.get(job.change_key)
        if known is not None and known[0] == pool.index.version:
            return known[1]
        found = attr.attribute_indexed(job.change, pool.index, keys=keys[job.change_key],
                                       previous_capture=previous[job.change_key], lookback=lookback,
                                       trusted_patterns=settings.trusted_for(job.change.account,
                                                                             deps.organization.directory),
                                       trust_aws_services=settings.trust_aws_services)
        decisions[job.change_key] = (pool.index.version, found)
        return found

    jobs = [job for job, _ in members]
    now = deps.now()
    by_stream: dict[str, _Reading] = {}
    for job in jobs:
        settled = _streamed(deps, group.region, job, keys[job.change_key], pool, previous, lookback, decide)
        if settled is not None:
            window = attr.window(job.change, previous[job.change_key], lookback)
            by_stream[job.change_key] = replace(_Reading.of(job, window, now), streamed=settled)
    readings = _gather(run, group, [j for j in jobs if j.change_key not in by_stream], keys, previous, lookback,
                       decide)
    readings.update(by_stream)
    now = deps.now()
    for job, message in members:
        try:
            _conclude(run, job, message, decide(job), readings[job.change_key], pool, keys[job.change_key], now)
        except Exception as error:  # one item's failure never re-handles or loses the group's others
            log_json(log, logging.ERROR, "lookup_job_failed", change_key=job.change_key,
                     error=f"{type(error).__name__}: {str(error)[:200]}")
            _after_failure(run, [(job, message)])


def _streamed(deps: StageDeps, region: str, job: LookupJob, keys: attr.ItemKeys, pool: _Pool,
              previous: dict[str, datetime | None], lookback: timedelta, decide) -> bool | None:
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
    found = recall(deps, change.account or "", region, (*keys.resource, *keys.linked), window, change.capture_time)
    pool.add_streamed(found)
    if found.disputed:
        pool.disputed[job.change_key] = found.disputed
    if job.is_watch:
        return None
    decision = None if job.is_followup else decide(job)
    if found.complete:
        return True if job.is_followup or decision is not None else None
    if decision is not None and decision.verdict is None:
        return True
    return False if found.flowing else None


def _conclude(run: _Run, job: LookupJob, message: ReceivedMessage, found: attr.Attribution | None,
              reading: _Reading, pool: _Pool, keys: attr.ItemKeys, now: datetime) -> None:
    """Decide, wait, watch or give up on one item after this run's reading."""
    deps, settings, counts = run.deps, run.settings, run.counts
    complete = reading.done(job, _required_names(keys, found))
    if complete:
        reading.cursors = {}  # the next look, if any, is a new pass over what is visible then
    narrowed = job.decided_window is not None and reading.window_key != job.decided_window
    job = _carry(job, reading, found, pool, keys)
    if job.is_watch:
        counts["followups"] += 1
        _watch(run, job, found, message, now, complete=complete)
    elif job.is_followup:
        counts["followups"] += 1
        _follow_up(run, job, found, message, now, narrowed=narrowed, settled=complete and reading.settled(job))
    elif found is not None and (found.verdict is None or (complete and _undisputed(pool, job))):
        # An untrusted call is alerted at once; silence waits until every call in the window was read (and
        # CloudTrail's own copy of any call two streamed records claim).
        counts["decided"] += 1
        _decided(run, replace(job, streamed=reading.streamed is True), found, message, now)
    elif now >= job.arrived_at + timedelta(minutes=settings.give_up_minutes):
        counts["unattributed"] += 1
        emit(deps, build_outcome(job, UNATTRIBUTED_CHANGE, now, None,
                                 unverified=_unverified(found, complete, job)))
        run.outbox.delete(message)
    else:
        counts["waiting"] += 1
        run.outbox.requeue(job.retried(next_attempt(job, run.started, settings)), None, message)


def _undisputed(pool: _Pool, job: LookupJob) -> bool:
    """No call two streamed records claim (one may be forged into a log group) is left unread in the history."""
    return all(pool.index.in_history(event_id) for event_id in pool.disputed.get(job.change_key, ()))


def _required_names(keys: attr.ItemKeys, found: attr.Attribution | None) -> tuple[str, ...]:
    """The lookups whose every page must be read before the item may be suppressed."""
    names = keys.names[:MAX_NAMES]
    if found is None or found.via == "related-resource":
        names += keys.linked[:MAX_NAMES]
    return names


def _unverified(found: attr.Attribution | None, complete: bool, job: LookupJob) -> str | None:
    """Why an unattributed change could not be checked to the end, for the alert."""
    if complete:
        return None
    if found is not None:
        return (f"only trusted calls were found, but CloudTrail held more calls on this resource than "
                f"could be read before giving up ({job.pages_read} pages read); a person's call may be among them")
    return f"no causing call found in {job.pages_read} pages of CloudTrail; more remained unread when it gave up"


def _carry(job: LookupJob, reading: _Reading, found: attr.Attribution | None, pool: _Pool,
           keys: attr.ItemKeys) -> LookupJob:
    """Keep what this run learned for the next: how far each lookup read, and the candidate calls."""
    carried = job.carried
    if found is not None and not job.is_followup:
        wanted = keys.own | keys.related
        carried = tuple(_carried_entry(e, pool, wanted) for e in found.events[-MAX_CARRIED:])
    keep = job.is_watch or not job.is_followup
    return replace(job, cursors=reading.saved() if keep else {}, cursor_window=reading.window_key,
                   carried=carried, pages_read=job.pages_read + reading.pages)


def _carried_entry(event: TrailEvent, pool: _Pool, wanted: frozenset[str]) -> dict[str, object]:
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


def _gather(run: _Run, group: _Group, jobs: list[LookupJob], keys: dict[str, attr.ItemKeys],
            previous: dict[str, datetime | None], lookback: timedelta, decide) -> dict[str, _Reading]:
    windows = {j.change_key: attr.window(j.change, previous[j.change_key], lookback) for j in jobs}
    now = run.deps.now()
    readings = {j.change_key: _Reading.of(j, windows[j.change_key], now) for j in jobs}
    for job in jobs:
        disputed = sorted(group.pool.disputed.get(job.change_key, ()))[:5]
        for event_id in (*job.change.related_events[:5], *disputed):
            if run.working(group):
                _fetch(run, group, "EventId", event_id)

    def unsettled(job: LookupJob) -> bool:
        """Still reading: a follow-up, or nothing found, or only trusted calls (silence needs them all)."""
        found = decide(job)
        return job.is_followup or found is None or found.verdict is not None

    pending = [j for j in jobs if unsettled(j)]
    if not pending:
        return readings
    for job in _sweep(run, group, pending, keys, windows, readings):
        if not run.working(group):
            break  # the rest wait for the next run
        if unsettled(job):
            _read_names(run, group, job, keys[job.change_key], windows[job.change_key], readings[job.change_key],
                        decide)
    return readings


def _sweep(run: _Run, group: _Group, pending: list[LookupJob], keys: dict[str, attr.ItemKeys],
           windows: dict[str, tuple[datetime, datetime]], readings: dict[str, _Reading]) -> list[LookupJob]:
    """Read every write call in the pending jobs' windows that this run's sweeps have not read yet, when that
    is cheaper than looking their names up; the jobs it leaves to their names.

    One sweep serves every chunk of the run: a job whose window it covers is read to the end. A sweep never
    costs more than the names of the jobs it serves would (``_Group.allowance``; the region's write calls,
    counted by minute by its last sweeps, tell beforehand when it would; where nothing was counted lately, a
    first page tells), and one that stops (the share is spent) leaves each job a cursor from which a later run
    reads on, like a name's.
    """
    uncovered = [job for job in pending if not _swept(group, job, windows[job.change_key], readings[job.change_key])]
    if not uncovered:
        return []
    names_cost = sum(len(keys[job.change_key].names[:MAX_NAMES]) for job in uncovered)
    group.allowance += names_cost
    # When more chunks may follow, windows are read up to a little above the newest: the next chunks' jobs
    # end there too (calls that recent are seldom visible yet). A sweep's cursor is read on from.
    ends = [windows[job.change_key][1] for job in uncovered if SWEEP not in readings[job.change_key].cursors]
    above = max(max(ends), min(run.deps.now(), max(ends) + SWEEP_ABOVE)) if ends and run.more else None
    spans = _merged([_needed(windows[job.change_key], readings[job.change_key], above) for job in uncovered])
    gaps = [gap for low, high in spans for gap in group.gaps(low, high)]
    gaps.sort(key=lambda gap: gap[1], reverse=True)
    estimate = _estimated_pages(run.deps, group, gaps)
    if group.allowance < 2 or (estimate is not None and estimate >= group.allowance):
        group.allowance -= names_cost  # the names are read instead
        return uncovered
    spent = 0
    while gaps:
        if spent >= group.allowance - 1 or not run.working(group):
            break
        if estimate is not None and estimate >= group.allowance - spent:
            break  # what was read so far says the rest would cost more than the names
        low, high = gaps.pop(0)
        tally: dict[int, int] = {}
        budget = 1 if estimate is None else group.allowance - 1 - spent  # density unknown: one page first
        stopped, pages, calls = _read_down(run, group, "ReadOnly", "false", low + TICK, high, budget, tally)
        spent += pages
        reached = low if stopped is None else stopped
        if reached < high:
            group.cover(reached, high)
        _learn_density(run.deps, group, tally, reached, high)
        if stopped is not None:
            if budget > 1 or pages == 0:
                break
            gaps.insert(0, (low, stopped))
            rate = calls / max(1.0, (high - stopped).total_seconds())  # the probe's calls per second
            estimate = math.ceil(rate * sum((b - a).total_seconds() for a, b in gaps) / PAGE)
        elif estimate is not None:
            estimate = _estimated_pages(run.deps, group, gaps)
    group.allowance -= spent
    return [job for job in uncovered if not _swept(group, job, windows[job.change_key], readings[job.change_key])]


def _needed(window: tuple[datetime, datetime], reading: _Reading,
            above: datetime | None = None) -> tuple[datetime, datetime]:
    """What a job still needs swept: its window (from a second before, as every lookup reads it) up to where
    an earlier run's sweep got to, or up to ``above`` (at least its end)."""
    low = window[0] - timedelta(seconds=1) - TICK
    cursor = parse_time(reading.cursors.get(SWEEP))
    if cursor is not None:
        return low, min(window[1], cursor)
    return low, max(window[1], above or window[1])


def _swept(group: _Group, job: LookupJob, window: tuple[datetime, datetime], reading: _Reading) -> bool:
    """Whether this run's sweeps read all the job still needs; else move its sweep cursor down as far as they read."""
    low, high = _needed(window, reading)
    if group.covers(low, window[1]):
        reading.swept = True
        return True
    if reading.cursors.get(SWEEP) == READ_TO_END:
        return True
    if group.covers(low, high):
        reading.cursors[SWEEP] = READ_TO_END  # the pass began in an earlier run: done() checks it is final
        return True
    reached = group.read_below(high)
    if reached is not None and reached < high:
        reading.cursors[SWEEP] = iso(reached) or READ_TO_END
    return False


def _merged(spans: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    ordered = sorted(spans)
    merged = [ordered[0]]
    for low, high in ordered[1:]:
        if low <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], high))
        else:
            merged.append((low, high))
    return merged


def _estimated_pages(deps: StageDeps, group: _Group, gaps: list[tuple[datetime, datetime]]) -> int | None:
    """Pages a sweep of ``gaps`` would take, from the write calls lately read in the region minute by minute (a
    minute not read lately: at their average); ``None`` when nothing was read there lately."""
    fresh = deps.clock() - DENSITY_FOR.total_seconds()
    known = {m: c for m, (c, at) in deps.memory.get(DENSITY_MEMORY, {}).get((group.account, group.region), {}).items()
             if at >= fresh}
    if not known:
        return None
    average = sum(known.values()) / len(known)
    calls = sum(known.get(minute, average) for low, high in gaps for minute in range(_minute(low), _minute(high) + 1))
    return math.ceil(calls / PAGE)


def _learn_density(deps: StageDeps, group: _Group, tally: dict[int, int], low: datetime, high: datetime) -> None:
    """Remember how many write calls each minute of ``(low, high]`` held (a minute read in part: at least that)."""
    now = deps.clock()
    regions = deps.memory.setdefault(DENSITY_MEMORY, {})
    known = {m: c for m, c in regions.get((group.account, group.region), {}).items()
             if c[1] >= now - DENSITY_FOR.total_seconds()}
    for minute in range(_minute(low), _minute(high) + 1):
        whole = low.timestamp() <= minute * 60 and (minute + 1) * 60 <= high.timestamp()
        count = tally.get(minute, 0)
        if not whole and minute in known:
            count = max(count, known[minute][0])
        known[minute] = (count, now)
    regions[(group.account, group.region)] = known


def _minute(when: datetime) -> int:
    return int(when.timestamp() // 60)


def _read_names(run: _Run, group: _Group, job: LookupJob, keys: attr.ItemKeys, window: tuple[datetime, datetime],
                reading: _Reading, decide) -> None:
    """Read the job's lookups on from where the last run stopped, until an untrusted call shows or all is read."""
    start, end = window[0] - timedelta(seconds=1), window[1]
    budget = FOLLOWUP_PAGES if job.is_followup and not job.is_watch else PAGES_PER_JOB_PER_RUN
    for related in (False, True):
        if related and decide(job) is not None and decide(job).via != "related-resource":
            return  # calls on the resource itself decide; linked resources do not matter
        names = keys.linked if related else keys.names
        for name in names[:MAX_NAMES]:
            if budget <= 0 or not run.working(group):
                return
            budget -= _read_on(run, group, name, start, end, reading, budget)
            found = decide(job)
            if found is not None and found.verdict is None and not job.is_followup:
                return  # an untrusted call: alert now, follow-ups add the rest


def _read_on(run: _Run, group: _Group, name: str, start: datetime, end: datetime, reading: _Reading,
             budget: int) -> int:
    """Read up to ``budget`` more pages of one ResourceName lookup; the pages it cost."""
    query = _query(name)
    cursor = reading.cursors.get(query)
    if cursor == READ_TO_END:
        return 0
    upper = parse_time(cursor) or end
    if upper <= start:
        reading.cursors[query] = READ_TO_END
        return 0
    stopped, pages, _calls = _read_down(run, group, "ResourceName", name, start, upper, budget)
    if pages == 0:
        return 0  # no time left to read: nothing begun, nothing to carry
    reading.cursors[query] = READ_TO_END if stopped is None else iso(stopped) or READ_TO_END
    reading.pages += pages
    return pages


def _read_down(run: _Run, group: _Group, attribute: str, value: str, start: datetime, upper: datetime,
               max_pages: int, tally: dict[int, int] | None = None) -> tuple[datetime | None, int, int]:
    """Read one LookupEvents query newest first, from ``upper`` down to ``start``, for at most ``max_pages``
    pages and no longer than the group's share: each call asks for no more pages than the time left allows,
    and the time is checked again between calls. The calls read go to the group's pool.

    Returns where it stopped (``None``: read to the end; else what is left is no newer than that, calls at
    that time being read again), the pages it cost and the number of calls read; ``tally`` counts them by minute.
    """
    lookups = run.deps.lookups
    pages = calls = 0
    while pages < max_pages:
        want = min(max_pages - pages, run.pages_left(group))
        if want <= 0:
            break
        calls_before, started = lookups.stats.calls, run.deps.clock()
        events, complete = lookups.lookup(group.region, attribute, value, start, upper, max_pages=want,
                                          account=group.account or None)
        cost = max(1, lookups.stats.calls - calls_before)
        run.timed(run.deps.clock() - started, cost)
        pages += cost
        calls += len(events)
        group.pool.add(events)
        if tally is not None:
            for event in events:
                if event.event_time:
                    tally[_minute(event.event_time)] = tally.get(_minute(event.event_time), 0) + 1
        if complete:
            return None, pages, calls
        times = [e.event_time for e in events if e.event_time]
        oldest = min(times) if times else upper
        if oldest >= upper:
            break  # a second holding more calls than were asked for: the next run reads it again
        upper = oldest
    return upper, pages, calls


def _fetch(run: _Run, group: _Group, attribute: str, value: str) -> None:
    key = (group.region, attribute, value)
    if key in group.pool.fetched:
        return
    group.pool.fetched.add(key)
    events, _complete = run.deps.lookups.lookup(group.region, attribute, value, None, None, max_pages=4,
                                                account=group.account or None)
    group.pool.add(events)


def _followup_time(now: datetime, index: int) -> datetime:
    """At least ``FOLLOWUP_DELAYS[index]`` from now, on a shared grid so alerts' follow-ups share a lookup."""
    return _on_grid(now + FOLLOWUP_DELAYS[index])


def _on_grid(due: datetime, every: timedelta = FOLLOWUP_GRID) -> datetime:
    grid = every.total_seconds()
    return datetime.fromtimestamp(-(-due.timestamp() // grid) * grid, tz=due.tzinfo)


def next_attempt(job: LookupJob, now: datetime, settings: Settings) -> datetime:
    """The next look for calls not yet visible (``RETRY_STEPS``, from ``now``: the run's start, so that a long
    run's jobs meet the next tick), never later than the give-up time."""
    age = now - job.arrived_at
    step = next((every for until, every in RETRY_STEPS if until is None or age < until), RETRY_STEPS[-1][1])
    return min(now + step, job.arrived_at + timedelta(minutes=settings.give_up_minutes))


def _decided(run: _Run, job: LookupJob, found: attr.Attribution, message: ReceivedMessage, now: datetime) -> None:
    settings = run.settings
    kind = MANUAL_CHANGE if found.verdict is None else SUPPRESSED
    outcome = build_outcome(job, kind, now, found,
                            trusted_patterns=settings.trusted_for(job.change.account, run.deps.organization.directory))
    emit(run.deps, outcome)
    if kind == MANUAL_CHANGE:
        followup = replace(job, decided_kind=kind, decided_event_ids=outcome.event_ids, attempts=0,
                           not_before=_followup_time(now, 0), decided_window=job.cursor_window)
        run.outbox.requeue(followup, None, message)
    else:  # watched until the give-up time (D20)
        watch = replace(job, decided_kind=kind, attempts=0)
        run.outbox.requeue(watch, _next_watch(watch, now, settings) or now + WATCH_EVERY, message)


def _next_watch(job: LookupJob, now: datetime, settings: Settings) -> datetime | None:
    """The next check of a suppression, on the shared grid so one sweep serves a whole apply; ``None`` after
    the give-up time, when the suppression is final."""
    give_up = job.arrived_at + timedelta(minutes=settings.give_up_minutes)
    capture = job.change.capture_time or job.arrived_at
    if job.streamed:  # the stream was complete evidence: one late check for a call it never delivered
        due = _on_grid(min(capture + STREAM_WATCH_AFTER, give_up), STREAM_WATCH_GRID)
        return due if due > now + EARLY else None
    checks = [capture + after for after in WATCH_CHECKS if capture + after < give_up]
    for due in (*checks, give_up):
        if due > now + EARLY:
            return _on_grid(due)
    return None


def _watch(run: _Run, job: LookupJob, found: attr.Attribution | None, message: ReceivedMessage, now: datetime, *,
           complete: bool) -> None:
    """Keep checking a suppression until the give-up time: a person's call seen later makes it an alert;
    evidence that cannot be completed by then makes it an unverified change."""
    deps, settings, outbox = run.deps, run.settings, run.outbox
    if found is not None and found.verdict is None:
        outcome = build_outcome(job, MANUAL_CHANGE, now, found,
                                trusted_patterns=settings.trusted_for(job.change.account, deps.organization.directory))
        emit(deps, outcome, revision=job.revision + 1)
        job = replace(job, decided_kind=MANUAL_CHANGE, decided_event_ids=outcome.event_ids,
                      revision=job.revision + 1, attempts=0, cursors={})
        outbox.requeue(replace(job, not_before=_followup_time(now, 0)), None, message)
        return
    later = _next_watch(job, now, settings)
    past_give_up = now + EARLY >= job.arrived_at + timedelta(minutes=settings.give_up_minutes)
    if not complete and later is None and past_give_up:
        emit(deps, build_outcome(job, UNATTRIBUTED_CHANGE, now, None, unverified=_unverified(found, False, job)),
             revision=job.revision + 1)
        outbox.delete(message)
    elif not complete:
        outbox.requeue(replace(job, not_before=run.started + WATCH_EVERY), None, message)  # read on
    elif later is None:
        outbox.delete(message)  # read to the end after the give-up time: final
    else:
        outbox.requeue(replace(job, not_before=later), None, message)


def _follow_up(run: _Run, job: LookupJob, found: attr.Attribution | None, message: ReceivedMessage, now: datetime,
               *, narrowed: bool = False, settled: bool = False) -> None:
    """Revise an emitted outcome with calls that became visible later.

    A suppression becomes a ``manual_change`` (an alert) when a person's call on the same item shows
    up after the trusted one did; an alert gains the calls that appeared after it was sent. An alert
    becomes a suppression only when its window ``narrowed`` (an earlier item of the resource arrived
    late and claims the untrusted calls) and every call in the narrower window was read by a pass
    begun when all were visible (``settled``); it is then watched like any suppression. A later read
    that is merely partial never revises an alert down.
    """
    deps, settings, outbox = run.deps, run.settings, run.outbox
    if narrowed and found is not None and found.verdict is not None:
        give_up = job.arrived_at + timedelta(minutes=settings.give_up_minutes)
        if settled:
            emit(deps, build_outcome(job, SUPPRESSED, now, found), revision=job.revision + 1)
            watch = replace(job, decided_kind=SUPPRESSED, revision=job.revision + 1, attempts=0, cursors={},
                            streamed=False)  # decided from the history: D20's watch
            outbox.requeue(watch, _next_watch(watch, now, settings) or now + WATCH_EVERY, message)
        elif now < give_up:  # check again once every call of the narrower window is visible
            capture = job.change.capture_time or now
            outbox.requeue(job, max(now + WATCH_EVERY, _on_grid(capture + SETTLED_AFTER)), message)
        else:
            outbox.delete(message)  # the alert stands
        return
    if found is not None and found.verdict is None:
        ids = {e.event_id for e in found.events if e.event_id}
        if not ids <= set(job.decided_event_ids):
            merged = tuple(dict.fromkeys((*job.decided_event_ids, *sorted(ids))))
            outcome = build_outcome(job, MANUAL_CHANGE, now, found, trusted_patterns=settings.trusted_for(
                job.change.account, deps.organization.directory))
            emit(deps, replace(outcome, event_ids=merged), revision=job.revision + 1)
            job = replace(job, decided_event_ids=merged, revision=job.revision + 1)
    done = job.attempts + 1
    if done >= len(FOLLOWUP_DELAYS):
        outbox.delete(message)
        return
    outbox.requeue(replace(job, attempts=done, not_before=_followup_time(now, done)), None, message)


def _read_job(message: ReceivedMessage, deps: StageDeps) -> LookupJob | None:
    try:
        return LookupJob.from_json(message.json())
    except Exception as error:  # any damage to a job dead-letters that job, never the run
        reason = f"unreadable lookup job: {type(error).__name__}: {str(error)[:200]}"
        log_json(log, logging.ERROR, "lookup_job_dead_lettered", message_id=message.message_id, reason=reason)
        dead_letter(deps, LOOKUP_DLQ, message.body, reason, permanent=True)
        return None


def _receive(queue) -> tuple[list[ReceivedMessage], bool]:
    """One chunk: up to ``CHUNK_JOBS`` jobs and about ``CHUNK_BYTES`` of them, 10 a receive; and whether it is
    full (more may be waiting)."""
    messages: list[ReceivedMessage] = []
    size = 0
    while len(messages) < CHUNK_JOBS and size < CHUNK_BYTES:
        batch = queue.receive(min(10, CHUNK_JOBS - len(messages)), visibility_timeout=RECEIVE_VISIBILITY)
        if not batch:
            return messages, False
        messages.extend(batch)
        size += sum(len(message.body) for message in batch)
    return messages, True
