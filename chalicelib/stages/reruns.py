"""What each asynchronously invoked function runs on its event, so that ``dl_retry`` can run a failed one again.

Lambda sends an event that failed all of its tries to the async-failed queue, naming the function; the
dead-letter stage looks the function up here. A stage never imports a sibling (the stages-are-independent
contract), so the table sits above the stages it names and ``app.py``'s ``dl_retry`` handler hands it over.
Each entry does what the function's handler in ``app.py`` does with its event, minus the sign of life
(``tests/stages/test_reruns.py``); the stages are imported only when a failed event needs one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from chalicelib.ports import StageDeps


def _ingest(event: dict[str, Any], deps: StageDeps) -> Any:
    from chalicelib.stages.ingest import ingest

    return ingest(event, deps)


def _config_event(event: dict[str, Any], deps: StageDeps) -> Any:
    from chalicelib.stages.ingest import config_event_as_sns, ingest

    return ingest(config_event_as_sns(event), deps)


def _eventbridge(event: dict[str, Any], deps: StageDeps) -> Any:
    from chalicelib.stages.direct import direct

    return direct(event, deps, "eventbridge")


def _cloudwatch_logs(event: dict[str, Any], deps: StageDeps) -> Any:
    from chalicelib.stages.direct import direct

    return direct(event, deps, "cloudwatch_logs")


RERUNS: Mapping[str, Callable[[dict[str, Any], StageDeps], Any]] = MappingProxyType({
    "ingest": _ingest,
    "config_event": _config_event,
    "console_signin": _eventbridge,
    "api_call": _eventbridge,
    "cloudwatch_logs": _cloudwatch_logs,
})
"""Function name (as in ``app.py`` and ``stage_config.ASYNC_FUNCTIONS``) → what it runs on an event."""
