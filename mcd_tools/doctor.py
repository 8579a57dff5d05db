"""``mcd doctor --stage STAGE [--region R] [--config-topic-arn ARN]``: check a deployed stage's whole chain.

Reads the stage with the caller's credentials (boto3's default chain, which honours ``AWS_ENDPOINT_URL``)
and prints a table: check | status (ok / FAIL / warn) | detail | fix. Besides the home region, each other enabled
region must forward its Config changes, API calls and sign-ins to the home bus and record with AWS Config
(``other_regions``; ``make deploy`` prints the same check), and each deployed asynchronous function must send the
events it fails on to the stage's async-failed queue (its event invoke config). Exit code 0 when nothing FAILs,
1 otherwise. Pure functions turn fetched facts into rows; a thin layer fetches them. Each check catches
its own AWS errors: access denied is a ``warn`` (not checked, and the permission it needs), anything else
a ``FAIL``. The Slack secret's value is never printed, only what it looks like.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TextIO
from urllib.parse import urlsplit

from chalicelib.adapters.secrets import SecretError, SecretReader
from chalicelib.adapters.slack import WEBHOOK_HOSTS, usable_webhook_url
from chalicelib.core.errors import ConfigurationError
from chalicelib.core.partitions import GLOBAL_REGION, partition_of_region
from chalicelib.core.settings import Settings
from chalicelib.stage_config import ASYNC_FUNCTIONS, StageNames
from chalicelib.stages.shared.queues import ASYNC_FAILED_QUEUE, DEAD_LETTER_QUEUES

OK, WARN, FAIL = "ok", "warn", "FAIL"
IMPORTANT_TYPES = ("AWS::EC2::SecurityGroup", "AWS::IAM::Role", "AWS::IAM::Policy", "AWS::S3::Bucket",
                   "AWS::EC2::NetworkAcl", "AWS::EC2::RouteTable")
GLOBAL_TYPES = ("AWS::IAM::Role", "AWS::IAM::Policy")  # recorded only with includeGlobalResourceTypes
ACCESS_DENIED = ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError",
                 "AuthorizationErrorException")
SIGNIN = ("aws.signin", "AWS Console Sign In via CloudTrail")
# What every other region must forward to the home bus (infra/region.yaml): (an event source, detail-type).
FORWARDED = {"Config changes": ("aws.config", "Config Configuration Item Change"),
             "API calls": ("aws.ec2", "AWS API Call via CloudTrail"), "sign-ins": SIGNIN}
ENABLED_REGION = ("opt-in-not-required", "opted-in")
CONSUMERS = {"dispatch": "dispatch", "lookup": "lookup", "slack": "slack_send"}  # queue -> the function reading it
Client = Callable[..., Any]


@dataclass(frozen=True)
class Row:
    check: str
    status: str
    detail: str
    fix: str = ""


@dataclass(frozen=True)
class Stage:
    names: StageNames
    config_topic: str

    def function_arn(self, function: str) -> str:
        return self.names.function_arn(function)

    @property
    def home_bus(self) -> str:
        n = self.names
        return f"arn:{n.partition}:events:{n.region}:{n.account}:event-bus/default"

    @property
    def deploy(self) -> str:
        return f"make deploy STAGE={self.names.stage}{self._topic_args}"

    @property
    def package(self) -> str:
        """What rebuilds a stage whose functions were deployed from ``make package`` (SAM or Terraform)."""
        return f"make package STAGE={self.names.stage}{self._topic_args}"

    @property
    def _topic_args(self) -> str:
        own = self.config_topic == self.names.config_topic_arn
        return "" if own else f" ARGS=--config-topic-arn={self.config_topic}"


# --- pure row builders ------------------------------------------------------------------------------------

def missing_types(group: Mapping[str, Any]) -> set[str]:
    """The important resource types a recorder's ``recordingGroup`` leaves out."""
    strategy = group.get("recordingStrategy", {}).get("useOnly")
    if group.get("allSupported") or strategy == "ALL_SUPPORTED_RESOURCE_TYPES":
        return set() if group.get("includeGlobalResourceTypes") else set(GLOBAL_TYPES)
    if strategy == "EXCLUSION_BY_RESOURCE_TYPES":
        return set(IMPORTANT_TYPES) & set(group.get("exclusionByResourceTypes", {}).get("resourceTypes", []))
    return set(IMPORTANT_TYPES) - set(group.get("resourceTypes", []))


