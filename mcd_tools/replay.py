"""``mcd replay``: run the detector's real handlers over a scenario on a simulated clock.

Everything real but the clock and the cloud: the Chalice app's handlers (through Chalice's test
client), the stages in ``chalicelib``, boto3 clients talking to moto (SQS, S3, DynamoDB, Secrets
Manager, SSM), a file-backed CloudTrail ``LookupEvents`` (``fake_cloudtrail``) and a real HTTP server
standing in for Slack. The clock (time-machine) starts at the scenario's ``start``; deliveries are
invoked at their ``at``; the schedules fire every simulated minute; waits inside the code (rate
limits, pacing) advance the clock instead of sleeping. A 3-hour scenario runs in seconds.

Asynchronous deliveries (SNS, EventBridge, CloudWatch Logs) fail as on Lambda: a handler that raises is
invoked twice more, then Lambda's destination record of the event goes to the async-failed queue (its
on-failure destination, ``scripts/deploy.py``), where ``dl_retry`` runs it again or keeps it (D26). Resources
without that queue drop the event, as Lambda does without a destination.
"""

from __future__ import annotations

import base64
import functools
import gzip
import hashlib
import json
import logging
import os
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from chalicelib.core.partitions import partition_of_region
from chalicelib.core.timeutil import iso, parse_time

log = logging.getLogger("mcd.replay")

OUTCOME_KEYS = ("kind", "at", "resource_type", "resource_id", "resource_name", "principal_arn", "event_ids",
                "reason", "signin", "event_name", "account", "region", "outcome_id", "revision")
DL_RETRY_EVERY_MINUTES = 10
ASYNC_RETRIES = 2
STAGE = "replay"
"""The Chalice stage the handlers run in: a function is ``<app>-replay-<handler>``, as ``chalice deploy`` names it."""
MAX_RECORD_BYTES = 262_144
"""An SQS message's limit: Lambda leaves the event out of a destination record that would pass it."""


class ScenarioError(ValueError):
    """The scenario file cannot be used."""


@dataclass
class ReplayResult:
    outcomes: list[dict[str, Any]]
    slack: list[dict[str, Any]]
    lookup_calls: int
    throttled: int
    errors: list[str] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)


def load_scenario(path: str | Path) -> dict[str, Any]:
    try:
        scenario = json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise ScenarioError(f"cannot read scenario {path}: {error}") from error
    if not isinstance(scenario, dict):
        raise ScenarioError("a scenario is a JSON object")
    for key in ("start", "end", "home_region", "deliveries"):
        if key not in scenario:
            raise ScenarioError(f"scenario has no {key!r}")
    if parse_time(scenario["start"]) is None or parse_time(scenario["end"]) is None:
        raise ScenarioError("scenario start/end are not ISO-8601 times")
    if not isinstance(scenario["deliveries"], list):
        raise ScenarioError("scenario deliveries must be a list")
    for index, delivery in enumerate(scenario["deliveries"]):
        if not isinstance(delivery, dict) or parse_time(delivery.get("at")) is None:
            raise ScenarioError(f"delivery {index} has no readable 'at' time")
    return scenario


class _OutcomeCapture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.records.append(json.loads(record.getMessage())["outcome"])
        except (ValueError, KeyError, TypeError):
            pass


def run(scenario: dict[str, Any], *, prepare: Callable[[Any], None] | None = None,
        verbose: bool = False, environment: Any = None) -> ReplayResult:
    """Replay ``scenario``; ``prepare(context)`` may script faults before the clock starts (tests).

    Without ``environment`` the AWS services are moto's in-process mocks and the detector's resources
    are created for the run. With one (the stage environment of a deployed stack, e.g. in a moto server
    reached through ``AWS_ENDPOINT_URL``), the run uses those deployed resources.
    """
    import app  # noqa: F401  (Chalice attaches a log handler to the "mcd" logger on import)
    from mcd_tools.sandbox import fake_credentials

    for handler in logging.getLogger("mcd").handlers:
        handler.setLevel(logging.INFO if verbose else logging.ERROR)

    home = str(scenario["home_region"])
    if environment is None:  # a deployed environment comes with its own endpoint and credentials
        fake_credentials(home)
    import time_machine
    from moto import mock_aws

    start = parse_time(scenario["start"])
    end = parse_time(scenario["end"])
    assert start and end
    import contextlib

    backend = contextlib.nullcontext() if environment is not None else mock_aws()
    with backend, time_machine.travel(start, tick=False) as traveller:
        return _Run(scenario, home, start, end, traveller).execute(prepare, environment)


