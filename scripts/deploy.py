#!/usr/bin/env python3
"""Deploy or tear down one stage of the detector: the supporting stack, then the Chalice app.

    python scripts/deploy.py deploy   --stage dev [--config-topic-arn ARN] [--parameter KEY=VALUE ...]
                                      [--regions R1,R2 | --no-regions]
    python scripts/deploy.py teardown --stage dev [--yes]

``deploy`` creates or updates the CloudFormation stack ``mcd-<stage>`` from ``infra/stack.yaml``,
checks that the stack's outputs are the names the functions derive from stage, account and region
(``chalicelib/stage_config.py``), then runs ``chalice deploy --stage <stage>`` with the stack's
Config topic as ``MCD_CONFIG_TOPIC`` in chalice's environment (``app.py`` subscribes ``ingest`` to
it). Nothing is written into the working tree. Last, it deploys ``mcd-<stage>-region`` from
``infra/region.yaml`` in every other enabled region (or the ``--regions`` given), forwarding their
Config changes, API calls and sign-ins to the home region's default bus, and prints each enabled
region that is not covered (the check ``mcd doctor`` makes). ``teardown`` deletes those stacks first.

``teardown`` runs ``chalice delete --stage <stage>``, empties the archive bucket (every version),
deletes the stack and then the stage's deploy-artifacts bucket. Tearing down ``prod`` needs ``--yes``
(or typing the stage name at a prompt).

A template larger than CloudFormation's TemplateBody limit (51,200 bytes) is uploaded to the stage's
deploy-artifacts bucket ``mcd-<stage>-deploy-<account>-<region>`` and passed as ``TemplateURL``; the
bucket is created on first use (private, encrypted, versioned, TLS only) and is not part of the stack,
so there is no chicken-and-egg.

Only the standard library and boto3. ``AWS_ENDPOINT_URL`` is honoured (botocore reads it), so the
whole thing runs against a moto server: ``AWS_ENDPOINT_URL=http://127.0.0.1:5000``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # for chalicelib.stage_config (standard library only)

from chalicelib.core.partitions import DNS_SUFFIX  # noqa: E402
from chalicelib.stage_config import (  # noqa: E402
    ACCOUNT_VARIABLE,
    ASYNC_FUNCTIONS,
    ASYNC_MAX_EVENT_AGE_SECONDS,
    ASYNC_RETRY_ATTEMPTS,
    TOPIC_VARIABLE,
    StageNames,
)
from chalicelib.stages.shared.queues import ASYNC_FAILED_QUEUE  # noqa: E402

TEMPLATE = ROOT / "infra" / "stack.yaml"
CONFIG = ROOT / ".chalice" / "config.json"
STAGES = ("dev", "prod", "local")
PROTECTED_STAGES = ("prod",)

# Each stack output and the environment variable that would override the name the functions derive.
OUTPUT_TO_ENV: dict[str, str] = {
    "McdDispatchQueueUrl": "MCD_DISPATCH_QUEUE_URL",
    "McdDispatchDlqUrl": "MCD_DISPATCH_DLQ_URL",
    "McdLookupQueueUrl": "MCD_LOOKUP_QUEUE_URL",
    "McdLookupDlqUrl": "MCD_LOOKUP_DLQ_URL",
    "McdSlackQueueUrl": "MCD_SLACK_QUEUE_URL",
    "McdSlackDlqUrl": "MCD_SLACK_DLQ_URL",
    "McdArchiveBucket": "MCD_ARCHIVE_BUCKET",
    "McdStateTable": "MCD_STATE_TABLE",
    "McdSlackSecret": "MCD_SLACK_SECRET",
    "McdSettings": "MCD_SETTINGS",
    "McdConfigTopic": "MCD_CONFIG_TOPIC",
    "McdAsyncFailedQueueUrl": "MCD_ASYNC_FAILED_QUEUE_URL",
}
NO_UPDATES = "No updates are to be performed"
TEMPLATE_BODY_LIMIT = 51_200  # bytes: CloudFormation's cap on TemplateBody; a larger template goes through S3
WAITER = {"Delay": 5, "MaxAttempts": 720}  # up to an hour


class DeployError(RuntimeError):
    """A failure worth one readable line, not a traceback."""


def say(message: str) -> None:
    print(f"==> {message}", flush=True)


def stack_name(stage: str) -> str:
    return f"mcd-{stage}"


# ------------------------------------------------------------------------------------------------
# Pure parts (tested in tests/test_infra.py)


def stage_environment(config: dict[str, Any], stage: str) -> dict[str, str]:
    """The stage's environment variables in ``.chalice/config.json``; refuses a stage it does not have."""
    stages = config.get("stages") or {}
    if stage not in stages:
        raise DeployError(f".chalice/config.json has no stage {stage!r} (stages: {', '.join(sorted(stages))})")
    return dict((stages[stage] or {}).get("environment_variables") or {})


