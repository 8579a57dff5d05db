"""The world ``chalice local --stage local`` runs in: an embedded AWS, CloudTrail from a file, a Slack stand-in.

With ``MCD_LOCAL_AWS=embedded`` (set by the ``local`` stage), the first ``/local/...`` request starts, in
the ``chalice local`` process and for its lifetime:

* a moto server on 127.0.0.1 with the stage's stack from ``infra/stack.yaml`` (``embedded``); every boto3
  client of the process points at it, with fake credentials, so no AWS account is ever reached;
* the Slack stand-in (``slack_standin``), and the stack's Slack secret pointing at it;
* the file-backed ``LookupEvents`` (``fake_cloudtrail``) answering from ``MCD_LOCAL_CLOUDTRAIL`` (the
  replay scenarios' ``cloudtrail`` entries; events are visible from their ``visible_at`` on);
* a ticker running dispatch, lookup and slack_send every ``MCD_LOCAL_TICK_SECONDS`` (default 1; ``0``
  leaves it to ``POST /local/tick``), as the one-minute schedules would, only sooner.

Nothing starts at import, nor where the variable is unset (the tests that import ``app.py``); ``chalice
package`` and ``chalice deploy`` never register the routes (``stage_config.local_routes_wanted``).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chalicelib.ports import StageDeps
    from mcd_tools.fake_cloudtrail import FakeCloudTrail, TrailEntry
    from mcd_tools.slack_standin import SlackStandIn

log = logging.getLogger("mcd.local")

ROOT = Path(__file__).resolve().parents[1]
AWS_VARIABLE = "MCD_LOCAL_AWS"
EMBEDDED = "embedded"
CLOUDTRAIL_VARIABLE = "MCD_LOCAL_CLOUDTRAIL"
TICK_VARIABLE = "MCD_LOCAL_TICK_SECONDS"
DEFAULT_TICK_SECONDS = 1.0
REGION = "us-east-1"  # the embedded AWS's home region; changes may name any region
SLACK_API_VARIABLE = "MCD_SLACK_API_URL"

TICK_LOCK = threading.Lock()
"""One run of the schedules at a time, as their reserved concurrency of 1 guarantees in AWS."""


class LocalWorldError(RuntimeError):
    """The local stage cannot start its world; the message says what to fix."""


def wanted(environ: Mapping[str, str]) -> bool:
    """Whether this process runs on an embedded AWS (``MCD_LOCAL_AWS=embedded``, the ``local`` stage)."""
    return environ.get(AWS_VARIABLE, "").strip() == EMBEDDED


def events_file(environ: Mapping[str, str]) -> Path:
    """``MCD_LOCAL_CLOUDTRAIL``, relative to the project when not absolute."""
    value = environ.get(CLOUDTRAIL_VARIABLE, "").strip()
    if not value:
        raise LocalWorldError(f"{CLOUDTRAIL_VARIABLE} names no CloudTrail events file (the local stage sets "
                              "examples/cloudtrail-events.json)")
    path = Path(value)
    return path if path.is_absolute() else ROOT / path


def trail_entries(path: Path) -> list[TrailEntry]:
    """The events of ``path``: a list of scenario ``cloudtrail`` entries, or an object (a scenario) holding one."""
    from mcd_tools.fake_cloudtrail import entries_from_scenario

    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise LocalWorldError(f"cannot read the CloudTrail events file {path}: {error}") from error
    items = document.get("cloudtrail") if isinstance(document, dict) else document
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise LocalWorldError(f"{path}: expected a list of CloudTrail entries, or an object whose "
                              "'cloudtrail' is one")
    entries = entries_from_scenario(items)
    if len(entries) != len(items):
        raise LocalWorldError(f"{path}: {len(items) - len(entries)} of {len(items)} entries lack a readable "
                              "visible_at or record.eventTime")
    return entries


def tick_seconds(environ: Mapping[str, str]) -> float:
    """The ticker's interval; ``0`` (or less) turns it off."""
    raw = environ.get(TICK_VARIABLE, "").strip()
    try:
        seconds = float(raw) if raw else DEFAULT_TICK_SECONDS
    except ValueError as error:
        raise LocalWorldError(f"{TICK_VARIABLE} must be a number of seconds, not {raw[:20]!r}") from error
    return max(seconds, 0.0)


def run_schedules(deps: StageDeps, *, dl_retry: bool = False, wait: bool = True) -> dict[str, Any] | None:
    """Run dispatch, lookup, (dl_retry,) slack_send once, in pipeline order; ``None`` when a run is in
    progress and ``wait`` is false (the ticker skips a beat rather than queue behind a request)."""
    from chalicelib.stages.dead_letters import dl_retry as retry_dead_letters
    from chalicelib.stages.deliver import slack_send
    from chalicelib.stages.dispatch import dispatch
    from chalicelib.stages.lookup import lookup
    from chalicelib.stages.reruns import RERUNS

    if not TICK_LOCK.acquire(blocking=wait):
        return None
    try:
        result = {"dispatch": dispatch(deps), "lookup": lookup(deps)}
        if dl_retry:
            result["dl_retry"] = retry_dead_letters(deps, RERUNS)
        result["slack_send"] = slack_send(deps)
        return result
    finally:
        TICK_LOCK.release()


