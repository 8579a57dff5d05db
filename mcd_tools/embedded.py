"""An embedded AWS for the demo: a moto server on 127.0.0.1, the real stack, and ``chalice deploy``.

The server runs in this process (a thread), so the replay's simulated clock also governs its SQS
delays and visibility timeouts. ``chalice deploy --stage local`` runs as a subprocess against it,
from a copy of the project under ``out/demo-project``, as ``scripts/deploy.py`` runs it: the functions
derive the stack's names themselves and the Config topic comes through ``MCD_CONFIG_TOPIC``. The copy
keeps Chalice's packaging cache, so only the first demo waits for it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from chalicelib.bootstrap import Environment
from chalicelib.stage_config import TOPIC_VARIABLE

ROOT = Path(__file__).resolve().parents[1]
PROJECT_COPY = ROOT / "out" / "demo-project"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def embedded_aws(region: str) -> Iterator[str]:
    """A moto server on 127.0.0.1 for the duration; every boto3 client in this process points at it."""
    import logging
    import warnings

    from moto.server import ThreadedMotoServer

    from mcd_tools.sandbox import fake_credentials

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    logging.getLogger("moto").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message="Tried to parse .* not supported by moto")
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    saved = {k: os.environ.get(k) for k in ("AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION")}
    fake_credentials(region)
    os.environ["AWS_ENDPOINT_URL"] = url
    try:
        yield url
    finally:
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def env_name(output_key: str) -> str:
    """``McdDispatchDlqUrl`` → ``MCD_DISPATCH_DLQ_URL``."""
    return "MCD_" + re.sub(r"(?<!^)(?=[A-Z])", "_", output_key[3:]).upper()


def deploy_stack(region: str, stage: str = "local") -> dict[str, str]:
    """Create the CloudFormation stack from ``infra/stack.yaml``; its outputs as environment variables.

    The template goes in as ``TemplateURL``, uploaded to the stage's deploy-artifacts bucket as
    ``scripts/deploy.py`` uploads it (it is over CloudFormation's TemplateBody limit). The stack's
    alarms that moto's CloudFormation skips are put afterwards (``put_missing_alarms``).
    """
    import boto3

    cfn = boto3.client("cloudformation", region_name=region)
    cfn.create_stack(StackName=f"mcd-{stage}", TemplateURL=upload_template(region, stage),
                     Parameters=[{"ParameterKey": "Stage", "ParameterValue": stage}])
    cfn.get_waiter("stack_create_complete").wait(StackName=f"mcd-{stage}", WaiterConfig={"Delay": 1})
    stack = cfn.describe_stacks(StackName=f"mcd-{stage}")["Stacks"][0]
    put_missing_alarms(region, stage)
    return {env_name(o["OutputKey"]): o["OutputValue"] for o in stack.get("Outputs", [])}


def upload_template(region: str, stage: str = "local") -> str:
    """``infra/stack.yaml`` put into ``mcd-<stage>-deploy-<account>-<region>`` (created if absent); its URL."""
    import boto3

    account = boto3.client("sts", region_name=region).get_caller_identity()["Account"]
    s3 = boto3.client("s3", region_name=region)
    bucket = f"mcd-{stage}-deploy-{account}-{region}"
    if bucket not in {b["Name"] for b in s3.list_buckets().get("Buckets", [])}:
        location = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
        s3.create_bucket(Bucket=bucket, **location)
    s3.put_object(Bucket=bucket, Key="templates/stack.yaml", Body=(ROOT / "infra" / "stack.yaml").read_bytes())
    return f"https://{bucket}.s3.{region}.amazonaws.com/templates/stack.yaml"


def put_missing_alarms(region: str, stage: str = "local") -> list[str]:
    """Put each alarm the stack defines that CloudWatch does not have; the names put.

    A shim for moto: its CloudFormation (5.2.5) skips ``AWS::CloudWatch::Alarm`` ("No Moto
    CloudFormation support"), so the stack's alarms are put here, property for property as the
    template has them (the CloudFormation properties are PutMetricAlarm's parameters). On real AWS
    the stack creates them, and so does a moto that learns to: then nothing is missing and nothing
    is put.
    """
    import boto3

    from mcd_tools.stack_template import alarm_requests, load_template

    cloudwatch = boto3.client("cloudwatch", region_name=region)
    existing = {a["AlarmName"] for page in cloudwatch.get_paginator("describe_alarms")
                .paginate(AlarmNamePrefix=f"mcd-{stage}-", AlarmTypes=["MetricAlarm"])
                for a in page["MetricAlarms"]}
    identity = boto3.client("sts", region_name=region).get_caller_identity()
    partition = identity["Arn"].split(":")[1]
    wanted = alarm_requests(load_template(), stage, region, identity["Account"], partition)
    missing = [name for name in wanted if name not in existing]
    for name in missing:
        cloudwatch.put_metric_alarm(**wanted[name])
    return missing


def environment_from(variables: dict[str, str], region: str) -> Environment:
    """The stage environment with the stack's outputs as explicit ``MCD_*`` overrides (the in-process run)."""
    return Environment.from_env({**variables, "AWS_REGION": region})


def chalice_deploy(variables: dict[str, str], region: str, stage: str = "local") -> tuple[bool, str]:
    """``chalice deploy`` of a project copy subscribed to the stack's Config topic; (succeeded, summary)."""
    PROJECT_COPY.mkdir(parents=True, exist_ok=True)
    for name in ("app.py", "requirements.txt"):
        shutil.copy2(ROOT / name, PROJECT_COPY / name)
    shutil.rmtree(PROJECT_COPY / "chalicelib", ignore_errors=True)
    shutil.copytree(ROOT / "chalicelib", PROJECT_COPY / "chalicelib",
                    ignore=shutil.ignore_patterns("__pycache__", "devtools"))
    (PROJECT_COPY / ".chalice").mkdir(exist_ok=True)
    # What an earlier run deployed is gone with its embedded AWS: a record of it would have chalice delete it.
    shutil.rmtree(PROJECT_COPY / ".chalice" / "deployed", ignore_errors=True)
    shutil.rmtree(PROJECT_COPY / ".chalice" / "policies", ignore_errors=True)  # each function's IAM policy
    if (ROOT / ".chalice" / "policies").is_dir():
        shutil.copytree(ROOT / ".chalice" / "policies", PROJECT_COPY / ".chalice" / "policies")
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    config["stages"][stage]["environment_variables"].pop("MCD_LOCAL_ROUTES", None)  # for `chalice local` only
    (PROJECT_COPY / ".chalice" / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    chalice = Path(sys.executable).with_name("chalice")
    env = {**os.environ, "AWS_DEFAULT_REGION": region, TOPIC_VARIABLE: variables[env_name("McdConfigTopic")]}
    proc = subprocess.run([str(chalice), "deploy", "--stage", stage], cwd=PROJECT_COPY, capture_output=True,
                          text=True, env=env, timeout=600)
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    return proc.returncode == 0, "\n".join(lines[-12:])


def deployed_resources(region: str) -> dict[str, Any]:
    """What exists in the embedded AWS: functions, rules, queues, subscriptions (for the demo's printout)."""
    import boto3

    return {
        "functions": sorted(f["FunctionName"] for f in boto3.client("lambda", region_name=region)
                            .list_functions().get("Functions", [])),
        "rules": sorted(r["Name"] for r in boto3.client("events", region_name=region).list_rules().get("Rules", [])),
        "queues": sorted(u.rsplit("/", 1)[-1] for u in boto3.client("sqs", region_name=region)
                         .list_queues().get("QueueUrls", [])),
        "subscriptions": [s["Protocol"] + " → " + s["Endpoint"].rsplit(":", 1)[-1]
                          for s in boto3.client("sns", region_name=region).list_subscriptions()
                          .get("Subscriptions", [])],
    }
