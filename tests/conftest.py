"""Shared test set-up: no real AWS is ever reachable, moto is imported before any client exists."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
sys.path.insert(0, str(ROOT))

os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_SECURITY_TOKEN="testing",
                  AWS_SESSION_TOKEN="testing", AWS_DEFAULT_REGION="us-east-1")
os.environ["MCD_LOCAL_ROUTES"] = "1"  # the local-stage routes are tested with Chalice's test client
for _key in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
    os.environ.pop(_key, None)

import botocore.handlers  # noqa: E402
import moto  # noqa: E402,F401  (must precede every boto3 client)

APP_FILE = str(ROOT / "app.py")
APP_CODE = str(ROOT / "chalicelib") + os.sep
# Every AWS operation the app's own code performs during the suite: (handler, service, operation name), the
# handler being the function of app.py the call ran under, or "" when app code ran outside any handler.
AWS_CALLS: set[tuple[str, str, str]] = set()


def _record_app_calls(model, **_):  # type: ignore[no-untyped-def]
    """Record calls whose stack passes through app.py or chalicelib (dev tools in mcd_tools and tests excluded)."""
    frame = sys._getframe(1)
    app_code = False
    while frame is not None:
        name = frame.f_code.co_filename
        if name == APP_FILE:
            AWS_CALLS.add((frame.f_code.co_name, model.service_model.service_name, model.name))
            return None
        app_code = app_code or name.startswith(APP_CODE)
        frame = frame.f_back
    if app_code:
        AWS_CALLS.add(("", model.service_model.service_name, model.name))
    return None


# Registered before any botocore session exists, so every client of the suite carries it, and it runs
# before handlers attached to one client (the simulated LookupEvents answers through one).
botocore.handlers.BUILTIN_HANDLERS.append(("before-call.*.*", _record_app_calls))


@pytest.fixture
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared is not beside the clone")
    return SHARED


# --- the run-time policy check at the end of a whole-suite session (tests/policy_coverage.py) ----------


def _whole_suite(config: pytest.Config) -> bool:
    """The run covers every test module: no paths narrower than tests/, no -k or -m selection."""
    if config.option.keyword or config.option.markexpr:
        return False
    return all(Path(arg.split("::")[0]).resolve() in (ROOT, ROOT / "tests") for arg in config.args)


def _xdist_controller(config: pytest.Config) -> bool:
    return not os.environ.get("PYTEST_XDIST_WORKER") and bool(getattr(config.option, "numprocesses", None))


def pytest_sessionstart(session: pytest.Session) -> None:
    if _xdist_controller(session.config):
        import policy_coverage

        policy_coverage.clear()


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """After a whole suite passed, the AWS calls it recorded must match the IAM policy (serially or under xdist)."""
    import policy_coverage

    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:
        policy_coverage.save(worker, AWS_CALLS)
        return
    if exitstatus != 0 or not _whole_suite(session.config):
        return
    recorded = policy_coverage.load_all() if _xdist_controller(session.config) else set(AWS_CALLS)
    found = policy_coverage.runtime_problems(recorded)
    if found:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter:
            reporter.ensure_newline()
            for line in found:
                reporter.write_line(f"IAM policy coverage: {line}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