def config_rows(recorders: list[dict], statuses: list[dict], channels: list[dict], stage: Stage) -> list[Row]:
    region, topic = stage.names.region, stage.config_topic
    if not recorders:
        return [Row("config recorder", FAIL, f"no AWS Config recorder in {region}",
                    f"AWS Config console ({region}) > Set up: record all resource types, SNS topic {topic}")]
    name, on = recorders[0]["name"], [s for s in statuses if s.get("recording")]
    failing = [s for s in on if str(s.get("lastStatus", "")).upper() == "FAILURE"]
    if not on:
        recorder = Row("config recorder", FAIL, f"{name} exists but is not recording", "aws configservice "
                       f"start-configuration-recorder --configuration-recorder-name {name} --region {region}")
    elif failing:
        recorder = Row("config recorder", WARN, f"{failing[0]['name']} is recording but its last status is FAILURE "
                       f"({failing[0].get('lastErrorCode', '')})", "check its IAM role in the AWS Config console")
    else:
        recorder = Row("config recorder", OK, f"{on[0]['name']} is recording")
    missing = sorted(set.intersection(*(missing_types(r.get("recordingGroup", {})) for r in recorders)))
    types = Row("config resource types", OK, "records the types that matter")
    if missing:
        globals_only = " (fine if another region records global types)" if set(missing) <= set(GLOBAL_TYPES) else ""
        types = Row("config resource types", WARN, f"not recorded here: {', '.join(missing)}{globals_only}",
                    f"aws configservice put-configuration-recorder --configuration-recorder name={name},roleARN="
                    f"{recorders[0].get('roleARN', 'ROLE_ARN')} --recording-group allSupported=true,"
                    f"includeGlobalResourceTypes=true --region {region}")
    mine = [c for c in channels if c.get("snsTopicARN") == topic]
    if mine:
        return [recorder, types, Row("config delivery channel", OK, f"{mine[0]['name']} notifies {topic}")]
    channel = channels[0] if channels else {"name": "default", "s3BucketName": "BUCKET"}
    now = f"{channel['name']} notifies {channel.get('snsTopicARN') or 'no topic'}, not {topic}"
    return [recorder, types, Row("config delivery channel", FAIL, now if channels else "no delivery channel",
                                 f"aws configservice put-delivery-channel --delivery-channel name={channel['name']},"
                                 f"s3BucketName={channel['s3BucketName']},snsTopicARN={topic} --region {region}")]


def sns_row(exists: bool, subscriptions: list[dict], stage: Stage) -> Row:
    topic, ingest = stage.config_topic, stage.function_arn("ingest")
    if not exists:
        return Row("sns config topic", FAIL, f"{topic} does not exist",
                   f"{stage.deploy} (or pass --config-topic-arn if the stage uses an existing topic)")
    mine = [s for s in subscriptions if s.get("Protocol") == "lambda"
            and (s.get("Endpoint") == ingest or str(s.get("Endpoint", "")).startswith(ingest + ":"))]
    if any(str(s.get("SubscriptionArn", "")).startswith("arn:") for s in mine):
        return Row("sns config topic", OK, f"mcd-{stage.names.stage}-ingest is subscribed to {topic}")
    return Row("sns config topic", FAIL, f"{topic}: " + ("the ingest subscription is not confirmed" if mine
               else f"no lambda subscription to mcd-{stage.names.stage}-ingest"), stage.deploy)