def derived_outputs(names: StageNames, config_topic_arn: str = "") -> dict[str, str]:
    """The outputs the stack must have for ``names``: what the functions derive without being told.

    ``config_topic_arn`` is the stack's ``ConfigTopicArn`` parameter (an existing topic), if given.
    """
    return {
        "McdDispatchQueueUrl": names.queue_url("dispatch_queue"),
        "McdDispatchDlqUrl": names.queue_url("dispatch_dlq"),
        "McdLookupQueueUrl": names.queue_url("lookup_queue"),
        "McdLookupDlqUrl": names.queue_url("lookup_dlq"),
        "McdSlackQueueUrl": names.queue_url("slack_queue"),
        "McdSlackDlqUrl": names.queue_url("slack_dlq"),
        "McdArchiveBucket": names.archive_bucket,
        "McdStateTable": names.state_table,
        "McdSlackSecret": names.slack_secret,
        "McdSettings": names.settings_ref,
        "McdConfigTopic": config_topic_arn or names.config_topic_arn,
        "McdAsyncFailedQueueUrl": names.queue_url(ASYNC_FAILED_QUEUE),
    }


def _comparable(output: str, value: str) -> str:
    """A queue URL compares by its path (``/account/name``): emulators answer with hosts of their own."""
    return "/" + value.split("://", 1)[-1].split("/", 1)[-1] if output.endswith(("QueueUrl", "DlqUrl")) else value


def check_outputs(stage: str, outputs: dict[str, str], expected: dict[str, str]) -> None:
    """Refuse a stack whose outputs are missing or differ from the derived names (the functions would miss them)."""
    missing = sorted(name for name in OUTPUT_TO_ENV if not outputs.get(name))
    if missing:
        raise DeployError(f"stack {stack_name(stage)} lacks the outputs {', '.join(missing)}")
    differing = [f"{name} is {outputs[name]}, derived {expected[name]}" for name in OUTPUT_TO_ENV
                 if _comparable(name, outputs[name]) != _comparable(name, expected[name])]
    if differing:
        raise DeployError(f"stack {stack_name(stage)} does not have the names the functions derive "
                          f"(chalicelib/stage_config.py): {'; '.join(differing)}")


