"""``lookup`` at scale, on the fakes: cost per change stays flat as bursts grow, deciding grows linearly, a run
stays within its budget and holds one chunk of jobs at a time, and a quiet region is served beside a huge one.

CloudTrail is paced as the real client paces it: every ``LookupEvents`` page moves the clock half a second,
so a run's length is what its pages cost. The state table is the fake's, indexed by partition key, and the
queues are the bench's ``HeapQueue``s, so that thousands of jobs take seconds (``MemoryState`` and
``MemoryQueue`` scan every item per call).
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest
from memory_world import ACCOUNT, CAPTURE, START, TRUSTED_ROLE, WEBHOOK, slack_outcomes, trail_entry

from chalicelib.adapters.memory import ManualClock, MemoryLookups, MemoryState
from chalicelib.core import attribution as attr
from chalicelib.core.jobs import LookupJob, change_key
from chalicelib.core.model import ConfigChange, PropertyChange
from chalicelib.core.timeutil import iso, parse_time
from chalicelib.memory_deps import MemoryDeps
from chalicelib.stage_config import run_budget
from chalicelib.stages import lookup as lookup_stage
from chalicelib.stages.lookup import CHUNK_JOBS, lookup
from mcd_tools.bench_replay import heap_queues
from mcd_tools.replay import deployed_budget

BUDGET = 240.0
PACE = 0.5  # seconds a LookupEvents page costs (2 calls per second)
TRUSTED = {"trusted_principals": [TRUSTED_ROLE]}
QUIET_REGION = "eu-west-1"

Answer = Callable[[str, dict[str, Any]], dict[str, Any]]


class IndexedState(MemoryState):
    """``MemoryState`` with its items also kept by partition key: the same answers, without a scan per query."""

    def __init__(self) -> None:
        super().__init__()
        self.by_pk: dict[str, dict[str, dict[str, str]]] = {}

    def put(self, pk: str, sk: str, now: float, ttl_days: int = 14, **attrs: str) -> None:
        super().put(pk, sk, now, ttl_days, **attrs)
        self.by_pk.setdefault(pk, {})[sk] = self.items[(pk, sk)]

    def latest_before(self, pk: str, prefix: str, before_sk: str) -> str | None:
        below = [sk for sk in self.by_pk.get(pk, {}) if prefix <= sk < before_sk]
        return max(below) if below else None

    def between(self, pk: str, low: str, high: str, *, limit: int = 1000) -> list[dict[str, str]]:
        self.queries += 1
        found = sorted((sk, v) for sk, v in self.by_pk.get(pk, {}).items() if low <= sk <= high)
        return [dict(v) for _, v in found[:limit]]


def paced_world(answer: Answer, clock: ManualClock, *, budget: float = BUDGET) -> MemoryDeps:
    def paced(region: str, request: dict[str, Any]) -> dict[str, Any]:
        clock.advance(PACE)
        return answer(region, request)

    deps = MemoryDeps(settings=TRUSTED, clock=clock, lookups=MemoryLookups(paced), budget_seconds=budget,
                      secrets={"memory/slack-webhook": json.dumps({"url": WEBHOOK})})
    deps._memory_state = IndexedState()
    deps.queues = heap_queues(deps.queues, clock)
    return deps


class QuickTrail:
    """``LookupEvents`` over scenario entries (``FakeCloudTrail``'s semantics: one attribute, an inclusive time
    window, newest first, 50 a page, calls visible from ``visible_at``), each entry shaped once and each query's
    matches worked out once while no more calls become visible: thousands of calls page in milliseconds."""

    def __init__(self, entries: list[dict[str, Any]]) -> None:
        rows = []
        for entry in entries:
            record = entry["record"]
            resources = entry.get("resources") or []
            rows.append((parse_time(record["eventTime"]), parse_time(entry["visible_at"]), record, {
                "EventId": record["eventID"], "EventName": record["eventName"],
                "ReadOnly": str(record.get("readOnly", False)).lower(), "CloudTrailEvent": json.dumps(record),
                "Resources": resources}))
        rows.sort(key=lambda row: (row[0], row[2]["eventID"]), reverse=True)
        self._rows = rows
        self._visible = sorted(row[1].timestamp() for row in rows)
        self._matches: dict[tuple[Any, ...], list[dict[str, Any]]] = {}

    def lookup(self, region: str, request: dict[str, Any], now: float) -> dict[str, Any]:
        ((attribute,),) = [(a["AttributeKey"],) for a in request["LookupAttributes"]]
        value = request["LookupAttributes"][0]["AttributeValue"]
        start, end = parse_time(request.get("StartTime")), parse_time(request.get("EndTime"))
        query = (region, attribute, value, start, end, bisect.bisect_right(self._visible, now))
        matches = self._matches.get(query)
        if matches is None:
            matches = self._matches[query] = [
                shaped for when, visible, record, shaped in self._rows
                if record["awsRegion"] == region and visible.timestamp() <= now
                and (start is None or when >= start) and (end is None or when <= end)
                and value in _values(attribute, record, shaped)]
        offset = int(request.get("NextToken") or 0)
        page = {"Events": matches[offset:offset + 50]}
        if offset + 50 < len(matches):
            page["NextToken"] = str(offset + 50)
        return page


def _values(attribute: str, record: dict[str, Any], shaped: dict[str, Any]) -> list[str]:
    if attribute == "ReadOnly":
        return [shaped["ReadOnly"]]
    if attribute == "EventId":
        return [record["eventID"]]
    return [r["ResourceName"] for r in shaped["Resources"]]


def trail_answer(entries: list[dict[str, Any]], clock: ManualClock) -> Answer:
    trail = QuickTrail(entries)
    return lambda region, request: trail.lookup(region, request, clock())


def burst(n: int, *, humans: int = 0) -> tuple[list[LookupJob], list[dict[str, Any]]]:
    """``n`` security groups changed by Terraform within 3 minutes (the last ``humans`` of them by a person),
    their calls visible, their jobs due."""
    jobs, entries = [], []
    for i in range(n):
        group = f"sg-0{i:016x}"
        when = START + timedelta(seconds=180 * i / n)
        person = i >= n - humans
        entries.append(trail_entry(group, when, role=None if person else "terraform", visible_after=60))
        jobs.append(sg_job(group, when + timedelta(seconds=40), arrived=START + timedelta(minutes=4)))
    return jobs, entries


def sg_job(group: str, capture: datetime, *, arrived: datetime, account: str = ACCOUNT,
           region: str = "us-east-1") -> LookupJob:
    """The job dispatch queues for an ingress rule added to ``group`` (``memory_world.lookup_job``'s item, built
    directly: thousands of them are made here)."""
    item = ConfigChange(source="test", message_type="ConfigurationItemChangeNotification", account=account,
                        region=region, resource_type="AWS::EC2::SecurityGroup", resource_id=group,
                        resource_name=f"{group}-name", arn=f"arn:aws:ec2:{region}:{account}:security-group/{group}",
                        capture_time=capture, change_type="UPDATE", status="OK",
                        changed_properties=(PropertyChange("Configuration.IpPermissions.0", "CREATE", None,
                                                           {"ipProtocol": "tcp", "fromPort": 22}),),
                        configuration={"groupId": group})
    return LookupJob(change=item, change_key=change_key(item), arrived_at=arrived)


def queue(deps: MemoryDeps, jobs: list[LookupJob]) -> None:
    deps.queue("lookup_queue").send_many([job.to_json() for job in jobs])


def one_run(n: int) -> tuple[MemoryDeps, dict[str, int]]:
    jobs, entries = burst(n)
    clock = ManualClock(START + timedelta(minutes=10))
    deps = paced_world(trail_answer(entries, clock), clock)
    queue(deps, jobs)
    return deps, lookup(deps)


# --------------------------------------------------------------------------------------------
# Cost: flat per change, linear work


def test_a_bigger_burst_costs_no_more_lookups_per_change_and_a_run_holds_one_chunk() -> None:
    per_change = {}
    for n in (1000, 1500):  # the old cliff was at 1,500; make bench measures 5,000 (lookup_calls_per_change_n5000)
        jobs, entries = burst(n)
        clock = ManualClock(START + timedelta(minutes=10))
        deps = paced_world(trail_answer(entries, clock), clock)
        queue(deps, jobs)
        lookup_queue = watched(deps)
        assert lookup(deps)["decided"] == n, "every change of the burst is decided in one run"
        per_change[n] = deps.lookups.stats.calls / n
        assert lookup_queue.most_held <= CHUNK_JOBS, "never more than a chunk of jobs in hand"
        assert len(lookup_queue.batches) <= n // 10 + n // CHUNK_JOBS, "sent back ten at a time"
    assert max(per_change.values()) <= 0.05, per_change
    assert per_change[1500] <= per_change[1000] * 1.25, per_change


def counted(monkeypatch: pytest.MonkeyPatch, name: str) -> list[int]:
    calls = [0]
    original = getattr(attr, name)

    def counting(*args: Any) -> Any:
        calls[0] += 1
        return original(*args)

    monkeypatch.setattr(attr, name, counting)
    return calls


def test_deciding_a_burst_grows_linearly_with_its_size(monkeypatch: pytest.MonkeyPatch) -> None:
    writes, keys = counted(monkeypatch, "is_write"), counted(monkeypatch, "event_keys")
    work = {}
    for n in (200, 400):
        writes[0] = keys[0] = 0
        one_run(n)
        work[n] = (writes[0], keys[0])
    assert work[400][0] <= 2.5 * work[200][0] and work[400][0] <= 10 * 400, work
    assert work[400][1] <= 2.5 * work[200][1] and work[400][1] <= 3 * 400, work


def test_indexed_attribution_decides_as_attribute_does() -> None:
    jobs, entries = burst(60, humans=5)
    clock = ManualClock(START + timedelta(minutes=10))
    events, _ = MemoryLookups(trail_answer(entries, clock)).lookup("us-east-1", "ReadOnly", "false", max_pages=5)
    index = attr.CallIndex()
    for event in events:
        index.add(event)
    for job in jobs:
        options: dict[str, Any] = dict(previous_capture=None, lookback=timedelta(minutes=20),
                                       trusted_patterns=(TRUSTED_ROLE,), trust_aws_services=True)
        assert attr.attribute_indexed(job.change, index, **options) == attr.attribute(job.change, events, **options)


# --------------------------------------------------------------------------------------------
# Bounded runs


def flood() -> Answer:
    """A CloudTrail whose every query is an endless flood of service writes on other resources, newest first
    (a few calls a page: the pages are what a run pays for)."""
    def answer(region: str, request: dict[str, Any]) -> dict[str, Any]:
        end = parse_time(request.get("EndTime")) or START
        offset = int(request.get("NextToken") or 0)
        events = []
        for i in range(offset, offset + 5):
            event_id = f"flood-{region}-{end.timestamp()}-{i}"
            events.append({"EventId": event_id, "CloudTrailEvent": json.dumps({
                "eventVersion": "1.09", "eventTime": iso(end - timedelta(milliseconds=10 * i)), "eventID": event_id,
                "eventSource": "ec2.amazonaws.com", "eventName": "CreateNetworkInterface", "awsRegion": region,
                "readOnly": False, "recipientAccountId": ACCOUNT, "requestParameters": {"subnetId": "subnet-0f"},
                "userIdentity": {"type": "AWSService", "invokedBy": "autoscaling.amazonaws.com"}})})
        return {"Events": events, "NextToken": str(offset + 5)}
    return answer


class Watched:
    """The lookup queue, counting the jobs a run holds (received and not yet sent back or deleted) and the
    batches it sends."""

    def __init__(self, queue: Any) -> None:
        self.queue = queue
        self.held = self.most_held = 0
        self.batches: list[int] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.queue, name)

    def __len__(self) -> int:
        return len(self.queue)

    def receive(self, max_messages: int = 10, visibility_timeout: int | None = None) -> list[Any]:
        got = self.queue.receive(max_messages, visibility_timeout)
        self.held += len(got)
        self.most_held = max(self.most_held, self.held)
        return got

    def send_many(self, bodies: list[Any], **options: Any) -> None:
        self.batches.append(len(bodies))
        self.queue.send_many(bodies, **options)

    def delete(self, messages: list[Any]) -> None:
        self.held -= len(messages)
        self.queue.delete(messages)


def watched(deps: MemoryDeps) -> Watched:
    deps.queues["lookup_queue"] = Watched(deps.queues["lookup_queue"])
    return deps.queues["lookup_queue"]


def test_no_run_outlasts_its_budget_and_the_backlog_is_carried_over() -> None:
    clock = ManualClock(START + timedelta(minutes=10))
    deps = paced_world(flood(), clock)
    queue(deps, [sg_job(f"sg-0f{i:015x}", CAPTURE + timedelta(seconds=i % 170), arrived=CAPTURE,
                        account=f"1000000000{i % 12:02d}") for i in range(120)])
    lengths, read = [], []
    for _ in range(2):
        started = deps.clock()
        counts = lookup(deps)
        lengths.append(deps.clock() - started)
        read.append(sum(job.pages_read for job in waiting(deps)))
        assert counts["jobs"] >= 1
        clock.advance(60)
    assert max(lengths) <= BUDGET + PACE, lengths
    assert read == sorted(read) and read[-1] > read[0], "each run reads on where the last stopped"


def waiting(deps: MemoryDeps) -> list[LookupJob]:
    return [LookupJob.from_json(json.loads(body)) for body in deps.queue("lookup_queue").bodies()]


def test_the_largest_jobs_are_taken_a_few_at_a_time() -> None:
    ranges = [{"cidrIp": f"10.{i // 250 % 250}.{i % 250}.{i // 62500}/32"} for i in range(5800)]
    diff = (PropertyChange("Configuration.IpPermissions.1", "CREATE", None, {"ipv4Ranges": ranges}),)
    jobs, entries = burst(60)
    large = [replace(job, change=replace(job.change, changed_properties=diff)) for job in jobs]
    assert len(json.dumps(large[0].to_json())) > 150_000
    clock = ManualClock(START + timedelta(minutes=10))
    deps = paced_world(trail_answer(entries, clock), clock)
    queue(deps, large)
    lookup_queue = watched(deps)
    assert lookup(deps)["decided"] == 60
    assert lookup_queue.most_held <= lookup_stage.CHUNK_BYTES // 150_000 + 10


def test_a_quiet_regions_alert_is_not_kept_waiting_by_a_huge_burst_elsewhere() -> None:
    quiet_group = "sg-0eu0000000000001"
    person = trail_entry(quiet_group, CAPTURE - timedelta(seconds=20), user="mallory", region=QUIET_REGION,
                         visible_after=30)
    clock = ManualClock(START + timedelta(minutes=10))
    quiet = trail_answer([person], clock)
    busy = flood()
    deps = paced_world(lambda region, request: (quiet if region == QUIET_REGION else busy)(region, request), clock)
    iam_burst = [iam_job(f"AROAEXAMPLE{i:08d}", f"app-role-{i}") for i in range(3000)]
    queue(deps, iam_burst)
    queue(deps, [sg_job(quiet_group, CAPTURE, arrived=CAPTURE, region=QUIET_REGION)])
    watched_queue = watched(deps)
    started = deps.clock()
    counts = lookup(deps)
    assert deps.clock() - started <= BUDGET + PACE
    (alert,) = slack_outcomes(deps)
    assert (alert["resource_id"], alert["principal_arn"]) == (quiet_group, f"arn:aws:iam::{ACCOUNT}:user/mallory")
    assert counts["deferred"] > 0, "the burst's region had its share; the rest waits for the next run"
    assert watched_queue.most_held <= CHUNK_JOBS


def iam_job(role_id: str, name: str) -> LookupJob:
    item = ConfigChange(source="test", message_type="ConfigurationItemChangeNotification", account=ACCOUNT,
                        region="global", resource_type="AWS::IAM::Role", resource_id=role_id, resource_name=name,
                        arn=f"arn:aws:iam::{ACCOUNT}:role/{name}", capture_time=CAPTURE, change_type="UPDATE",
                        status="OK", configuration={"roleName": name, "roleId": role_id, "path": "/"})
    return LookupJob(change=item, change_key=change_key(item), arrived_at=CAPTURE + timedelta(seconds=5))


# --------------------------------------------------------------------------------------------
# Sweeps go on across runs; background writes are read once per group


def test_a_sweep_longer_than_a_share_goes_on_in_the_next_run_and_settles_the_watch() -> None:
    jobs, entries = burst(100)
    entries += [trail_entry(f"sg-0b{i:015x}", START - timedelta(minutes=15) + timedelta(seconds=0.2 * i),
                            role="terraform", visible_after=10) for i in range(3000)]
    clock = ManualClock(START + timedelta(minutes=30))  # watches, every call of their windows long visible
    deps = paced_world(trail_answer(entries, clock), clock, budget=30.0)  # a share of 30 pages
    queue(deps, [replace(job, decided_kind="suppressed") for job in jobs])
    sweeps: list[tuple[datetime, datetime]] = []
    answer = deps.lookups._answer

    def recording(region: str, request: dict[str, Any]) -> dict[str, Any]:
        if request["LookupAttributes"][0]["AttributeKey"] == "ReadOnly" and "NextToken" not in request:
            sweeps.append((request["StartTime"], request["EndTime"]))
        return answer(region, request)

    deps.lookups._answer = recording
    for _ in range(3):
        lookup(deps)
        clock.advance(60)
    finished = waiting(deps)
    assert len(finished) == 100 and all(not job.cursors for job in finished), "every watch read to the end"
    assert all(job.not_before > deps.now() + timedelta(minutes=10) for job in finished), "next: the give-up check"
    # the first run reads one page to learn how dense the region is, then reads on below it; each run after
    # goes on below the last
    assert len(sweeps) == 4, sweeps
    assert [end for _, end in sweeps] == sorted((end for _, end in sweeps), reverse=True), sweeps
    assert deps.lookups.stats.calls <= 3100 // 50 + 3, "the window was read once"


def test_background_writes_are_read_once_per_group_not_once_per_item() -> None:
    """A Terraform apply of 120 changes whose calls show up 2 to 8 minutes late (one 18 minutes late), in a
    region where services write all the time: the writes cost a few pages per sweep, not lookups per change."""
    def lookups_with(background_per_minute: int) -> int:
        jobs, entries = [], []
        for i in range(120):
            group, when = f"sg-0{i:016x}", START + timedelta(seconds=1.5 * i)
            late = 120 + (i * 37) % 360 + (600 if i == 7 else 0)
            entries.append(trail_entry(group, when, role="terraform", visible_after=late))
            job = sg_job(group, when + timedelta(seconds=40), arrived=when + timedelta(seconds=45))
            jobs.append(replace(job, not_before=when + timedelta(seconds=85)))
        entries += [trail_entry(f"sg-0b{i:015x}", START - timedelta(minutes=25) + timedelta(
            seconds=60 * i / background_per_minute), role="autoscaling", visible_after=150)
            for i in range(45 * background_per_minute)]
        clock = ManualClock(START + timedelta(minutes=1))
        deps = paced_world(trail_answer(entries, clock), clock)
        queue(deps, jobs)
        for _ in range(24):  # past the watches 15 minutes after capture
            clock.advance(60)
            lookup(deps)
        assert len(deps.state.with_prefix("out#")) == 120, "every change decided"
        names = sum(1 for _, request in deps.lookups.requests
                    if request["LookupAttributes"][0]["AttributeKey"] == "ResourceName")
        return deps.lookups.stats.calls, names

    (quiet, _), (busy, busy_names) = lookups_with(1), lookups_with(20)
    # Where a sweep costs a dozen pages, only the late change, waiting alone, is looked up by its 3 names.
    assert busy_names <= 3 * 10, busy_names
    assert busy / 120 <= 1.2, (quiet, busy)


def test_the_replay_runs_the_lookup_with_its_deployed_budget() -> None:
    assert deployed_budget("lookup") == run_budget(300) == 240.0
    assert deployed_budget("dispatch") == run_budget(120)

