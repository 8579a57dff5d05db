"""The dead-man's switch (``watchdog``, every 5 minutes): tell people when the detector itself is hurt.

Reads the signs of life ``stages.shared.health`` records, asks ``core.watchdog`` which outages are going
on, and posts one operational alert when an outage starts and one when it ends. Each outage has a record
(``state_keys.outage_marker``); the alert's id derives from the outage's key and start, so a retried run
never posts twice. A sign of life is read only if it is a finite time not in the future: a heartbeat
that cannot be read counts as no heartbeat (an outage is reported rather than hidden).
"""

from __future__ import annotations

import logging
import math
from datetime import datetime, timezone

from chalicelib.core.logs import log_json
from chalicelib.core.outcomes import DETECTOR_HEALTH, Outcome
from chalicelib.core.partitions import partition_of_region
from chalicelib.core.timeutil import iso
from chalicelib.core.watchdog import DELIVERIES, SCHEDULES, duration_text, outage_keys, troubles
from chalicelib.ports import StageDeps
from chalicelib.stages.shared.emit import emit_operational
from chalicelib.stages.shared.state_keys import FIRST_RUN, HEARTBEAT, OUTAGE, health_marker, outage_marker

log = logging.getLogger("mcd.watchdog")

OUTAGE_TTL_DAYS = 60
MAX_CLOCK_SKEW_SECONDS = 300
OPEN, CLOSED = "open", "closed"


def watchdog(deps: StageDeps) -> dict[str, int]:
    """Open, keep or close each outage; ``{"opened", "ongoing", "recovered"}`` counts."""
    now = deps.clock()
    silence = deps.settings().silence_alert_hours * 3600
    last_seen = {name: _heartbeat(deps, name, now) for name in (*DELIVERIES, *SCHEDULES)}
    current = {t.key: t for t in troubles(now, last_seen, _first_run(deps, now), silence)}
    counts = {"opened": 0, "ongoing": 0, "recovered": 0}
    for key in outage_keys():
        record = deps.state.get(outage_marker(key), OUTAGE) or {}
        trouble = current.get(key)
        if trouble is not None and record.get("state") != OPEN:
            emit_operational(deps, _alert(deps, key, trouble.since, trouble.summary, OPEN))
            deps.state.put(outage_marker(key), OUTAGE, now, ttl_days=OUTAGE_TTL_DAYS, state=OPEN,
                           since=f"{trouble.since:.3f}", summary=trouble.summary[:500])
            counts["opened"] += 1
        elif trouble is not None:
            counts["ongoing"] += 1
        elif record.get("state") == OPEN:
            _recover(deps, key, record, now)
            counts["recovered"] += 1
    log_json(log, logging.INFO, "watchdog_run", **counts)
    return counts


def _recover(deps: StageDeps, key: str, record: dict[str, str], now: float) -> None:
    since = _seconds(record.get("since"), now) or now
    summary = f"recovered: {record.get('summary') or key} (for {duration_text(now - since)})"
    emit_operational(deps, _alert(deps, key, since, summary, CLOSED))
    deps.state.put(outage_marker(key), OUTAGE, now, ttl_days=OUTAGE_TTL_DAYS, state=CLOSED,
                   since=f"{since:.3f}", summary=record.get("summary", "")[:500])


def _alert(deps: StageDeps, key: str, since: float, summary: str, state: str) -> Outcome:
    suffix = ":recovered" if state == CLOSED else ""
    return Outcome(
        kind=DETECTOR_HEALTH,
        outcome_id=f"health:{key}:{int(since)}{suffix}",
        at=iso(deps.now()) or "",
        region=deps.env.home_region,
        reason=summary,
        partition=partition_of_region(deps.env.home_region),
        extra={"outage": key, "state": state, "since": iso(datetime.fromtimestamp(since, tz=timezone.utc))},
    )


def _first_run(deps: StageDeps, now: float) -> float:
    """When the watchdog first ran here: the last sign of life of anything never seen since."""
    record = deps.state.get(health_marker("watchdog"), FIRST_RUN) or {}
    first = _seconds(record.get("at"), now)
    if first is None:
        deps.state.put(health_marker("watchdog"), FIRST_RUN, now, ttl_days=OUTAGE_TTL_DAYS * 6, at=f"{now:.3f}")
        return now
    return first


def _heartbeat(deps: StageDeps, signal: str, now: float) -> float | None:
    record = deps.state.get(health_marker(signal), HEARTBEAT) or {}
    return _seconds(record.get("at"), now)


def _seconds(value: object, now: float) -> float | None:
    try:
        moment = float(str(value))
    except ValueError:
        return None
    return moment if math.isfinite(moment) and moment <= now + MAX_CLOCK_SKEW_SECONDS else None