def stack_names(stack: dict[str, Any], stage: str, region: str) -> tuple[StageNames, str]:
    """The names derived for the stack's account (read from its id, an ARN) and region; its ``ConfigTopicArn``."""
    arn = str(stack.get("StackId") or "").split(":")
    if len(arn) < 6 or arn[0] != "arn":
        raise DeployError(f"stack {stack_name(stage)} has no readable StackId: {stack.get('StackId')!r}")
    parameters = {p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters") or []}
    return StageNames(stage, arn[4], region, arn[1] or "aws"), parameters.get("ConfigTopicArn", "")


def template_parameters(template: str) -> list[str]:
    """The names under the template's top-level ``Parameters:`` (two-space indented keys)."""
    names: list[str] = []
    inside = False
    for line in template.splitlines():
        if line and not line[0].isspace() and not line.startswith("#"):
            inside = line.rstrip() == "Parameters:"
            continue
        match = re.match(r"^  ([A-Za-z0-9]+):\s*$", line)
        if inside and match:
            names.append(match.group(1))
    return names


def stack_parameters(stage: str, given: dict[str, str], previous: dict[str, str] | None,
                     declared: list[str]) -> list[dict[str, str]]:
    """Parameters for create/update: ``Stage``, what was given, and the stack's current value of the rest.

    Current values are passed explicitly rather than as ``UsePreviousValue`` (same effect for these
    plain parameters, and moto 5.2.5 cannot resolve ``UsePreviousValue`` for a defaulted parameter);
    parameters the template no longer declares are dropped.
    """
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise DeployError(f"infra/stack.yaml has no parameter {', '.join(unknown)} (it has {', '.join(declared)})")
    values = {**{k: v for k, v in (previous or {}).items() if k in declared}, **given, "Stage": stage}
    return [{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()]


# ------------------------------------------------------------------------------------------------
# AWS


def session(region: str | None):
    import boto3

    sess = boto3.session.Session(region_name=region) if region else boto3.session.Session()
    if not sess.region_name:
        raise DeployError("no AWS region: pass --region or set AWS_REGION / AWS_DEFAULT_REGION")
    return sess


def describe_stack(cfn: Any, name: str) -> dict[str, Any] | None:
    from botocore.exceptions import ClientError

    try:
        return cfn.describe_stacks(StackName=name)["Stacks"][0]
    except ClientError as error:
        if "does not exist" in str(error):
            return None
        raise


def outputs_of(stack: dict[str, Any]) -> dict[str, str]:
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs") or []}


def print_failures(cfn: Any, name: str) -> None:
    try:
        events = cfn.describe_stack_events(StackName=name)["StackEvents"]
    except Exception:
        return
    for event in reversed(events[:50]):
        if event.get("ResourceStatus", "").endswith("FAILED"):
            reason = event.get("ResourceStatusReason", "")
            print(f"    {event['LogicalResourceId']}: {event['ResourceStatus']} {reason}")


def wait(cfn: Any, waiter: str, name: str) -> None:
    from botocore.exceptions import WaiterError

    try:
        cfn.get_waiter(waiter).wait(StackName=name, WaiterConfig=WAITER)
    except WaiterError as error:
        print_failures(cfn, name)
        raise DeployError(f"stack {name}: {error}") from None


def deploy_stack(cfn: Any, stage: str, given: dict[str, str],
                 upload: Callable[[str], str] | None = None) -> dict[str, str]:
    """Create or update ``mcd-<stage>``; returns its outputs.

    ``upload`` puts a template too large for TemplateBody somewhere CloudFormation reads it and returns
    its URL (``template_uploader``).
    """
    from botocore.exceptions import ClientError

    name = stack_name(stage)
    body = TEMPLATE.read_text()
    declared = template_parameters(body)
    stack_parameters(stage, given, None, declared)  # refuse unknown parameters before touching anything
    template = template_source(body, upload)
    existing = describe_stack(cfn, name)
    if existing and existing["StackStatus"] == "ROLLBACK_COMPLETE":
        # A failed first create leaves an empty stack that can only be deleted.
        say(f"stack {name} failed to create earlier (ROLLBACK_COMPLETE, no resources left); deleting it first")
        cfn.delete_stack(StackName=name)
        wait(cfn, "stack_delete_complete", name)
        existing = None
    tags = [{"Key": "mcd-stage", "Value": stage}]
    if existing is None:
        say(f"creating stack {name} from {TEMPLATE.relative_to(ROOT)}")
        params = stack_parameters(stage, given, None, declared)
        cfn.create_stack(StackName=name, **template, Parameters=params, Tags=tags, OnFailure="ROLLBACK")
        wait(cfn, "stack_create_complete", name)
        say(f"stack {name} created")
    else:
        previous = {p["ParameterKey"]: p.get("ParameterValue", "") for p in existing.get("Parameters") or []}
        say(f"updating stack {name} (now {existing['StackStatus']})")
        try:
            params = stack_parameters(stage, given, previous, declared)
            cfn.update_stack(StackName=name, **template, Parameters=params, Tags=tags)
        except ClientError as error:
            if NO_UPDATES not in str(error):
                raise
            say(f"stack {name} is up to date")
        else:
            wait(cfn, "stack_update_complete", name)
            say(f"stack {name} updated")
    stack = describe_stack(cfn, name)
    assert stack is not None
    return outputs_of(stack)


def empty_bucket(s3: Any, bucket: str) -> int:
    """Delete every object version and delete marker; returns how many were deleted."""
    from botocore.exceptions import ClientError

    deleted = 0
    try:
        pages = s3.get_paginator("list_object_versions").paginate(Bucket=bucket)
        for page in pages:
            keys = [{"Key": v["Key"], "VersionId": v["VersionId"]}
                    for v in (page.get("Versions") or []) + (page.get("DeleteMarkers") or [])]
            for start in range(0, len(keys), 1000):
                chunk = keys[start:start + 1000]
                result = s3.delete_objects(Bucket=bucket, Delete={"Objects": chunk, "Quiet": True})
                if result.get("Errors"):
                    first = result["Errors"][0]
                    raise DeployError(f"cannot delete {first.get('Key')} from {bucket}: {first.get('Message')}")
                deleted += len(chunk)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "NoSuchBucket":
            return deleted
        raise
    return deleted


# ------------------------------------------------------------------------------------------------
# The deploy-artifacts bucket: a template over the TemplateBody limit is passed as TemplateURL


def artifacts_bucket(stage: str, account: str, region: str) -> str:
    return f"mcd-{stage}-deploy-{account}-{region}"


def template_source(body: str, upload: Callable[[str], str] | None) -> dict[str, str]:
    """``TemplateBody`` when the template fits CloudFormation's limit, else ``TemplateURL`` of an uploaded copy."""
    if len(body.encode()) <= TEMPLATE_BODY_LIMIT:
        return {"TemplateBody": body}
    if upload is None:
        raise DeployError(f"infra/stack.yaml is over {TEMPLATE_BODY_LIMIT:,} bytes and there is nowhere to upload it")
    return {"TemplateURL": upload(body)}


def template_url(bucket: str, key: str, region: str, partition: str = "aws") -> str:
    return f"https://{bucket}.s3.{region}.{DNS_SUFFIX.get(partition, 'amazonaws.com')}/{key}"


def caller_account(sess: Any) -> tuple[str, str]:
    """(account, partition) of the credentials in use."""
    identity = sess.client("sts").get_caller_identity()
    return identity["Account"], identity["Arn"].split(":")[1]


def ensure_artifacts_bucket(s3: Any, bucket: str, region: str, account: str, stage: str) -> None:
    """Create the bucket if absent; (re)apply its settings: private, SSE-S3, versioned, expiring uploads."""
    from botocore.exceptions import ClientError

    try:
        s3.head_bucket(Bucket=bucket, ExpectedBucketOwner=account)
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code"))
        if code not in ("404", "NoSuchBucket", "NotFound"):
            raise DeployError(f"bucket {bucket} exists but this account ({account}) cannot use it: {code}") from None
        say(f"creating the deploy-artifacts bucket {bucket}")
        location = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
        s3.create_bucket(Bucket=bucket, ObjectOwnership="BucketOwnerEnforced", **location)
        s3.get_waiter("bucket_exists").wait(Bucket=bucket, ExpectedBucketOwner=account)
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [{
        "ID": "expire-uploaded-templates", "Status": "Enabled", "Filter": {"Prefix": ""},
        "Expiration": {"Days": 30}, "NoncurrentVersionExpiration": {"NoncurrentDays": 1},
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}}]})
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": "mcd-stage", "Value": stage}]})


