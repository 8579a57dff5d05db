"""In-memory stage worlds: ``MemoryDeps`` with CloudTrail served by ``FakeCloudTrail`` and Slack recorded.

Stage tests build one with ``world(trail=[...], settings={...})`` and run a stage on it in
milliseconds: no moto, no HTTP server, no time-machine (the clock is ``deps.manual_clock``). The
builders make the inputs the stages meet: a Config change notification, a CloudTrail record as
event history shows it, an SNS delivery, a lookup job.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from chalicelib.adapters.memory import DEFAULT_START, ManualClock, MemoryLookups, SlackCall
from chalicelib.core.jobs import LookupJob, change_key
from chalicelib.core.logs import OUTCOME_LOGGER
from chalicelib.core.model import ConfigChange
from chalicelib.core.timeutil import parse_time
from chalicelib.memory_deps import MemoryDeps
from chalicelib.parsing.config_notifications import parse_config_message
from mcd_tools.fake_cloudtrail import FakeCloudTrail, entries_from_scenario

START = DEFAULT_START
ACCOUNT = "123456789012"
REGION = "us-east-1"
TRUSTED_ROLE = f"arn:aws:iam::{ACCOUNT}:role/terraform"
CAPTURE = START + timedelta(seconds=40)
WEBHOOK = "https://hooks.slack.com/services/T000/B000/memoryhook"


def trail_lookups(items: list[dict[str, Any]], clock: ManualClock, home_account: str = "") -> MemoryLookups:
    """``MemoryLookups`` answering from scenario-style CloudTrail entries with ``LookupEvents``' semantics
    (each account its own history when ``home_account`` is given)."""
    trail = FakeCloudTrail(entries_from_scenario(items), clock, home_account=home_account)
    return MemoryLookups(lambda region, request: trail.lookup(region, request, clock()))


def world(*, trail: list[dict[str, Any]] | None = None,
          settings: dict[str, Any] | None = None, start: datetime = START,
          secrets: dict[str, str] | None = None, home_account: str = "", **options: Any) -> MemoryDeps:
    """A ``MemoryDeps`` whose default Slack secret holds ``WEBHOOK``; Slack is recorded on ``deps.slack``.

    With ``home_account``, an organisation (FORMAT.md, Accounts): each account's history is its own, and only
    the home account and ``settings["accounts"]`` can be read."""
    clock = ManualClock(start)
    lookups = trail_lookups(trail or [], clock, home_account)
    if home_account:
        lookups.reachable = {home_account, *((settings or {}).get("accounts") or [])}
    deps = MemoryDeps(settings={} if settings is None else settings, clock=clock, lookups=lookups,
                      secrets={"memory/slack-webhook": json.dumps({"url": WEBHOOK}), **(secrets or {})}, **options)
    return deps


def iso_z(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


def sg_item(group: str, capture: datetime = CAPTURE, *, account: str = ACCOUNT, region: str = REGION,
            port: int = 22) -> dict[str, Any]:
    """A ConfigurationItemChangeNotification (as a dict) for an ingress rule added to ``group``."""
    item = {
        "configurationItemVersion": "1.3", "configurationItemCaptureTime": iso_z(capture),
        "configurationStateId": int(capture.timestamp() * 1000), "awsAccountId": account,
        "configurationItemStatus": "OK", "resourceType": "AWS::EC2::SecurityGroup", "resourceId": group,
        "resourceName": f"{group}-name", "ARN": f"arn:aws:ec2:{region}:{account}:security-group/{group}",
        "awsRegion": region, "availabilityZone": "Not Applicable", "relatedEvents": [], "relationships": [],
        "configuration": {"groupId": group, "ipPermissions": []}, "tags": {}, "supplementaryConfiguration": {},
    }
    diff = {"changeType": "UPDATE", "changedProperties": {"Configuration.IpPermissions.0": {
        "previousValue": None, "changeType": "CREATE",
        "updatedValue": {"ipProtocol": "tcp", "fromPort": port, "toPort": port, "ipRanges": ["0.0.0.0/0"]}}}}
    return {"configurationItemDiff": diff, "configurationItem": item, "notificationCreationTime": iso_z(capture),
            "messageType": "ConfigurationItemChangeNotification", "recordVersion": "1.3"}


def sg_notification(group: str, capture: datetime = CAPTURE, **options: Any) -> str:
    return json.dumps(sg_item(group, capture, **options))


def oversized_notification(group: str, location: str, capture: datetime = CAPTURE) -> str:
    """The summary Config sends instead of ``sg_item``'s item when the item is too large for SNS."""
    item = sg_item(group, capture)["configurationItem"]
    return json.dumps({
        "messageType": "OversizedConfigurationItemChangeNotification", "recordVersion": "1.0",
        "notificationCreationTime": item["configurationItemCaptureTime"],
        "configurationItemSummary": {**{k: item[k] for k in (
            "awsAccountId", "awsRegion", "resourceType", "resourceId", "resourceName", "ARN",
            "configurationItemCaptureTime", "configurationStateId", "configurationItemStatus",
            "configurationItemVersion")}, "changeType": "UPDATE"},
        "s3DeliverySummary": {"s3BucketLocation": location, "errorCode": None},
    })


