"""The recent-calls index on the state table (``core.stream``): the direct stage writes, the lookup stage reads.

``remember`` keeps what the live CloudTrail stream delivered: every successful write under each identifier
it names, and a sign that the stream flows for its account and region. ``recall`` gives a Config item the
streamed calls that name it, and whether the stream is complete evidence for it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from chalicelib.core import stream
from chalicelib.core.logs import log_json
from chalicelib.core.model import TrailEvent
from chalicelib.parsing.cloudtrail import parse_record
from chalicelib.ports import StageDeps

log = logging.getLogger("mcd.recent_calls")

TTL_SECONDS = int(stream.INDEX_TTL.total_seconds())
FLOWS_SEEN = "recent_calls.flows"  # deps.memory: the flow rows this container already wrote
MAX_FLOWS_REMEMBERED = 4096
MAX_ROWS_PER_KEY = 500
"""Calls read per identifier in an item's window; a resource flooded beyond it is left to LookupEvents."""


def remember(deps: StageDeps, events: Iterable[TrailEvent]) -> int:
    """Index the streamed ``events``; the number of rows written. Idempotent: rows are keyed by call.

    The calls' rows are written before the flow rows, so a lookup never sees the stream flowing past a call
    whose rows are not there yet; a record that cannot be indexed is logged and left out, not its neighbours.
    """
    seen: set[str] = deps.memory.setdefault(FLOWS_SEEN, set())
    rows: list[tuple[str, str, dict[str, str]]] = []
    flows: dict[str, tuple[str, str, dict[str, str]]] = {}
    for event in events:
        try:
            rows += [(row.pk, row.sk, row.attrs) for row in stream.call_rows(event)]
            flow = stream.flow_row(event)
        except Exception as error:  # one odd record never keeps the others out of the index
            log_json(log, logging.WARNING, "recent_call_unindexable", event_id=str(event.event_id)[:128],
                     error=f"{type(error).__name__}: {str(error)[:200]}")
            continue
        if flow is not None and f"{flow.pk}|{flow.sk}" not in seen:
            flows[f"{flow.pk}|{flow.sk}"] = (flow.pk, flow.sk, {})
    if len(seen) > MAX_FLOWS_REMEMBERED:
        seen.clear()
    rows += flows.values()
    if rows:
        deps.state.put_many(rows, deps.clock(), TTL_SECONDS)
        seen.update(flows)  # once written: a retry after a failed write writes them again
    return len(rows)


@dataclass(frozen=True)
class Recalled:
    """The streamed calls that name an item, the identifiers each was kept under, and whether they are all."""

    events: tuple[TrailEvent, ...]
    keys: dict[str, frozenset[str]]
    complete: bool
    flowing: bool = False  # the stream delivered records of the account and region before the capture
    disputed: frozenset[str] = frozenset()  # eventIDs two different records claim: only the history may decide


def recall(deps: StageDeps, account: str, region: str, names: Iterable[str], window: tuple[datetime, datetime],
           capture: datetime) -> Recalled:
    """The calls the stream delivered in ``window`` that name any of ``names`` (an item's identifiers)."""
    now = deps.now()
    low, high = stream.window_keys(*window)
    events: dict[str, TrailEvent] = {}
    keys: dict[str, frozenset[str]] = {}
    copies: dict[str, set[str]] = {}  # eventID -> the records kept for it
    flooded = False
    # Nothing streamed from this account and region in the window: no call can be in the index (one query,
    # not one per identifier, where the stream is not deployed).
    streamed_in_window = _delivered(deps, account, region, window[0], window[1])
    for name in (*dict.fromkeys(names), stream.OVERFLOW) if streamed_in_window else ():
        rows = deps.state.between(stream.call_partition(account, region, name), low, high, limit=MAX_ROWS_PER_KEY)
        flooded = flooded or len(rows) >= MAX_ROWS_PER_KEY or any(row.get("truncated") for row in rows)
        for row in rows:
            event = _event(row)
            if event is not None and event.event_id:
                events.setdefault(event.event_id, event)
                keys[event.event_id] = keys.get(event.event_id, frozenset()) | _keys(row)
                copies.setdefault(event.event_id, set()).add(str(row.get("record")))
    wanted = set(names)
    disputed = {event_id for event_id, records in copies.items() if len(records) > 1 and keys[event_id] & wanted}
    if disputed:  # two records claim one call that names the item: neither decides anything; the history will
        log_json(log, logging.WARNING, "recent_call_disputed", account=account, region=region,
                 event_ids=sorted(disputed)[:5])
        events = {event_id: event for event_id, event in events.items() if event_id not in disputed}
    flow = stream.Flow(before=_delivered(deps, account, region, capture - stream.FLOWING_WITHIN, capture),
                       after=_delivered(deps, account, region, capture, now, after=True))
    usable = not flooded and not disputed and stream.within_index(window[0], now)
    complete = usable and stream.stream_complete(capture, now, flow)
    return Recalled(tuple(events.values()), keys, complete, flowing=usable and flow.before,
                    disputed=frozenset(disputed))


def _delivered(deps: StageDeps, account: str, region: str, start: datetime, end: datetime, *,
               after: bool = False) -> bool:
    low = stream.time_key(start) + ("~" if after else "")  # after: strictly later than the capture's second
    return bool(deps.state.between(stream.flow_partition(account, region), low, stream.time_key(end) + "~", limit=1))


def _event(row: dict[str, str]) -> TrailEvent | None:
    try:
        parsed = parse_record(json.loads(row.get("record") or "null"), "stream")
    except ValueError as error:
        log_json(log, logging.WARNING, "recent_call_unreadable", pk=row.get("pk", "")[:200], error=str(error)[:200])
        return None
    return parsed if isinstance(parsed, TrailEvent) else None


def _keys(row: dict[str, str]) -> frozenset[str]:
    try:
        found = json.loads(row.get("keys") or "[]")
    except ValueError:
        return frozenset()
    return frozenset(str(k) for k in found) if isinstance(found, list) else frozenset()