def trail_rows(trails: list[dict], region: str) -> list[Row]:
    """``trails``: describe_trails entries with ``IsLogging`` (get_trail_status; None if unreadable) added."""
    here = [t for t in trails if t.get("IsMultiRegionTrail") or t.get("HomeRegion") == region]
    logging = [t for t in here if t.get("IsLogging")]
    if not here:
        return [Row("cloudtrail", FAIL, f"no trail covers {region}", "CloudTrail console > Create trail (all "
                    f"regions), or aws cloudtrail create-trail --name mcd-trail --s3-bucket-name BUCKET "
                    f"--is-multi-region-trail --region {region}, then aws cloudtrail start-logging --name mcd-trail")]
    if not logging:
        unknown = [t["Name"] for t in here if t.get("IsLogging") is None]
        if unknown:
            return [Row("cloudtrail", WARN, f"could not read whether {', '.join(unknown)} is logging",
                        "aws cloudtrail get-trail-status --name TRAIL_ARN (in the trail's account)")]
        return [Row("cloudtrail", FAIL, f"trail {here[0]['Name']} is not logging",
                    f"aws cloudtrail start-logging --name {here[0].get('TrailARN', here[0]['Name'])}")]
    rows = [Row("cloudtrail", OK, f"trail {logging[0]['Name']} is logging")]
    if not any(t.get("IsMultiRegionTrail") for t in logging):
        rows.append(Row("cloudtrail multi-region", WARN, "no logging trail is multi-region: calls in other regions "
                        "(and global IAM calls) are missed", f"aws cloudtrail update-trail --name {logging[0]['Name']} "
                        f"--is-multi-region-trail --region {logging[0].get('HomeRegion', region)}"))
    return rows


def forwards_signins(pattern: str | None) -> bool:
    """Whether an event pattern lets console sign-in events through (source and detail-type only)."""
    return lets_through(pattern, *SIGNIN)


def lets_through(pattern: str | None, source: str, detail_type: str) -> bool:
    """Whether an event pattern lets events of ``source`` and ``detail_type`` through (those two keys only)."""
    try:
        document = json.loads(pattern or "{}")
    except ValueError:
        return False
    for key, wanted in zip(("source", "detail-type"), (source, detail_type)):
        values = document.get(key) if isinstance(document, dict) else None
        if values is not None and not any(v == wanted or (isinstance(v, dict) and isinstance(v.get("prefix"), str)
                                                          and wanted.startswith(v["prefix"])) for v in values):
            return False
    return True


def rule_row(check: str, region: str, rules: Mapping[str, Mapping[str, Any]], target: str, fix: str) -> Row:
    """``rules``: the describe_rule answers of the rules that target ``target``."""
    enabled = [n for n, r in rules.items() if str(r.get("State", "")).startswith("ENABLED")]
    if enabled:
        return Row(check, OK, f"rule {enabled[0]} -> {target.rsplit(':', 1)[-1]}")
    if rules:
        name = next(iter(rules))
        return Row(check, FAIL, f"rule {name} is {rules[name].get('State')}",
                   f"aws events enable-rule --name {name} --region {region}")
    return Row(check, FAIL, f"no rule in {region} targets {target}", fix)


