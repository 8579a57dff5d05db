"""Keys of the state table (``pk``, ``sk``): one builder per kind of marker, so every stage agrees.

See ``docs/architecture.md`` (State) for what each marker stands for.
"""

from __future__ import annotations

from chalicelib.core.model import ConfigChange

DISPATCHED = "dispatched"
POSTED = "posted"
LAST = "last"
OPERATIONAL = "operational"
STARTED = "started"


def item_marker(change_key: str) -> str:
    """``pk`` of an item already queued for attribution (sk ``dispatched``)."""
    return f"ci#{change_key}"


def capture_history(change: ConfigChange) -> str:
    """``pk`` of a resource's capture history (sk ``cap#<capture time>``)."""
    return f"res#{change.account}#{(change.resource_type or '').lower()}#{change.resource_id}"


CAPTURE_PREFIX = "cap#"


def outcome_marker(outcome_id: str) -> str:
    """``pk`` of an emitted outcome (sk ``outcome``, ``outcome#rN`` or ``operational``)."""
    return f"out#{outcome_id}"


def post_marker(destination: str, outcome_id: str) -> str:
    """``pk`` of an alert posted to a destination (sk ``posted``)."""
    return f"post#{destination}#{outcome_id}"


def burst_marker(destination: str, principal_key: str) -> str:
    """``pk`` of a principal's latest message to a destination (sk ``last``)."""
    return f"burst#{destination}#{principal_key}"


def run_marker(stage: str, message_id: str) -> str:
    """``pk`` of a message a run started on (sk ``started``): a second start means a run died on it."""
    return f"run#{stage}#{message_id}"


HEARTBEAT = "heartbeat"
OUTAGE = "outage"
FIRST_RUN = "first_run"


def health_marker(signal: str) -> str:
    """``pk`` of a sign of life: a delivery received or a schedule's run completed (sk ``heartbeat``), or the
    watchdog's first run (``watchdog``, sk ``first_run``)."""
    return f"health#{signal}"


def outage_marker(key: str) -> str:
    """``pk`` of a dead-man's-switch outage (sk ``outage``; ``state`` open or closed, ``since``)."""
    return f"health#outage#{key}"