class _Run:
    def __init__(self, scenario: dict[str, Any], home: str, start: datetime, end: datetime, traveller: Any):
        self.scenario = scenario
        self.home = home
        self.start = start
        self.end = end
        self.traveller = traveller
        self.errors: list[str] = []
        self.account = str(scenario.get("home_account") or _scenario_account(scenario))
        self.gave_up = 0  # events Lambda gave up on: each has a request id of its own

    def now(self) -> datetime:
        return datetime.fromtimestamp(time.time(), tz=self.start.tzinfo)

    def advance(self, when: datetime) -> None:
        if when > self.now():
            self.traveller.move_to(when)

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.traveller.shift(seconds)

    def execute(self, prepare: Callable[[Any], None] | None, environment: Any = None) -> ReplayResult:
        from chalice.test import Client

        import app as app_module
        from chalicelib import bootstrap
        from chalicelib.adapters.aws import ClientFactory
        from chalicelib.core.logs import OUTCOME_LOGGER
        from mcd_tools.fake_cloudtrail import FakeCloudTrail, LookupRoles, entries_from_scenario
        from mcd_tools.sandbox import create_resources
        from mcd_tools.slack_standin import SlackStandIn

        trail = FakeCloudTrail(entries_from_scenario(self.scenario.get("cloudtrail") or []), time.time,
                               home_account=self.account)
        settings = self.scenario.get("settings") or {}
        roles = LookupRoles([str(a) for a in settings.get("accounts") or []],
                            str(settings.get("lookup_role") or "mcd-lookup"), time.time)

        def on_create(service: str, region: str | None, client: Any) -> None:
            if service == "cloudtrail":
                trail.attach(client, roles.account_of(client))
            elif service == "sts":
                roles.attach(client)

        standin = SlackStandIn(clock=time.time).start()
        previous_api_url = os.environ.get("MCD_SLACK_API_URL")
        os.environ["MCD_SLACK_API_URL"] = standin.base_url + "/api/"  # bot destinations never reach slack.com
        capture = _OutcomeCapture()
        outcome_logger = logging.getLogger(OUTCOME_LOGGER)
        outcome_logger.addHandler(capture)
        logging.getLogger("mcd").setLevel(logging.INFO)
        try:
            factory = ClientFactory(self.home, on_create=on_create)
            secret_value = json.dumps({"url": standin.webhook_url("default")})
            if environment is None:
                env = create_resources(factory.client, self.home, settings=self.scenario.get("settings") or {},
                                       slack_secret_value=secret_value)
            else:
                env = environment
                factory.client("ssm").put_parameter(Name=env.settings_ref[4:], Type="String", Overwrite=True,
                                                    Value=json.dumps(self.scenario.get("settings") or {}))
                secrets = factory.client("secretsmanager")
                try:
                    secrets.put_secret_value(SecretId=env.slack_secret, SecretString=secret_value)
                except secrets.exceptions.ResourceNotFoundException:  # moto's CloudFormation skips secrets
                    secrets.create_secret(Name=env.slack_secret, SecretString=secret_value)
            self._put_s3_objects(factory)
            env = replace(env, account=self.account)  # other accounts are read through settings.lookup_role
            deps = bootstrap.Deps(env, factory, clock=time.time, sleep=self.sleep)
            bootstrap.install(deps)
            self.deps, self.standin, self.trail = deps, standin, trail
            if prepare:
                prepare(self)
            self.app_name = app_module.app.app_name
            with Client(app_module.app, stage_name=STAGE,
                        project_dir=str(Path(app_module.__file__).resolve().parent)) as client:
                self._timeline(client)
        finally:
            outcome_logger.removeHandler(capture)
            if previous_api_url is None:
                os.environ.pop("MCD_SLACK_API_URL", None)
            else:
                os.environ["MCD_SLACK_API_URL"] = previous_api_url
            standin.stop()
            bootstrap.reset()
        return ReplayResult(
            outcomes=_final_outcomes(capture.records),
            slack=[{"at": m["at"], "destination": m["destination"], "payload": m["payload"]} for m in standin.messages],
            lookup_calls=trail.calls, throttled=trail.throttled, errors=self.errors,
        )

    def _put_s3_objects(self, factory: Any) -> None:
        s3 = factory.client("s3")
        existing: set[str] = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
        for obj in self.scenario.get("s3_objects") or []:
            bucket, key = obj["bucket"], obj["key"]
            if bucket not in existing:
                if self.home == "us-east-1":
                    s3.create_bucket(Bucket=bucket)
                else:
                    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": self.home})
                existing.add(bucket)
            body = obj.get("body")
            data = (body if isinstance(body, str) else json.dumps(body)).encode()
            if obj.get("gzip"):
                data = gzip.compress(data)
            s3.put_object(Bucket=bucket, Key=key, Body=data)

    def _timeline(self, client: Any) -> None:
        deliveries = sorted(
            (d for d in self.scenario["deliveries"] if parse_time(d.get("at"))),
            key=lambda d: parse_time(d["at"]),
        )
        tick = self.start.replace(second=0, microsecond=0)
        if tick < self.start:
            tick += timedelta(minutes=1)
        index = 0
        while True:
            due = parse_time(deliveries[index]["at"]) if index < len(deliveries) else None
            if due is not None and due <= tick:
                self.advance(due)
                self._deliver(client, deliveries[index])
                index += 1
                continue
            if tick > self.end:
                break
            self.advance(tick)
            self._tick(client, tick)
            tick += timedelta(minutes=1)

    def _tick(self, client: Any, tick: datetime) -> None:
        if not self._work_due(tick):
            return  # every schedule would receive nothing: skipping the tick changes nothing
        event = client.events.generate_cw_event(source="aws.events", detail_type="Scheduled Event", detail={},
                                                resources=[], region=self.home)
        names = ["dispatch", "lookup", "slack_send"]
        if tick.minute % DL_RETRY_EVERY_MINUTES == 0:
            names.insert(2, "dl_retry")
        for name in names:
            self._invoke(client, name, event, retries=0)

    def _work_due(self, tick: datetime) -> bool:
        """Whether a message of the stage's queues can be received at ``tick`` (read from moto's memory).

        A message that is delayed or in flight until later is not due: the schedules would receive nothing,
        and each run on an empty receive only costs time. Where moto's internals cannot be read (they moved,
        or the queues are a real endpoint's), every tick runs.
        """
        try:
            from moto.sqs.models import sqs_backends

            env = self.deps.env
            names = {url.rsplit("/", 1)[-1] for url in (
                env.dispatch_queue_url, env.dispatch_dlq_url, env.lookup_queue_url, env.lookup_dlq_url,
                env.slack_queue_url, env.slack_dlq_url, env.async_failed_queue_url) if url}
            due_by = tick.timestamp() * 1000
            seen = 0
            for regions in sqs_backends.values():
                for backend in regions.values():
                    for name, queue in backend.queues.items():
                        if name not in names:
                            continue
                        seen += 1
                        if any(max(m.visible_at, m.delayed_until) <= due_by for m in queue._messages):
                            return True
            return seen != len(names)
        except Exception:
            return True

    def _deliver(self, client: Any, delivery: dict[str, Any]) -> None:
        via = delivery.get("via")
        if via == "sns":
            self._invoke(client, "ingest", self._sns_event(delivery), retries=ASYNC_RETRIES)
        elif via == "eventbridge":
            event = delivery.get("event") or {}
            name = _eventbridge_target(event)
            if name is None:
                self.errors.append(f"no handler matches EventBridge detail-type {event.get('detail-type')!r}")
                return
            self._invoke(client, name, event, retries=ASYNC_RETRIES)
        elif via == "cloudwatch_logs":
            data = base64.b64encode(gzip.compress(json.dumps(delivery.get("logs") or {}).encode())).decode()
            self._invoke(client, "cloudwatch_logs", {"awslogs": {"data": data}}, retries=ASYNC_RETRIES)
        else:
            self.errors.append(f"unknown delivery via {via!r}")

    def _invoke(self, client: Any, name: str, event: Any, retries: int) -> None:
        failure: BaseException | None = None
        # Chalice's test context has no remaining time to read: the run gets the budget the function has deployed.
        self.deps.env = replace(self.deps.env, budget_seconds=deployed_budget(name))
        for attempt in range(retries + 1):
            try:
                client.lambda_.invoke(name, event)
                return
            except Exception as error:  # a crashed invocation: Lambda retries async ones
                message = f"{name} failed (attempt {attempt + 1}): {type(error).__name__}: {error}"
                log.warning(message)
                self.errors.append(message[:500])
                failure = error
        if retries and failure is not None:  # an asynchronous event (the schedules' next tick does their work)
            self._give_up(name, event, failure, retries + 1)

    def _give_up(self, name: str, event: Any, error: BaseException, invokes: int) -> None:
        """What Lambda does after the last try of an asynchronous event: the record to the on-failure destination."""
        url = self.deps.env.async_failed_queue_url
        if not url:
            self.errors.append(f"{name}: no async-failed queue, the event is dropped after {invokes} tries")
            return
        self.gave_up += 1
        function = f"arn:{partition_of_region(self.home)}:lambda:{self.home}:{self.account}:function:" \
                   f"{self.app_name}-{STAGE}-{name}"
        request_id = str(uuid.UUID(hashlib.sha256(f"{function}:{self.gave_up}".encode()).hexdigest()[:32]))
        body = destination_record(function, event, error, request_id, self.now(), invokes)
        try:
            self.deps.clients.client("sqs").send_message(QueueUrl=url, MessageBody=body)
        except Exception as failed:
            self.errors.append(f"{name}: the destination record was not sent: {type(failed).__name__}: {failed}"[:500])

    def _sns_event(self, delivery: dict[str, Any]) -> dict[str, Any]:
        message = delivery.get("message")
        text = message if isinstance(message, str) else json.dumps(message)
        topic = f"arn:aws:sns:{self.home}:{self.account}:config-changes"
        message_id = str(uuid.UUID(hashlib.sha256(text.encode()).hexdigest()[:32]))
        return {"Records": [{
            "EventSource": "aws:sns", "EventVersion": "1.0",
            "EventSubscriptionArn": f"{topic}:2bcfbf39-05c3-41de-beaa-fcfcc21c8f55",
            "Sns": {
                "Type": "Notification", "MessageId": message_id, "TopicArn": topic,
                "Subject": "[AWS Config] notification", "Message": text,
                "Timestamp": iso(self.now()), "SignatureVersion": "1", "Signature": "EXAMPLE",
                "SigningCertUrl": "https://sns.example/cert.pem", "UnsubscribeUrl": "https://sns.example/unsub",
                "MessageAttributes": {},
            },
        }]}


