"""Property and fuzz tests: no payload, however damaged, makes a parser or an entry point raise.

Valid samples (tests/events) are mutated the way real input goes wrong: keys dropped, values
nulled, types swapped, JSON text and base64 truncated or corrupted, compressed bytes damaged.
Beyond "no exception", no item may come from the last-resort guard: the parsers must be robust by
construction, not by the catch-all.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import gzip
import io
import json
import logging
import os
import random
import time
import zlib
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.adapters.memory import MemoryMetrics, MemoryState
from chalicelib.adapters.queues import Message
from chalicelib.core.errors import MalformedInput
from chalicelib.core.model import ConfigChange, Ignored, Principal, TrailEvent, Unparseable
from chalicelib.core.settings import Settings
from chalicelib.parsing import envelopes
from chalicelib.parsing.cloudtrail import parse_lookup_event, parse_record, resolve_principal
from chalicelib.parsing.config_notifications import parse_config_message, parse_config_object
from chalicelib.parsing.events import parse_payload, parse_sns_event

EVENTS = Path(__file__).resolve().parents[1] / "events"
SAMPLES = [json.loads(p.read_text()) for p in sorted(EVENTS.glob("*.json"))]
TEXT_SAMPLES = [p.read_text() for p in sorted(EVENTS.glob("*.txt"))]
ITEM_TYPES = (ConfigChange, TrailEvent, Ignored, Unparseable)
EXAMPLES = int(os.environ.get("MCD_FUZZ_EXAMPLES", "150"))  # raise it for a longer hunt
FAST = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])

SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-2**40, 2**40), st.floats(allow_nan=False),
                    st.text(max_size=12))
SWAPS = [None, 0, -1, 1.5, True, False, "", "x", "{", "[", "null", [], {}, [None], {"": None},
         "H4sIAAAAAAAA", "2024-13-45T99:99:99Z"]
KEYS = ["Records", "Sns", "Message", "Type", "awslogs", "data", "detail-type", "detail", "messageType",
        "logEvents", "message", "configurationItem", "configurationItems", "configurationItemDiff",
        "configurationItemSummary", "changedProperties", "invokingEvent", "Events", "CloudTrailEvent",
        "userIdentity", "sessionContext", "eventName", "eventSource", "kinesis", "body", "eventSource",
        "resourceType", "relationships", "tags", "configuration"]


def check(items: Any) -> None:
    assert isinstance(items, list) and items
    for item in items:
        assert isinstance(item, ITEM_TYPES), item
        json.dumps(item.to_json())
        if isinstance(item, (Ignored, Unparseable)):
            assert isinstance(item.reason, str) and item.reason
            assert not item.reason.startswith("internal parser error"), item.reason
        else:
            assert_text_fields(item)
        if isinstance(item, TrailEvent):
            assert_text_fields(item.principal)
            assert isinstance(item.raw, dict)
        if isinstance(item, ConfigChange):
            assert all(isinstance(k, str) and isinstance(v, str) for k, v in item.tags.items())
            assert all(isinstance(e, str) for e in item.related_events)
            assert all(isinstance(p.path, str) for p in item.changed_properties)


def assert_text_fields(obj: Any) -> None:
    """Every field declared ``str | None`` holds a str or None (and ``bool | None`` a bool or None)."""
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if f.type == "str | None":
            assert value is None or isinstance(value, str), (f.name, value)
        if f.type == "bool | None":
            assert value is None or isinstance(value, bool), (f.name, value)


def node_paths(obj: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(obj, dict):
        for key, value in obj.items():
            out.extend(node_paths(value, (*prefix, key)))
    elif isinstance(obj, list):
        for index, value in enumerate(obj):
            out.extend(node_paths(value, (*prefix, index)))
    return out


def get(obj: Any, path: tuple) -> Any:
    for step in path:
        obj = obj[step]
    return obj


def mutate(data: st.DataObject, root: Any) -> Any:
    """Apply one mutation at a random node; returns the (possibly new) root."""
    path = data.draw(st.sampled_from(node_paths(root)))
    node = get(root, path)
    op = data.draw(st.sampled_from(["drop", "null", "swap", "stringify", "truncate", "corrupt"]))
    if op == "drop":
        if not path:
            return {}
        parent = get(root, path[:-1])
        del parent[path[-1]]
        return root
    if op == "null":
        new = None
    elif op == "swap":
        new = copy.deepcopy(data.draw(st.sampled_from(SWAPS)))
    elif op == "stringify":
        new = json.dumps(node)
    else:
        text = node if isinstance(node, str) else json.dumps(node)
        cut = data.draw(st.integers(0, max(len(text) - 1, 0)))
        if op == "truncate":
            new = text[:cut]
        else:
            new = text[:cut] + data.draw(st.sampled_from(["\x00", "!", "{", "\"", "é", "A"])) + text[cut + 1:]
    if not path:
        return new
    get(root, path[:-1])[path[-1]] = new
    return root


@FAST
@given(st.data())
def test_mutated_samples_never_break_the_parser(data):
    root = copy.deepcopy(data.draw(st.sampled_from(SAMPLES)))
    for _ in range(data.draw(st.integers(1, 4))):
        root = mutate(data, root)
    check(parse_payload(root, "fuzz"))


@FAST
@given(st.data())
def test_damaged_bytes_never_break_the_parser(data):
    sample = data.draw(st.sampled_from(SAMPLES + TEXT_SAMPLES))
    raw = (sample if isinstance(sample, str) else json.dumps(sample)).encode()
    if data.draw(st.booleans()):
        raw = gzip.compress(raw, mtime=0)
    damage = data.draw(st.sampled_from(["truncate", "flip", "insert", "none"]))
    at = data.draw(st.integers(0, len(raw) - 1))
    if damage == "truncate":
        raw = raw[:at]
    elif damage == "flip":
        raw = raw[:at] + bytes([raw[at] ^ data.draw(st.integers(1, 255))]) + raw[at + 1:]
    elif damage == "insert":
        raw = raw[:at] + data.draw(st.binary(min_size=1, max_size=8)) + raw[at:]
    check(parse_payload(raw, "fuzz"))
    check(parse_payload(raw.decode("utf-8", "replace"), "fuzz"))


JSON = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), children, max_size=5),
    max_leaves=25,
)


@FAST
@given(JSON)
def test_arbitrary_json_values(value):
    check(parse_payload(value, "fuzz"))
    check(parse_payload(json.dumps(value), "fuzz"))
    check(parse_config_message(value, "fuzz"))


@FAST
@given(st.binary(max_size=200) | st.text(max_size=200))
def test_arbitrary_bytes_and_text(value):
    check(parse_payload(value, "fuzz"))
    if isinstance(value, bytes):
        check(parse_payload(b"\x1f\x8b" + value, "fuzz"))
        check(parse_payload({"awslogs": {"data": value.hex()}}, "fuzz"))


@FAST
@given(JSON, JSON)
def test_resolve_principal_and_records_take_anything(identity, extra):
    principal = resolve_principal(identity, extra)
    assert isinstance(principal, Principal)
    assert_text_fields(principal)
    for parsed in (parse_record({"eventName": "X", "userIdentity": identity, "additionalEventData": extra},
                                "fuzz"),
                   parse_lookup_event({"EventId": "e", "CloudTrailEvent": identity, "Resources": extra}, "fuzz"),
                   parse_record(identity, "fuzz")):
        check([parsed])


# --------------------------------------------------------------------------------------------
# Every entry point, fed ≥10,000 mutated real payloads by a seeded mutator (fast: no hypothesis,
# no moto). Entry points run for real against in-memory queues, archive and state: SNS ingest,
# dispatch (Config notifications, oversized objects), the direct EventBridge / CloudWatch Logs
# handler, CloudTrail records, LookupEvents results and lookup-job decoding. No exception may
# escape any of them.


SHARED_FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures"
SEED = int(os.environ.get("MCD_FUZZ_SEED", "20240611"))
PAYLOADS = int(os.environ.get("MCD_FUZZ_PAYLOADS", "10000"))


def _real_samples() -> list[Any]:
    """Project samples, plus ../shared/fixtures when it is beside the clone."""
    found = list(SAMPLES) + list(TEXT_SAMPLES)
    if SHARED_FIXTURES.is_dir():
        for path in sorted(SHARED_FIXTURES.rglob("*.json")):
            try:
                found.append(json.loads(path.read_text()))
            except ValueError:
                found.append(path.read_text())
    return found


def _gzip_bomb(inflated: int, members: int = 1) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = b"A" * 2**20
    member = packer.compress(b'{"a": "') + b"".join(packer.compress(chunk) for _ in range(inflated // 2**20))
    member += packer.compress(b'"}') + packer.flush()
    return member * members


BOMB = _gzip_bomb(32 * 2**20)  # 32 KB that inflate to 32 MiB
MULTI_BOMB = _gzip_bomb(16 * 2**20, members=40)  # 640 MiB in concatenated members
BOMB_B64 = base64.b64encode(BOMB).decode()
HUGE = "x" * 300_000  # over SNS's 256 KB


class FakeQueue:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, str]]] = []
        self.pending: list[Message] = []
        self.deleted: list[Message] = []

    def send(self, body: Any, *, delay_seconds: float = 0, attributes: dict[str, str] | None = None) -> None:
        self.send_many([body], delay_seconds=delay_seconds, attributes=attributes)

    def send_many(self, bodies: list[Any], *, delay_seconds: float = 0,
                  attributes: dict[str, str] | None = None) -> None:
        for body in bodies:
            text = body if isinstance(body, str) else json.dumps(body)
            text.encode()  # what SQS would refuse, the fake refuses too
            self.sent.append((text, dict(attributes or {})))

    def receive(self, max_messages: int = 10, visibility_timeout: int | None = None) -> list[Message]:
        batch, self.pending = self.pending[:max_messages], self.pending[max_messages:]
        return batch

    def delete(self, messages: list[Message]) -> None:
        self.deleted.extend(messages)


class FakeArchive:
    bucket = "mcd-archive"

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], bytes] = {}

    def put(self, key: str, body: str | bytes, *, metadata: dict[str, str] | None = None) -> None:
        data = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
        self.objects[(self.bucket, key)] = data

    def get_text(self, key: str, bucket: str | None = None) -> str:
        from chalicelib.adapters.archive import read_object

        data = self.objects.get((bucket or self.bucket, key))
        if data is None:
            raise MalformedInput(f"no object {key}")
        return read_object(SimpleNamespace(get_object=lambda **_: {
            "Body": io.BytesIO(data), "ContentLength": len(data)}), bucket or self.bucket, key)


class FakeDeps:
    """Just enough of ``bootstrap.Deps`` for the stages, in memory."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.env = SimpleNamespace(home_region="us-east-1", slack_secret="", archive_bucket=FakeArchive.bucket)
        self.archive = FakeArchive()
        self.state = MemoryState()
        self.queues: dict[str, FakeQueue] = {}
        self._settings = settings or Settings()
        self.memory: dict[str, Any] = {}
        self.metrics = MemoryMetrics()

    def clock(self) -> float:
        return 1_717_500_000.0

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), tz=timezone.utc)

    def deadline(self, budget: float | None = None) -> float:
        return self.clock() + 1

    def queue(self, name: str) -> FakeQueue:
        return self.queues.setdefault(name, FakeQueue())

    def settings(self) -> Settings:
        return self._settings