def sns_event(message: str, message_id: str, *, topic: str = f"arn:aws:sns:{REGION}:{ACCOUNT}:config") -> dict:
    return {"Records": [{"EventSource": "aws:sns", "Sns": {
        "Type": "Notification", "MessageId": message_id, "Message": message, "TopicArn": topic,
        "MessageAttributes": {}}}]}


def trail_entry(group: str, when: datetime, *, user: str = "alice", role: str | None = None,
                event_id: str | None = None, visible_after: int = 300, region: str = REGION,
                event_name: str = "AuthorizeSecurityGroupIngress") -> dict[str, Any]:
    """A CloudTrail record on ``group`` by IAM user ``user`` (or a session of ``role``), visible later."""
    if role:
        identity = {"type": "AssumedRole", "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/session-1",
                    "accountId": ACCOUNT, "sessionContext": {"sessionIssuer": {
                        "type": "Role", "arn": f"arn:aws:iam::{ACCOUNT}:role/{role}", "userName": role}}}
    else:
        identity = {"type": "IAMUser", "arn": f"arn:aws:iam::{ACCOUNT}:user/{user}", "accountId": ACCOUNT,
                    "userName": user}
    record = {"eventVersion": "1.09", "userIdentity": identity, "eventTime": iso_z(when),
              "eventSource": "ec2.amazonaws.com", "eventName": event_name, "awsRegion": region,
              "sourceIPAddress": "198.51.100.7", "userAgent": "aws-cli/2.15.0",
              "requestParameters": {"groupId": group}, "responseElements": {"_return": True},
              "eventID": event_id or f"evt-{group}-{int(when.timestamp())}", "readOnly": False,
              "eventType": "AwsApiCall", "recipientAccountId": ACCOUNT}
    return {"visible_at": (when + timedelta(seconds=visible_after)).isoformat(), "record": record,
            "resources": [{"ResourceType": "AWS::EC2::SecurityGroup", "ResourceName": group}]}


def change(group: str, capture: datetime = CAPTURE, **options: Any) -> ConfigChange:
    (item,) = parse_config_message(sg_notification(group, capture, **options), "test")
    assert isinstance(item, ConfigChange)
    return item


def lookup_job(group: str, capture: datetime = CAPTURE, *, arrived: datetime | None = None,
               **fields: Any) -> LookupJob:
    """The job dispatch queues for ``group``'s change (due 45 s after capture, like dispatch makes it)."""
    item = change(group, capture)
    return LookupJob(change=item, change_key=change_key(item), arrived_at=arrived or capture + timedelta(seconds=5),
                     archive_bucket="mcd-memory-archive", archive_key=f"AWSLogs/{group}.json", **fields)


def queued_json(deps: MemoryDeps, name: str) -> list[Any]:
    """Every message on a queue (visible or not), decoded."""
    return [json.loads(body) for body in deps.queue(name).bodies()]


def slack_outcomes(deps: MemoryDeps) -> list[dict[str, Any]]:
    return [job["outcome"] for job in queued_json(deps, "slack_queue")]


def run_every_minute(deps: MemoryDeps, minutes: int, *stages: Any) -> list[dict[str, Any]]:
    """Move the clock a minute at a time and run each stage, as the schedule does; the counts of each run."""
    results = []
    for _ in range(minutes):
        deps.manual_clock.advance(60)
        for stage in stages:
            results.append(stage(deps))
    return results


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=timezone.utc)  # type: ignore[misc]


@dataclass
class MemoryReplay:
    """What a scenario run on the fakes produced: final outcomes (as ``mcd replay`` reports them) and posts."""

    outcomes: list[dict[str, Any]]
    slack: list[SlackCall]
    deps: MemoryDeps


