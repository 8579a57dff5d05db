"""The shapes of real accounts (issue 15, "an honest bench"), each replayed with the stream and without it.

Every shape runs the real stages on the in-memory fakes through ``bench_replay.replay``, with the realistic
delays of ``bench_replay.Delays`` (EventBridge 5–60 s, Config 1–15 min, history 3–20 min):

- ``background_5`` / ``background_200``: 20 changes in half an hour while services write 5 or 200 times a
  minute to resources Config never reports here (tags on instances by Auto Scaling's service-linked role);
- ``sparse``: 24 changes spread over 6 hours;
- ``regions16``: 160 changes within 10 minutes across 16 regions;
- ``iam_burst``: 1,500 IAM changes (global, recorded in us-east-1) by the trusted role within 5 minutes, and one
  person's change in a quiet region meanwhile (``quiet_tell_s``: how long that one waits);
- ``one_person``: one person making 30 changes within 10 minutes among 30 trusted ones.

Figures (``workload_<shape>_…`` in ``bench.json``, ``stream_`` after the shape with the stream on): lookups per
change, p95 seconds from the call to the change being told (alert posted, or suppression decided), wrong
verdicts; Slack messages for ``one_person``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from mcd_tools import bench_replay as br

SIXTEEN_REGIONS = ("us-east-1", "us-east-2", "us-west-1", "us-west-2", "ca-central-1", "eu-west-1", "eu-west-2",
                   "eu-west-3", "eu-central-1", "eu-north-1", "ap-south-1", "ap-northeast-1", "ap-northeast-2",
                   "ap-southeast-1", "ap-southeast-2", "sa-east-1")


@dataclass(frozen=True)
class Shape:
    name: str
    changes: int
    human_share: float
    spread: timedelta
    regions: tuple[str, ...] = ("eu-west-1",)  # story.REGION
    background_per_minute: int = 0
    iam: bool = False
    one_person: bool = False
    quiet_person: bool = False  # one more person's change, in a region of its own, in the middle of the burst


SHAPES = (
    Shape("background_5", 20, 0.2, timedelta(minutes=30), background_per_minute=5),
    Shape("background_200", 20, 0.2, timedelta(minutes=30), background_per_minute=200),
    Shape("sparse", 24, 0.25, timedelta(hours=6)),
    Shape("regions16", 160, 0.1, timedelta(minutes=10), regions=SIXTEEN_REGIONS),
    Shape("iam_burst", 1500, 0.0, timedelta(minutes=5), iam=True, quiet_person=True),
    Shape("one_person", 60, 0.5, timedelta(minutes=10), one_person=True),
)
QUIET_REGION = "ap-southeast-2"


DELAYS = br.Delays()


def build(shape: Shape, seed: int = 15, delays: br.Delays = DELAYS) -> br.Workload:
    """``shape`` as a workload: its changes, their Config items and CloudTrail records, and the stream."""
    from mcd_tools.story import ACCOUNT, TERRAFORM_ROLE, iam_user, sso_human, terraform

    rng = random.Random(f"{shape.name}-{seed}")
    tf = terraform()
    people = [sso_human("engineer-0@example.com")] if shape.one_person else [
        sso_human(f"engineer-{i}@example.com") if i % 2 else iam_user(f"oncall-{i}") for i in range(7)]
    humans = set(rng.sample(range(shape.changes), round(shape.changes * shape.human_share)))
    changes: list[br.Change] = []
    deliveries: list[dict[str, Any]] = []
    entries: list[dict[str, Any]] = []
    for i in range(shape.changes):
        called = br.START + timedelta(seconds=rng.uniform(0, shape.spread.total_seconds()))
        actor = people[i % len(people)] if i in humans else tf
        region = shape.regions[i % len(shape.regions)]
        _add(changes, deliveries, entries, rng, delays, i in humans,
             *(_iam_role(i, actor, called, rng, delays) if shape.iam else _ingress(i, actor, called, region, rng,
                                                                                   delays, ACCOUNT)))
    if shape.quiet_person:
        called = br.START + shape.spread / 2
        _add(changes, deliveries, entries, rng, delays, True,
             *_ingress(shape.changes, people[0], called, QUIET_REGION, rng, delays, ACCOUNT))
    for i in range(int(shape.background_per_minute * shape.spread.total_seconds() / 60)):
        called = br.START + timedelta(seconds=rng.uniform(0, shape.spread.total_seconds()))
        entry = _background(i, called, shape.regions[i % len(shape.regions)], rng, delays)
        entries.append(entry)
        deliveries.append(br.stream_delivery(entry["record"], called, rng, delays))
    deliveries.sort(key=lambda d: d["at"])
    settings = {"trusted_principals": [f"arn:aws:iam::{ACCOUNT}:role/ci/{TERRAFORM_ROLE}"]}
    return br.Workload(changes=changes, deliveries=deliveries, cloudtrail=entries, settings=settings, start=br.START)


def _add(changes: list[br.Change], deliveries: list[dict[str, Any]], entries: list[dict[str, Any]],
         rng: random.Random, delays: br.Delays, human: bool, resource: str, called: datetime,
         notified: datetime, delivery: dict[str, Any], entry: dict[str, Any]) -> None:
    changes.append(br.Change(resource, called, human, notified))
    deliveries += [delivery, br.stream_delivery(entry["record"], called, rng, delays)]
    entries.append(entry)


def _ingress(i: int, actor: Any, called: datetime, region: str, rng: random.Random, delays: br.Delays,
             account: str) -> tuple[str, datetime, datetime, dict[str, Any], dict[str, Any]]:
    from mcd_tools.story import ingress

    group = f"sg-0{i:016x}"
    notified = timedelta(seconds=rng.uniform(*delays.config))
    delivery, entry = ingress(group, f"bench-{i}-sg", actor, called, f"10.{i % 250}.0.0/16", 443 + i % 1000,
                              delay=timedelta(seconds=rng.uniform(*delays.history)),
                              capture_after=notified - br.CAPTURED_BEFORE, account=account, region=region)
    return group, called, called + notified, delivery, entry


def _iam_role(i: int, actor: Any, called: datetime, rng: random.Random,
              delays: br.Delays) -> tuple[str, datetime, datetime, dict[str, Any], dict[str, Any]]:
    """A managed policy attached to a role: global, recorded in us-east-1, its item named by the role's id."""
    from mcd_tools.story import ACCOUNT, config_item, trail

    role, role_id = f"app-{i:05d}-role", f"AROABENCH{i:011d}"
    policy = f"arn:aws:iam::{ACCOUNT}:policy/app-{i:05d}-policy"
    notified = timedelta(seconds=rng.uniform(*delays.config))
    delivery = config_item(
        "AWS::IAM::Role", role_id, role, f"arn:aws:iam::{ACCOUNT}:role/{role}", called + notified - br.CAPTURED_BEFORE,
        {"Configuration.AttachedManagedPolicies.0": {"previousValue": None, "changeType": "CREATE",
                                                     "updatedValue": {"policyName": f"app-{i:05d}-policy",
                                                                      "policyArn": policy}}},
        {"roleName": role, "roleId": role_id, "path": "/"}, region="global")
    entry = trail(actor, called, "AttachRolePolicy", "iam.amazonaws.com", {"roleName": role, "policyArn": policy},
                  [("AWS::IAM::Role", role), ("AWS::IAM::Policy", policy)],
                  delay=timedelta(seconds=rng.uniform(*delays.history)), region="us-east-1")
    return role_id, called, called + notified, delivery, entry