class Mutator:
    """Seeded mutations of real payloads: the ways real input goes wrong, and the ways attackers try."""

    OPS = ("drop", "null", "swap", "stringify", "truncate", "flip", "nest", "unicode", "number", "dup")
    RARE = ("huge", "bomb")

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self._texts: dict[int, str] = {}

    def mutate(self, sample: Any) -> Any:
        if isinstance(sample, (dict, list)):  # a fresh copy, through JSON text kept per sample (fast)
            text = self._texts.get(id(sample))
            if text is None:
                text = self._texts[id(sample)] = json.dumps(sample)
            root = json.loads(text)
        else:
            root = sample
        for _ in range(self.rng.randint(1, 4)):
            root = self._once(root)
        return root

    def _walk(self, root: Any) -> tuple:
        """A random node: from the root, stop or step into a random child (cheap on large payloads)."""
        path: tuple = ()
        node = root
        while isinstance(node, (dict, list)) and node and self.rng.random() < 0.8:
            step = self.rng.choice(list(node) if isinstance(node, dict) else range(len(node)))
            path, node = (*path, step), node[step]
        return path

    def _once(self, root: Any) -> Any:
        rng = self.rng
        op = rng.choice(self.RARE) if rng.random() < 0.01 else rng.choice(self.OPS)
        path = self._walk(root)
        node = get(root, path)
        if op == "drop":
            if not path:
                return {}
            del get(root, path[:-1])[path[-1]]
            return root
        if op == "null":
            new: Any = None
        elif op == "swap":
            new = copy.deepcopy(rng.choice(SWAPS))
        elif op == "stringify":
            new = json.dumps(node)
        elif op in ("truncate", "flip"):
            text = node if isinstance(node, str) else json.dumps(node)
            cut = rng.randint(0, max(len(text) - 1, 0))
            if op == "truncate":
                new = text[:cut]
            else:
                new = text[:cut] + rng.choice(["\x00", "!", "{", "\"", "é", "A", "\\", "]"]) + text[cut + 1:]
        elif op == "nest":
            levels = rng.choice([2, 13, 60, 150, 50_000])
            if levels > 1000:  # as text: only a JSON parser could build it, and it must refuse
                new = "[" * levels + json.dumps(node) + "]" * levels
            else:
                new = node
                for _ in range(levels):
                    new = [new] if rng.random() < 0.5 else {"Message": new}
        elif op == "unicode":
            text = node if isinstance(node, str) else json.dumps(node)
            cut = rng.randint(0, len(text))
            new = text[:cut] + rng.choice(["\u202e", "\ud800", "\ufeff", "\u0000", "<!channel>", "`"]) + text[cut:]
        elif op == "number":
            new = rng.choice([2**70, -2**70, 1e308, -0.0, float("inf"), 10**400 if False else 1e-320, 0])
        elif op == "dup":
            new = [node, copy.deepcopy(node)] if rng.random() < 0.5 else {"Records": [node] * 3}
        elif op == "huge":
            new = HUGE
        else:  # bomb
            new = rng.choice([{"awslogs": {"data": BOMB_B64}}, BOMB_B64, {"kinesis": {"data": BOMB_B64}}])
        if not path:
            return new
        get(root, path[:-1])[path[-1]] = new
        return root


