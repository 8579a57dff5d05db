"""``make bench``: what the detector costs and how fast it tells, each figure beside its comparison.

Figures come from the real pipeline (the stage functions replayed on the in-memory fakes on a simulated
clock, ``mcd_tools.bench_replay``, with the file-backed ``LookupEvents`` counting calls and the state table
metering DynamoDB's request units) or from timings taken side by side in one run (the CPU ratio to
``json.loads``, interleaved), because these machines are shared and noisy. The replays run in two
processes; the timings run alone afterwards. Results: a table on stdout and ``out/bench.json``.
"""

from __future__ import annotations

import ast
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from chalicelib.core.timeutil import parse_time
from mcd_tools import bench_early, bench_replay, bench_workloads

ROOT = Path(__file__).resolve().parents[1]
GOALS = {
    "lookup_calls_per_change_n50": ("<=", 0.25), "lookup_calls_per_change_n200": ("<=", 0.25),
    "decide_minutes_after_visible_max": ("<=", 5), "time_to_tell_p95_s": ("<=", 90),
    "slack_messages_burst_n200": ("<=", 3), "max_posts_per_second_per_destination": ("<=", 1),
    "stream_lookup_calls_per_change": ("<=", 0.05), "stream_evidence_to_decision_p95_s": ("<=", 60),
    "time_to_tell_after_visible_p95_s_n5000": ("<=", 300), "lookup_calls_per_change_n5000": ("<=", 0.25),
    "stream_only_wrong_verdicts": ("<=", 0),
    "stream_wrong_verdicts": ("<=", 0), "history_wrong_verdicts": ("<=", 0),
    "notifications_per_s": (">=", 2000), "cost_vs_json_loads": ("<=", 10), "cold_start_extra_ms": ("<=", 50),
    "batch_peak_rss_mb": ("<=", 128), "lookup_batch_peak_rss_mb": ("<=", 512), "idle_tick_aws_calls": ("<=", 7),
    "org_wrong_verdicts": ("<=", 0), "org_history_wrong_verdicts": ("<=", 0),
    "org_lookup_calls_per_change": ("<=", 0.05),
}
SERIES = (10, 50, 200, 1000, 5000)
"""Burst sizes of the scale series (``bench_replay.series_point``), each with the stream and without."""
BUDGET_FROM_N = 5000
BUDGET_CPU_S = 100.0
"""CPU seconds a replay of the largest burst may use before it is reported over budget (make bench: minutes)."""
WORKERS = 2
LARGE_LOOKUP_JOBS = 150
"""More than one of the lookup stage's chunks (100 jobs): its peak is a full chunk of large jobs."""
LARGE_ITEM_CIDRS = 6000
"""A security group this large makes a job near ``jobs.MAX_JOB_BYTES`` (180 KB), the largest a job carries."""


# --------------------------------------------------------------------------------------------
# The naive baseline: the proof of concept's method


POC_FIRST_LOOK = timedelta(minutes=16)  # its dispatcher's one-minute tick, then Lookup_SQS's 15-minute delay
POC_SECOND_LOOK = timedelta(minutes=31)  # an empty answer goes to Lookup_SQS_DL: 15 minutes more
POC_WINDOWS = (timedelta(minutes=5), timedelta(minutes=10))


def naive_calls(scenario: dict[str, Any]) -> int:
    """``LookupEvents`` calls of the proof of concept's method (research notes on the PoC, §1.4) for the scenario's
    Config notifications: per item, one ``ResourceType`` lookup over the 5 minutes before its capture, one page
    (no ``NextToken``), in the function's own region, 16 minutes after the notification arrived; an empty answer
    is asked once more from the dead-letter queue 15 minutes later, over 10 minutes."""
    from chalicelib.core.model import ConfigChange
    from chalicelib.parsing.config_notifications import parse_config_message
    from mcd_tools.fake_cloudtrail import FakeCloudTrail, entries_from_scenario

    trail = FakeCloudTrail(entries_from_scenario(scenario["cloudtrail"]), time.time)
    region = scenario.get("home_region") or "us-east-1"
    calls = 0
    for delivery in scenario["deliveries"]:
        if delivery.get("via", "sns") != "sns":
            continue
        for item in parse_config_message(delivery["message"], "bench"):
            if not isinstance(item, ConfigChange) or item.capture_time is None:
                continue
            arrived = parse_time(delivery.get("at")) or item.capture_time
            for after, window in zip((POC_FIRST_LOOK, POC_SECOND_LOOK), POC_WINDOWS, strict=True):
                calls += 1
                request = {"LookupAttributes": [{"AttributeKey": "ResourceType", "AttributeValue": item.resource_type}],
                           "StartTime": (item.capture_time - window).timestamp(),
                           "EndTime": item.capture_time.timestamp(), "MaxResults": 50}
                if trail.lookup(region, request, (arrived + after).timestamp())["Events"]:
                    break
    return calls