def destination_record(function_arn: str, event: Any, error: BaseException, request_id: str, at: datetime,
                       invokes: int) -> str:
    """Lambda's record of an asynchronous event that failed ``invokes`` times, as its on-failure destination gets it.

    The error is what Lambda's Python runtime reports for an unhandled exception; the event is left out when the
    record would not fit in an SQS message.
    """
    frames = traceback.format_list(traceback.extract_tb(error.__traceback__)[-10:])
    record: dict[str, Any] = {
        "version": "1.0",
        "timestamp": f"{at.astimezone(timezone.utc):%Y-%m-%dT%H:%M:%S}.{at.microsecond // 1000:03d}Z",
        "requestContext": {"requestId": request_id, "functionArn": f"{function_arn}:$LATEST",
                           "condition": "RetriesExhausted", "approximateInvokeCount": invokes},
        "requestPayload": event,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {"errorMessage": str(error), "errorType": type(error).__name__, "requestId": request_id,
                            "stackTrace": [frame.rstrip("\n") for frame in frames]},
    }
    body = json.dumps(record)
    if len(body.encode()) > MAX_RECORD_BYTES:
        del record["requestPayload"]
        body = json.dumps(record)
    return body


def _eventbridge_target(event: dict[str, Any]) -> str | None:
    detail_type = event.get("detail-type")
    if detail_type == "AWS Console Sign In via CloudTrail":
        return "console_signin"
    if detail_type == "AWS API Call via CloudTrail":
        return "api_call"
    if detail_type == "Config Configuration Item Change":
        return "config_event"
    return None


