"""A resource's capture history: the previous item of a resource bounds the CloudTrail window of the next.

Dispatch records each item's capture time; the lookup stage asks for the one recorded just before.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from chalicelib.core.model import ConfigChange
from chalicelib.core.timeutil import iso, parse_time
from chalicelib.stages.shared.state_keys import CAPTURE_PREFIX, capture_history

if TYPE_CHECKING:
    from chalicelib.ports import StageDeps

HISTORY_TTL_DAYS = 3


def record_capture(deps: StageDeps, change: ConfigChange) -> None:
    assert change.capture_time is not None
    deps.state.put(capture_history(change), f"{CAPTURE_PREFIX}{iso(change.capture_time)}", deps.clock(),
                   ttl_days=HISTORY_TTL_DAYS)


def previous_capture(deps: StageDeps, change: ConfigChange) -> datetime | None:
    """The capture time of the item of the same resource recorded just before this one, if seen."""
    assert change.capture_time is not None
    found = deps.state.latest_before(capture_history(change), CAPTURE_PREFIX,
                                     f"{CAPTURE_PREFIX}{iso(change.capture_time)}")
    return parse_time(found[len(CAPTURE_PREFIX):]) if found else None
