"""The replays of ``make bench``: the stage functions on the in-memory fakes, on a simulated clock.

``workload`` builds issue 15's mixed load: each change is a call at ``t0``, its EventBridge delivery to
``api_call`` at ``t0`` + 5–60 s (with the stream only), its Config notification at ``t0`` + 1–15 min and its
visibility in ``LookupEvents`` at ``t0`` + 3–20 min; one change in ten is a person's (an alert), the rest a
trusted Terraform role's (a suppression). ``from_scenario`` does the same for ``story.burst_story`` (the scale
series). ``replay`` delivers each at its time and runs the schedules (``dispatch``, ``lookup``, ``slack_send``;
``dl_retry`` every 10 minutes) every minute until every change is told.

*Time to tell* is measured from the call: for an alert, to the first Slack post (or burst update) that carries
it; for a suppression, to the decision. ``MeteredState`` meters DynamoDB as on-demand bills it (a write unit
per KB of each row written, a strongly consistent read unit per 4 KB a query returns, at least one per
request), the recent-calls index apart from the rest of the table; ``HeapQueue`` keeps SQS's semantics
without the list scans that would make thousands of waiting jobs quadratic.
"""

from __future__ import annotations

import heapq
import json
import logging
import math
import random
import time
from bisect import bisect_left, bisect_right, insort
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from chalicelib.adapters.memory import ManualClock, MemoryLookups, MemoryQueue, MemoryState, _Queued
from chalicelib.adapters.queues import Message
from chalicelib.core.stream import COMPLETE_AFTER
from chalicelib.core.timeutil import iso, parse_time
from mcd_tools.story import api_call_delivery

ROOT = Path(__file__).resolve().parents[1]
WEBHOOK = "https://hooks.slack.com/services/T000/B000/benchhook"
START = datetime(2024, 11, 29, 13, 30, tzinfo=timezone.utc)
HUMAN_SHARE = 0.1
CAPTURED_BEFORE = timedelta(seconds=40)  # an item's capture time, before its notification arrives
# On-demand prices in us-east-1 (USD): DynamoDB per request unit, Lambda per GB-second (x86).
PRICE_PER_WRITE_UNIT = 1.25 / 1e6
PRICE_PER_READ_UNIT = 0.25 / 1e6
PRICE_PER_GB_SECOND = 0.0000166667
WRITE_UNIT_BYTES = 1024
READ_UNIT_BYTES = 4096
BATCH_ROWS = 25  # BatchWriteItem's limit, as adapters.state splits
ALERT_KINDS = ("manual_change", "unattributed_change")


@dataclass(frozen=True)
class Delays:
    """Seconds after the call: EventBridge's delivery, Config's notification, LookupEvents' visibility."""

    stream: tuple[float, float] = (5, 60)
    config: tuple[float, float] = (60, 15 * 60)
    history: tuple[float, float] = (3 * 60, 20 * 60)


@dataclass(frozen=True)
class Change:
    """One change of the workload, and the truth about it."""

    resource_id: str
    called_at: datetime
    human: bool
    notified_at: datetime | None = None  # the Config notification's arrival
    captured_at: datetime | None = None  # the item's capture time
    visible_at: datetime | None = None  # when LookupEvents first shows its call
    account: str = ""  # the account the resource is in (an organisation's workload)


@dataclass
class Workload:
    changes: list[Change]
    deliveries: list[dict[str, Any]]  # {"at", "via": "sns" | "eventbridge", ...}, in time order
    cloudtrail: list[dict[str, Any]]  # scenario entries (visible_at, record, resources)
    settings: dict[str, Any]
    start: datetime
    home_account: str = ""  # set: each account reads only its own history, reachable if in settings.accounts


def workload(n: int, *, seed: int, spread: timedelta, human_share: float = HUMAN_SHARE,
             delays: Delays = Delays()) -> Workload:
    """``n`` changes called within ``spread``: security-group rules and bucket tags, ``human_share`` by people."""
    from mcd_tools.story import ACCOUNT, TERRAFORM_ROLE, iam_user, ingress, sso_human, terraform

    rng = random.Random(seed)
    tf = terraform()
    people = [sso_human(f"engineer-{i}@example.com") if i % 2 else iam_user(f"oncall-{i}") for i in range(7)]
    humans = set(rng.sample(range(n), max(1, round(n * human_share)))) if n else set()
    times = sorted(rng.uniform(0, spread.total_seconds()) for _ in range(n))
    changes, deliveries, entries = [], [], []
    for i, offset in enumerate(times):
        called = START + timedelta(seconds=offset)
        human = i in humans
        actor = people[i % len(people)] if human else tf
        notified = timedelta(seconds=rng.uniform(*delays.config))
        visible = timedelta(seconds=rng.uniform(*delays.history))
        streamed = timedelta(seconds=rng.uniform(*delays.stream))
        if i % 3 == 2:
            resource = f"bench-data-{i:05d}-{ACCOUNT}"
            delivery, entry = _bucket_tags(resource, actor, called, notified - CAPTURED_BEFORE, visible)
        else:
            resource = f"sg-0{i:016x}"
            delivery, entry = ingress(resource, f"bench-{i}-sg", actor, called, "0.0.0.0/0" if human else
                                      f"10.{i % 250}.0.0/16", 443, delay=visible,
                                      capture_after=notified - CAPTURED_BEFORE)
        changes.append(Change(resource, called, human, called + notified, called + notified - CAPTURED_BEFORE))
        deliveries += [delivery, api_call_delivery(entry["record"], called + streamed)]
        entries.append(entry)
    deliveries.sort(key=lambda d: d["at"])
    return Workload(changes, deliveries, entries,
                    {"trusted_principals": [f"arn:aws:iam::{ACCOUNT}:role/ci/{TERRAFORM_ROLE}"]}, START)


