"""In-memory fakes of every port (``chalicelib.ports``), and a manual clock.

A stage run on them (``chalicelib.memory_deps.MemoryDeps``) does no I/O and takes milliseconds, yet meets
the services' semantics that the stages rely on:

* ``MemoryQueue`` is SQS standard: delays, visibility timeouts, receive counts, a redrive to a
  dead-letter queue once a message was received ``max_receive_count`` times, retention. A delete
  needs the latest receipt (SQS may ignore an older one; the fake always does).
* ``MemoryArchive`` is S3 put/get, read through the real size- and gzip-limits of ``read_object``.
* ``MemoryState`` is the DynamoDB state table: last writer wins, every attribute read back as text,
  the 400 KB item limit, and the same range read as ``StateTable.latest_before``.
* ``MemoryLookups`` pages through an injected ``LookupEvents`` answer (newest first, windows and
  attribute filters are the answer's job: ``mcd_tools.fake_cloudtrail.FakeCloudTrail.lookup`` is the
  one the tests inject) and parses each event like ``LookupClient``.
* ``MemorySecrets`` unwraps stored values as ``SecretReader`` does, without caching.
* ``RecordingSlack`` answers like ``adapters.slack`` (post, update, scripted failures) and records
  every call.
* ``MemoryOrganization`` hands out the ``Directory`` a test sets, counting reads.
"""

from __future__ import annotations

import io
import itertools
import json
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from chalicelib.adapters.archive import read_object
from chalicelib.adapters.cloudtrail import AccountUnreachable, LookupStats, read_pages
from chalicelib.adapters.queues import MAX_DELAY_SECONDS, Message
from chalicelib.adapters.secrets import Secret, SecretError, _unwrap
from chalicelib.adapters.slack import usable_webhook_url
from chalicelib.adapters.state import DAY
from chalicelib.core.model import TrailEvent
from chalicelib.core.organization import Directory
from chalicelib.ports import Delivery

MAX_MESSAGE_BYTES = 262_144  # SQS: one message, body and attributes
DEFAULT_RETENTION_SECONDS = 4 * DAY  # SQS's default
MAX_ITEM_BYTES = 400 * 1024  # DynamoDB: one item, names and values
MAX_RECEIVE_COUNT = 5  # as infra/stack.yaml's redrive policies
DEFAULT_START = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


class ManualClock:
    """A clock that moves only when told to: ``sleep`` and ``advance`` move it, nothing else does."""

    def __init__(self, start: datetime | float = DEFAULT_START) -> None:
        self._now = start.timestamp() if isinstance(start, datetime) else float(start)
        self.slept = 0.0

    def __call__(self) -> float:
        return self._now

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._now, tz=timezone.utc)

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock does not go back")
        self._now += seconds

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.slept += seconds
            self._now += seconds


# --------------------------------------------------------------------------------------------
# SQS


@dataclass
class _Queued:
    message_id: str
    body: str
    attributes: dict[str, str]
    sent_at: float
    visible_at: float
    receive_count: int = 0
    receipt: str | None = None

    def received(self, now: float, hidden_for: float) -> Message:
        """Hand the message out once more: a new receipt, hidden for ``hidden_for`` seconds."""
        self.receive_count += 1
        self.receipt = f"{self.message_id}#{self.receive_count}"
        self.visible_at = now + hidden_for
        return Message(body=self.body, receipt=self.receipt, message_id=self.message_id,
                       receive_count=self.receive_count, attributes=dict(self.attributes))