def _scenario_of(load: bench_replay.Workload) -> dict[str, Any]:
    return {"deliveries": load.deliveries, "cloudtrail": load.cloudtrail, "home_region": "eu-west-1"}


# --------------------------------------------------------------------------------------------
# Replays: the scale series, stream before history, time to tell


def max_posts_per_second(messages: list[dict[str, Any]]) -> int:
    """The most messages (``{"at", "destination"}``) one destination got within one second."""
    return bench_replay.max_posts_per_second([(parse_time(m["at"]).timestamp(), m["destination"])  # type: ignore[union-attr]
                                              for m in messages])


def replay_tasks() -> list[tuple[Callable[..., Any], tuple[Any, ...]]]:
    """Every replay, the longest first, so two processes finish together."""
    big = [(bench_replay.series_point, (n, stream, BUDGET_CPU_S if n >= BUDGET_FROM_N else None))
           for n in sorted(SERIES, reverse=True) if n >= 1000 for stream in (True, False)]
    small = [(bench_replay.series_point, (n, stream, None)) for n in SERIES if n < 1000 for stream in (True, False)]
    return [*big, *[(bench_replay.comparison_run, (mode,)) for mode in bench_replay.MODES],
            (lookup_memory, (LARGE_LOOKUP_JOBS,)), *[(bench_replay.tell_samples, (100 + s,)) for s in range(4)],
            *[(bench_replay.org_run, (bench_replay.ORG_ACCOUNTS, bench_replay.ORG_REGIONS, stream))
              for stream in (True, False)],
            *[(bench_workloads.shape_figures, (shape, stream)) for shape in bench_workloads.SHAPES
              for stream in (False, True)],
            (bench_early.figures, ()),
            *small]


def replays(workers: int = WORKERS) -> dict[str, Any]:
    tasks = replay_tasks()
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no state shared with this one
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        futures = [pool.submit(_timed_task, fn, args) for fn, args in tasks]
        results = []
        for (fn, args), future in zip(tasks, futures, strict=True):
            result, cpu_s = future.result()
            print(f"    {fn.__name__}{args}: {cpu_s:.1f} s CPU", file=sys.stderr)
            results.append((fn.__name__, result))
    return assemble(results)


def _timed_task(fn: Callable[..., Any], args: tuple[Any, ...]) -> tuple[Any, float]:
    started = time.process_time()
    return fn(*args), time.process_time() - started


def assemble(results: list[tuple[str, Any]]) -> dict[str, Any]:
    """The replays' results as ``bench.json``'s figures, with the naive baseline computed beside them."""
    from mcd_tools.story import burst_story

    figures: dict[str, Any] = {}
    series: dict[str, Any] = {}
    comparison: dict[str, dict[str, Any]] = {}
    samples: list[float] = []
    for name, result in results:
        if name == "series_point":
            series.update(result)
        elif name == "comparison_run":
            comparison[next(m for m in bench_replay.MODES if next(iter(result)).startswith(f"{m}_")
                            and not (m == "stream" and next(iter(result)).startswith("stream_only_")))] = result
        elif name == "tell_samples":
            samples += result
        else:
            figures.update(result)
    for n in SERIES:
        for key in ("lookup_calls_per_change", "time_to_tell_p95_s", "attribution_cpu_ms_per_change"):
            for prefix in ("", "stream_"):
                if f"{prefix}{key}_n{n}" in series:
                    figures[f"{prefix}{key}_n{n}"] = series.pop(f"{prefix}{key}_n{n}")
        if n <= 1000 and f"lookup_calls_per_change_n{n}" in figures:  # the fake's scans: seconds at N=5000
            figures[f"naive_lookup_calls_per_change_n{n}"] = round(naive_calls(burst_story(n)) / n, 3)
    decided = [series.pop(k) for k in list(series) if k.startswith("decide_minutes_after_visible_max_n")]
    posts = [series.pop(k) for k in list(series) if k.startswith("max_posts_per_second_n")]
    figures["decide_minutes_after_visible_max"] = max(decided, default=0.0)
    figures["max_posts_per_second_per_destination"] = max(posts, default=0)
    if "slack_messages_n200" in series:
        figures["slack_messages_burst_n200"] = series.pop("slack_messages_n200")
    for key in [k for k in series if k.startswith("slack_messages_n")]:
        series.pop(key)
    figures.update(series)  # wrong verdicts, over-budget notes
    if len(comparison) == len(bench_replay.MODES):
        figures.update(bench_replay.comparison_figures(comparison))
        figures["naive_lookup_calls_per_change"] = round(
            naive_calls(_scenario_of(bench_replay.comparison_workload(bench_replay.COMPARISON_N)))
            / bench_replay.COMPARISON_N, 3)
    if samples:
        samples.sort()
        figures.update({"time_to_tell_p50_s": round(statistics.median(samples), 1),
                        "time_to_tell_p95_s": round(bench_replay.percentile(samples, 0.95), 1),
                        "time_to_tell_samples": len(samples)})
    return figures