def tls_only_policy(bucket: str, partition: str) -> str:
    arn = f"arn:{partition}:s3:::{bucket}"
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
        "Resource": [arn, f"{arn}/*"], "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]})


def template_uploader(sess: Any, stage: str) -> Callable[[str], str]:
    """Uploads a template to the stage's deploy-artifacts bucket (created if absent); returns its URL.

    The key is the template's hash: an unchanged template is not uploaded again. The TLS-only bucket
    policy is put last (moto ignores its condition and then refuses every object request).
    """

    def upload(body: str) -> str:
        account, partition = caller_account(sess)
        region, s3 = sess.region_name, sess.client("s3")
        bucket = artifacts_bucket(stage, account, region)
        ensure_artifacts_bucket(s3, bucket, region, account, stage)
        key = f"templates/stack-{hashlib.sha256(body.encode()).hexdigest()[:16]}.yaml"
        if not s3.list_objects_v2(Bucket=bucket, Prefix=key, ExpectedBucketOwner=account).get("KeyCount"):
            s3.put_object(Bucket=bucket, Key=key, Body=body.encode(), ContentType="text/yaml",
                          ExpectedBucketOwner=account)
        say(f"template is {len(body.encode()):,} bytes, over the TemplateBody limit: from s3://{bucket}/{key}")
        s3.put_bucket_policy(Bucket=bucket, Policy=tls_only_policy(bucket, partition), ExpectedBucketOwner=account)
        return template_url(bucket, key, region, partition)

    return upload


def delete_artifacts_bucket(sess: Any, stage: str) -> None:
    """Empty (every version) and delete the stage's deploy-artifacts bucket, if it exists."""
    from botocore.exceptions import ClientError

    account, _ = caller_account(sess)
    s3, bucket = sess.client("s3"), artifacts_bucket(stage, account, sess.region_name)
    count = empty_bucket(s3, bucket)
    try:
        s3.delete_bucket(Bucket=bucket, ExpectedBucketOwner=account)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") not in ("NoSuchBucket", "404"):
            raise
        return
    say(f"deleted the deploy-artifacts bucket {bucket} ({count} object version(s))")


