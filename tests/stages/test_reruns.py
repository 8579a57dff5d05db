"""``RERUNS``: for each function AWS invokes asynchronously, what ``dl_retry`` runs again is what its handler runs."""

from __future__ import annotations

import base64
import gzip
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from memory_world import queued_json, sg_notification, sns_event, world

from chalicelib import bootstrap, stage_config
from chalicelib.memory_deps import MemoryDeps
from chalicelib.stages.reruns import RERUNS

EVENTS = Path(__file__).resolve().parents[1] / "events"


def _event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())


def _cloudwatch_logs() -> dict[str, Any]:
    record = _event("eventbridge_api_call_sso_authorize_sg.json")["detail"]
    data = {"messageType": "DATA_MESSAGE", "owner": "1", "logGroup": "trail", "logStream": "s",
            "subscriptionFilters": ["mcd"], "logEvents": [{"id": "1", "timestamp": 0, "message": json.dumps(record)}]}
    return {"awslogs": {"data": base64.b64encode(gzip.compress(json.dumps(data).encode())).decode()}}


EVENT_OF = {
    "ingest": lambda: sns_event(sg_notification("sg-0rr"), "sns-rerun"),
    "config_event": lambda: _event("eventbridge_config_item_change.json"),
    "console_signin": lambda: _event("eventbridge_console_signin_failure.json"),
    "api_call": lambda: _event("eventbridge_api_call_sso_authorize_sg.json"),
    "cloudwatch_logs": _cloudwatch_logs,
}


def _async_handlers() -> set[str]:
    """The functions of app.py that SNS, EventBridge rules or a log subscription invoke (not the schedules)."""
    from chalice.app import CloudWatchEventConfig, SNSEventConfig

    import app

    sources = {s.name for s in app.app.event_sources if isinstance(s, (SNSEventConfig, CloudWatchEventConfig))}
    return sources | {f.name for f in app.app.pure_lambda_functions}


def _what_it_left(deps: MemoryDeps) -> dict[str, Any]:
    return {"queues": {name: queued_json(deps, name) for name in ("dispatch_queue", "dispatch_dlq", "slack_queue")},
            "archive": sorted(k for k in deps.archive.list_keys() if not k.startswith("unparseable/")),
            "outcomes": sorted(k for k in deps.state.items if k[0].startswith("out#"))}


def test_every_asynchronous_function_has_a_rerun_and_no_schedule_has_one() -> None:
    assert set(RERUNS) == set(stage_config.ASYNC_FUNCTIONS) == _async_handlers() == set(EVENT_OF)


@pytest.mark.parametrize("function", sorted(EVENT_OF))
def test_a_rerun_does_what_the_handler_does_with_the_event(function: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import app

    monkeypatch.setattr(app, "alive", lambda deps, signal, result: result)  # the sign of life is the handler's own
    by_handler, by_rerun = world(), world()
    bootstrap.install(by_handler)
    try:
        handled = app.app.handler_map[function](EVENT_OF[function](), SimpleNamespace())
    finally:
        bootstrap.reset()
    assert RERUNS[function](EVENT_OF[function](), by_rerun) == handled
    left = _what_it_left(by_rerun)
    assert left == _what_it_left(by_handler)
    assert left["queues"]["dispatch_queue"] or left["queues"]["slack_queue"], "the event did reach the pipeline"
