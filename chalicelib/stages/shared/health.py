"""Signs of life for the dead-man's switch: deliveries received and schedule runs completed.

``app.py`` calls ``alive`` after each handler's stage returns. A container writes one heartbeat per
signal at most every ``HEARTBEAT_EVERY_SECONDS`` (it remembers the last one in ``deps.memory``), so a
busy detector pays a few writes an hour, not one per invocation. A run that raised writes nothing: the
heartbeat says the run *completed*.
"""

from __future__ import annotations

from typing import TypeVar

from chalicelib.core.timeutil import iso
from chalicelib.ports import StageDeps
from chalicelib.stages.shared.state_keys import HEARTBEAT, health_marker

HEARTBEAT_EVERY_SECONDS = 300
HEALTH_TTL_DAYS = 60

Result = TypeVar("Result")


def alive(deps: StageDeps, signal: str, result: Result) -> Result:
    """Record that ``signal`` (``config``, ``cloudtrail`` or a schedule's name) was alive now; return ``result``."""
    now = deps.clock()
    remembered = deps.memory.setdefault("heartbeats", {})
    last = remembered.get(signal)
    if last is None or now - last >= HEARTBEAT_EVERY_SECONDS or now < last:
        deps.state.put(health_marker(signal), HEARTBEAT, now, ttl_days=HEALTH_TTL_DAYS, at=f"{now:.3f}",
                       when=iso(deps.now()) or "")
        remembered[signal] = now
    return result