class Ticker:
    """Calls ``tick`` every ``interval`` seconds on a daemon thread; a failing tick is logged once per reason."""

    def __init__(self, interval: float, tick: Callable[[], Any]) -> None:
        self.interval = interval
        self._tick = tick
        self._stopped = threading.Event()
        self._last_error = ""
        self.ticks = 0
        self._thread = threading.Thread(target=self._run, name="mcd-local-ticker", daemon=True)

    def start(self) -> Ticker:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join(timeout=60)

    def _run(self) -> None:
        while not self._stopped.wait(self.interval):
            try:
                self._tick()
                self.ticks += 1
                self._last_error = ""
            except Exception as error:  # keep ticking: the next tick may succeed (a message's retry)
                reason = f"{type(error).__name__}: {str(error)[:300]}"
                if reason != self._last_error:
                    log.warning(json.dumps({"event": "local_tick_failed", "error": reason}))
                self._last_error = reason


@dataclass
class LocalWorld:
    endpoint: str
    standin: SlackStandIn
    trail: FakeCloudTrail
    events: Path
    ticker: Ticker | None
    _resources: ExitStack

    def slack_messages(self) -> list[dict[str, Any]]:
        """What the stand-in received, oldest first: ``at``, ``destination``, ``method``, ``payload``."""
        return list(self.standin.messages)

    def stop(self) -> None:
        self._resources.close()


@contextmanager
def _variable(name: str, value: str) -> Iterator[None]:
    saved = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = saved


def point_slack_secret(secrets: Any, secret_id: str, webhook_url: str) -> None:
    """Make the stage's Slack secret hold ``webhook_url`` (moto's CloudFormation does not create secrets)."""
    value = json.dumps({"url": webhook_url})
    try:
        secrets.create_secret(Name=secret_id, SecretString=value)
    except secrets.exceptions.ResourceExistsException:
        secrets.put_secret_value(SecretId=secret_id, SecretString=value)


def start(environ: Mapping[str, str]) -> LocalWorld:
    """Start the world (see the module's docstring) and install its ``Deps``; ``LocalWorld.stop`` undoes it all."""
    from chalicelib import bootstrap
    from chalicelib.adapters.aws import ClientFactory
    from mcd_tools.embedded import deploy_stack, embedded_aws, environment_from
    from mcd_tools.fake_cloudtrail import FakeCloudTrail
    from mcd_tools.slack_standin import SlackStandIn

    events = events_file(environ)
    trail = FakeCloudTrail(trail_entries(events), time.time)
    interval = tick_seconds(environ)
    _show_what_matters()
    with ExitStack() as resources:
        endpoint = resources.enter_context(embedded_aws(REGION))
        standin = SlackStandIn().start()
        resources.callback(standin.stop)
        resources.enter_context(_variable(SLACK_API_VARIABLE, standin.base_url + "/api/"))  # bot destinations
        variables = deploy_stack(REGION)

        def on_create(service: str, _region: str | None, client: Any) -> None:
            if service == "cloudtrail":
                trail.attach(client)

        factory = ClientFactory(REGION, on_create=on_create)
        point_slack_secret(factory.client("secretsmanager"), variables["MCD_SLACK_SECRET"],
                           standin.webhook_url("default"))
        bootstrap.install(bootstrap.Deps(environment_from(variables, REGION), factory))
        resources.callback(bootstrap.reset)
        ticker = None
        if interval:
            ticker = Ticker(interval, lambda: run_schedules(bootstrap.deps(), wait=False)).start()
            resources.callback(ticker.stop)  # first out: no tick runs on a stopped world
        return LocalWorld(endpoint, standin, trail, events, ticker, resources.pop_all())


def _show_what_matters() -> None:
    """The detector's log lines (outcomes, errors) in ``chalice local``'s output; not botocore's per client."""
    logging.getLogger("mcd").setLevel(logging.INFO)  # as ``bootstrap.deps`` does for the Deps it builds
    for name in ("botocore.credentials", "botocore.configprovider"):
        logging.getLogger(name).setLevel(logging.WARNING)


_world: LocalWorld | None = None
_starting = threading.Lock()


def ensure(environ: Mapping[str, str]) -> LocalWorld | None:
    """The process's world, started on first use; ``None`` where ``MCD_LOCAL_AWS`` is not ``embedded``."""
    global _world
    if not wanted(environ):
        return None
    with _starting:
        if _world is None:
            began = time.perf_counter()
            _world = start(environ)
            log.info(json.dumps({"event": "local_world_ready", "aws": _world.endpoint,
                                 "slack_standin": _world.standin.base_url, "cloudtrail_events": str(_world.events),
                                 "tick_seconds": _world.ticker.interval if _world.ticker else 0,
                                 "seconds": round(time.perf_counter() - began, 1)}))
        return _world


def shutdown() -> None:
    """Stop the process's world, if one runs (tests; ``chalice local`` ends with its process)."""
    global _world
    with _starting:
        if _world is not None:
            _world.stop()
            _world = None