# --------------------------------------------------------------------------------------------
# CPU: the whole pipeline, interleaved with json.loads


def cpu(runs: int = 7) -> dict[str, float]:
    """ingest → dispatch → lookup (one sweep, the real event pool) → slack_send for the N=200 burst, every call
    visible, on the fakes; each run beside ``json.loads`` of the same notifications, the ratio's median."""
    from mcd_tools.story import burst_story

    load = bench_replay.from_scenario(burst_story(200), seed=200)
    notifications = [d for d in load.deliveries if d["via"] == "sns"]
    raw = [d["message"].encode() for d in notifications]
    pairs = [(pipeline_cpu_s(load, notifications), _json_loads_s(raw)) for _ in range(runs)]
    return {"notifications_per_s": round(len(raw) / min(p for p, _ in pairs)),
            "cost_vs_json_loads": round(statistics.median(p / b for p, b in pairs), 1),
            "json_loads_us_per_notification": round(1e6 * min(b for _, b in pairs) / len(raw), 1)}


def pipeline_cpu_s(load: bench_replay.Workload, notifications: list[dict[str, Any]]) -> float:
    """CPU seconds of the stages over ``notifications``, less the fake ``LookupEvents`` and the state's meter."""
    from chalicelib.adapters.memory import ManualClock
    from chalicelib.stages.deliver import slack_send
    from chalicelib.stages.dispatch import dispatch
    from chalicelib.stages.lookup import lookup
    from mcd_tools.fake_cloudtrail import FakeCloudTrail, entries_from_scenario

    clock = ManualClock(load.start)
    trail = FakeCloudTrail(entries_from_scenario(load.cloudtrail), clock)
    answers = bench_replay._Timed(lambda region, request: trail.lookup(region, request, clock()))
    deps = bench_replay.world(load, clock, answers)
    settled = max(parse_time(e["visible_at"]) for e in load.cloudtrail) + timedelta(minutes=16)  # type: ignore[type-var]
    with bench_replay._listening(clock):
        started = time.process_time()
        for delivery in notifications:
            clock.advance(max(0.0, parse_time(delivery["at"]).timestamp() - clock()))  # type: ignore[union-attr]
            bench_replay._deliver(deps, delivery)
        clock.advance(max(0.0, settled.timestamp() - clock()))
        dispatched, looked, sent = dispatch(deps), lookup(deps), slack_send(deps)
        used = time.process_time() - started - answers.seconds - deps.state.metering_s
    assert dispatched["changes"] == looked["decided"] == len(notifications), (dispatched, looked)
    assert sent["posted"] >= 1, sent
    return used


def _json_loads_s(raw: list[bytes], repeat: int = 10) -> float:
    started = time.process_time()
    for _ in range(repeat):
        for message in raw:
            json.loads(message)
    return (time.process_time() - started) / repeat


# --------------------------------------------------------------------------------------------
# Cold start: per handler


COLD_START_RUNS = 3
IAM_SERVICES = {"sqs": "sqs", "dynamodb": "dynamodb", "s3": "s3", "cloudtrail": "cloudtrail",
                "secretsmanager": "secretsmanager", "ssm": "ssm", "sts": "sts", "cloudwatch": "cloudwatch"}
_COLD_START = """
import json, sys, time
started = time.perf_counter()
import boto3
loaded = time.perf_counter()
import app
from chalicelib import bootstrap
{imports}
imported = time.perf_counter()
deps = bootstrap.deps(None)
for service in {services!r}:
    deps.clients.client(service)
done = time.perf_counter()
print(json.dumps({{"boto3": loaded - started, "imports": imported - loaded, "clients": done - imported}}))
"""