def _as_wire(rng: random.Random, payload: Any) -> Any:
    """The payload as an object, JSON text, UTF-8 bytes, or gzip bytes."""
    choice = rng.random()
    if choice < 0.6:
        return payload
    try:
        text = payload if isinstance(payload, str) else json.dumps(payload)
    except (ValueError, RecursionError):
        return payload
    if choice < 0.8:
        return text
    raw = text.encode("utf-8", "surrogatepass")
    return raw if choice < 0.9 else gzip.compress(raw, compresslevel=1)


def _sns_event(message: Any, rng: random.Random) -> dict[str, Any]:
    if not isinstance(message, str) and rng.random() < 0.8:
        try:
            message = json.dumps(message)
        except (ValueError, RecursionError):
            message = str(message)[:1000]
    return {"Records": [{"EventSource": "aws:sns", "Sns": {
        "Type": "Notification", "MessageId": f"m-{rng.randrange(10**9)}", "Message": message,
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:config-changes", "MessageAttributes": {}}}]}


def _is_config(sample: Any) -> bool:
    return isinstance(sample, dict) and (envelopes.is_config_notification(sample)
                                         or envelopes.is_configuration_item(sample))


def _entry_points(sample: Any, payload: Any, deps: FakeDeps, rng: random.Random) -> None:
    """Feed one mutated payload to the generic parser and to one entry point its original shape reaches.

    Raises on an escape (an exception, or an item that is not one of the four item types).
    """
    wire = _as_wire(rng, payload)
    items = parse_payload(wire, "fuzz")
    assert isinstance(items, list) and items and all(isinstance(i, ITEM_TYPES) for i in items)
    assert isinstance(parse_sns_event(payload), list)
    paths = [name for name, applies in _PATHS if applies(sample)]
    if paths:
        _RUN[rng.choice(paths)](payload, deps, rng, items)


def _direct(payload: Any, deps: FakeDeps, rng: random.Random, items: list[Any]) -> None:
    from chalicelib.stages import direct

    direct.direct(payload if isinstance(payload, dict) else {"awslogs": payload}, deps,
                  rng.choice(["eventbridge", "cloudwatch_logs"]))


def _config(payload: Any, deps: FakeDeps, rng: random.Random, items: list[Any]) -> None:
    assert all(isinstance(i, ITEM_TYPES) for i in parse_config_message(payload, "fuzz"))
    raw = (payload if isinstance(payload, str) else json.dumps(payload)).encode("utf-8", "surrogatepass")
    assert parse_config_object(gzip.compress(raw, compresslevel=1) if rng.random() < 0.5 else raw, "s3")


def _ingest_and_dispatch(payload: Any, deps: FakeDeps, rng: random.Random, items: list[Any]) -> None:
    from chalicelib.stages import ingest

    event = payload if envelopes.is_sns_lambda_event(payload) else _sns_event(payload, rng)
    ingest.ingest(event, deps)  # a record it cannot read is archived and dead-lettered, never raised
    _dispatch_everything(deps)


def _record(payload: Any, deps: FakeDeps, rng: random.Random, items: list[Any]) -> None:
    for record in payload.get("Records") if isinstance(payload, dict) and isinstance(payload.get("Records"), list) \
            else [payload]:
        assert isinstance(parse_record(record, "fuzz"), (TrailEvent, Unparseable))


def _lookup(payload: Any, deps: FakeDeps, rng: random.Random, items: list[Any]) -> None:
    events = payload.get("Events") if isinstance(payload, dict) else None
    for entry in events if isinstance(events, list) else [payload]:
        assert isinstance(parse_lookup_event(entry, "fuzz"), (TrailEvent, Unparseable, Ignored))


def _lookup_job(payload: Any, deps: FakeDeps, rng: random.Random, items: list[Any]) -> None:
    from chalicelib.stages import lookup as lookup_stage

    job = _job_for(items) or _job_for(parse_payload(_valid_config(rng), "fuzz"))
    mutated = Mutator(rng.randrange(2**32)).mutate(job)
    try:
        body = json.dumps(mutated)
    except (ValueError, RecursionError):
        body = str(mutated)
    lookup_stage._read_job(Message(body=body, receipt="r", message_id="j", receive_count=1, attributes={}), deps)


def _valid_config(rng: random.Random) -> Any:
    return rng.choice([s for s in SAMPLES if _is_config(s)])


def _is_trail(sample: Any) -> bool:
    return isinstance(sample, dict) and ("eventName" in sample or any(
        isinstance(r, dict) and "eventName" in r for r in sample.get("Records") or [] if isinstance(r, dict)))


_PATHS = (
    ("direct", lambda s: isinstance(s, dict) and (envelopes.is_eventbridge(s) or envelopes.is_awslogs_event(s)
                                                  or envelopes.is_records_batch(s))),
    ("config", lambda s: _is_config(s) or isinstance(s, str)),
    ("ingest", lambda s: _is_config(s) or envelopes.is_sns_lambda_event(s) or envelopes.is_sns_envelope(s)),
    ("record", _is_trail),
    ("lookup", envelopes.is_lookup_response),
    ("job", lambda s: _is_config(s) or envelopes.is_sns_lambda_event(s)),
)
_RUN = {"direct": _direct, "config": _config, "ingest": _ingest_and_dispatch, "record": _record,
        "lookup": _lookup, "job": _lookup_job}


def _dispatch_everything(deps: FakeDeps) -> None:
    from chalicelib.stages import dispatch

    queue = deps.queue("dispatch_queue")
    queue.pending = [Message(body=text, receipt=str(n), message_id=f"d-{n}", receive_count=1, attributes=attrs)
                     for n, (text, attrs) in enumerate(queue.sent)]
    queue.sent = []
    dispatch.dispatch(deps)
    assert not queue.pending
    crashed = [attrs.get("mcd-reason", "") for _text, attrs in deps.queue("dispatch_dlq").sent
               if attrs.get("mcd-reason", "").startswith("dispatch failed")]
    assert not crashed, crashed  # unreadable parts are dead-lettered by the parsers' reasons, not by a crash


def _job_for(items: list[Any]) -> dict[str, Any] | None:
    from chalicelib.core.jobs import LookupJob, change_key

    for item in items:
        if isinstance(item, ConfigChange) and item.capture_time is not None:
            try:
                return LookupJob(change=item, change_key=change_key(item), arrived_at=item.capture_time).to_json()
            except (ValueError, RecursionError):
                return None
    return None


def _fuzz(count: int, seed: int, entry: Any) -> tuple[int, list[str]]:
    samples = _real_samples()
    rng = random.Random(seed)
    mutator = Mutator(seed)
    escaped: list[str] = []
    for n in range(count):
        sample = samples[n % len(samples)]
        payload = mutator.mutate(sample)
        try:
            entry(sample, payload, FakeDeps(), rng)
        except Exception as error:  # what the test is looking for
            escaped.append(f"#{n} sample {n % len(samples)}: {type(error).__name__}: {str(error)[:200]}")
    return count, escaped


def test_lookup_job_decoding_never_raises_on_damaged_jobs() -> None:
    from chalicelib.stages import lookup as lookup_stage

    rng = random.Random(SEED)
    escaped = []
    job = {"v": 1, "change": {"resource_id": "sg-1", "capture_time": "2024-01-01T00:00:00Z"}, "change_key": "k",
           "arrived_at": "2024-01-01T00:00:00Z"}
    for n in range(500):
        mutated = Mutator(rng.randrange(2**32)).mutate(job)
        try:
            lookup_stage._read_job(Message(json.dumps(mutated), "r", "j", 1, {}), FakeDeps())
        except Exception as error:
            escaped.append(f"#{n}: {type(error).__name__}: {error}")
    assert escaped == []


def test_ten_thousand_mutated_real_payloads_through_every_entry_point(monkeypatch: pytest.MonkeyPatch) -> None:

    # Each bomb costs the real 16 MiB of inflating before it is refused (tested below): 1 MiB keeps this fast.
    monkeypatch.setattr(envelopes, "MAX_INFLATED_BYTES", 2**20)

    started = time.perf_counter()
    logging.disable(logging.CRITICAL)  # thousands of "unparseable" warnings are expected, and slow to capture
    try:
        count, escaped = _fuzz(PAYLOADS, SEED, _entry_points)
    finally:
        logging.disable(logging.NOTSET)
    elapsed = time.perf_counter() - started
    assert count >= 10_000 or PAYLOADS < 10_000
    assert escaped == [], "\n".join(escaped[:20])
    assert elapsed < 60, f"{count} payloads took {elapsed:.1f} s"


@pytest.mark.parametrize("bomb", [BOMB, MULTI_BOMB], ids=["single-member", "concatenated-members"])
def test_gzip_bombs_are_refused_wherever_they_arrive(bomb: bytes) -> None:
    encoded = base64.b64encode(bomb).decode()
    for payload in (bomb, {"awslogs": {"data": encoded}}, {"Records": [{"kinesis": {"data": encoded}}]}, encoded):
        items = parse_payload(payload, "bomb")
        assert len(items) == 1 and isinstance(items[0], Unparseable), items
        assert "inflates beyond" in items[0].reason
    (item,) = parse_config_object(bomb, "s3")
    assert isinstance(item, Unparseable) and "inflates beyond" in item.reason
