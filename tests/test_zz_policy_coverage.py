"""The IAM policy Chalice generates from app.py must be exactly what the code calls.

Chalice's policy generator reads only app.py, so app.py carries an ``if False:`` manifest of the
calls chalicelib makes. conftest records every AWS operation that app or chalicelib code performs
during the suite; this test (named to run last) compares the two. Run the whole suite for it to mean
anything: alone it skips.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from botocore import xform_name
from chalice.policy import PolicyBuilder, policy_from_source_code
from conftest import AWS_CALLS

ROOT = Path(__file__).resolve().parents[1]
CHALICE_ADDS = {"logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"}
NEEDED_MODULES = ("test_scenarios.py", "test_pipeline.py")


def _actions(policy: dict) -> set[str]:
    found = set()
    for statement in policy["Statement"]:
        actions = statement["Action"]
        found.update([actions] if isinstance(actions, str) else actions)
    return found - CHALICE_ADDS


def test_generated_policy_is_exactly_what_the_code_calls(request: pytest.FixtureRequest) -> None:
    ran = {item.path.name for item in request.session.items}
    if not AWS_CALLS or not all(name in ran for name in NEEDED_MODULES):
        pytest.skip("run the whole suite: the recorded calls come from the other tests")
    calls: dict[str, set[str]] = {}
    for service, operation in AWS_CALLS:
        calls.setdefault(service, set()).add(xform_name(operation))
    needed = _actions(PolicyBuilder().build_policy_from_api_calls(calls))
    generated = _actions(policy_from_source_code((ROOT / "app.py").read_text()))
    missing = sorted(needed - generated)
    extra = sorted(generated - needed)
    assert not missing, f"add these calls to the IAM manifest in app.py: {missing}"
    assert not extra, f"the IAM manifest grants actions no code performed in the suite: {extra}"