@functools.cache
def deployed_budget(function: str) -> float:
    """A function's run budget as deployed: ``stage_config.run_budget`` of its timeout in the project's
    ``.chalice/config.json`` (lookup: 300 s, a budget of 240 s)."""
    from chalicelib.stage_config import DEFAULT_BUDGET_SECONDS, run_budget

    try:
        config = json.loads((Path(__file__).resolve().parents[1] / ".chalice" / "config.json").read_text())
    except (OSError, ValueError):
        return DEFAULT_BUDGET_SECONDS
    spec = (config.get("lambda_functions") or {}).get(function) or {}
    return run_budget(float(spec.get("lambda_timeout", config.get("lambda_timeout", 60))))


def _scenario_account(scenario: dict[str, Any]) -> str:
    for delivery in scenario.get("deliveries") or []:
        message = delivery.get("message")
        if isinstance(message, str):
            try:
                message = json.loads(message)
            except ValueError:
                continue
        if isinstance(message, dict):
            item = message.get("configurationItem") or message.get("configurationItemSummary") or {}
            account = item.get("awsAccountId") or item.get("accountId")
            if account:
                return str(account)
    for entry in scenario.get("cloudtrail") or []:
        record = entry.get("record") or {}
        account = record.get("recipientAccountId") or (record.get("userIdentity") or {}).get("accountId")
        if account:
            return str(account)
    return "000000000000"