class MemoryQueue:
    """One SQS standard queue; a message is redriven to ``dead_letter`` on the receive after its last allowed one."""

    def __init__(self, name: str, clock: Callable[[], float], *, visibility_timeout: int = 30,
                 dead_letter: MemoryQueue | None = None, max_receive_count: int = MAX_RECEIVE_COUNT,
                 retention_seconds: int = DEFAULT_RETENTION_SECONDS) -> None:
        self.name = name
        self.url = f"memory://{name}"
        self._clock = clock
        self.visibility_timeout = visibility_timeout
        self.dead_letter = dead_letter
        self.max_receive_count = max_receive_count
        self.retention_seconds = retention_seconds
        self._messages: list[_Queued] = []
        self._ids = itertools.count(1)
        self.sent = 0

    # --- the port

    def send(self, body: Any, *, delay_seconds: float = 0, attributes: dict[str, str] | None = None) -> None:
        self.send_many([body], delay_seconds=delay_seconds, attributes=attributes)

    def send_many(self, bodies: list[Any], *, delay_seconds: float = 0,
                  attributes: dict[str, str] | None = None) -> None:
        delay = max(0, min(MAX_DELAY_SECONDS, round(delay_seconds)))
        texts = [body if isinstance(body, str) else json.dumps(body) for body in bodies]
        attrs = dict(attributes or {})
        extra = sum(len(k.encode()) + len(v.encode()) + len("String") for k, v in attrs.items())
        for text in texts:
            if len(text.encode()) + extra > MAX_MESSAGE_BYTES:
                raise RuntimeError(f"SQS refused 1 message(s): over {MAX_MESSAGE_BYTES} bytes")
        now = self._clock()
        for text in texts:
            self._add(_Queued(f"{self.name}-{next(self._ids)}", text, dict(attrs), now, now + delay))

    def receive(self, max_messages: int = 10, visibility_timeout: int | None = None) -> list[Message]:
        now = self._clock()
        self._expire(now)
        wanted = max(1, min(10, max_messages))
        hidden_for = self.visibility_timeout if visibility_timeout is None else visibility_timeout
        received: list[Message] = []
        for queued in sorted(self._messages, key=lambda m: m.visible_at):
            if len(received) >= wanted:
                break
            if queued.visible_at > now:
                continue
            if self.dead_letter is not None and queued.receive_count >= self.max_receive_count:
                self._messages.remove(queued)  # SQS's redrive: same id, body, attributes and count
                queued.receipt = None
                self.dead_letter._add(queued)
                continue
            received.append(queued.received(now, hidden_for))
        return received

    def delete(self, messages: list[Message]) -> None:
        receipts = {m.receipt for m in messages}
        self._messages = [m for m in self._messages if m.receipt is None or m.receipt not in receipts]

    # --- for tests

    def _add(self, queued: _Queued) -> None:
        self._messages.append(queued)
        self.sent += 1

    def _expire(self, now: float) -> None:
        self._messages = [m for m in self._messages if now - m.sent_at < self.retention_seconds]

    def depth(self) -> dict[str, int]:
        """Like SQS's approximate counts: ``visible``, ``in_flight`` (received, hidden) and ``delayed``."""
        now = self._clock()
        visible = sum(1 for m in self._messages if m.visible_at <= now)
        in_flight = sum(1 for m in self._messages if m.visible_at > now and m.receive_count)
        return {"visible": visible, "in_flight": in_flight, "delayed": len(self._messages) - visible - in_flight}

    def __len__(self) -> int:
        return len(self._messages)

    def bodies(self) -> list[str]:
        """Every message's body, whether visible or not, in the order they became visible."""
        return [m.body for m in sorted(self._messages, key=lambda m: m.visible_at)]

    def peek(self) -> list[Message]:
        """Every message as it stands (receive count so far), without receiving it."""
        return [Message(m.body, m.receipt or "", m.message_id, m.receive_count, dict(m.attributes))
                for m in sorted(self._messages, key=lambda m: m.visible_at)]

    def purge(self) -> None:
        self._messages.clear()


# --------------------------------------------------------------------------------------------
# S3


