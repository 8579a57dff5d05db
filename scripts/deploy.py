#!/usr/bin/env python3
"""Deploy or tear down one stage of the detector: the supporting stack, then the Chalice app.

    python scripts/deploy.py deploy   --stage dev [--config-topic-arn ARN] [--parameter KEY=VALUE ...]
    python scripts/deploy.py teardown --stage dev [--yes]

``deploy`` creates or updates the CloudFormation stack ``mcd-<stage>`` from ``infra/stack.yaml``,
checks that the stack's outputs are the names the functions derive from stage, account and region
(``chalicelib/stage_config.py``), then runs ``chalice deploy --stage <stage>`` with the stack's
Config topic as ``MCD_CONFIG_TOPIC`` in chalice's environment (``app.py`` subscribes ``ingest`` to
it). Nothing is written into the working tree.

``teardown`` runs ``chalice delete --stage <stage>``, empties the archive bucket (every version)
and deletes the stack. Tearing down ``prod`` needs ``--yes`` (or typing the stage name at a prompt).

Only the standard library and boto3. ``AWS_ENDPOINT_URL`` is honoured (botocore reads it), so the
whole thing runs against a moto server: ``AWS_ENDPOINT_URL=http://127.0.0.1:5000``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # for chalicelib.stage_config (standard library only)

from chalicelib.stage_config import ACCOUNT_VARIABLE, TOPIC_VARIABLE, StageNames  # noqa: E402

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
}
NO_UPDATES = "No updates are to be performed"
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


def deploy_stack(cfn: Any, stage: str, given: dict[str, str]) -> dict[str, str]:
    """Create or update ``mcd-<stage>``; returns its outputs."""
    from botocore.exceptions import ClientError

    name = stack_name(stage)
    body = TEMPLATE.read_text()
    declared = template_parameters(body)
    stack_parameters(stage, given, None, declared)  # refuse unknown parameters before touching anything
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
        cfn.create_stack(StackName=name, TemplateBody=body, Parameters=params, Tags=tags, OnFailure="ROLLBACK")
        wait(cfn, "stack_create_complete", name)
        say(f"stack {name} created")
    else:
        previous = {p["ParameterKey"]: p.get("ParameterValue", "") for p in existing.get("Parameters") or []}
        say(f"updating stack {name} (now {existing['StackStatus']})")
        try:
            params = stack_parameters(stage, given, previous, declared)
            cfn.update_stack(StackName=name, TemplateBody=body, Parameters=params, Tags=tags)
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
    outputs = deploy_stack(cfn, args.stage, given)
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
    secret, settings = outputs["McdSlackSecret"], outputs["McdSettings"]
    say("deployed. If not done yet (docs/deployment.md):")
    print(f"    aws secretsmanager put-secret-value --secret-id {secret} --secret-string 'https://hooks.slack.com/...'")
    print(f"    aws ssm put-parameter --name {settings[4:]} --type String --overwrite --value file://settings.json")
    print(f"    point the AWS Config delivery channel at {outputs['McdConfigTopic']}")


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
    if (ROOT / ".chalice" / "deployed" / f"{args.stage}.json").exists():
        run_chalice("delete", args.stage, region)
    else:
        say(f"no .chalice/deployed/{args.stage}.json: no Chalice deployment to delete")
    cfn = sess.client("cloudformation")
    stack = describe_stack(cfn, name)
    if stack is None:
        say(f"stack {name} does not exist")
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


def key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("deploy", help="create/update the stack, check its names, chalice deploy")
    down = commands.add_parser("teardown", help="chalice delete, empty the archive bucket, delete the stack")
    for sub in (up, down):
        sub.add_argument("--stage", required=True, choices=STAGES)
        sub.add_argument("--region", help="AWS region (default: AWS_REGION / AWS_DEFAULT_REGION / profile)")
    up.add_argument("--config-topic-arn", help="existing AWS Config SNS topic ('' to let the stack create one)")
    up.add_argument("--parameter", action="append", type=key_value, metavar="KEY=VALUE",
                    help="another stack parameter, e.g. ArchiveRetentionDays=730 (repeatable)")
    up.add_argument("--stack-only", action="store_true", help="deploy and check the stack only")
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
