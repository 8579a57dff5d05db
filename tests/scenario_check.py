"""Compare replay outcomes with a scenario's ``expect``, with the meaning FORMAT.md gives the keys.

``check_expectations`` is the one check both scenario tiers apply: ``tests/stages/test_scenarios_in_memory.py``
(every scenario, on the fakes) and ``tests/e2e/test_scenarios.py`` (the public ones and a sample of ours,
through the real handlers on moto).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from chalicelib.slack.render import check_limits

TESTS = Path(__file__).resolve().parent
OWN = sorted((TESTS / "scenarios").glob("*.json"))
PUBLIC_DIR = TESTS.parents[1] / "shared" / "scenarios"
PUBLIC = sorted(PUBLIC_DIR.glob("*.json")) if PUBLIC_DIR.is_dir() else []
# Public scenarios of capabilities whose issues are still open: run, reported, not yet required.
NOT_YET: dict[str, str] = {}


def scenario_param(path: Path) -> Any:
    """``path`` as a test parameter; a scenario of an open issue is expected to fail (not strictly)."""
    reason = NOT_YET.get(path.stem)
    return pytest.param(path, marks=pytest.mark.xfail(reason=reason, strict=False)) if reason else path


@dataclass(frozen=True)
class SlackMessage:
    """One accepted Slack call, as either replay saw it: its payload, and whether it edited a message."""

    payload: dict[str, Any]
    edit: bool

    @property
    def fresh(self) -> bool:
        """A new message: not an edit (``chat.update``) and not a quiet thread reply."""
        return not self.edit and (not self.payload.get("thread_ts")
                                  or self.payload.get("reply_broadcast") in (True, "true"))


def check_expectations(expect: dict[str, Any], outcomes: list[dict[str, Any]], slack: list[SlackMessage],
                       throttled: int | None) -> None:
    """Assert a replay met ``expect``: exactly the outcomes, the Slack budget, alerts only, paced lookups.

    ``throttled`` is ``None`` where nothing paces or throttles (the fakes: pacing is the real
    ``LookupClient``'s, checked in the moto tier and ``tests/adapters/test_cloudtrail.py``).
    """
    assert differences(expect["outcomes"], outcomes) == []
    limit = expect.get("max_slack_messages")
    if limit is not None:
        assert len(slack) <= limit
    minimum = expect.get("min_slack_messages")
    if minimum is not None:
        assert sum(message.fresh for message in slack) >= minimum
    alerts = [o for o in expect["outcomes"] if o["kind"] != "suppressed"]
    assert bool(slack) == bool(alerts), "alerts must reach Slack, and only alerts"
    for message in slack:
        assert check_limits(message.payload) == []
    if throttled is not None:
        assert throttled == 0, "the detector must pace LookupEvents to 2 calls per second"

KEYS = {
    "manual_change": ("resource_type", "resource_id", "principal_arn"),
    "suppressed": ("resource_type", "resource_id", "principal_arn", "reason"),
    "unattributed_change": ("resource_type", "resource_id"),
    "console_signin": ("principal_arn", "signin"),
    "api_call": ("principal_arn", "event_name"),
}


def key(outcome: dict[str, Any]) -> tuple[Any, ...]:
    kind = outcome.get("kind")
    values = [outcome.get(f) for f in KEYS.get(kind, ())]
    if values and KEYS[kind][0] == "resource_type" and isinstance(values[0], str):
        values[0] = values[0].lower()
    return (kind, *values)


def differences(expected: list[dict[str, Any]], actual: list[dict[str, Any]]) -> list[str]:
    """Human-readable mismatches; empty when the outcomes are exactly those expected."""
    remaining = list(actual)
    problems = []
    for want in expected:
        hit = next((a for a in remaining if key(a) == key(want)
                    and set(want.get("event_ids") or []) <= set(a.get("event_ids") or [])), None)
        if hit is None:
            problems.append(f"missing {key(want)} events={want.get('event_ids')}")
        else:
            remaining.remove(hit)
    problems.extend(f"unexpected {key(a)} events={a.get('event_ids')}" for a in remaining)
    return problems