def _bucket_tags(bucket: str, actor: Any, called: datetime, captured: timedelta,
                 visible: timedelta) -> tuple[dict[str, Any], dict[str, Any]]:
    from mcd_tools.story import config_item, trail

    delivery = config_item(
        "AWS::S3::Bucket", bucket, bucket, f"arn:aws:s3:::{bucket}", called + captured,
        {"Tags.env": {"previousValue": "staging", "updatedValue": "prod", "changeType": "UPDATE"}}, {"name": bucket})
    entry = trail(actor, called, "PutBucketTagging", "s3.amazonaws.com",
                  {"bucketName": bucket, "Tagging": {"TagSet": {"Tag": [{"Key": "env", "Value": "prod"}]}}},
                  [("AWS::S3::Bucket", bucket)], delay=visible)
    return delivery, entry


def stream_delivery(record: dict[str, Any], called: datetime, rng: random.Random, delays: Delays) -> dict[str, Any]:
    """``record`` delivered to ``api_call`` by EventBridge, ``delays.stream`` after the call."""
    return api_call_delivery(record, called + timedelta(seconds=rng.uniform(*delays.stream)))


# --------------------------------------------------------------------------------------------
# DynamoDB, metered


def item_bytes(item: dict[str, str]) -> int:
    """DynamoDB's size of a stored row: names plus values (``expires_at`` is a number: a byte per two digits)."""
    size = 0
    for name, value in item.items():
        size += len(name.encode())
        size += (len(value.lstrip("0")) + 1) // 2 + 1 if name == "expires_at" else len(
            value.encode("utf-8", "surrogatepass"))
    return size


@dataclass
class Meter:
    """DynamoDB requests and the request units on-demand bills for them."""

    reads: int = 0
    writes: int = 0
    read_units: int = 0
    write_units: int = 0
    write_bytes: int = 0
    rows_written: int = 0
    rows_read: int = 0

    @property
    def requests(self) -> int:
        return self.reads + self.writes

    def cost(self) -> float:
        return self.read_units * PRICE_PER_READ_UNIT + self.write_units * PRICE_PER_WRITE_UNIT


def is_index_row(pk: str) -> bool:
    from chalicelib.core import stream

    return pk.startswith((stream.CALL_PREFIX, stream.FLOW_PREFIX))


class MeteredState(MemoryState):
    """``MemoryState`` with sorted keys per partition (range reads stay fast at thousands of changes) and a
    ``Meter`` for the recent-calls index's rows and one for everything else in the table."""

    def __init__(self) -> None:
        super().__init__()
        self._keys: dict[str, list[str]] = defaultdict(list)
        self.index = Meter()
        self.other = Meter()
        self.metering_s = 0.0  # CPU the meter itself used, to leave out of the stages' figures
        self._batching = False

    def _meter(self, pk: str) -> Meter:
        return self.index if is_index_row(pk) else self.other

    def put(self, pk: str, sk: str, now: float, ttl_days: int = 14, **attrs: str) -> None:
        new = (pk, sk) not in self.items
        super().put(pk, sk, now, ttl_days, **attrs)
        if new:
            insort(self._keys[pk], sk)
        if not self._batching:
            self._wrote(self._meter(pk), [self.items[(pk, sk)]], requests=1)

    def put_many(self, rows: Sequence[tuple[str, str, dict[str, str]]], now: float, ttl_seconds: int) -> None:
        self._batching = True
        try:
            super().put_many(rows, now, ttl_seconds)
        finally:
            self._batching = False
        unique = list(dict.fromkeys((pk, sk) for pk, sk, _ in rows))
        by_meter: dict[int, list[tuple[str, str]]] = defaultdict(list)
        for key in unique:
            by_meter[id(self._meter(key[0]))].append(key)
        for keys in by_meter.values():
            meter = self._meter(keys[0][0])
            self._wrote(meter, [self.items[k] for k in keys], requests=math.ceil(len(keys) / BATCH_ROWS))

    def _wrote(self, meter: Meter, items: list[dict[str, str]], *, requests: int) -> None:
        started = time.process_time()
        sizes = [item_bytes(item) for item in items]
        meter.writes += requests
        meter.rows_written += len(items)
        meter.write_bytes += sum(sizes)
        meter.write_units += sum(math.ceil(size / WRITE_UNIT_BYTES) for size in sizes)
        self.metering_s += time.process_time() - started

    def get(self, pk: str, sk: str) -> dict[str, str] | None:
        found = super().get(pk, sk)
        self._read(pk, [found] if found else [])
        return found

    def latest_before(self, pk: str, prefix: str, before_sk: str) -> str | None:
        keys = self._keys.get(pk, [])
        below = keys[bisect_left(keys, prefix):bisect_left(keys, before_sk)]
        self._read(pk, [self.items[(pk, sk)] for sk in below[-2:]])
        return below[-1] if below else None

    def between(self, pk: str, low: str, high: str, *, limit: int = 1000) -> list[dict[str, str]]:
        self.queries += 1
        keys = self._keys.get(pk, [])
        found = [dict(self.items[(pk, sk)]) for sk in keys[bisect_left(keys, low):bisect_right(keys, high)][:limit]]
        self._read(pk, found)
        return found

    def _read(self, pk: str, items: list[dict[str, str]]) -> None:
        started = time.process_time()
        meter = self._meter(pk)
        meter.reads += 1
        meter.rows_read += len(items)
        meter.read_units += max(1, math.ceil(sum(item_bytes(i) for i in items) / READ_UNIT_BYTES))
        self.metering_s += time.process_time() - started


# --------------------------------------------------------------------------------------------
# SQS, in O(log n)