def _final_outcomes(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One outcome per id: the latest revision, with ``first_at`` when it was first reported."""
    latest: dict[str, dict[str, Any]] = {}
    first: dict[str, str] = {}
    for record in records:
        key = record.get("outcome_id") or json.dumps(record, sort_keys=True)
        first.setdefault(key, record.get("at"))
        previous = latest.get(key)
        if previous is None or int(record.get("revision") or 0) >= int(previous.get("revision") or 0):
            latest[key] = record
    final = []
    for key, record in latest.items():
        outcome = {k: record.get(k) for k in OUTCOME_KEYS}
        outcome["first_at"] = first[key]
        unverified = (record.get("extra") or {}).get("unverified")
        if unverified:
            outcome["unverified"] = unverified
        final.append(outcome)
    return final


def write_outputs(result: ReplayResult, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    with (out_dir / "outcomes.jsonl").open("w") as handle:
        for outcome in result.outcomes:
            handle.write(json.dumps(outcome) + "\n")
    with (out_dir / "slack.jsonl").open("w") as handle:
        for message in result.slack:
            handle.write(json.dumps(message) + "\n")


def summary(result: ReplayResult) -> str:
    kinds: dict[str, int] = {}
    for outcome in result.outcomes:
        kinds[outcome["kind"]] = kinds.get(outcome["kind"], 0) + 1
    parts = [f"{n} {k}" for k, n in sorted(kinds.items())] or ["no outcomes"]
    line = (f"outcomes: {', '.join(parts)}; slack messages: {len(result.slack)}; "
            f"LookupEvents calls: {result.lookup_calls} ({result.throttled} throttled)")
    if result.errors:
        line += f"; handler errors: {len(result.errors)} (first: {result.errors[0][:200]})"
    return line


def main(argv: list[str]) -> int:
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="mcd replay", description="Replay a scenario through the detector.")
    parser.add_argument("scenario")
    parser.add_argument("--out", default=None, help="directory for outcomes.jsonl and slack.jsonl")
    parser.add_argument("--verbose", action="store_true", help="show the detector's logs")
    parser.add_argument("--show", action="store_true", help="print the outcomes and the Slack messages posted")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.ERROR, format="%(message)s")
    try:
        scenario = load_scenario(args.scenario)
    except ScenarioError as error:
        print(f"mcd replay: {error}", file=sys.stderr)
        return 2
    result = run(scenario, verbose=args.verbose)
    if args.out:
        write_outputs(result, Path(args.out))
    if args.show:
        from mcd_tools.demo import show

        show(result)
    print(f"{scenario.get('name') or Path(args.scenario).stem}: {summary(result)}")
    return 0
