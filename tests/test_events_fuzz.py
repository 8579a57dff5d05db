"""Property tests: parse_payload never raises and always returns well-typed items.

Valid samples (tests/events) are mutated the way real input goes wrong: keys dropped, values
nulled, types swapped, JSON text and base64 truncated or corrupted, compressed bytes damaged.
Beyond "no exception", no item may come from the last-resort guard: the parsers must be robust by
construction, not by the catch-all.
"""

from __future__ import annotations

import copy
import dataclasses
import gzip
import json
import os
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.cloudtrail_records import parse_lookup_event, parse_record, resolve_principal
from chalicelib.config_notifications import parse_config_message
from chalicelib.events import parse_payload
from chalicelib.model import ConfigChange, Ignored, Principal, TrailEvent, Unparseable

EVENTS = Path(__file__).resolve().parent / "events"
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