def unforwarded(rules: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """What of ``FORWARDED`` no enabled rule lets through; ``rules``: describe_rule answers of the forwarding rules."""
    enabled = [r for r in rules.values() if str(r.get("State", "")).startswith("ENABLED")]
    return [kind for kind, (source, detail_type) in FORWARDED.items()
            if not any(lets_through(r.get("EventPattern"), source, detail_type) for r in enabled)]


def region_row(region: str, missing: list[str], recorders: list[dict], stage: Stage) -> Row:
    """One region other than home: ``missing`` from ``unforwarded``, ``recorders`` its recorder statuses."""
    problems, fixes = [], []
    if missing:
        problems.append(f"no enabled rule forwards its {', '.join(missing)} to the default bus of {stage.names.region}")
        fixes.append(f"{stage.deploy} (it deploys mcd-{stage.names.stage}-region in every enabled region), or "
                     "the infra/region.yaml StackSet (docs/deployment.md, step 6)")
    if not any(r.get("recording") for r in recorders):
        problems.append("AWS Config is not recording there" if recorders else "no AWS Config recorder there")
        fixes.append(f"aws configservice start-configuration-recorder --configuration-recorder-name "
                     f"{recorders[0]['name']} --region {region}" if recorders else
                     f"a recorder and a delivery channel in {region} (docs/deployment.md, step 1.3)")
    if not problems:
        return Row(f"region {region}", OK, f"forwards to {stage.names.region}; AWS Config is recording")
    return Row(f"region {region}", FAIL, f"{'; '.join(problems)}: its changes never reach the detector",
               "; ".join(fixes))


def fold_regions(rows: list[Row], home: str) -> list[Row]:
    """The regions' rows with the healthy ones folded into one: a problem per row, then how many are fine."""
    good = sum(row.status == OK for row in rows)
    summary = Row("other regions", OK, f"{good} other enabled region(s) forward to {home} and record with AWS "
                  "Config" if rows else "no other enabled region")
    return [*(row for row in rows if row.status != OK), *([summary] if good or not rows else [])]


def destination_rows(configs: Mapping[str, Mapping[str, Any] | None], stage: Stage) -> list[Row]:
    """``configs``: each deployed asynchronous function → its event invoke config (None: it has none).

    A problem per row, then one row for the functions whose failed events reach the async-failed queue.
    """
    names, queue = stage.names, stage.names.queue_arn(ASYNC_FAILED_QUEUE)
    fix = (f"{stage.deploy} (it sets each function's on-failure destination); a stage deployed from a package: "
           f"{stage.package}, then deploy the package again")
    if not configs:
        return [Row("async destinations", FAIL, f"no asynchronous function of the stage is deployed (looked for "
                    f"{', '.join(names.function_name(f) for f in ASYNC_FUNCTIONS)})", fix)]
    rows, good = [], []
    for function, config in configs.items():
        name = names.function_name(function)
        destination = (((config or {}).get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
        if destination == queue:
            good.append(name)
            continue
        lost = "so an event it fails on is dropped after Lambda's retries"
        detail = (f"{name} has no event invoke config, {lost}" if config is None else
                  f"{name} has no on-failure destination, {lost}" if not destination else
                  f"{name} sends the events it fails on to {destination}, not {names.queue_name(ASYNC_FAILED_QUEUE)}"
                  ", which dl_retry drains")
        rows.append(Row(f"async destination {function}", FAIL, detail, fix))
    if good:
        rows.append(Row("async destinations", OK, f"{len(good)} function(s) send failed events to "
                        f"{names.queue_name(ASYNC_FAILED_QUEUE)}: {', '.join(good)}"))
    return rows


def secret_row(name: str, value: str | None, stage_name: str, problem: str = "") -> Row:
    put = f"aws secretsmanager put-secret-value --secret-id {name} --secret-string 'https://hooks.slack.com/services/...'"
    if value is None:
        return Row("slack secret", FAIL, problem or f"{name} has no value", put)
    if usable_webhook_url(value) and (stage_name == "local" or (urlsplit(value).hostname or "") in WEBHOOK_HOSTS):
        return Row("slack secret", OK, f"{name} is present and looks like a Slack webhook URL")
    if value.startswith(("xoxb-", "xoxp-")):
        return Row("slack secret", OK, f"{name} is present and looks like a Slack bot token")
    return Row("slack secret", FAIL, f"{name} holds neither a Slack webhook URL nor a bot token (the placeholder?)",
               put)


def settings_row(parameter: str, raw: str | None) -> Row:
    put = f"aws ssm put-parameter --name {parameter} --type String --overwrite --value file://settings.json"
    if raw is None:
        return Row("settings", FAIL, f"SSM parameter {parameter} does not exist", put)
    try:
        document = json.loads(raw)
        if not isinstance(document, dict):
            raise ConfigurationError("the document is not a JSON object")
        settings = Settings.from_dict(document)
    except (ValueError, TypeError, ConfigurationError) as error:
        return Row("settings", FAIL, f"{parameter} is invalid: {error}",
                   f"fix settings.json (mcd patterns --settings settings.json checks it), then {put}")
    return Row("settings", OK, f"{parameter} is valid ({len(settings.trusted_principals)} trusted principal(s), "
               f"{len(settings.destinations)} destination(s))")


def organization_row(accounts: tuple[str, ...], bus_policy: str | None, stage: Stage) -> Row:
    """With member accounts in the settings, the home bus must admit the Organization's forwarding rules."""
    if not accounts:
        return Row("organization", OK, "no member accounts in the settings: this account only")
    try:
        statements = json.loads(bus_policy or "{}").get("Statement") or []
    except ValueError:
        statements = []
    orgs = sorted({str(v) for st in statements if isinstance(st, dict) and st.get("Effect") == "Allow"
                   for v in _listed(((st.get("Condition") or {}).get("StringEquals") or {}).get("aws:PrincipalOrgID"))})
    if not orgs:
        return Row("organization", FAIL, f"{len(accounts)} member account(s) in the settings, but the home bus "
                   "admits no organization: their forwarded events are refused",
                   f"{stage.deploy} with --parameter OrganizationId=o-... (docs/organizations.md)")
    return Row("organization", OK, f"{len(accounts)} member account(s); the home bus admits {', '.join(orgs)}; "
               "each needs the infra/region.yaml StackSet instance (its forwarding rules and mcd-lookup role)")


def _listed(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def dead_letter_fix(names: StageNames) -> str:
    return (f"aws logs tail /aws/lambda/{names.function_name('dl_retry')} --since 1h (it redrives or stores dead "
            f"letters every 10 minutes); then aws s3 ls s3://{names.archive_bucket}/dead-letter/ --recursive")


def alarm_fix(alarm: str, names: StageNames) -> str:
    part = alarm.removeprefix(f"mcd-{names.stage}-")
    if part.endswith("-not-empty"):  # a dead-letter queue, or the async-failed queue
        return dead_letter_fix(names)
    subject = part.removesuffix("-oldest-message").removesuffix("-errors").removesuffix("-throttles")
    function = names.function_name(CONSUMERS.get(subject, subject))
    if part.endswith("-throttles"):
        return f"aws lambda get-function-concurrency --function-name {function} (and the account's Lambda quota)"
    if subject != part:
        return f"aws logs tail /aws/lambda/{function} --since 1h"
    return f"aws cloudwatch describe-alarm-history --alarm-name {alarm}"


def alarm_rows(alarms: list[tuple[str, str]], names: StageNames) -> list[Row]:
    if not alarms:
        return [Row("alarms", WARN, f"no alarms named mcd-{names.stage}-*: the stack predates health alarms",
                    f"make deploy STAGE={names.stage}")]
    rows = [Row(f"alarm {n}", FAIL, "in ALARM", alarm_fix(n, names)) for n, state in alarms if state == "ALARM"]
    waiting = [name for name, state in alarms if state == "INSUFFICIENT_DATA"]
    if waiting:
        rows.append(Row("alarms without data", WARN, f"INSUFFICIENT_DATA: {', '.join(waiting)}",
                        "nothing while the stack is new; later, check that the metric still gets data"))
    good = sum(state == "OK" for _, state in alarms)
    return [*rows, Row("alarms", OK, f"{good} of {len(alarms)} alarm(s) OK")] if good else rows


def queue_row(queue: str, count: int | None, stage: Stage, waiting: str = "dead letter(s)") -> Row:
    if count is None:
        return Row(f"queue {queue}", FAIL, "does not exist", stage.deploy)
    if count:
        return Row(f"queue {queue}", FAIL, f"{count} {waiting} waiting", dead_letter_fix(stage.names))
    return Row(f"queue {queue}", OK, "empty")


def error_row(check: str, service: str, error: Exception) -> Row:
    code, message = _code(error), (getattr(error, "response", None) or {}).get("Error", {}).get("Message", "")
    operation = getattr(error, "operation_name", "") or "?"
    if code in ACCESS_DENIED:
        return Row(check, WARN, f"not checked: {code} on {operation}", f"use credentials allowed {service}:{operation}")
    if code:
        return Row(check, FAIL, f"{code} on {operation}: {message}"[:300])
    return Row(check, FAIL, f"could not ask AWS: {type(error).__name__}: {error}"[:300],
               "check the credentials, the region and AWS_ENDPOINT_URL")


def render(rows: Iterable[Row]) -> str:
    table = [("check", "status", "detail", "fix"), *((r.check, r.status, " ".join(r.detail.split()), r.fix)
                                                      for r in rows)]
    widths = [max(len(line[i]) for line in table) for i in range(3)]
    return "".join(" | ".join([*(c.ljust(w) for c, w in zip(line, widths)), line[3]]).rstrip() + "\n" for line in table)


# --- fetching ---------------------------------------------------------------------------------------------

def _code(error: Exception) -> str:
    return (getattr(error, "response", None) or {}).get("Error", {}).get("Code", "")


def _unless(codes: tuple[str, ...], call: Callable[[], Any]) -> Any:
    """``call()``, or None when it fails with one of ``codes`` (the thing is not there)."""
    try:
        return call()
    except Exception as error:
        if _code(error) in codes:
            return None
        raise


def _pages(client: Any, method: str, key: str, **kwargs: Any) -> list[Any]:
    return client.get_paginator(method).paginate(**kwargs).build_full_result().get(key, [])


def _config(client: Client, stage: Stage) -> list[Row]:
    config = client("config")
    return config_rows(config.describe_configuration_recorders()["ConfigurationRecorders"],
                       config.describe_configuration_recorder_status()["ConfigurationRecordersStatus"],
                       config.describe_delivery_channels()["DeliveryChannels"], stage)


def _sns(client: Client, stage: Stage) -> list[Row]:
    sns, topic = client("sns"), stage.config_topic
    if _unless(("NotFound",), lambda: sns.get_topic_attributes(TopicArn=topic)) is None:
        return [sns_row(False, [], stage)]
    return [sns_row(True, _pages(sns, "list_subscriptions_by_topic", "Subscriptions", TopicArn=topic), stage)]


def _trails(client: Client, stage: Stage) -> list[Row]:
    cloudtrail = client("cloudtrail")
    trails = cloudtrail.describe_trails(includeShadowTrails=True)["trailList"]
    for trail in trails:  # an organization trail's status may be unreadable from a member account
        status = _unless((*ACCESS_DENIED, "TrailNotFoundException"),
                         lambda t=trail: cloudtrail.get_trail_status(Name=t["TrailARN"]))
        trail["IsLogging"] = None if status is None else bool(status.get("IsLogging"))
    return trail_rows(trails, stage.names.region)


def _rules(events: Any, *targets: str) -> dict[str, dict]:
    names = {n for t in targets for n in _pages(events, "list_rule_names_by_target", "RuleNames", TargetArn=t)}
    return {name: events.describe_rule(Name=name) for name in sorted(names)}


def _eventbridge(client: Client, stage: Stage) -> list[Row]:
    home, n, bus = stage.names.region, stage.names, stage.home_bus
    fixes = {"config_event": f"{stage.deploy} without MCD_CONFIG_VIA_EVENTBRIDGE=0 (other regions' changes come "
                             "this way)"}
    rows = [rule_row(f"eventbridge {fn}", home, _rules(client("events"), stage.function_arn(fn)),
                     stage.function_arn(fn), fixes.get(fn, stage.deploy))
            for fn in ("config_event", "console_signin", "api_call")]
    signins = GLOBAL_REGION.get(n.partition, "us-east-1")  # where global sign-ins are delivered
    if signins != home:
        rules = {name: r for name, r in _rules(client("events", signins), bus).items()
                 if forwards_signins(r.get("EventPattern"))}
        rows.append(rule_row(f"eventbridge sign-ins ({signins})", signins, rules, bus,
                             f"{stage.deploy} (it deploys mcd-{n.stage}-region in {signins}; docs/deployment.md, "
                             "step 6)"))
    return rows


def enabled_regions(ec2: Any, home: str) -> list[str]:
    """The regions of ``home``'s partition the account may use (describe_regions without AllRegions lists those)."""
    regions = ec2.describe_regions(AllRegions=False)["Regions"]
    return sorted(r["RegionName"] for r in regions if r.get("OptInStatus", ENABLED_REGION[0]) in ENABLED_REGION
                  and partition_of_region(r["RegionName"]) == partition_of_region(home))


def other_regions(client: Client, stage: Stage) -> list[Row]:
    """Each enabled region but home: does it forward to the home bus, does AWS Config record there."""
    regions = [r for r in enabled_regions(client("ec2"), stage.names.region) if r != stage.names.region]
    clients = {r: (client("events", r), client("config", r)) for r in regions}  # made here: not thread-safe
    with ThreadPoolExecutor(max_workers=8) as pool:
        rows = list(pool.map(lambda r: _region(r, *clients[r], stage), regions))
    return fold_regions(rows, stage.names.region)


def _region(region: str, events: Any, config: Any, stage: Stage) -> Row:
    try:
        missing = unforwarded(_rules(events, stage.home_bus))
    except Exception as error:  # access denied: often a region an organization policy denies
        return error_row(f"region {region}", "events", error)
    try:
        recorders = config.describe_configuration_recorder_status()["ConfigurationRecordersStatus"]
    except Exception as error:
        return error_row(f"region {region}", "config", error)
    return region_row(region, missing, recorders, stage)


def _destinations(client: Client, stage: Stage) -> list[Row]:
    """The event invoke config of each asynchronous function deployed (``config_event`` may be turned off)."""
    lam, configs = client("lambda"), {}
    for function in ASYNC_FUNCTIONS:
        name = stage.names.function_name(function)
        if _unless(("ResourceNotFoundException",), lambda n=name: lam.get_function_configuration(FunctionName=n)):
            configs[function] = _unless(("ResourceNotFoundException",),
                                        lambda n=name: lam.get_function_event_invoke_config(FunctionName=n))
    return destination_rows(configs, stage)


def _secret(client: Client, stage: Stage) -> list[Row]:
    name = stage.names.slack_secret
    try:
        return [secret_row(name, SecretReader(client, time.monotonic).read(name).reveal(), stage.names.stage)]
    except SecretError as error:  # empty, or JSON without a usable key
        return [secret_row(name, None, stage.names.stage, str(error))]
    except Exception as error:
        if _code(error) == "ResourceNotFoundException":
            return [Row("slack secret", FAIL, f"{name} does not exist", f"{stage.deploy}, then put the URL in it")]
        if _code(error) == "InvalidRequestException" and "delet" in str(error).lower():
            return [Row("slack secret", FAIL, f"{name} is scheduled for deletion",
                        f"aws secretsmanager restore-secret --secret-id {name}")]
        raise


def _settings(client: Client, stage: Stage) -> list[Row]:
    name = stage.names.settings_ref.removeprefix("ssm:")
    found = _unless(("ParameterNotFound",), lambda: client("ssm").get_parameter(Name=name, WithDecryption=True))
    return [settings_row(name, found and found["Parameter"]["Value"])]


def _organization(client: Client, stage: Stage) -> list[Row]:
    name = stage.names.settings_ref.removeprefix("ssm:")
    found = _unless(("ParameterNotFound",), lambda: client("ssm").get_parameter(Name=name, WithDecryption=True))
    try:
        accounts = Settings.from_dict(json.loads(found["Parameter"]["Value"])).accounts if found else ()
    except (ValueError, TypeError, AttributeError, ConfigurationError):
        accounts = ()  # the settings row says what is wrong with them
    policy = client("events").describe_event_bus(Name="default").get("Policy") if accounts else None
    return [organization_row(accounts, policy, stage)]


def _alarms(client: Client, stage: Stage) -> list[Row]:
    found = []
    for page in client("cloudwatch").get_paginator("describe_alarms").paginate(
            AlarmNamePrefix=f"mcd-{stage.names.stage}-", AlarmTypes=["MetricAlarm", "CompositeAlarm"]):
        found += [(a["AlarmName"], a["StateValue"]) for a in page["MetricAlarms"] + page.get("CompositeAlarms", [])]
    return alarm_rows(found, stage.names)


def _queues(client: Client, stage: Stage) -> list[Row]:
    sqs, rows = client("sqs"), []
    keys = [f"ApproximateNumberOfMessages{k}" for k in ("", "NotVisible", "Delayed")]
    waiting = {ASYNC_FAILED_QUEUE: "failed event(s)"}  # events Lambda gave up on, which dl_retry runs again
    for queue in (*DEAD_LETTER_QUEUES, ASYNC_FAILED_QUEUE):
        name = stage.names.queue_name(queue)
        found = _unless(("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"),
                        lambda n=name: sqs.get_queue_url(QueueName=n))
        attributes = found and sqs.get_queue_attributes(QueueUrl=found["QueueUrl"], AttributeNames=keys)["Attributes"]
        count = None if found is None else sum(int(attributes.get(k, 0)) for k in keys)
        rows.append(queue_row(name, count, stage, waiting.get(queue, "dead letter(s)")))
    return rows


CHECKS = (("config", "config", _config), ("sns config topic", "sns", _sns), ("cloudtrail", "cloudtrail", _trails),
          ("eventbridge", "events", _eventbridge), ("other regions", "ec2", other_regions),
          ("async destinations", "lambda", _destinations),
          ("slack secret", "secretsmanager", _secret), ("settings", "ssm", _settings),
          ("organization", "events", _organization),
          ("alarms", "cloudwatch", _alarms), ("queues", "sqs", _queues))


def diagnose(stage: str, region: str, config_topic_arn: str = "", session: Any = None) -> list[Row]:
    import boto3

    session = session or boto3.Session()
    cache: dict[tuple[str, str], Any] = {}

    def client(service: str, where: str | None = None) -> Any:
        key = (service, where or region)
        if key not in cache:
            cache[key] = session.client(service, region_name=key[1])
        return cache[key]

    try:
        identity = client("sts").get_caller_identity()
    except Exception as error:  # nothing can be checked: always a FAIL
        return [Row("credentials", FAIL, error_row("credentials", "sts", error).detail,
                    "check the credentials (aws sts get-caller-identity), the region and AWS_ENDPOINT_URL")]
    names = StageNames(stage, identity["Account"], region, identity["Arn"].split(":")[1] or "aws")
    try:  # a stage deployed with an existing Config topic has it in the stack's outputs
        outputs = client("cloudformation").describe_stacks(StackName=f"mcd-{stage}")["Stacks"][0].get("Outputs", [])
    except Exception:
        outputs = []
    stack_topic = next((o["OutputValue"] for o in outputs if o.get("OutputKey") == "McdConfigTopic"), "")
    target = Stage(names, config_topic_arn or stack_topic or names.config_topic_arn)
    rows: list[Row] = []
    for check, service, run in CHECKS:
        try:
            rows += run(client, target)
        except Exception as error:
            rows.append(error_row(check, service, error))
    return rows


def main(argv: list[str], out: TextIO | None = None, err: TextIO | None = None, session: Any = None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    parser = argparse.ArgumentParser(prog="mcd doctor", description="Check a deployed stage's whole chain.")
    parser.add_argument("--stage", required=True)
    parser.add_argument("--region", help="the stage's home region (default: the AWS configuration's)")
    parser.add_argument("--config-topic-arn", default="", help="the Config topic, when not the stack's own")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error argparse has already printed
        return exc.code if isinstance(exc.code, int) else 2
    import boto3

    session = session or boto3.Session()
    region = args.region or session.region_name
    if not region:
        err.write("mcd doctor: no region: pass --region or set AWS_REGION\n")
        return 2
    rows = diagnose(args.stage, region, args.config_topic_arn, session)
    out.write(render(rows))
    return 1 if any(r.status == FAIL for r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
