"""Compare the AWS calls the app's code made during the suite with the IAM policy Chalice generates.

Chalice's policy generator reads only app.py, so app.py carries a manifest of the calls chalicelib
makes. conftest records every AWS operation that app or chalicelib code performs; under pytest-xdist
each worker writes what it recorded to ``CALLS_DIR`` and the controller checks the union when the
session ends, so the check never depends on which test runs last.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CALLS_DIR = ROOT / ".pytest_cache" / "mcd-aws-calls"
CHALICE_ADDS = {"logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"}
NEEDED_MODULES = ("test_scenarios.py", "test_pipeline.py")


def _actions(policy: dict) -> set[str]:
    found = set()
    for statement in policy["Statement"]:
        actions = statement["Action"]
        found.update([actions] if isinstance(actions, str) else actions)
    return found - CHALICE_ADDS


def problems(recorded: Iterable[tuple[str, str]]) -> list[str]:
    """What is missing from, or extra in, the generated policy (empty when they agree)."""
    from botocore import xform_name
    from chalice.policy import PolicyBuilder, policy_from_source_code

    calls: dict[str, set[str]] = {}
    for service, operation in recorded:
        calls.setdefault(service, set()).add(xform_name(operation))
    needed = _actions(PolicyBuilder().build_policy_from_api_calls(calls))
    generated = _actions(policy_from_source_code((ROOT / "app.py").read_text()))
    found = []
    if needed - generated:
        found.append(f"add these calls to the IAM manifest in app.py: {sorted(needed - generated)}")
    if generated - needed:
        found.append(f"the IAM manifest grants actions no code performed in the suite: {sorted(generated - needed)}")
    return found


def save(worker: str, recorded: set[tuple[str, str]]) -> None:
    CALLS_DIR.mkdir(parents=True, exist_ok=True)
    (CALLS_DIR / f"{worker}.json").write_text(json.dumps(sorted(recorded)))


def load_all() -> set[tuple[str, str]]:
    recorded: set[tuple[str, str]] = set()
    for path in CALLS_DIR.glob("*.json"):
        recorded.update((service, operation) for service, operation in json.loads(path.read_text()))
    return recorded


def clear() -> None:
    for path in CALLS_DIR.glob("*.json"):
        path.unlink()
