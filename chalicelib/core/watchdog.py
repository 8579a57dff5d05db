"""The dead-man's switch: what silence means the detector is hurt (pure, stdlib only).

Two kinds of trouble, each an outage with a key, alerted once when it starts and once when it ends:

* ``silence``: neither an AWS Config notification nor a CloudTrail delivery (EventBridge or CloudWatch
  Logs) arrived for ``silence_seconds`` (``settings.silence_alert_hours``, default 24 h). One alert for
  the whole detector going deaf, not one per source: a quiet source alone is normal in a quiet
  account, and the calls that switch a source off alert by themselves (tamper protection).
* ``stalled:<schedule>``: a scheduled function (dispatch, lookup, slack_send, dl_retry) has not
  completed a run for ``STALL_SECONDS``. Until a schedule or delivery was ever seen, the time the
  watchdog first ran counts as its last sign of life.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

DELIVERIES = ("config", "cloudtrail")
SCHEDULES = ("dispatch", "lookup", "slack_send", "dl_retry")
STALL_SECONDS = 15 * 60
DEFAULT_SILENCE_HOURS = 24
SILENCE = "silence"


@dataclass(frozen=True)
class Trouble:
    """One ongoing outage: ``key`` names it across runs; ``since`` is the last sign of life (epoch seconds)."""

    key: str
    since: float
    summary: str


def outage_keys() -> tuple[str, ...]:
    """Every outage the watchdog can open: it checks each one's record, no table scan."""
    return (SILENCE, *(f"stalled:{name}" for name in SCHEDULES))


def troubles(now: float, last_seen: Mapping[str, float | None], first_run: float,
             silence_seconds: float) -> list[Trouble]:
    """The outages going on at ``now``, given each signal's last sign of life."""
    found: list[Trouble] = []
    heard = max((last_seen.get(name) or first_run for name in DELIVERIES), default=first_run)
    if now - heard > silence_seconds:
        found.append(Trouble(SILENCE, heard, f"no AWS Config notification and no CloudTrail delivery for "
                                             f"{duration_text(now - heard)}"))
    for name in SCHEDULES:
        last = last_seen.get(name) or first_run
        if now - last > STALL_SECONDS:
            found.append(Trouble(f"stalled:{name}", last, f"the {name} schedule has not completed a run "
                                                          f"for {duration_text(now - last)}"))
    return found


def duration_text(seconds: float) -> str:
    """``47 minutes``, ``5 hours`` or ``3 days``: how long an outage lasted, for people."""
    minutes = max(int(seconds // 60), 0)
    if minutes < 120:
        return f"{minutes} minutes"
    hours = minutes // 60
    return f"{hours} hours" if hours < 72 else f"{hours // 24} days"