class _Outcomes(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(json.loads(record.getMessage())["outcome"])


REPLAY_SECRET = "mcd-replay/slack-webhook"  # the default secret ``mcd replay`` creates (scenarios name it)


def replay(scenario: dict[str, Any], secrets: dict[str, str] | None = None) -> MemoryReplay:
    """``mcd replay``'s timeline on the fakes: deliveries at their time, the schedules every minute.

    The stage functions are called directly (not through Chalice), so a scenario of hours runs in a
    fraction of a second; ``tests/e2e/test_scenarios.py`` runs the scenarios through the real handlers.
    """
    from chalicelib.stages.dead_letters import dl_retry
    from chalicelib.stages.deliver import slack_send
    from chalicelib.stages.dispatch import dispatch
    from chalicelib.stages.lookup import lookup
    from chalicelib.stages.reruns import RERUNS
    from mcd_tools.replay import ASYNC_RETRIES, DL_RETRY_EVERY_MINUTES, _final_outcomes

    start, end = parse_time(scenario["start"]), parse_time(scenario["end"])
    assert start is not None and end is not None
    from mcd_tools.replay import _scenario_account

    deps = world(trail=scenario.get("cloudtrail") or [], settings=scenario.get("settings") or {},
                 start=start, home_region=scenario["home_region"], slack_secret=REPLAY_SECRET,
                 home_account=str(scenario.get("home_account") or _scenario_account(scenario)),
                 secrets={REPLAY_SECRET: json.dumps({"url": WEBHOOK}), **(secrets or {})})
    deliveries = sorted(scenario["deliveries"], key=lambda d: parse_time(d["at"]) or start)
    capture = _Outcomes()
    logger = logging.getLogger(OUTCOME_LOGGER)
    logger.addHandler(capture)
    previous_level = logger.level
    logger.setLevel(logging.INFO)  # setLevel, not an attribute: it clears the loggers' isEnabledFor caches
    try:
        tick = start.replace(second=0, microsecond=0) + (timedelta(minutes=1) if start.second else timedelta(0))
        while tick <= end:
            while deliveries and (parse_time(deliveries[0]["at"]) or start) <= tick:
                delivery = deliveries.pop(0)
                _move_to(deps, parse_time(delivery["at"]) or start)
                _invoke(deps, *_handler(delivery), ASYNC_RETRIES + 1)
            _move_to(deps, tick)
            stages = [dispatch, lookup, slack_send]
            if tick.minute % DL_RETRY_EVERY_MINUTES == 0:
                stages.insert(2, lambda d: dl_retry(d, RERUNS))
            for stage in stages:
                stage(deps)
            tick += timedelta(minutes=1)
    finally:
        logger.removeHandler(capture)
        logger.setLevel(previous_level)
    return MemoryReplay(_final_outcomes(capture.records), deps.slack.delivered(), deps)


def _invoke(deps: MemoryDeps, function: str, event: Any, handler: Any, tries: int) -> None:
    """Lambda's asynchronous invocation: ``tries`` attempts, then the destination record to the async-failed queue."""
    from mcd_tools.replay import destination_record

    for attempt in range(1, tries + 1):
        try:
            handler(deps)
            return
        except Exception as error:  # Lambda retries a failed asynchronous invocation
            if attempt == tries:
                arn = f"arn:aws:lambda:{deps.env.home_region}:123456789012:function:mcd-replay-{function}"
                deps.queue("async_failed_queue").send(destination_record(arn, event, error, str(uuid.uuid4()),
                                                                         deps.now(), tries))


def _handler(delivery: dict[str, Any]) -> tuple[str, Any, Any]:
    """The function of app.py ``delivery`` invokes, its event, and what it does with it as a function of the
    ``Deps`` (as ``mcd replay`` routes it)."""
    from chalicelib.stages.direct import direct
    from chalicelib.stages.ingest import config_event_as_sns, ingest

    via = delivery.get("via")
    if via == "sns":
        message = delivery["message"]
        text = message if isinstance(message, str) else json.dumps(message)
        event = sns_event(text, str(uuid.UUID(hashlib.sha256(text.encode()).hexdigest()[:32])))
        return "ingest", event, lambda deps: ingest(event, deps)
    if via == "cloudwatch_logs":
        data = base64.b64encode(gzip.compress(json.dumps(delivery.get("logs") or {}).encode())).decode()
        return "cloudwatch_logs", {"awslogs": {"data": data}}, lambda deps: direct({"awslogs": {"data": data}}, deps,
                                                                                   "cloudwatch_logs")
    event = delivery.get("event") or {}
    if via == "eventbridge" and event.get("detail-type") == "Config Configuration Item Change":
        return "config_event", event, lambda deps: ingest(config_event_as_sns(event), deps)
    if via == "eventbridge" and event.get("detail-type") in ("AWS Console Sign In via CloudTrail",
                                                              "AWS API Call via CloudTrail"):
        function = "console_signin" if event.get("detail-type") == "AWS Console Sign In via CloudTrail" else "api_call"
        return function, event, lambda deps: direct(event, deps, "eventbridge")
    raise AssertionError(f"the memory replay cannot deliver {via!r} {event.get('detail-type')!r}")


def _move_to(deps: MemoryDeps, when: datetime) -> None:
    ahead = when.timestamp() - deps.clock()
    if ahead > 0:
        deps.manual_clock.advance(ahead)
