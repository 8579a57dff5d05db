"""The timing tables in docs/ say what the code does: each row is checked against the constant it describes.

A changed constant fails here until the sentence people read is changed with it.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from chalicelib.adapters import cloudtrail
from chalicelib.bootstrap import DEFAULT_SETTINGS_FILE
from chalicelib.core import attribution, settings
from chalicelib.stages import dead_letters, deliver, dispatch, lookup

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


def _row(document: str, first_cell: str) -> str:
    """The markdown table row of ``document`` whose first cell is ``first_cell``."""
    for line in (DOCS / document).read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] == first_cell:
            return line
    raise AssertionError(f"docs/{document} has no table row {first_cell!r}")


def _minutes(delta: timedelta) -> int:
    assert delta.total_seconds() % 60 == 0
    return int(delta.total_seconds() // 60)


def _retry_schedule() -> str:
    steps = lookup.RETRY_STEPS
    (first_until, first_every), (second_until, second_every), (_, last_every) = steps
    assert first_every == timedelta(minutes=1), "the sentence below says 'every minute'"
    return (f"every minute for {_minutes(first_until)} minutes after arrival, every {_minutes(second_every)} "
            f"minutes until {_minutes(second_until)}, then every {_minutes(last_every)}")


def _redrive_delays() -> str:
    delays = [60 * 2**n // 60 for n in range(dead_letters.MAX_REDRIVES)]
    return ", ".join(str(d) for d in delays[:-1]) + f", {delays[-1]} minutes ({dead_letters.MAX_REDRIVES} times)"


def _slack_backoff() -> str:
    first = int(deliver.BACKOFF_FIRST_SECONDS)
    return f"re-queued after {first} s, {first * 2} s, {first * 4} s"


ARCHITECTURE_TIMINGS = {
    "first lookup": lambda: f"{int(dispatch.FIRST_LOOKUP_AFTER_CAPTURE.total_seconds())} seconds after the item's "
                            "capture time",
    "not yet visible": _retry_schedule,
    "give up": lambda: f"`give_up_minutes` ({settings.Settings().give_up_minutes})",
    "reading a flooded resource": lambda: f"at most {lookup.PAGES_PER_JOB_PER_RUN} pages of one item per run",
    "follow-ups after an alert": lambda: (
        f"at least {_minutes(lookup.FOLLOWUP_DELAYS[0])}, then {_minutes(lookup.FOLLOWUP_DELAYS[1])} more minutes "
        f"later, on a shared {_minutes(lookup.FOLLOWUP_GRID)}-minute grid"),
    "watching a suppression": lambda: (
        f"read again to the end {_minutes(lookup.WATCH_CHECKS[0])} minutes after capture and at the give-up time"),
    "re-queued jobs": lambda: f"become visible {int(lookup.EARLY.total_seconds())} s before they are due",
    "Slack gathering": lambda: f"waits one tick ({deliver.GATHER_SECONDS} s)",
    "LookupEvents throttled": lambda: ", ".join(f"{b:g} s" for b in cloudtrail.BACKOFF) + " back-off",
    "Slack 429": lambda: f"at most {int(deliver.BACKOFF_MAX_SECONDS // 60)} minutes at a time",
    "Slack unavailable (5xx, timeout, refused connection, unreadable secret)": lambda: (
        f"{_slack_backoff()} … (capped at {int(deliver.BACKOFF_MAX_SECONDS // 60)} minutes), no try limit, for up "
        f"to {deliver.RETRY_FOR_SECONDS // 86_400} days"),
    "Slack permanent error (or a URL that is not Slack's; an unknown error answer after 8 tries)": lambda: (
        f"after {deliver.MAX_ATTEMPTS} tries"),
    "dead-letter queues": lambda: f"redriven to their source queue after {_redrive_delays()}",
}


@pytest.mark.parametrize("what", sorted(ARCHITECTURE_TIMINGS))
def test_architecture_retry_timings_match_the_code(what: str) -> None:
    row = _row("architecture.md", what)
    expected = ARCHITECTURE_TIMINGS[what]()
    assert expected in row, f"docs/architecture.md row {what!r} should say {expected!r}:\n{row}"


def test_configuration_defaults_match_the_settings() -> None:
    defaults = settings.Settings()
    shipped = json.loads(DEFAULT_SETTINGS_FILE.read_text())
    for key in ("lookback_minutes", "give_up_minutes", "burst_window_seconds"):
        value = shipped.get(key, getattr(defaults, key))
        assert _row("configuration.md", f"`{key}`").split("|")[2].strip().startswith(str(value)), key


def test_pacing_and_skew_named_in_the_architecture_match_the_code() -> None:
    text = (DOCS / "architecture.md").read_text()
    assert f"paced to {round(1 / cloudtrail.MIN_INTERVAL)} per" in text
    assert f"(+{int(attribution.CAPTURE_TOLERANCE.total_seconds())} s for clock skew)" in text
