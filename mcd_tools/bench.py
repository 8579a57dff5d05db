"""``make bench``: what the detector costs and how fast it tells, each figure beside its comparison.

Figures come from the real pipeline (replays on the simulated clock, with the file-backed
``LookupEvents`` counting calls) or from timings taken side by side in one run (the CPU ratio to
``json.loads``), because these machines are shared and noisy. Results: a table on stdout and
``out/bench.json``.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
import tracemalloc
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from chalicelib.core.timeutil import parse_time

ROOT = Path(__file__).resolve().parents[1]
GOALS = {
    "lookup_calls_per_change_n50": ("<=", 0.25), "lookup_calls_per_change_n200": ("<=", 0.25),
    "decide_minutes_after_visible_max": ("<=", 5), "time_to_tell_p95_s": ("<=", 90),
    "slack_messages_burst_n200": ("<=", 3), "max_posts_per_second_per_destination": ("<=", 1),
    "notifications_per_s": (">=", 2000), "cost_vs_json_loads": ("<=", 10), "cold_start_extra_ms": ("<=", 50),
    "batch_peak_rss_mb": ("<=", 128), "idle_tick_aws_calls": ("<=", 7),
}


def _visible_at(scenario: dict[str, Any]) -> dict[str, datetime]:
    return {e["record"]["eventID"]: parse_time(e["visible_at"]) for e in scenario["cloudtrail"]}  # type: ignore[misc]


def bursts() -> dict[str, float]:
    from mcd_tools.replay import run
    from mcd_tools.story import burst_story

    figures: dict[str, float] = {}
    worst_decide = 0.0
    for n in (10, 50, 200):
        scenario = burst_story(n)
        result = run(scenario)
        figures[f"lookup_calls_per_change_n{n}"] = round(result.lookup_calls / n, 3)
        figures[f"naive_lookup_calls_per_change_n{n}"] = round(naive_calls(scenario) / n, 3)
        visible = _visible_at(scenario)
        for outcome in result.outcomes:
            times = [visible[e] for e in outcome.get("event_ids") or [] if e in visible]
            if times:
                worst_decide = max(worst_decide, (parse_time(outcome["at"]) - max(times)).total_seconds() / 60)
        if n == 200:
            figures["slack_messages_burst_n200"] = len(result.slack)
            figures["max_posts_per_second_per_destination"] = max_posts_per_second(result.slack)
    figures["decide_minutes_after_visible_max"] = round(worst_decide, 2)
    return figures


def naive_calls(scenario: dict[str, Any]) -> int:
    """The proof of concept's method: one ``ResourceType`` lookup per item, 5 minutes before capture."""
    from chalicelib.core.model import ConfigChange
    from chalicelib.parsing.config_notifications import parse_config_message
    from mcd_tools.fake_cloudtrail import FakeCloudTrail, entries_from_scenario

    trail = FakeCloudTrail(entries_from_scenario(scenario["cloudtrail"]), time.time)
    everything_visible = datetime(2100, 1, 1).timestamp()
    calls = 0
    for delivery in scenario["deliveries"]:
        for item in parse_config_message(delivery["message"], "bench"):
            if not isinstance(item, ConfigChange) or item.capture_time is None:
                continue
            request: dict[str, Any] = {
                "LookupAttributes": [{"AttributeKey": "ResourceType", "AttributeValue": item.resource_type}],
                "StartTime": (item.capture_time - timedelta(minutes=5)).timestamp(),
                "EndTime": item.capture_time.timestamp(), "MaxResults": 50}
            region = item.region if item.region and item.region != "global" else "us-east-1"
            while True:
                calls += 1
                page = trail.lookup(region, request, everything_visible)
                if not page.get("NextToken"):
                    break
                request["NextToken"] = page["NextToken"]
    return calls


def max_posts_per_second(messages: list[dict[str, Any]]) -> int:
    worst = 0
    by_dest: dict[str, list[float]] = {}
    for message in messages:
        by_dest.setdefault(message["destination"], []).append(parse_time(message["at"]).timestamp())
    for times in by_dest.values():
        times.sort()
        for i, start in enumerate(times):
            worst = max(worst, sum(1 for t in times[i:] if t - start < 1.0))
    return worst