class HeapQueue(MemoryQueue):
    """``MemoryQueue``'s semantics (delays, visibility, receive counts, redrive; oldest-visible first) with a heap
    and a dict: its list scans make a replay of thousands of waiting jobs quadratic, and the lookup stage's CPU
    would be the fake's."""

    def __init__(self, name: str, clock: Callable[[], float], **options: Any) -> None:
        self._live: dict[str, _Queued] = {}
        self._heap: list[tuple[float, int, int, str]] = []  # (visible at, arrival, entry, message id)
        self._arrival: dict[str, int] = {}  # ties go by arrival, as in MemoryQueue's list
        self._current: dict[str, int] = {}  # message id -> its one valid heap entry
        self._order = 0
        super().__init__(name, clock, **options)

    @property  # type: ignore[override]
    def _messages(self) -> list[_Queued]:
        return sorted(self._live.values(), key=lambda m: m.visible_at)

    @_messages.setter
    def _messages(self, messages: list[_Queued]) -> None:
        self._live, self._heap, self._current, self._arrival = {}, [], {}, {}
        for queued in messages:
            self._add(queued, count=False)

    def _add(self, queued: _Queued, count: bool = True) -> None:
        self._live[queued.message_id] = queued
        self._order += 1
        self._arrival[queued.message_id] = self._order
        self._push(queued)
        self.sent += count

    def _push(self, queued: _Queued) -> None:
        self._order += 1
        self._current[queued.message_id] = self._order
        heapq.heappush(self._heap, (queued.visible_at, self._arrival[queued.message_id], self._order,
                                    queued.message_id))

    def _expire(self, now: float) -> None:
        return None  # a replay lasts hours; retention is days

    def receive(self, max_messages: int = 10, visibility_timeout: int | None = None) -> list[Message]:
        now = self._clock()
        wanted = max(1, min(10, max_messages))
        hidden_for = self.visibility_timeout if visibility_timeout is None else visibility_timeout
        received: list[Message] = []
        while self._heap and len(received) < wanted and self._heap[0][0] <= now:
            _, _, order, message_id = heapq.heappop(self._heap)
            queued = self._live.get(message_id)
            if queued is None or self._current.get(message_id) != order:
                continue  # deleted, or received since: a stale entry
            if self.dead_letter is not None and queued.receive_count >= self.max_receive_count:
                del self._live[message_id]
                self._current.pop(message_id, None)
                self._arrival.pop(message_id, None)
                queued.receipt = None
                self.dead_letter._add(queued)
                continue
            received.append(queued.received(now, hidden_for))
            self._push(queued)
        return received

    def delete(self, messages: list[Message]) -> None:
        for message in messages:
            queued = self._live.get(message.receipt.rsplit("#", 1)[0]) if message.receipt else None
            if queued is not None and queued.receipt == message.receipt:
                del self._live[queued.message_id]
                self._current.pop(queued.message_id, None)
                self._arrival.pop(queued.message_id, None)

    def __len__(self) -> int:
        return len(self._live)


def heap_queues(queues: dict[str, MemoryQueue], clock: Callable[[], float]) -> dict[str, MemoryQueue]:
    """``MemoryDeps``' queues, each as a ``HeapQueue`` with the same settings and dead-letter queue."""
    made: dict[str, MemoryQueue] = {}
    for name in sorted(queues, key=lambda n: queues[n].dead_letter is not None):  # dead-letter queues first
        queue = queues[name]
        dead = queue.dead_letter
        made[name] = HeapQueue(queue.name, clock, visibility_timeout=queue.visibility_timeout,
                               dead_letter=None if dead is None else made[next(k for k, q in queues.items()
                                                                               if q is dead)],
                               max_receive_count=queue.max_receive_count, retention_seconds=queue.retention_seconds)
    return made




# --------------------------------------------------------------------------------------------
# The replay


class OverBudget(RuntimeError):
    """A replay used more CPU than it was given (``make bench`` stays within minutes)."""


@dataclass
class Replay:
    """What one replay of a workload produced and measured."""

    load: Workload
    outcomes: list[tuple[float, dict[str, Any]]]  # (simulated time, outcome) as emitted
    posted: dict[str, float]  # outcome id -> when a Slack post or burst update first carried it
    slack: list[tuple[float, str]]  # (time, destination) of every message Slack accepted
    lookup_calls: int
    index: Meter
    table: Meter
    lookup_cpu_s: float  # the lookup stage's CPU, without LookupEvents' answers or the meter
    remember_cpu_s: float  # api_call's index writes (``recent_calls.remember``), without the meter
    streamed: int  # records delivered to api_call
    cpu_s: float
    calls_by_account: dict[str, int] = field(default_factory=dict)  # LookupEvents calls, per account read


class _Lines(logging.Handler):
    """The JSON log lines of one logger, stamped with the simulated time."""

    def __init__(self, clock: Callable[[], float]) -> None:
        super().__init__(logging.INFO)
        self.clock = clock
        self.lines: list[tuple[float, dict[str, Any]]] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append((self.clock(), json.loads(record.getMessage())))
        except ValueError:
            pass


