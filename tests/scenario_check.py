"""Compare replay outcomes with a scenario's ``expect``, with the meaning FORMAT.md gives the keys."""

from __future__ import annotations

from typing import Any

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