def time_to_tell() -> dict[str, float]:
    """Seconds from (notification arrival, causing event visible) to the Slack post, CloudTrail lag 2–15 min."""
    from mcd_tools.replay import run
    from mcd_tools.story import burst_story

    samples: list[float] = []
    for seed in range(4):
        scenario = burst_story(24, humans=6, seed=100 + seed, min_delay=2, max_delay=15)
        result = run(scenario)
        visible = _visible_at(scenario)
        arrival = {json.loads(d["message"])["configurationItem"]["resourceId"]: parse_time(d["at"])
                   for d in scenario["deliveries"]}
        for outcome in result.outcomes:
            if outcome["kind"] != "manual_change":
                continue
            posted = [parse_time(m["at"]) for m in result.slack if outcome["outcome_id"] in json.dumps(m["payload"])]
            if not posted:
                continue
            ready = max([arrival[outcome["resource_id"]], *(visible[e] for e in outcome["event_ids"])])
            samples.append((min(posted) - ready).total_seconds())
    samples.sort()
    return {"time_to_tell_p50_s": round(statistics.median(samples), 1),
            "time_to_tell_p95_s": round(samples[min(len(samples) - 1, int(0.95 * len(samples)))], 1),
            "time_to_tell_samples": len(samples)}


def cpu() -> dict[str, float]:
    """parse → attribute (events in memory) → trust → render, per notification, against ``json.loads``."""
    from chalicelib.core import attribution
    from chalicelib.core.change_outcomes import build_outcome
    from chalicelib.core.jobs import LookupJob, change_key
    from chalicelib.core.model import ConfigChange, TrailEvent
    from chalicelib.parsing.cloudtrail import parse_lookup_event
    from chalicelib.parsing.config_notifications import parse_config_message
    from chalicelib.slack.render import render
    from mcd_tools.fake_cloudtrail import _shape, entries_from_scenario
    from mcd_tools.story import burst_story

    scenario = burst_story(200)
    trusted = tuple(scenario["settings"]["trusted_principals"])
    messages = [d["message"].encode() for d in scenario["deliveries"]]
    events = [parse_lookup_event(_shape(e), "bench") for e in entries_from_scenario(scenario["cloudtrail"])]
    events = [e for e in events if isinstance(e, TrailEvent)]
    index: dict[str, list[TrailEvent]] = {}  # what LookupEvents(ResourceName=...) would answer
    for event in events:
        for resource in event.indexed_resources:
            index.setdefault(resource.name or "", []).append(event)
    now = parse_time(scenario["end"])
    keys_of: dict[str, frozenset[str]] = {}

    def pipeline() -> None:
        for raw in messages:
            for item in parse_config_message(raw.decode(), "bench"):
                if not isinstance(item, ConfigChange):
                    continue
                candidates = index.get(item.resource_id or "", ())
                found = attribution.attribute(item, candidates, previous_capture=None,
                                              lookback=timedelta(minutes=20), trusted_patterns=trusted,
                                              trust_aws_services=True, keys_of=keys_of)
                job = LookupJob(change=item, change_key=change_key(item), arrived_at=now)
                outcome = build_outcome(job, "manual_change" if found is None or found.verdict is None
                                        else "suppressed", now, found)
                if outcome.kind == "manual_change":
                    render([outcome])

    def baseline() -> None:
        for raw in messages:
            json.loads(raw)

    pipeline_s = _best_of(pipeline)
    baseline_s = _best_of(baseline)
    return {"notifications_per_s": round(len(messages) / pipeline_s),
            "cost_vs_json_loads": round(pipeline_s / baseline_s, 2)}


def _best_of(fn: Any, runs: int = 7) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def cold_start() -> dict[str, float]:
    """Import time of ``app`` on top of ``boto3`` (``-X importtime``, fresh interpreters, median of 7)."""
    extras, boto = [], []
    for _ in range(7):
        proc = subprocess.run([sys.executable, "-X", "importtime", "-c", "import boto3, app"], cwd=ROOT,
                              capture_output=True, text=True, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
        cumulative = {}
        for line in proc.stderr.splitlines():
            parts = [p.strip() for p in line.split("|")]
            if len(parts) == 3 and parts[1].isdigit() and not parts[2].startswith(" "):
                cumulative[parts[2]] = int(parts[1])
        extras.append(cumulative.get("app", 0) / 1000)
        boto.append(cumulative.get("boto3", 0) / 1000)
    return {"cold_start_extra_ms": round(statistics.median(extras), 1),
            "boto3_import_ms": round(statistics.median(boto), 1)}


def memory() -> dict[str, float]:
    """Peak memory of one dispatch run over a full batch of the largest (oversized) notifications."""
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across exec.
    code = ("import sys; sys.path.insert(0, '.'); import boto3, app; boto3.client('sqs', region_name='us-east-1');"
            "print([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0])")
    base_kb = int(subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                                 text=True).stdout.strip() or 0)
    peak = _dispatch_peak_bytes()
    return {"batch_peak_rss_mb": round(base_kb / 1024 + peak / 2**20, 1),
            "runtime_baseline_rss_mb": round(base_kb / 1024, 1), "batch_extra_mb": round(peak / 2**20, 1)}


