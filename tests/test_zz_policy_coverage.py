"""The IAM policy Chalice generates from app.py must be exactly what the code calls (see policy_coverage).

Run serially, this test checks what the suite recorded; under pytest-xdist the controller does the
same check over every worker's calls when the session ends (conftest), and this test skips.
"""

from __future__ import annotations

import os

import pytest
from conftest import AWS_CALLS
from policy_coverage import NEEDED_MODULES, problems


def test_generated_policy_is_exactly_what_the_code_calls(request: pytest.FixtureRequest) -> None:
    if os.environ.get("PYTEST_XDIST_WORKER"):
        pytest.skip("checked by the xdist controller over every worker's calls at the end of the session")
    ran = {item.path.name for item in request.session.items}
    if not AWS_CALLS or not all(name in ran for name in NEEDED_MODULES):
        pytest.skip("run the whole suite: the recorded calls come from the other tests")
    assert problems(AWS_CALLS) == []