def handlers() -> dict[str, tuple[list[str], list[str]]]:
    """Per handler of ``app.py``: the imports its body makes, and the AWS services its role grants (its clients)."""
    found: dict[str, tuple[list[str], list[str]]] = {}
    for node in ast.walk(ast.parse((ROOT / "app.py").read_text())):
        if isinstance(node, ast.FunctionDef) and node.decorator_list:
            imports = [ast.unparse(n) for n in ast.walk(node) if isinstance(n, ast.ImportFrom | ast.Import)]
            found[node.name] = (imports, _services(node.name))
    return found


def _services(function: str) -> list[str]:
    """The services whose clients the function creates on an ordinary run, read from its generated role: the
    settings come from SSM by default (an S3 grant for ``settings/*`` alone is the other way to keep them), and
    ``sts`` is for other accounts' lookups only."""
    policy = ROOT / ".chalice" / "policies" / "dev" / f"{function}.json"
    if not policy.exists():
        return []
    services: set[str] = set()
    for statement in json.loads(policy.read_text())["Statement"]:
        actions = [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
        resources = [statement["Resource"]] if isinstance(statement["Resource"], str) else statement["Resource"]
        for action in actions:
            service = action.split(":")[0]
            if service == "s3" and all(r.endswith("/settings/*") for r in resources):
                continue
            if service in IAM_SERVICES and service != "sts":
                services.add(IAM_SERVICES[service])
    return sorted(services)


def cold_start(runs: int = COLD_START_RUNS) -> dict[str, float]:
    """Per handler, in fresh interpreters without ``.pyc`` (as on Lambda): ``app``, the stage modules the handler
    imports and the boto3 clients it creates (``_services``), on top of importing ``boto3``; the median of
    ``runs``. Handlers that import and create the same (the three of ``direct``) share one measurement."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "MCD_STAGE": "bench", "MCD_ACCOUNT_ID": "123456789012",
           "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    env.pop("AWS_PROFILE", None)
    kinds = {name: (tuple(imports), tuple(services)) for name, (imports, services) in handlers().items()}
    measured: dict[tuple[tuple[str, ...], tuple[str, ...]], list[dict[str, float]]] = {k: [] for k in kinds.values()}
    for _ in range(runs):  # round robin: a busy moment spreads over every handler
        for imports, services in measured:
            code = _COLD_START.format(imports="\n".join(imports), services=list(services))
            proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=env,
                                  check=True)
            measured[(imports, services)].append(json.loads(proc.stdout.strip().splitlines()[-1]))

    def ms(samples: list[dict[str, float]], *parts: str) -> float:
        return round(1000 * statistics.median(sum(s[p] for p in parts) for s in samples), 1)

    per_handler = {name: ms(measured[kind], "imports", "clients") for name, kind in kinds.items()}
    worst = max(per_handler, key=per_handler.__getitem__)
    return {"cold_start_extra_ms": per_handler[worst], "cold_start_worst_handler": worst,
            "cold_start_imports_ms_worst": ms(measured[kinds[worst]], "imports"),
            "cold_start_clients_ms_worst": ms(measured[kinds[worst]], "clients"),
            "boto3_import_ms": ms([s for v in measured.values() for s in v], "boto3"),
            **{f"cold_start_ms_{name}": value for name, value in per_handler.items()}}


# --------------------------------------------------------------------------------------------
# Memory


def memory() -> dict[str, float]:
    """Peak memory of one dispatch run over a full batch of the largest (oversized) notifications."""
    base_kb = _runtime_baseline_kb()
    peak = _dispatch_peak_bytes()
    return {"batch_peak_rss_mb": round(base_kb / 1024 + peak / 2**20, 1),
            "runtime_baseline_rss_mb": round(base_kb / 1024, 1), "batch_extra_mb": round(peak / 2**20, 1)}


def _runtime_baseline_kb() -> int:
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across exec.
    code = ("import sys; sys.path.insert(0, '.'); import boto3, app; boto3.client('sqs', region_name='us-east-1');"
            "print([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0])")
    return int(subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                              text=True).stdout.strip() or 0)


def lookup_memory(jobs: int = LARGE_LOOKUP_JOBS) -> dict[str, float]:
    """Peak memory of one lookup run over ``jobs`` jobs of the largest items a job carries (security groups of
    ``LARGE_ITEM_CIDRS`` CIDRs, each as dispatch queues it), all decided in that run, beside the function's
    memory."""
    base_kb = _runtime_baseline_kb()
    peak, job_bytes = _lookup_peak_bytes(jobs)
    return {"lookup_batch_jobs": jobs, "lookup_job_kb": round(job_bytes / 1024, 1),
            "lookup_batch_peak_rss_mb": round(base_kb / 1024 + peak / 2**20, 1),
            "lookup_batch_extra_mb": round(peak / 2**20, 1),
            "lookup_memory_mb": round(bench_replay.lambda_memory_gb("lookup") * 1024)}


def _lookup_peak_bytes(jobs: int, cidrs: int = LARGE_ITEM_CIDRS) -> tuple[int, int]:
    """The traced peak of one lookup run over ``jobs`` large jobs, and the size of one job."""
    from chalicelib.adapters.memory import ManualClock
    from chalicelib.core.jobs import LookupJob, change_key
    from chalicelib.core.model import ConfigChange
    from chalicelib.parsing.config_notifications import parse_config_message
    from chalicelib.stages.lookup import lookup
    from mcd_tools.fake_cloudtrail import FakeCloudTrail, entries_from_scenario
    from mcd_tools.story import ACCOUNT, TERRAFORM_ROLE, ingress, terraform

    start = datetime.fromisoformat("2024-11-29T10:00:00+00:00")
    ranges = [{"cidrIp": f"10.{i // 250 % 250}.{i % 250}.{i // 62500}/32"} for i in range(cidrs)]
    entries, queued = [], []
    for i in range(jobs):
        delivery, entry = ingress(f"sg-0{i:016x}", f"big-{i}", terraform(), start + timedelta(seconds=i),
                                  "10.0.0.0/8", 443, delay=timedelta(minutes=3))
        full = json.loads(delivery["message"])
        full["configurationItem"]["configuration"]["ipPermissions"][0]["ipv4Ranges"] = ranges
        full["configurationItemDiff"]["changedProperties"]["Configuration.IpPermissions.1"]["updatedValue"][
            "ipv4Ranges"] = ranges
        (item,) = parse_config_message(json.dumps(full), "bench")
        assert isinstance(item, ConfigChange) and item.capture_time is not None
        queued.append(LookupJob(change=item, change_key=change_key(item), arrived_at=item.capture_time).to_json())
        entries.append(entry)
    load = bench_replay.Workload([], [], entries, {"trusted_principals": [
        f"arn:aws:iam::{ACCOUNT}:role/ci/{TERRAFORM_ROLE}"]}, start)
    clock = ManualClock(start + timedelta(minutes=30))
    trail = FakeCloudTrail(entries_from_scenario(entries), clock)
    deps = bench_replay.world(load, clock, lambda region, request: trail.lookup(region, request, clock()))
    job_bytes = len(json.dumps(queued[0]))
    for start_at in range(0, len(queued), 10):
        deps.queue("lookup_queue").send_many(queued[start_at:start_at + 10])
    del queued
    with bench_replay._listening(clock):
        tracemalloc.start()
        counts = lookup(deps)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert counts["decided"] == jobs, counts
    return peak, job_bytes


def _dispatch_peak_bytes() -> int:
    import gzip

    import time_machine
    from moto import mock_aws

    from chalicelib import bootstrap
    from chalicelib.adapters.aws import ClientFactory
    from chalicelib.stages.dispatch import dispatch
    from chalicelib.stages.ingest import ingest
    from mcd_tools.sandbox import create_resources, fake_credentials
    from mcd_tools.story import ACCOUNT, ingress, terraform

    fake_credentials("eu-west-1")
    start = datetime.fromisoformat("2024-11-29T10:00:00+00:00")
    with mock_aws(), time_machine.travel(start, tick=False) as traveller:
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
            key = (f"AWSLogs/{ACCOUNT}/Config/eu-west-1/2024/11/29/OversizedChangeNotification/"
                   f"AWS::EC2::SecurityGroup/sg-0{i:016x}/{ACCOUNT}_Config_eu-west-1_ChangeNotification_{i}.json.gz")
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
        traveller.shift(15 * 60)  # past the jobs' delay
        jobs = factory.client("sqs").receive_message(QueueUrl=env.lookup_queue_url, MaxNumberOfMessages=10)
        bodies = [json.loads(m["Body"]) for m in jobs.get("Messages", [])]
        assert [b["change"]["source"].startswith("s3://") for b in bodies] == [True] * 10, "full items, from S3"
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


STEPS: tuple[tuple[str, str], ...] = (("replays", "replays"), ("cpu", "cpu"), ("cold start", "cold_start"),
                                      ("memory", "memory"), ("idle", "idle"))
COMPARED = ("call_to_post_p50_s", "call_to_post_p95_s", "notified_to_post_p95_s", "notified_to_alert_p95_s",
            "call_to_suppression_p95_s",
            "notified_to_suppression_p95_s", "lookup_calls_per_change", "ddb_table_requests_per_change",
            "wrong_verdicts", "untold")


def verdict(key: str, value: Any) -> str:
    """``"<= 5  met"``, ``"<= 5  MISSED"``, ``"<= 5  not measured"``, or ``""`` for a figure without a goal."""
    goal = GOALS.get(key)
    if goal is None:
        return ""
    if not isinstance(value, int | float):
        return f"{goal[0]} {goal[1]}  not measured"
    ok = value <= goal[1] if goal[0] == "<=" else value >= goal[1]
    return f"{goal[0]} {goal[1]}  {'met' if ok else 'MISSED'}"


def side_by_side(figures: dict[str, Any]) -> list[str]:
    """The stream's figures beside today's path (and the stream alone), and the scale series by N."""
    lines = [f"{'with the stream, and without (one run)':<32} {'stream':>10} {'history':>10} {'stream only':>12}"]
    for key in COMPARED:
        row = [figures.get(f"{mode}_{key}") for mode in ("stream", "history", "stream_only")]
        if any(v is not None for v in row):
            lines.append(f"{key:<32} " + " ".join(f"{_shown(v):>{w}}" for v, w in zip(row, (10, 10, 12), strict=True)))
    lines.append("")
    lines.append(f"{'N':>6} {'lookups/change':>15} {'(stream)':>9} {'tell p95 s':>11} {'(stream)':>9} "
                 f"{'lookup CPU ms':>14} {'(stream)':>9} {'naive calls':>12}")
    for n in SERIES:
        row = [figures.get(f"{prefix}{key}_n{n}") for key in ("lookup_calls_per_change", "time_to_tell_p95_s",
                                                               "attribution_cpu_ms_per_change")
               for prefix in ("", "stream_")]
        lines.append(f"{n:>6} " + " ".join(f"{_shown(v):>{w}}" for v, w in zip(row, (15, 9, 11, 9, 14, 9),
                                                                                 strict=True))
                     + f" {_shown(figures.get(f'naive_lookup_calls_per_change_n{n}')):>12}")
    if "org_accounts" in figures:
        lines += ["", *org_lines(figures)]
    return lines


ORG_COMPARED = ("call_to_post_p95_s", "notified_to_alert_p95_s", "lookup_calls_per_change",
                "lookup_calls_per_change_max_account", "accounts_looked_up", "wrong_verdicts")


def org_lines(figures: dict[str, Any]) -> list[str]:
    """The organisation's replay (issue 16), with the stream and without, and what the stream costs a month."""
    title = f"an organisation: {figures['org_accounts']} accounts x {figures.get('org_regions')} regions"
    lines = [f"{title:<40} {'stream':>10} {'history':>10}"]
    for key in ORG_COMPARED:
        row = [figures.get(f"org_{key}"), figures.get(f"org_history_{key}")]
        lines.append(f"{key:<40} " + " ".join(f"{_shown(v):>10}" for v in row))
    lines.append(f"{'stream and index, USD a month':<40} {_shown(figures.get('org_monthly_cost_usd')):>10}")
    return lines


def _shown(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:g}" if isinstance(value, float) else str(value)


def main(argv: list[str] | None = None) -> int:
    figures: dict[str, Any] = {}
    began = time.perf_counter()
    for label, name in STEPS:
        started = time.perf_counter()
        figures.update(globals()[name]())
        print(f"  measured {label} in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    out = ROOT / "out"
    out.mkdir(exist_ok=True)
    (out / "bench.json").write_text(json.dumps(figures, indent=2) + "\n")
    notes = {k: v for k, v in figures.items() if isinstance(v, str) and len(v) > 10}
    print(f"{'figure':<48} {'value':>10}  goal")
    for key, value in figures.items():
        if key not in notes:
            print(f"{key:<48} {_shown(value):>10}  {verdict(key, value)}".rstrip())
    for key, note in notes.items():
        print(f"{key}: {note}")
    print()
    print("\n".join(side_by_side(figures)))
    print(f"\nwritten: out/bench.json ({time.perf_counter() - began:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