def _dispatch_peak_bytes() -> int:
    import gzip

    import time_machine
    from moto import mock_aws

    from chalicelib import bootstrap
    from chalicelib.adapters.aws import ClientFactory
    from chalicelib.stages.dispatch import dispatch
    from chalicelib.stages.ingest import ingest
    from mcd_tools.sandbox import create_resources, fake_credentials
    from mcd_tools.story import ingress, terraform

    fake_credentials("eu-west-1")
    start = datetime.fromisoformat("2024-11-29T10:00:00+00:00")
    with mock_aws(), time_machine.travel(start, tick=False):
        factory = ClientFactory("eu-west-1")
        env = create_resources(factory.client, "eu-west-1", prefix="mcd-bench")
        deps = bootstrap.Deps(env, factory)
        bootstrap.install(deps)
        s3 = factory.client("s3")
        s3.create_bucket(Bucket="config-bucket", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        cidrs = [f"10.{i // 250}.{i % 250}.0/24" for i in range(3000)]  # a ~250 KB item, the SNS limit's size
        for i in range(10):
            delivery, _ = ingress(f"sg-0{i:016x}", f"big-{i}", terraform(), start, "0.0.0.0/0", 443)
            full = json.loads(delivery["message"])
            permission = full["configurationItem"]["configuration"]["ipPermissions"][0]
            permission["ipv4Ranges"] = [{"cidrIp": c} for c in cidrs]
            key = f"AWSLogs/oversized/{i}.json.gz"
            s3.put_object(Bucket="config-bucket", Key=key, Body=gzip.compress(json.dumps(full).encode()))
            item = full["configurationItem"]
            summary = {"messageType": "OversizedConfigurationItemChangeNotification", "recordVersion": "1.0",
                       "notificationCreationTime": item["configurationItemCaptureTime"],
                       "configurationItemSummary": {k: item[k] for k in (
                           "awsAccountId", "awsRegion", "resourceType", "resourceId", "resourceName", "ARN",
                           "configurationItemCaptureTime", "configurationStateId", "configurationItemStatus",
                           "configurationItemVersion")} | {"changeType": "UPDATE"},
                       "s3DeliverySummary": {"s3BucketLocation": f"config-bucket/{key}", "errorCode": None}}
            ingest({"Records": [{"Sns": {"MessageId": f"m{i}", "TopicArn": "", "Message": json.dumps(summary)}}]}, deps)
        tracemalloc.start()
        counts = dispatch(deps)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        bootstrap.reset()
        assert counts["changes"] == 10, counts
    return peak


def idle() -> dict[str, float]:
    """AWS calls and wall time of one empty tick of each scheduled function."""
    import time_machine
    from moto import mock_aws

    from chalicelib import bootstrap
    from chalicelib.adapters.aws import ClientFactory
    from chalicelib.stages.dead_letters import dl_retry
    from chalicelib.stages.deliver import slack_send
    from chalicelib.stages.dispatch import dispatch
    from chalicelib.stages.lookup import lookup
    from mcd_tools.sandbox import create_resources, fake_credentials

    fake_credentials("eu-west-1")
    calls: list[str] = []
    with mock_aws(), time_machine.travel(datetime.fromisoformat("2024-11-29T10:00:00+00:00"), tick=False):
        factory = ClientFactory("eu-west-1")
        env = create_resources(factory.client, "eu-west-1", prefix="mcd-idle", slack_secret_value="https://x")
        for service in ("sqs", "s3", "dynamodb", "ssm", "secretsmanager", "cloudtrail"):
            factory.client(service).meta.events.register("before-call.*.*",
                                                         lambda model, **_: calls.append(model.name))
        deps = bootstrap.Deps(env, factory)
        started = time.perf_counter()
        for stage in (dispatch, lookup, slack_send, dl_retry):
            stage(deps)
        wall = time.perf_counter() - started
    return {"idle_tick_aws_calls": len(calls), "idle_tick_receives": calls.count("ReceiveMessage"),
            "idle_tick_wall_ms": round(wall * 1000, 1)}


def main(argv: list[str] | None = None) -> int:
    figures: dict[str, Any] = {}
    for name, step in (("bursts", bursts), ("time to tell", time_to_tell), ("cpu", cpu),
                       ("cold start", cold_start), ("memory", memory), ("idle", idle)):
        started = time.perf_counter()
        figures.update(step())
        print(f"  measured {name} in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    out = ROOT / "out"
    out.mkdir(exist_ok=True)
    (out / "bench.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(f"{'figure':<42} {'value':>10}  goal")
    for key, value in figures.items():
        goal = GOALS.get(key)
        verdict = ""
        if goal:
            ok = value <= goal[1] if goal[0] == "<=" else value >= goal[1]
            verdict = f"{goal[0]} {goal[1]}  {'met' if ok else 'MISSED'}"
        print(f"{key:<42} {value:>10}  {verdict}")
    print("\nwritten: out/bench.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