# ------------------------------------------------------------------------------------------------
# Other regions: ``mcd-<stage>-region`` (infra/region.yaml) forwards each enabled region's Config
# changes, API calls and sign-ins to the home region's default bus (docs/deployment.md, step 6)

REGION_TEMPLATE = ROOT / "infra" / "region.yaml"


def region_stack_name(stage: str) -> str:
    return f"mcd-{stage}-region"


def region_names(text: str) -> list[str]:
    """``--regions eu-central-1,us-east-1``: the region names, in order."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    bad = [name for name in names if not re.fullmatch(r"[a-z]+(-[a-z]+)+-\d+", name)]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"expected region names separated by commas, got {text!r}")
    return names


def add_region_options(parser: argparse.ArgumentParser) -> None:
    choice = parser.add_mutually_exclusive_group()
    choice.add_argument("--regions", type=region_names, metavar="R1,R2",
                        help="forward from these regions only (default: every enabled region but the home region)")
    choice.add_argument("--no-regions", action="store_true", help="leave the other regions' forwarding stacks alone")


def forwarding_regions(enabled: list[str], home: str, chosen: list[str] | None) -> list[str]:
    """Where ``mcd-<stage>-region`` goes: the ``chosen`` regions, or every enabled one; never the home region."""
    unknown = [region for region in chosen or [] if region not in enabled]
    if unknown:
        raise DeployError(f"--regions names regions this account has not enabled: {', '.join(unknown)}")
    return [region for region in dict.fromkeys(enabled if chosen is None else chosen) if region != home]


def start_region_stack(cfn: Any, stage: str, parameters: dict[str, str]) -> str | None:
    """Create or update ``mcd-<stage>-region`` in ``cfn``'s region, not waiting; the waiter to wait on, if any."""
    from botocore.exceptions import ClientError

    name = region_stack_name(stage)
    existing = describe_stack(cfn, name)
    if existing and existing["StackStatus"] == "ROLLBACK_COMPLETE":  # a failed first create: delete, then create
        cfn.delete_stack(StackName=name)
        wait(cfn, "stack_delete_complete", name)
        existing = None
    request = {"StackName": name, "TemplateBody": REGION_TEMPLATE.read_text(), "Capabilities": ["CAPABILITY_NAMED_IAM"],
               "Parameters": [{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
               "Tags": [{"Key": "mcd-stage", "Value": stage}]}
    if existing is None:
        cfn.create_stack(**request, OnFailure="ROLLBACK")
        return "stack_create_complete"
    try:
        cfn.update_stack(**request)
    except ClientError as error:
        if NO_UPDATES not in str(error):
            raise
        return None
    return "stack_update_complete"


def deploy_regions(sess: Any, names: StageNames, regions: list[str]) -> list[str]:
    """Deploy ``mcd-<stage>-region`` in ``regions``, all at once; the regions where it failed."""
    from botocore.exceptions import BotoCoreError, ClientError

    name, failed, started = region_stack_name(names.stage), [], {}
    say(f"stack {name} ({REGION_TEMPLATE.relative_to(ROOT)}) in {len(regions)} region(s), forwarding to {names.region}")
    parameters = {"Stage": names.stage, "HomeRegion": names.region, "HomeAccount": names.account}
    for region in regions:
        cfn = sess.client("cloudformation", region_name=region)
        try:
            started[region] = (cfn, start_region_stack(cfn, names.stage, parameters))
        except (DeployError, ClientError, BotoCoreError) as error:
            print(f"    {region}: {error}")
            failed.append(region)
    for region, (cfn, waiter) in started.items():
        try:
            if waiter:
                wait(cfn, waiter, name)
        except DeployError as error:
            print(f"    {region}: {error}")
            failed.append(region)
    return sorted(failed)


def check_regions(sess: Any, names: StageNames, config_topic: str) -> None:
    """The deploy-time check, ``mcd doctor``'s: each enabled region that does not forward or record is printed."""
    from mcd_tools.doctor import Stage, other_regions, render

    clients: dict[tuple[str, str], Any] = {}

    def client(service: str, where: str | None = None) -> Any:
        key = (service, where or names.region)
        return clients.get(key) or clients.setdefault(key, sess.client(service, region_name=key[1]))

    say(f"the other enabled regions, as mcd doctor --stage {names.stage} sees them:")
    print("".join(f"    {line}\n" for line in render(other_regions(client, Stage(names, config_topic))).splitlines()))


def forward_other_regions(sess: Any, args: argparse.Namespace, names: StageNames, config_topic: str) -> None:
    """Deploy the forwarding stacks (unless ``--no-regions``), print the regions left uncovered."""
    from mcd_tools.doctor import enabled_regions

    failed = []
    if not args.no_regions:
        enabled = enabled_regions(sess.client("ec2"), names.region)
        failed = deploy_regions(sess, names, forwarding_regions(enabled, names.region, args.regions))
    check_regions(sess, names, config_topic)
    if failed:
        raise DeployError(f"stack {region_stack_name(names.stage)} failed in {', '.join(failed)}: "
                          "those regions' changes do not reach the detector")


def remove_other_regions(sess: Any, stage: str) -> None:
    """Delete ``mcd-<stage>-region`` wherever it exists among the enabled regions."""
    from mcd_tools.doctor import enabled_regions

    name, deleting = region_stack_name(stage), []
    for region in enabled_regions(sess.client("ec2"), sess.region_name):
        cfn = sess.client("cloudformation", region_name=region)
        if describe_stack(cfn, name) is not None:
            cfn.delete_stack(StackName=name)
            deleting.append((region, cfn))
    for _region, cfn in deleting:
        wait(cfn, "stack_delete_complete", name)
    say(f"stack {name} deleted in {', '.join(r for r, _ in deleting)}" if deleting else f"no stack {name} anywhere")


# ------------------------------------------------------------------------------------------------
# On-failure destinations: an event an asynchronous function failed on goes to the async-failed queue
# (``dl_retry`` runs it again or keeps it), never lost after Lambda's retries. Chalice cannot configure
# them, so this runs after ``chalice deploy``. Lambda sends with the function's own role, which must
# allow ``sqs:SendMessage`` on the queue (the functions' policies in ``.chalice/`` do).


def async_invoke_config(queue_arn: str) -> dict[str, Any]:
    """The asynchronous invocation settings of every asynchronous function (Lambda's retries, then the queue)."""
    return {"MaximumRetryAttempts": ASYNC_RETRY_ATTEMPTS, "MaximumEventAgeInSeconds": ASYNC_MAX_EVENT_AGE_SECONDS,
            "DestinationConfig": {"OnFailure": {"Destination": queue_arn}}}


def configure_async_destinations(lambda_client: Any, names: StageNames) -> list[str]:
    """Point each deployed asynchronous function's failures at the stage's async-failed queue; the functions
    configured (one not deployed, such as ``config_event`` when turned off, is skipped)."""
    from botocore.exceptions import ClientError

    settings = async_invoke_config(names.queue_arn(ASYNC_FAILED_QUEUE))
    configured = []
    for function in ASYNC_FUNCTIONS:
        try:
            lambda_client.put_function_event_invoke_config(FunctionName=names.function_name(function), **settings)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                raise
            continue
        configured.append(names.function_name(function))
    say(f"failed asynchronous events go to {names.queue_name(ASYNC_FAILED_QUEUE)}: {', '.join(configured)}")
    return configured


# ------------------------------------------------------------------------------------------------
# The functions' log groups belong to the stack: one that already exists outside it would fail the deploy


def refuse_log_groups_outside_the_stack(sess: Any, stage: str) -> None:
    """Stop before CloudFormation fails on a function log group that exists but is not the stack's.

    Lambda or an older Chalice deploy (log_retention_in_days) created them; CloudFormation cannot create a
    log group of the same name, and the stack update would roll back.
    """
    prefix = f"/aws/lambda/mcd-{stage}-"
    pages = sess.client("logs").get_paginator("describe_log_groups").paginate(logGroupNamePrefix=prefix)
    existing = {group["logGroupName"] for page in pages for group in page.get("logGroups") or []}
    if not existing:
        return
    cfn = sess.client("cloudformation")
    owned = set()
    if describe_stack(cfn, stack_name(stage)):
        for page in cfn.get_paginator("list_stack_resources").paginate(StackName=stack_name(stage)):
            owned |= {r.get("PhysicalResourceId") for r in page["StackResourceSummaries"]
                      if r["ResourceType"] == "AWS::Logs::LogGroup"}
    outside = sorted(existing - owned)
    if outside:
        raise DeployError(
            f"the stack {stack_name(stage)} creates the functions' log groups, and these exist outside it: "
            f"{', '.join(outside)}. Delete them (aws logs delete-log-group --log-group-name NAME; their logs go "
            "with them) or import them into the stack, then deploy again (docs/deployment.md, step 3).")


# ------------------------------------------------------------------------------------------------
# Object Lock (ArchiveObjectLockDays): an archive still under retention cannot be emptied


def object_lock_days(s3: Any, bucket: str) -> int:
    """The bucket's default Object Lock retention in days; 0 without Object Lock or without the bucket."""
    from botocore.exceptions import ClientError

    try:
        config = s3.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("ObjectLockConfigurationNotFoundError", "NoSuchBucket"):
            return 0
        raise
    retention = (config.get("Rule") or {}).get("DefaultRetention") or {}
    days = int(retention.get("Days") or 0) + 365 * int(retention.get("Years") or 0)
    return days if config.get("ObjectLockEnabled") == "Enabled" else 0


def retained_until(s3: Any, bucket: str, days: int) -> datetime | None:
    """When the default retention of the bucket's newest object version ends (None: the bucket is empty)."""
    newest = None
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for version in page.get("Versions") or []:
            newest = max(newest or version["LastModified"], version["LastModified"])
    return newest + timedelta(days=days) if newest else None


def refuse_locked_archive(sess: Any, stage: str, now: datetime | None = None) -> None:
    """Stop a teardown that could not empty the archive bucket, before it deletes anything, saying why."""
    stack = describe_stack(sess.client("cloudformation"), stack_name(stage))
    bucket = outputs_of(stack).get("McdArchiveBucket") if stack else None
    s3 = sess.client("s3")
    days = object_lock_days(s3, bucket) if bucket else 0
    until = retained_until(s3, bucket, days) if days else None
    if bucket and until and until > (now or datetime.now(timezone.utc)):
        raise DeployError(
            f"s3://{bucket} has S3 Object Lock (GOVERNANCE, {days} days): its newest object version is retained "
            f"until about {until:%Y-%m-%d %H:%M} UTC, and no version can be deleted before its retention ends, so "
            "teardown cannot empty the bucket and has deleted nothing. Run it again after that date, or first "
            "delete the versions as someone allowed s3:BypassGovernanceRetention "
            "(aws s3api delete-object --bypass-governance-retention ...); see docs/deployment.md, step 9.")


# ------------------------------------------------------------------------------------------------
# Chalice


def chalice_command() -> str:
    local = Path(sys.executable).parent / "chalice"
    found = str(local) if local.exists() else shutil.which("chalice")
    if not found:
        raise DeployError("chalice is not installed: run `make setup` (it lives in .venv/bin/chalice)")
    return found


def run_chalice(action: str, stage: str, region: str, config_topic: str | None = None) -> None:
    """Run chalice; ``config_topic`` becomes ``MCD_CONFIG_TOPIC``, which app.py reads when chalice loads it."""
    command = [chalice_command(), "--project-dir", str(ROOT), action, "--stage", stage]
    say(f"running {' '.join([Path(command[0]).name, *command[1:]])} (region {region})")
    env = {**os.environ, "AWS_DEFAULT_REGION": region, "AWS_REGION": region}
    if config_topic:
        env[TOPIC_VARIABLE] = config_topic
    result = subprocess.run(command, cwd=ROOT, env=env, check=False)
    if result.returncode != 0:
        raise DeployError(f"chalice {action} --stage {stage} failed (exit {result.returncode})")


# ------------------------------------------------------------------------------------------------
# Commands


def deploy(args: argparse.Namespace) -> None:
    sess = session(args.region)
    region = sess.region_name
    say(f"stage {args.stage}, region {region}" + (f", endpoint {os.environ['AWS_ENDPOINT_URL']}"
                                                  if os.environ.get("AWS_ENDPOINT_URL") else ""))
    stage_env = stage_environment(json.loads(CONFIG.read_text()), args.stage)
    if stage_env.get("MCD_LOCAL_ROUTES") == "1" and not os.environ.get("AWS_ENDPOINT_URL") and not args.stack_only:
        raise DeployError(f"stage {args.stage} carries the unauthenticated `chalice local` debug routes "
                          "(MCD_LOCAL_ROUTES=1): deploy it only to an emulator (AWS_ENDPOINT_URL) or with --stack-only")
    given = dict(args.parameter or [])
    if args.config_topic_arn is not None:
        given["ConfigTopicArn"] = args.config_topic_arn
    cfn = sess.client("cloudformation")
    refuse_log_groups_outside_the_stack(sess, args.stage)
    outputs = deploy_stack(cfn, args.stage, given, upload=template_uploader(sess, args.stage))
    stack = describe_stack(cfn, stack_name(args.stage))
    assert stack is not None
    names, topic_arn = stack_names(stack, args.stage, region)
    check_outputs(args.stage, outputs, derived_outputs(names, topic_arn))
    say(f"the stack's names are the ones the functions derive for account {names.account}, region {region}:")
    for output, variable in OUTPUT_TO_ENV.items():
        print(f"    {variable} = {outputs[output]}")
    if args.stack_only:
        say("--stack-only: not running chalice deploy")
        if args.stage == "local":
            print(f"    for chalice local, which has no Lambda context to name the account: "
                  f"export {ACCOUNT_VARIABLE}={names.account}")
        return
    run_chalice("deploy", args.stage, region, config_topic=outputs["McdConfigTopic"])
    configure_async_destinations(sess.client("lambda"), names)
    secret, settings = outputs["McdSlackSecret"], outputs["McdSettings"]
    say("deployed. If not done yet (docs/deployment.md):")
    print(f"    aws secretsmanager put-secret-value --secret-id {secret} --secret-string 'https://hooks.slack.com/...'")
    print(f"    aws ssm put-parameter --name {settings[4:]} --type String --overwrite --value file://settings.json")
    print(f"    point the AWS Config delivery channel at {outputs['McdConfigTopic']}")
    forward_other_regions(sess, args, names, outputs["McdConfigTopic"])


def confirm(stage: str, yes: bool) -> bool:
    if stage not in PROTECTED_STAGES or yes:
        return True
    if not sys.stdin.isatty():
        print(f"refusing to tear down {stage} without --yes", file=sys.stderr)
        return False
    answer = input(f"This deletes the {stage} functions, queues, state table, secret and every archived "
                   f"notification. Type '{stage}' to continue: ")
    return answer.strip() == stage


def teardown(args: argparse.Namespace) -> None:
    if not confirm(args.stage, args.yes):
        raise DeployError("teardown cancelled")
    sess = session(args.region)
    region = sess.region_name
    name = stack_name(args.stage)
    say(f"tearing down stage {args.stage}, region {region}" + (
        f", endpoint {os.environ['AWS_ENDPOINT_URL']}" if os.environ.get("AWS_ENDPOINT_URL") else ""))
    refuse_locked_archive(sess, args.stage)  # before anything is deleted
    remove_other_regions(sess, args.stage)
    if (ROOT / ".chalice" / "deployed" / f"{args.stage}.json").exists():
        run_chalice("delete", args.stage, region)
    else:
        say(f"no .chalice/deployed/{args.stage}.json: no Chalice deployment to delete")
    cfn = sess.client("cloudformation")
    stack = describe_stack(cfn, name)
    if stack is None:
        say(f"stack {name} does not exist")
        delete_artifacts_bucket(sess, args.stage)
        return
    bucket = outputs_of(stack).get("McdArchiveBucket")
    if bucket:
        say(f"emptying s3://{bucket} (every version)")
        count = empty_bucket(sess.client("s3"), bucket)
        say(f"deleted {count} object version(s) from {bucket}")
    say(f"deleting stack {name}")
    cfn.delete_stack(StackName=name)
    wait(cfn, "stack_delete_complete", name)
    say(f"stack {name} deleted")
    delete_artifacts_bucket(sess, args.stage)


def key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("deploy", help="create/update the stack, check its names, chalice deploy")
    down = commands.add_parser("teardown", help="chalice delete, empty the archive bucket, delete the stack "
                               "and the deploy-artifacts bucket")
    for sub in (up, down):
        sub.add_argument("--stage", required=True, choices=STAGES)
        sub.add_argument("--region", help="AWS region (default: AWS_REGION / AWS_DEFAULT_REGION / profile)")
    up.add_argument("--config-topic-arn", help="existing AWS Config SNS topic ('' to let the stack create one)")
    up.add_argument("--parameter", action="append", type=key_value, metavar="KEY=VALUE",
                    help="another stack parameter, e.g. ArchiveRetentionDays=730 (repeatable)")
    up.add_argument("--stack-only", action="store_true", help="deploy and check the stack only")
    add_region_options(up)
    down.add_argument("--yes", action="store_true", help="confirm tearing down a protected stage (prod)")
    args = parser.parse_args(argv)
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        (deploy if args.command == "deploy" else teardown)(args)
    except (DeployError, BotoCoreError, ClientError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