def _background(i: int, called: datetime, region: str, rng: random.Random, delays: br.Delays) -> dict[str, Any]:
    """A service's write that changes nothing Config reports here: Auto Scaling tagging its instances."""
    from mcd_tools.story import ACCOUNT, Actor, trail

    role = f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
    autoscaling = Actor({
        "type": "AssumedRole", "principalId": "AROAEXAMPLEAUTOSCALING:AutoScaling", "accountId": ACCOUNT,
        "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/AWSServiceRoleForAutoScaling/AutoScaling",
        "sessionContext": {"sessionIssuer": {
            "type": "Role", "principalId": "AROAEXAMPLEAUTOSCALING", "accountId": ACCOUNT, "userName":
            "AWSServiceRoleForAutoScaling",
            "arn": role}},
        "invokedBy": "autoscaling.amazonaws.com"}, "autoscaling.amazonaws.com", "autoscaling.amazonaws.com", "")
    instance = f"i-0{i:016x}"
    return trail(autoscaling, called, "CreateTags", "ec2.amazonaws.com",
                 {"resourcesSet": {"items": [{"resourceId": instance}]},
                  "tagSet": {"items": [{"key": "aws:autoscaling:groupName", "value": "web"}]}},
                 [("AWS::EC2::Instance", instance)], delay=timedelta(seconds=rng.uniform(*delays.history)),
                 region=region)


def shape_figures(shape: Shape, stream: bool, seed: int = 15) -> dict[str, Any]:
    """One shape's figures in one mode."""
    run = br.replay(build(shape, seed), stream=stream)
    told = br.told(run)
    prefix = f"workload_{shape.name}_" + ("stream_" if stream else "")
    figures: dict[str, Any] = {
        f"{prefix}lookup_calls_per_change": round(run.lookup_calls / max(1, len(told)), 3),
        f"{prefix}time_to_tell_p95_s": round(br.percentile(br._seconds(
            [t.after(t.change.called_at) for t in told]), 0.95), 1),
        f"{prefix}wrong_verdicts": sum(1 for t in told if not t.right),
    }
    if shape.quiet_person:
        quiet = told[shape.changes]
        figures[f"{prefix}quiet_tell_s"] = None if quiet.after(quiet.change.called_at) is None else round(
            quiet.after(quiet.change.called_at) or 0.0, 1)
    if shape.one_person:
        figures[f"{prefix}slack_messages"] = len(run.slack)
    return figures


def figures(shapes: tuple[Shape, ...] = SHAPES, seed: int = 15) -> dict[str, Any]:
    """Every shape, without the stream and with it."""
    found: dict[str, Any] = {}
    for shape in shapes:
        for stream in (False, True):
            found.update(shape_figures(shape, stream, seed))
    return found