@contextmanager
def _listening(clock: Callable[[], float]) -> Iterator[tuple[_Lines, _Lines]]:
    """The outcomes emitted and the Slack posts made, while quieting the stages' other logs."""
    from chalicelib.core.logs import OUTCOME_LOGGER

    outcomes, posts = _Lines(clock), _Lines(clock)
    quiet = logging.NullHandler()
    root = logging.getLogger("mcd")
    loggers = [(logging.getLogger(OUTCOME_LOGGER), outcomes), (logging.getLogger("mcd.slack"), posts)]
    levels = [logger.level for logger, _ in loggers]
    root.addHandler(quiet)
    for logger, handler in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)  # setLevel, not an attribute: it clears the loggers' isEnabledFor caches
    try:
        yield outcomes, posts
    finally:
        for (logger, handler), level in zip(loggers, levels, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(level)
        root.removeHandler(quiet)


class _Timed:
    """A function wrapped to add up the CPU it uses, less what ``excluded`` (a running total) grew by meanwhile."""

    def __init__(self, fn: Callable[..., Any], excluded: Callable[[], float] = lambda: 0.0) -> None:
        self.fn = fn
        self.excluded = excluded
        self.seconds = 0.0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        started, left_out = time.process_time(), self.excluded()
        try:
            return self.fn(*args, **kwargs)
        finally:
            self.seconds += time.process_time() - started - (self.excluded() - left_out)


def world(load: Workload, clock: ManualClock, answers: Callable[[str, dict[str, Any]], dict[str, Any]]) -> Any:
    """``MemoryDeps`` on the load's settings, with metered state, heap queues and ``answers`` as LookupEvents."""
    from chalicelib.memory_deps import MemoryDeps

    deps = MemoryDeps(settings=load.settings, clock=clock, lookups=MemoryLookups(answers), home_region="eu-west-1",
                      secrets={"memory/slack-webhook": json.dumps({"url": WEBHOOK})})
    deps._memory_state = MeteredState()
    deps.queues = heap_queues(deps.queues, clock)
    return deps


def replay(load: Workload, *, stream: bool, budget_s: float | None = None) -> Replay:
    """Run ``load`` through the stages, with the live stream delivered to ``api_call`` or without it.

    Deliveries are handled at their time, the schedules every minute, until every queue is empty after the
    last delivery (each change decided, watched to its give-up time, and told). ``budget_s``: CPU seconds.
    """
    from chalicelib.stages import direct as direct_module
    from chalicelib.stages.dead_letters import dl_retry
    from chalicelib.stages.deliver import slack_send
    from chalicelib.stages.dispatch import dispatch
    from chalicelib.stages.lookup import lookup
    from chalicelib.stages.reruns import RERUNS
    from mcd_tools.fake_cloudtrail import FakeCloudTrail, entries_from_scenario

    started = time.process_time()
    clock = ManualClock(load.start)
    trail = FakeCloudTrail(entries_from_scenario(load.cloudtrail), clock, home_account=load.home_account)
    calls_by_account: dict[str, int] = defaultdict(int)

    def answer(region: str, request: dict[str, Any]) -> dict[str, Any]:
        calls_by_account[str(request.get("Account") or load.home_account)] += 1
        return trail.lookup(region, request, clock())

    answers = _Timed(answer)
    deps = world(load, clock, answers)
    if load.home_account:  # the lookup role exists in the home account and in settings.accounts only
        deps.lookups.reachable = {load.home_account, *(load.settings.get("accounts") or [])}
    state: MeteredState = deps.state
    deliveries = [d for d in load.deliveries if stream or d["via"] != "eventbridge"]
    end = (parse_time(deliveries[-1]["at"]) if deliveries else load.start) or load.start
    end += timedelta(minutes=100)  # past every give-up time (85 minutes) and the last watch
    remember = _Timed(direct_module.remember, lambda: state.metering_s)
    lookup_cpu = 0.0
    direct_module.remember = remember  # type: ignore[assignment]
    try:
        with _listening(clock) as (outcomes, posts):
            pending = iter(deliveries)
            upcoming = next(pending, None)
            tick = load.start
            while tick <= end:
                while upcoming is not None and (parse_time(upcoming["at"]) or tick) <= tick:
                    clock.advance(max(0.0, (parse_time(upcoming["at"]) or tick).timestamp() - clock()))
                    _deliver(deps, upcoming)
                    upcoming = next(pending, None)
                clock.advance(max(0.0, tick.timestamp() - clock()))
                dispatch(deps)
                cpu, fake, metered = time.process_time(), answers.seconds, state.metering_s
                lookup(deps)
                lookup_cpu += (time.process_time() - cpu) - (answers.seconds - fake) - (state.metering_s - metered)
                if tick.minute % 10 == 0:
                    dl_retry(deps, RERUNS)
                slack_send(deps)
                if budget_s is not None and time.process_time() - started > budget_s:
                    raise OverBudget(f"{len(load.changes)} changes: over {budget_s:.0f} CPU seconds at "
                                     f"{iso(tick)}, {(tick - load.start).total_seconds() / 60:.0f} simulated minutes")
                if upcoming is None and not len(deps.queues["lookup_queue"]) and not len(deps.queues["slack_queue"]):
                    break
                tick += timedelta(minutes=1)
    finally:
        direct_module.remember = remember.fn  # type: ignore[assignment]
    posted: dict[str, float] = {}
    for at, line in posts.lines:
        if line.get("event") in ("slack_posted", "slack_updated", "slack_posted_early"):
            for outcome_id in line.get("outcome_ids") or []:
                posted.setdefault(str(outcome_id), at)
    table = Meter(**{k: getattr(state.index, k) + getattr(state.other, k) for k in Meter.__dataclass_fields__})
    slack = [(call.at, call.target) for call in deps.slack.delivered()]
    return Replay(load, [(at, line.get("outcome") or {}) for at, line in outcomes.lines], posted, slack,
                  deps.lookups.stats.calls, state.index, table, lookup_cpu,
                  remember.seconds, sum(1 for d in deliveries if d["via"] == "eventbridge"),
                  time.process_time() - started, dict(calls_by_account))


def _deliver(deps: Any, delivery: dict[str, Any]) -> None:
    """What the function the delivery invokes does with it (the handlers of app.py, without Chalice)."""
    from chalicelib.stages import direct as direct_module
    from chalicelib.stages.ingest import ingest
    from chalicelib.stages.shared.health import alive

    if delivery["via"] == "eventbridge":
        alive(deps, "cloudtrail", direct_module.direct(delivery["event"], deps, "eventbridge"))
        return
    message = delivery["message"]
    event = {"Records": [{"EventSource": "aws:sns", "Sns": {
        "Type": "Notification", "MessageId": f"bench-{len(message)}-{hash(message) & 0xFFFFFFFF:08x}",
        "Message": message, "TopicArn": "arn:aws:sns:eu-west-1:246810121416:config", "MessageAttributes": {}}}]}
    alive(deps, "config", ingest(event, deps))


# --------------------------------------------------------------------------------------------
# What a replay tells


@dataclass(frozen=True)
class Told:
    """One change's outcome as people saw it."""

    change: Change
    alerted_at: float | None  # its alert's first post
    suppressed_at: float | None  # its first suppression
    alert_decided_at: float | None = None  # its alert's emission (the post may wait for a burst's digest)

    @property
    def right(self) -> bool:
        """A person's change alerted before any suppression; a trusted one never alerted."""
        if self.change.human:
            return self.alerted_at is not None and (self.suppressed_at is None or self.alerted_at <= self.suppressed_at)
        return self.alerted_at is None and self.suppressed_at is not None

    @property
    def at(self) -> float | None:
        """When it was told: the alert's post for a person's change, the decision for a trusted one."""
        if self.change.human or self.suppressed_at is None:
            return self.alerted_at
        return self.suppressed_at

    def after(self, moment: datetime | None) -> float | None:
        return None if self.at is None or moment is None else self.at - moment.timestamp()


def told(run: Replay) -> list[Told]:
    alerts: dict[str, list[str]] = defaultdict(list)
    alerted: dict[str, float] = {}
    suppressed: dict[str, float] = {}
    for at, outcome in run.outcomes:
        resource = str(outcome.get("resource_id") or "")
        if outcome.get("kind") in ALERT_KINDS:
            alerts[resource].append(str(outcome.get("outcome_id")))
            alerted.setdefault(resource, at)
        elif outcome.get("kind") == "suppressed":
            suppressed.setdefault(resource, at)
    return [Told(change, min((run.posted[o] for o in alerts.get(change.resource_id, ()) if o in run.posted),
                             default=None), suppressed.get(change.resource_id), alerted.get(change.resource_id))
            for change in run.load.changes]


def percentile(values: Sequence[float], share: float) -> float:
    """The nearest-rank percentile (``share`` in 0–1) of ``values``; 0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))]


def _seconds(values: Sequence[float | None]) -> list[float]:
    return [v for v in values if v is not None]


def lambda_memory_gb(function: str) -> float:
    """The memory ``.chalice/config.json`` gives ``function``, in GB (Lambda bills GB-seconds)."""
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    size = (config.get("lambda_functions", {}).get(function, {}).get("lambda_memory_size")
            or config.get("lambda_memory_size") or 128)
    return float(size) / 1024


# --------------------------------------------------------------------------------------------
# Workloads from stories


def from_scenario(scenario: dict[str, Any], *, seed: int, delays: Delays = Delays()) -> Workload:
    """A scenario of ``mcd_tools.story`` (SNS deliveries, CloudTrail entries, expected outcomes) as a workload,
    each CloudTrail record also delivered to ``api_call`` (when the stream is on) 5–60 s after its call."""
    rng = random.Random(seed)
    expected = {o["resource_id"]: o["kind"] for o in scenario["expect"]["outcomes"]}
    arrivals = {json.loads(d["message"])["configurationItem"]["resourceId"]: parse_time(d["at"])
                for d in scenario["deliveries"] if d.get("via") == "sns"}
    changes, deliveries = [], list(scenario["deliveries"])
    for entry in scenario["cloudtrail"]:
        record = entry["record"]
        called = parse_time(record["eventTime"])
        assert called is not None
        resource = next(r["ResourceName"] for r in entry["resources"])
        changes.append(Change(resource, called, expected.get(resource) == "manual_change", arrivals.get(resource),
                              visible_at=parse_time(entry.get("visible_at"))))
        deliveries.append(stream_delivery(record, called, rng, delays))
    deliveries.sort(key=lambda d: d["at"])
    start = parse_time(scenario["start"])
    assert start is not None
    return Workload(changes, deliveries, list(scenario["cloudtrail"]), dict(scenario["settings"]), start)


def without_history(load: Workload) -> Workload:
    """The same workload with ``LookupEvents`` never showing a call: whatever is decided, the stream decided."""
    never = iso(load.start + timedelta(days=365))
    return Workload(load.changes, load.deliveries, [{**e, "visible_at": never} for e in load.cloudtrail],
                    load.settings, load.start)


# --------------------------------------------------------------------------------------------
# Figures


def series_point(n: int, stream: bool, budget_s: float | None = None) -> dict[str, Any]:
    """One point of the scale series: ``story.burst_story(n)`` (a Terraform apply of ``n`` changes in 3 minutes,
    3 of them people's, CloudTrail history 2–8 minutes late), replayed with the stream or without."""
    from mcd_tools.story import burst_story

    prefix = "stream_" if stream else ""
    keys = (f"{prefix}lookup_calls_per_change_n{n}", f"{prefix}time_to_tell_p95_s_n{n}",
            f"{prefix}attribution_cpu_ms_per_change_n{n}")
    try:
        run = replay(from_scenario(burst_story(n), seed=n), stream=stream, budget_s=budget_s)
    except OverBudget as error:
        return {**dict.fromkeys(keys), f"{prefix}over_budget_n{n}": str(error)}
    outcomes = told(run)
    figures: dict[str, Any] = dict(zip(keys, (
        round(run.lookup_calls / n, 3), round(percentile(_seconds([t.after(t.change.called_at) for t in outcomes]),
                                                         0.95), 1),
        round(1000 * run.lookup_cpu_s / n, 2)), strict=True))
    figures[f"{prefix}wrong_verdicts_n{n}"] = sum(1 for t in outcomes if not t.right)
    if not stream:
        figures[f"decide_minutes_after_visible_max_n{n}"] = round(decide_minutes_after_visible(run), 2)
        figures[f"time_to_tell_after_visible_p95_s_n{n}"] = round(percentile(_seconds(
            [t.after(t.change.visible_at) for t in outcomes]), 0.95), 1)
        figures[f"slack_messages_n{n}"] = len(run.slack)
        figures[f"max_posts_per_second_n{n}"] = max_posts_per_second(run.slack)
    return figures


def decide_minutes_after_visible(run: Replay) -> float:
    """The longest wait, in minutes, from an outcome's causing calls all being visible to its decision."""
    visible = {e["record"]["eventID"]: parse_time(e["visible_at"]) for e in run.load.cloudtrail}
    worst = 0.0
    for at, outcome in run.outcomes:
        times = [visible[e] for e in outcome.get("event_ids") or [] if visible.get(e) is not None]
        if times:
            worst = max(worst, (at - max(times).timestamp()) / 60)  # type: ignore[union-attr]
    return worst


def max_posts_per_second(messages: Sequence[tuple[float, str]]) -> int:
    """The most messages one destination got within one second."""
    worst = 0
    by_destination: dict[str, list[float]] = defaultdict(list)
    for at, destination in messages:
        by_destination[destination].append(at)
    for times in by_destination.values():
        times.sort()
        for i, start in enumerate(times):
            worst = max(worst, bisect_left(times, start + 1.0) - i)
    return worst


COMPARISON_N = 600
COMPARISON_SPREAD = timedelta(minutes=60)
COMPARISON_SEED = 15
MODES = ("stream", "history", "stream_only")
"""The stream on; the stream off (today's path); the stream on with ``LookupEvents`` never showing a call."""


def comparison_workload(n: int = COMPARISON_N, seed: int = COMPARISON_SEED) -> Workload:
    return workload(n, seed=seed, spread=COMPARISON_SPREAD)


def comparison_run(mode: str, n: int = COMPARISON_N, seed: int = COMPARISON_SEED) -> dict[str, Any]:
    """Issue 15's figures for one mode of the mixed workload: ``n`` changes in an hour, one in ten a person's."""
    load = comparison_workload(n, seed)
    return mode_figures(mode, replay(without_history(load) if mode == "stream_only" else load,
                                     stream=mode != "history"))


def mode_figures(mode: str, run: Replay) -> dict[str, Any]:
    """``comparison_run``'s figures of one replay, prefixed with its mode."""
    n = len(run.load.changes)
    outcomes = told(run)
    alerts = [t for t in outcomes if t.change.human]
    quiet = [t for t in outcomes if not t.change.human]
    figures: dict[str, Any] = {
        "call_to_post_p50_s": percentile(_seconds([t.after(t.change.called_at) for t in alerts]), 0.5),
        "call_to_post_p95_s": percentile(_seconds([t.after(t.change.called_at) for t in alerts]), 0.95),
        "notified_to_post_p95_s": percentile(_seconds([t.after(t.change.notified_at) for t in alerts]), 0.95),
        "notified_to_alert_p95_s": percentile(_seconds([
            t.alert_decided_at - t.change.notified_at.timestamp() for t in alerts
            if t.alert_decided_at is not None and t.change.notified_at is not None]), 0.95),
        "call_to_suppression_p95_s": percentile(_seconds([t.after(t.change.called_at) for t in quiet]), 0.95),
        "notified_to_suppression_p95_s": percentile(_seconds([t.after(t.change.notified_at) for t in quiet]), 0.95),
        "evidence_to_decision_p95_s": percentile(_seconds([_from_evidence(t) for t in outcomes]), 0.95),
        "lookup_calls_per_change": run.lookup_calls / n,
        "wrong_verdicts": sum(1 for t in outcomes if not t.right),
        "untold": sum(1 for t in outcomes if t.at is None),
        "ddb_table_requests_per_change": run.table.requests / n,
    }
    if mode == "history":
        figures["ddb_index_reads_per_change"] = run.index.reads / n  # the lookup stage asks an empty index
    if mode == "stream":
        figures.update(_stream_costs(run, n))
    prefix = {"stream": "stream_", "history": "history_", "stream_only": "stream_only_"}[mode]
    return {prefix + k: rounded(k, v) for k, v in figures.items()}


def _from_evidence(told: Told) -> float | None:
    """Seconds from when a change could first be decided from the stream to its decision: its notification's
    arrival for an alert; for a suppression, the later of that and the stream's completeness at the latest
    (``COMPLETE_AFTER`` past the capture; a later record delivered may complete it sooner)."""
    change = told.change
    if change.notified_at is None:
        return None
    ready = change.notified_at.timestamp()
    if not change.human:
        if told.suppressed_at is None or change.captured_at is None:
            return None
        return told.suppressed_at - max(ready, (change.captured_at + COMPLETE_AFTER).timestamp())
    return None if told.alert_decided_at is None else told.alert_decided_at - ready


def rounded(key: str, value: Any) -> Any:
    """Seconds to a tenth; dollars and per-change counts to four significant digits."""
    if not isinstance(value, float):
        return value
    if key.endswith("_s"):
        return round(value, 1)
    return float(f"{value:.4g}")


def _stream_costs(run: Replay, n: int) -> dict[str, float]:
    """The index's requests, request units and cost, from the rows actually written and read."""
    index = run.index
    gb_seconds = run.remember_cpu_s * lambda_memory_gb("api_call")
    write_cost = index.write_units * PRICE_PER_WRITE_UNIT + gb_seconds * PRICE_PER_GB_SECOND
    return {
        "ddb_requests_per_change": index.requests / n,
        "ddb_reads_per_change": index.reads / n,
        "ddb_writes_per_change": index.writes / n,
        "ddb_read_units_per_change": index.read_units / n,
        "ddb_write_units_per_change": index.write_units / n,
        "index_rows_per_call": index.rows_written / max(1, run.streamed),
        "index_row_bytes_mean": index.write_bytes / max(1, index.rows_written),
        "remember_cpu_ms_per_call": 1000 * run.remember_cpu_s / max(1, run.streamed),
        "cost_per_1000_changes_usd": 1000 * (index.cost() + gb_seconds * PRICE_PER_GB_SECOND) / n,
        "index_cost_per_million_calls_usd": 1e6 * write_cost / max(1, run.streamed),
        "index_read_cost_per_million_changes_usd": 1e6 * index.read_units * PRICE_PER_READ_UNIT / n,
    }


def comparison_figures(parts: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The three modes' figures side by side, and the ratios the guide asks for."""
    figures: dict[str, Any] = {}
    for mode in MODES:
        figures.update(parts[mode])
    stream, history = parts["stream"], parts["history"]
    if history["history_lookup_calls_per_change"]:
        figures["stream_vs_history_lookup_calls"] = round(
            stream["stream_lookup_calls_per_change"] / history["history_lookup_calls_per_change"], 3)
    if history["history_call_to_post_p95_s"]:
        figures["stream_vs_history_call_to_post_p95"] = round(
            stream["stream_call_to_post_p95_s"] / history["history_call_to_post_p95_s"], 3)
    return figures


def tell_samples(seed: int) -> list[float]:
    """Seconds from when each alert could be known (its notification arrived and its causing calls were visible
    in the history) to its first Slack post: 24 changes, 6 of them people's, the history 2–15 minutes late."""
    from mcd_tools.story import burst_story

    scenario = burst_story(24, humans=6, seed=seed, min_delay=2, max_delay=15)
    run = replay(from_scenario(scenario, seed=seed), stream=False)
    visible = {e["record"]["eventID"]: parse_time(e["visible_at"]) for e in scenario["cloudtrail"]}
    arrived = {c.resource_id: c.notified_at for c in run.load.changes}
    samples, seen = [], set()
    for _, outcome in run.outcomes:
        outcome_id = outcome.get("outcome_id")
        if outcome.get("kind") != "manual_change" or outcome_id in seen or outcome_id not in run.posted:
            continue
        seen.add(outcome_id)
        ready = max(t.timestamp() for t in (arrived.get(outcome.get("resource_id")),
                                             *(visible.get(e) for e in outcome.get("event_ids") or [])) if t)
        samples.append(run.posted[outcome_id] - ready)
    return samples


# --------------------------------------------------------------------------------------------
# An AWS Organization (issue 16)


ORG_ACCOUNTS = 100
ORG_REGIONS = ("eu-west-1", "eu-central-1", "us-east-1", "us-west-2")
ORG_APPLY = 200
ORG_APPLY_SPREAD = timedelta(minutes=4)
ORG_HUMANS = 40
ORG_BACKGROUND = 800
ORG_SPREAD = timedelta(hours=1)
ORG_SEED = 16
ORG_TRUSTED = "arn:aws:iam::*:role/ci/terraform-apply"
MONTH_HOURS = 730.0
"""AWS's month for pricing; the org workload's hour is taken to repeat all month (a 200-change apply every hour)."""
PRICE_PER_MILLION_REQUESTS = 0.20  # Lambda, per million invocations
PRICE_PER_MILLION_FORWARDED = 1.00  # EventBridge, per million events sent to another account's bus


def org_account(index: int) -> str:
    """The ``index``-th account of the organisation (0: the home account the detector runs in)."""
    return f"{310000000000 + 7919 * index:012d}"


def org_workload(accounts: int = ORG_ACCOUNTS, regions: Sequence[str] = ORG_REGIONS, *, apply: int = ORG_APPLY,
                 humans: int = ORG_HUMANS, background: int = ORG_BACKGROUND, seed: int = ORG_SEED,
                 spread: timedelta = ORG_SPREAD, delays: Delays = Delays()) -> Workload:
    """One hour of an organisation of ``accounts`` accounts in ``regions``: a Terraform apply of ``apply`` changes
    within 4 minutes in one member account and region (its trusted role, ``role/ci/terraform-apply`` in every
    account); ``humans`` people's changes scattered over the other accounts and regions; ``background`` trusted
    writes that change no recorded resource (they keep each account and region's stream flowing, and cost index
    rows). Every call is streamed (5–60 s), notified by Config (1–15 min) and shown by LookupEvents (3–20 min) in
    its own account's history; the detector runs in account 0 and lists the others in ``settings.accounts``."""
    from mcd_tools.story import iam_user, sso_human, terraform, trail

    rng = random.Random(seed)
    ids = [org_account(i) for i in range(accounts)]
    apply_account, apply_region = ids[min(accounts - 1, accounts // 3)], regions[min(1, len(regions) - 1)]
    others = [(a, r) for a in ids for r in regions if (a, r) != (apply_account, apply_region)]
    apply_at = spread.total_seconds() / 3
    calls: list[tuple[float, str, str, bool]] = [  # (offset, account, region, human)
        *((apply_at + ORG_APPLY_SPREAD.total_seconds() * i / max(1, apply), apply_account, apply_region, False)
          for i in range(apply)),
        *((rng.uniform(0, spread.total_seconds()), *rng.choice(others), True) for _ in range(humans))]
    changes, deliveries, entries = [], [], []
    for i, (offset, account, region, human) in enumerate(sorted(calls)):
        called = START + timedelta(seconds=offset)
        person = sso_human(f"engineer-{i % 9}@example.com", account) if i % 2 else iam_user(f"oncall-{i % 5}", account)
        actor = person if human else terraform(account)
        notified = timedelta(seconds=rng.uniform(*delays.config))
        visible = timedelta(seconds=rng.uniform(*delays.history))
        delivery, entry, resource = _org_change(i, account, region, actor, human, called, notified - CAPTURED_BEFORE,
                                                visible)
        changes.append(Change(resource, called, human, called + notified, called + notified - CAPTURED_BEFORE,
                              called + visible, account))
        deliveries += [delivery, stream_delivery(entry["record"], called, rng, delays)]
        entries.append(entry)
    for i in range(background):
        account, region = rng.choice(ids), rng.choice(regions)
        called = START + timedelta(seconds=rng.uniform(0, spread.total_seconds()))
        name = f"/app/{account}/{region}/config-{i}"
        entry = trail(terraform(account), called, "PutParameter", "ssm.amazonaws.com",
                      {"name": name, "type": "String", "overwrite": True}, [("AWS::SSM::Parameter", name)],
                      delay=timedelta(seconds=rng.uniform(*delays.history)), region=region)
        deliveries.append(stream_delivery(entry["record"], called, rng, delays))
        entries.append(entry)
    deliveries.sort(key=lambda d: d["at"])
    return Workload(changes, deliveries, entries, {"trusted_principals": [ORG_TRUSTED], "accounts": ids[1:]}, START,
                    home_account=ids[0])


def _org_change(i: int, account: str, region: str, actor: Any, human: bool, called: datetime, captured: timedelta,
                visible: timedelta) -> tuple[dict[str, Any], dict[str, Any], str]:
    """A security-group rule or (one in three) a bucket's tags, in ``account`` and ``region``."""
    from mcd_tools.story import config_item, ingress, trail

    if i % 3 == 2:
        bucket = f"org-data-{i:05d}-{account}"
        delivery = config_item(
            "AWS::S3::Bucket", bucket, bucket, f"arn:aws:s3:::{bucket}", called + captured,
            {"Tags.env": {"previousValue": "staging", "updatedValue": "prod", "changeType": "UPDATE"}},
            {"name": bucket}, region=region, account=account)
        entry = trail(actor, called, "PutBucketTagging", "s3.amazonaws.com",
                      {"bucketName": bucket, "Tagging": {"TagSet": {"Tag": [{"Key": "env", "Value": "prod"}]}}},
                      [("AWS::S3::Bucket", bucket)], delay=visible, region=region)
        return delivery, entry, bucket
    group = f"sg-0{int(account) % 4096:03x}{i:013x}"
    delivery, entry = ingress(group, f"org-{i}-sg", actor, called, "0.0.0.0/0" if human else f"10.{i % 250}.0.0/16",
                              443, delay=visible, capture_after=captured, account=account, region=region)
    return delivery, entry, group


ORG_HISTORY_KEYS = ("org_call_to_post_p95_s", "org_notified_to_alert_p95_s", "org_lookup_calls_per_change",
                    "org_lookup_calls_per_change_max_account", "org_accounts_looked_up", "org_wrong_verdicts")


def org_run(accounts: int = ORG_ACCOUNTS, regions: Sequence[str] = ORG_REGIONS, stream: bool = True,
            **options: Any) -> dict[str, Any]:
    """Issue 16's figures: ``org_workload`` replayed through the stages on the fakes with the stream on; without it
    (every change attributed from each account's history through its lookup role), a few as ``org_history_*``."""
    load = org_workload(accounts, regions, **options)
    figures = org_figures(replay(load, stream=stream), regions=len(regions), spread=options.get("spread", ORG_SPREAD))
    if stream:
        return figures
    return {"org_history_" + k[len("org_"):]: figures[k] for k in ORG_HISTORY_KEYS}


def org_figures(run: Replay, *, regions: int, spread: timedelta = ORG_SPREAD) -> dict[str, Any]:
    """Time to tell, lookups per change (overall and in the worst account), wrong verdicts, and the stream and
    index's cost per month at the workload's rate (``MONTH_HOURS`` of ``spread``)."""
    outcomes = told(run)
    alerts = [t for t in outcomes if t.change.human]
    changes_by_account: dict[str, int] = defaultdict(int)
    for change in run.load.changes:
        changes_by_account[change.account] += 1
    per_account = {a: run.calls_by_account.get(a, 0) / n for a, n in changes_by_account.items()}
    per_month = MONTH_HOURS * 3600 / spread.total_seconds()
    gb_seconds = run.remember_cpu_s * lambda_memory_gb("api_call")
    index_usd = run.index.cost() + gb_seconds * PRICE_PER_GB_SECOND
    figures: dict[str, Any] = {
        "org_accounts": len({run.load.home_account, *(run.load.settings.get("accounts") or [])}),
        "org_regions": regions,
        "org_changes": len(outcomes),
        "org_streamed_calls": run.streamed,
        "org_call_to_post_p95_s": percentile(_seconds([t.after(t.change.called_at) for t in alerts]), 0.95),
        "org_notified_to_alert_p95_s": percentile(_seconds([
            t.alert_decided_at - t.change.notified_at.timestamp() for t in alerts
            if t.alert_decided_at is not None and t.change.notified_at is not None]), 0.95),
        "org_call_to_suppression_p95_s": percentile(_seconds([
            t.after(t.change.called_at) for t in outcomes if not t.change.human]), 0.95),
        "org_lookup_calls_per_change": run.lookup_calls / max(1, len(outcomes)),
        "org_lookup_calls_per_change_max_account": max(per_account.values(), default=0.0),
        "org_accounts_looked_up": sum(1 for calls in run.calls_by_account.values() if calls),
        "org_wrong_verdicts": sum(1 for t in outcomes if not t.right),
        "org_untold": sum(1 for t in outcomes if t.at is None),
        "org_monthly_cost_usd": index_usd * per_month,
        "org_monthly_index_writes_usd": run.index.write_units * PRICE_PER_WRITE_UNIT * per_month,
        "org_monthly_index_reads_usd": run.index.read_units * PRICE_PER_READ_UNIT * per_month,
        "org_monthly_api_call_cpu_usd": gb_seconds * PRICE_PER_GB_SECOND * per_month,
        "org_monthly_delivery_usd": run.streamed * (PRICE_PER_MILLION_REQUESTS + PRICE_PER_MILLION_FORWARDED)
        / 1e6 * per_month,
        "org_index_cost_per_million_calls_usd": 1e6 * (run.index.write_units * PRICE_PER_WRITE_UNIT
                                                        + gb_seconds * PRICE_PER_GB_SECOND) / max(1, run.streamed),
    }
    return {k: rounded(k, v) for k, v in figures.items()}
