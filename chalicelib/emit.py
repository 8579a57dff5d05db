"""Emitting an outcome: log it once, queue alerts for Slack, remember it so redeliveries stay silent."""

from __future__ import annotations

import logging

from chalicelib.bootstrap import Deps
from chalicelib.logs import log_json, log_outcome
from chalicelib.outcomes import Outcome

log = logging.getLogger("mcd.emit")


def already_emitted(deps: Deps, outcome_id: str) -> bool:
    return deps.state.get(f"out#{outcome_id}", "outcome") is not None


def emit(deps: Deps, outcome: Outcome, *, revision: int = 0) -> bool:
    """Log and queue ``outcome`` unless it was emitted before; ``True`` when it was new.

    The marker is written after the alert is queued: a crash in between re-emits on redelivery, and
    the Slack sender's own marker keeps the post single.
    """
    sk = "outcome" if revision == 0 else f"outcome#r{revision}"
    if deps.state.get(f"out#{outcome.outcome_id}", sk) is not None:
        log_json(log, logging.INFO, "duplicate_outcome_skipped", outcome_id=outcome.outcome_id)
        return False
    data = outcome.to_json()
    data["revision"] = revision
    log_outcome(data)
    if outcome.is_alert:
        deps.queue("slack_queue").send({"outcome": data})
    deps.state.put(f"out#{outcome.outcome_id}", sk, deps.clock(), kind=outcome.kind)
    return True