class _StoredObject:
    """What ``read_object`` needs of an S3 ``GetObject`` answer."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def answer(self) -> dict[str, Any]:
        return {"Body": io.BytesIO(self.data), "ContentLength": len(self.data)}


class NoSuchKey(KeyError):
    """S3 answered ``NoSuchKey`` (or ``NoSuchBucket``)."""


class MemoryArchive:
    """The archive bucket, and any other bucket a test puts objects in (Config's delivery bucket)."""

    def __init__(self, bucket: str) -> None:
        self.bucket = bucket
        self.buckets: dict[str, dict[str, bytes]] = {bucket: {}}
        self.metadata: dict[tuple[str, str], dict[str, str]] = {}

    def put(self, key: str, body: str | bytes, *, metadata: dict[str, str] | None = None) -> None:
        data = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
        self.buckets[self.bucket][key] = bytes(data)
        self.metadata[(self.bucket, key)] = {
            k: "".join(c if " " <= c <= "~" else "_" for c in v[:512]) for k, v in (metadata or {}).items()}

    def get_text(self, key: str, bucket: str | None = None) -> str:
        return read_object(self, bucket or self.bucket, key)

    # --- the S3 call read_object makes

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:  # boto3's parameter names
        found = self.buckets.get(Bucket, {}).get(Key)
        if found is None:
            raise NoSuchKey(f"s3://{Bucket}/{Key}: NoSuchKey")
        return _StoredObject(found).answer()

    # --- for tests

    def add_object(self, bucket: str, key: str, data: str | bytes) -> None:
        self.buckets.setdefault(bucket, {})[key] = data.encode() if isinstance(data, str) else bytes(data)

    def list_keys(self, prefix: str = "", bucket: str | None = None) -> list[str]:
        return sorted(k for k in self.buckets.get(bucket or self.bucket, {}) if k.startswith(prefix))

    def read(self, key: str, bucket: str | None = None) -> bytes:
        return self.buckets[bucket or self.bucket][key]

    def json(self, key: str, bucket: str | None = None) -> Any:
        return json.loads(self.read(key, bucket))


# --------------------------------------------------------------------------------------------
# DynamoDB


class MemoryState:
    """The state table: ``(pk, sk)`` → attributes, all text, as ``StateTable`` reads them back."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], dict[str, str]] = {}
        self.batches = 0  # put_many calls (BatchWriteItem requests, give or take the 25-row split)
        self.queries = 0  # between calls

    def put(self, pk: str, sk: str, now: float, ttl_days: int = 14, **attrs: str) -> None:
        if not pk or not sk:
            raise ValueError("DynamoDB refuses an empty key attribute")
        item = {"pk": pk, "sk": sk, "expires_at": str(int(now) + ttl_days * DAY)}
        item.update(attrs)
        size = sum(len(k.encode()) + len(str(v).encode("utf-8", "surrogatepass")) for k, v in item.items())
        if size > MAX_ITEM_BYTES:
            raise ValueError(f"DynamoDB refuses an item of {size} bytes (at most {MAX_ITEM_BYTES})")
        self.items[(pk, sk)] = item

    def get(self, pk: str, sk: str) -> dict[str, str] | None:
        found = self.items.get((pk, sk))
        return dict(found) if found is not None else None

    def latest_before(self, pk: str, prefix: str, before_sk: str) -> str | None:
        below = [sk for (p, sk) in self.items if p == pk and prefix <= sk < before_sk]
        return max(below) if below else None

    def put_many(self, rows: Sequence[tuple[str, str, dict[str, str]]], now: float, ttl_seconds: int) -> None:
        self.batches += 1
        for pk, sk, attrs in rows:
            self.put(pk, sk, now, ttl_days=0, **attrs)
            self.items[(pk, sk)]["expires_at"] = str(int(now) + ttl_seconds)

    def between(self, pk: str, low: str, high: str, *, limit: int = 1000) -> list[dict[str, str]]:
        self.queries += 1
        found = sorted((sk, v) for (p, sk), v in self.items.items() if p == pk and low <= sk <= high)
        return [dict(v) for _, v in found[:limit]]

    # --- for tests

    def with_prefix(self, pk_prefix: str) -> list[dict[str, str]]:
        return [dict(v) for (pk, _), v in sorted(self.items.items()) if pk.startswith(pk_prefix)]


# --------------------------------------------------------------------------------------------
# CloudTrail LookupEvents


LookupAnswer = Callable[[str, dict[str, Any]], dict[str, Any]]
"""``(region, LookupEvents request) -> one page``: ``{"Events": [...], "NextToken": ...}``."""


def _no_events(region: str, request: dict[str, Any]) -> dict[str, Any]:
    return {"Events": []}


class MemoryLookups:
    """``LookupClient`` over an injected answer: same paging, parsing and page count; no pacing.

    ``fail(region, error)`` makes every call in that region raise ``error`` (throttling, a refused
    region) until ``recover(region)``.
    """

    def __init__(self, answer: LookupAnswer | None = None) -> None:
        self._answer = answer or _no_events
        self.stats = LookupStats()
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.failures: dict[str, Exception] = {}
        self.unreachable: dict[str, str] = {}  # account -> why its role cannot be assumed
        self.reachable: set[str] | None = None  # when set, every other account is unreachable (no role there)

    def lookup(self, region: str, attribute: str, value: str, start: datetime | None = None,
               end: datetime | None = None, max_pages: int = 20,
               account: str | None = None) -> tuple[list[TrailEvent], bool]:
        """As ``LookupClient.lookup``; another ``account``'s history is the answer's with ``Account`` in the
        request (the answer decides what that account holds), unless ``unreachable`` names it."""
        if account and account in self.unreachable:
            raise AccountUnreachable(account, self.unreachable[account])
        if account and self.reachable is not None and account not in self.reachable:
            raise AccountUnreachable(account, "assuming its lookup role failed (AccessDenied)")
        return read_pages(lambda r, params: self._call(r, {**params, "Account": account} if account else params),
                          region, attribute, value, start, end, max_pages)

    def _call(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        self.stats.calls += 1
        self.requests.append((region, dict(params)))
        failure = self.failures.get(region)
        if failure is not None:
            raise failure
        return self._answer(region, dict(params))

    def for_new_container(self) -> MemoryLookups:
        """The same CloudTrail seen from a new container: shared answer and failures, counters from zero."""
        other = MemoryLookups(self._answer)
        other.requests = self.requests
        other.failures = self.failures
        other.unreachable = self.unreachable
        other.reachable = self.reachable
        return other

    def fail(self, region: str, error: Exception) -> None:
        self.failures[region] = error

    def recover(self, region: str) -> None:
        self.failures.pop(region, None)


# --------------------------------------------------------------------------------------------
# Secrets Manager / SSM


class MemorySecrets:
    """Secret values by reference, unwrapped like ``SecretReader`` (JSON ``url``/``token``… or bare)."""

    def __init__(self, values: dict[str, str] | None = None) -> None:
        self.values: dict[str, str] = dict(values or {})
        self.reads: list[str] = []
        self.unreadable: set[str] = set()

    def read(self, ref: str) -> Secret:
        self.reads.append(ref)
        raw = self.values.get(ref)
        if ref in self.unreadable or raw is None:
            raise SecretError(f"secret {ref} cannot be read")
        if not raw.strip():
            raise SecretError(f"secret {ref} holds no text value")
        return Secret(_unwrap(raw, ref))


# --------------------------------------------------------------------------------------------
# Slack


@dataclass(frozen=True)
class SlackCall:
    """One call made to Slack: a webhook post, a bot post or a bot update."""

    method: str  # "webhook", "chat.postMessage" or "chat.update"
    target: str  # the webhook URL or the bot token
    payload: dict[str, Any]
    at: float
    answer: Delivery
    channel: str | None = None
    update_ts: str | None = None


@dataclass
class RecordingSlack:
    """Slack's answers, recorded: bot messages get a ``ts`` and a channel id, and can be updated.

    ``script(target, *answers)`` makes the next calls to a webhook URL or token answer those
    ``Delivery`` values in turn (then ``ok`` again). ``adapters.slack``'s URL check is kept: a webhook
    that is not Slack's is refused without a call, like the real adapter does.
    """

    clock: Callable[[], float] = lambda: 0.0
    calls: list[SlackCall] = field(default_factory=list)
    messages: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)  # (channel, ts) -> payload
    _scripts: dict[str, deque[Delivery]] = field(default_factory=dict)
    _ts: itertools.count = field(default_factory=lambda: itertools.count(1))

    def script(self, target: str, *answers: Delivery) -> None:
        self._scripts.setdefault(target, deque()).extend(answers)

    def post_webhook(self, url: Secret, payload: dict[str, Any]) -> Delivery:
        target = url.reveal()
        if not usable_webhook_url(target):
            return Delivery("permanent", "refused to call the webhook: its secret does not hold a Slack "
                            "incoming-webhook URL (an https URL on Slack's webhook host)", code="bad_url",
                            whole_destination=True)
        answer = self._scripted(target) or Delivery("ok")
        self.calls.append(SlackCall("webhook", target, payload, self.clock(), answer))
        return answer

    def post_bot(self, token: Secret, channel: str, payload: dict[str, Any], update_ts: str | None = None,
                 base_url: str | None = None) -> Delivery:
        target = token.reveal()
        method = "chat.update" if update_ts else "chat.postMessage"
        answer = self._scripted(target)
        if answer is None and update_ts:
            if (channel, update_ts) in self.messages:
                self.messages[(channel, update_ts)] = payload
                answer = Delivery("ok", ts=update_ts, channel=channel)
            else:
                answer = Delivery("permanent", f"{method} refused: message_not_found", code="message_not_found")
        elif answer is None:
            channel_id = channel if channel.startswith("C") else "C" + channel.lstrip("#@").upper()[:10]
            ts = f"{int(self.clock())}.{next(self._ts):06d}"
            self.messages[(channel_id, ts)] = payload
            answer = Delivery("ok", ts=ts, channel=channel_id)
        self.calls.append(SlackCall(method, target, payload, self.clock(), answer, channel, update_ts))
        return answer

    def _scripted(self, target: str) -> Delivery | None:
        waiting = self._scripts.get(target)
        return waiting.popleft() if waiting else None

    def delivered(self, method: str | None = None) -> list[SlackCall]:
        """Calls Slack accepted (optionally of one method)."""
        return [c for c in self.calls if c.answer.status == "ok" and (method is None or c.method == method)]


# --------------------------------------------------------------------------------------------
# Metrics


@dataclass
class MemoryMetrics:
    """Metric data points as recorded: ``(name, value, unit, dimensions)``."""

    points: list[tuple[str, float, str, dict[str, str]]] = field(default_factory=list)

    def record(self, name: str, value: float, unit: str = "Count", **dimensions: str) -> None:
        self.points.append((name, value, unit, dict(dimensions)))

    def total(self, name: str, **dimensions: str) -> float:
        """The sum of ``name``'s points whose dimensions include ``dimensions``."""
        return sum(value for n, value, _, dims in self.points
                   if n == name and all(dims.get(k) == v for k, v in dimensions.items()))


# --------------------------------------------------------------------------------------------
# AWS Organizations


class MemoryOrganization:
    """The organisation's directory as a test sets it (``None``: an account outside any organisation, so an
    empty directory); ``reads`` counts the calls, which a stage makes only when something needs them."""

    def __init__(self, directory: Directory | None = None) -> None:
        self.current = directory
        self.reads = 0

    def directory(self) -> Directory:
        self.reads += 1
        return self.current if self.current is not None else Directory(problem="not in an organisation (memory)")
