"""Emitting an outcome: log it once, queue alerts for Slack, remember it so redeliveries stay silent."""

from __future__ import annotations

import json
import logging
from typing import Any

from chalicelib.core.jobs import trim_property
from chalicelib.core.logs import log_json, log_outcome
from chalicelib.core.metrics import DEAD_LETTERS, OUTCOMES, SUPPRESSIONS
from chalicelib.core.outcomes import DEAD_LETTER, SUPPRESSED, Outcome
from chalicelib.ports import StageDeps
from chalicelib.stages.shared.queues import SLACK_QUEUE
from chalicelib.stages.shared.state_keys import OPERATIONAL, outcome_marker

log = logging.getLogger("mcd.emit")


def emit(deps: StageDeps, outcome: Outcome, *, revision: int = 0) -> bool:
    """Log and queue ``outcome`` unless it was emitted before; ``True`` when it was new.

    The marker is written after the alert is queued: a crash in between re-emits on redelivery, and
    the Slack sender's own marker keeps the post single.
    """
    sk = "outcome" if revision == 0 else f"outcome#r{revision}"
    if deps.state.get(outcome_marker(outcome.outcome_id), sk) is not None:
        log_json(log, logging.INFO, "duplicate_outcome_skipped", outcome_id=outcome.outcome_id)
        return False
    data = outcome.to_json()
    data["revision"] = revision
    log_outcome(data)
    if revision == 0:
        _count(deps, outcome)
    if outcome.is_alert:
        deps.queue(SLACK_QUEUE).send(json.dumps({"outcome": _fit(data)}, default=str))
    deps.state.put(outcome_marker(outcome.outcome_id), sk, deps.clock(), kind=outcome.kind)
    return True


OPERATIONAL_LOGGER = "mcd.operational"


def emit_operational(deps: StageDeps, alert: Outcome) -> bool:
    """Queue an operational alert (``dead_letter``) for Slack once per ``outcome_id``; ``True`` when new.

    It is not an outcome of the detector's findings: it is logged on ``mcd.operational``, never on the
    outcome logger that the replay's ``outcomes.jsonl`` and dashboards read.
    """
    if deps.state.get(outcome_marker(alert.outcome_id), OPERATIONAL) is not None:
        log_json(log, logging.INFO, "duplicate_operational_alert_skipped", outcome_id=alert.outcome_id)
        return False
    data = alert.to_json()
    log_json(logging.getLogger(OPERATIONAL_LOGGER), logging.ERROR, "operational_alert", alert=data)
    if alert.kind == DEAD_LETTER:
        deps.metrics.record(DEAD_LETTERS, 1, Queue=str(alert.extra.get("queue") or "unknown"))
    deps.queue(SLACK_QUEUE).send(json.dumps({"outcome": _fit(data)}, default=str))
    deps.state.put(outcome_marker(alert.outcome_id), OPERATIONAL, deps.clock(), kind=alert.kind)
    return True


def _count(deps: StageDeps, outcome: Outcome) -> None:
    """The ``Outcomes`` metric by kind, and ``Suppressions`` by the pattern (or reason) that silenced it."""
    deps.metrics.record(OUTCOMES, 1, Kind=str(outcome.kind))
    if outcome.kind == SUPPRESSED:
        by = outcome.extra.get("trusted_by") or outcome.reason or "unknown"
        deps.metrics.record(SUPPRESSIONS, 1, Pattern=str(by))


SQS_BUDGET = 200_000


def _fit(data: dict[str, Any]) -> dict[str, Any]:
    """Keep an alert under SQS's 256 KB: large request parameters and diff values give way first."""
    if len(json.dumps(data, default=str)) <= SQS_BUDGET:
        return data
    events = [{**e, "request_parameters": {"omitted": "too large; see CloudTrail"}} for e in data.get("events", [])]
    slim = {**data, "events": events}
    if len(json.dumps(slim, default=str)) <= SQS_BUDGET:
        return slim
    props = [trim_property(p) for p in data.get("changed_properties", [])[:200]]
    return {**slim, "changed_properties": props}
