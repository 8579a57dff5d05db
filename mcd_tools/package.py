"""``make package STAGE=prod [FORMAT=terraform]``: the app as a SAM template or a Terraform configuration that
deploys beside the stack ``mcd-<stage>`` with its resources wired in, nothing tracked edited.

    python -m mcd_tools.package --stage prod [--format sam|terraform] [--config-topic-arn ARN] [--out DIR]

* **SAM** (``out/package-<stage>/``): ``chalice package --merge-template`` with a generated merge template
  (``mcd-merge.json`` in the same folder) that names every function as ``chalice deploy`` does
  (``mcd-<stage>-<function>``: the stack's alarms and log groups and ``dl_retry`` know them by that name) and
  adds one ``AWS::Lambda::EventInvokeConfig`` per asynchronous function: Lambda's two retries, then the
  stage's async-failed queue (``arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:mcd-<stage>-async-failed``).
* **Terraform** (``out/package-<stage>-terraform/``): ``chalice package --pkg-format terraform`` (which takes no
  merge template), then ``mcd.tf.json`` beside ``chalice.tf.json`` with one
  ``aws_lambda_function_event_invoke_config`` per asynchronous function (the queue's ARN from chalice's own
  ``data`` sources), and ``mcd_override.tf.json``, which lifts chalice's pins (Terraform < 1.4, AWS provider
  < 5) to what its configuration works with.

``ingest`` subscribes to the stage's own Config topic (``config-changes-<stage>``, made by the stack) unless
``--config-topic-arn`` (or ``MCD_CONFIG_TOPIC``) names an existing one: the stack's ``McdConfigTopic`` output.
Every other name the functions derive at run time. docs/deployment.md, "Packaging", shows both paths end to end.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from chalicelib.stage_config import (
    ASYNC_FUNCTIONS,
    ASYNC_MAX_EVENT_AGE_SECONDS,
    ASYNC_RETRY_ATTEMPTS,
    TOPIC_VARIABLE,
    StageNames,
)
from chalicelib.stages.shared.queues import ASYNC_FAILED_QUEUE

ROOT = Path(__file__).resolve().parents[1]
FORMATS = ("sam", "terraform")
MERGE_FILE = "mcd-merge.json"
TERRAFORM_FILE = "mcd.tf.json"
TERRAFORM_OVERRIDE_FILE = "mcd_override.tf.json"
TERRAFORM_VERSIONS = {"required_version": ">= 0.13", "required_providers": {"aws": {"version": ">= 3.61.0, < 6"}}}
"""Chalice 1.34 pins Terraform below 1.4 and the AWS provider below 5; its configuration works with both newer."""
CHALICE_DATA = ("aws_caller_identity", "aws_partition", "aws_region")
"""The ``data`` sources ``chalice.tf.json`` declares (as ``<type>.chalice``) that ``mcd.tf.json`` reads."""

# What `import app` shows of the functions Chalice will package (run in chalice's own environment).
_LIST_FUNCTIONS = ("import json, app; a = app.app; print(json.dumps(sorted({s.name for s in a.event_sources}"
                   " | {f.name for f in a.pure_lambda_functions})))")


class PackageError(RuntimeError):
    """A failure worth one readable line."""


def queue_arn_sub(stage: str) -> dict[str, str]:
    """The async-failed queue's ARN in the account and region the template is deployed to."""
    name = StageNames(stage, "", "").queue_name(ASYNC_FAILED_QUEUE)
    return {"Fn::Sub": f"arn:${{AWS::Partition}}:sqs:${{AWS::Region}}:${{AWS::AccountId}}:{name}"}


PRINCIPAL_ACCOUNT = "${aws:PrincipalAccount}"
SAM_PLACES = ("${AWS::Partition}", "${AWS::Region}", "${AWS::AccountId}")
TERRAFORM_PLACES = ("${data.aws_partition.chalice.partition}", "${data.aws_region.chalice.name}",
                    "${data.aws_caller_identity.chalice.account_id}")


def pinned_arn(arn: str, places: tuple[str, str, str]) -> str:
    """A generated policy's ARN pattern pinned to the account, region and partition the package deploys to.

    ``.chalice/policies`` serve ``chalice deploy`` in any account (``arn:*:sqs:*:${aws:PrincipalAccount}:…``);
    a template knows where it lands (``places``: partition, region, account), and Terraform would read
    ``${aws:…}`` as an interpolation of its own.
    """
    partition, region, account = places
    pinned = arn.replace(f":*:{PRINCIPAL_ACCOUNT}:", f":{region}:{account}:")
    pinned = pinned.replace(f"-{PRINCIPAL_ACCOUNT}-*", f"-{account}-{region}")  # the archive bucket's name
    pinned = pinned.replace(PRINCIPAL_ACCOUNT, account)
    return f"arn:{partition}:{pinned[6:]}" if pinned.startswith("arn:*:") else pinned


def _resources(statement: dict[str, Any]) -> list[str]:
    found = statement["Resource"]
    return found if isinstance(found, list) else [found]


def pin_sam_policies(template: dict[str, Any]) -> int:
    """Pin every role policy's resources in chalice's SAM ``template`` (``Fn::Sub``); how many were pinned."""
    count = 0
    for resource in template["Resources"].values():
        if resource.get("Type") != "AWS::IAM::Role":
            continue
        for policy in resource["Properties"].get("Policies", []):
            for statement in policy["PolicyDocument"]["Statement"]:
                resources = _resources(statement)
                pinned = [r if r == "*" else {"Fn::Sub": pinned_arn(r, SAM_PLACES)} for r in resources]
                count += sum(r != "*" for r in resources)
                statement["Resource"] = pinned if isinstance(statement["Resource"], list) else pinned[0]
    return count


def pin_terraform_policies(chalice_tf: dict[str, Any]) -> int:
    """The same for ``chalice.tf.json``, whose role policies are JSON text; how many policies were pinned."""
    policies = (chalice_tf.get("resource") or {}).get("aws_iam_role_policy") or {}
    for policy in policies.values():
        document = json.loads(policy["policy"])
        for statement in document["Statement"]:
            resources = _resources(statement)
            pinned = [r if r == "*" else pinned_arn(r, TERRAFORM_PLACES) for r in resources]
            statement["Resource"] = pinned if isinstance(statement["Resource"], list) else pinned[0]
        policy["policy"] = json.dumps(document)
    return len(policies)


def sam_merge_template(stage: str, functions: Sequence[str]) -> dict[str, Any]:
    """What ``--merge-template`` adds to chalice's SAM template for ``functions`` (the app's functions)."""
    from chalice.utils import to_cfn_resource_name

    names = StageNames(stage, "", "")
    resources: dict[str, Any] = {}
    for function in functions:
        logical = to_cfn_resource_name(function)
        resources[logical] = {"Properties": {"FunctionName": names.function_name(function)}}
        # Each function's role under the name chalice deploy gives it: the key policy of a customer-managed key
        # and tamper protection know the detector's roles as mcd-<stage>-*.
        resources[f"{logical}Role"] = {"Properties": {"RoleName": names.function_name(function)}}
        if function in ASYNC_FUNCTIONS:
            resources[f"{logical}AsyncFailures"] = {"Type": "AWS::Lambda::EventInvokeConfig", "Properties": {
                "FunctionName": {"Ref": logical}, "Qualifier": "$LATEST",
                "MaximumRetryAttempts": ASYNC_RETRY_ATTEMPTS, "MaximumEventAgeInSeconds": ASYNC_MAX_EVENT_AGE_SECONDS,
                "DestinationConfig": {"OnFailure": {"Destination": queue_arn_sub(stage)}}}}
    return {"Resources": resources}


def terraform_invoke_configs(stage: str, chalice_tf: Mapping[str, Any]) -> dict[str, Any]:
    """``mcd.tf.json``: an ``aws_lambda_function_event_invoke_config`` per asynchronous function of ``chalice_tf``."""
    data = chalice_tf.get("data") or {}
    missing = [kind for kind in CHALICE_DATA if "chalice" not in (data.get(kind) or {})]
    if missing:
        raise PackageError(f"chalice.tf.json no longer declares data.{', data.'.join(missing)} (named chalice)")
    queue = StageNames(stage, "", "").queue_name(ASYNC_FAILED_QUEUE)
    destination = ("arn:${data.aws_partition.chalice.partition}:sqs:${data.aws_region.chalice.name}:"
                   f"${{data.aws_caller_identity.chalice.account_id}}:{queue}")
    functions = (chalice_tf.get("resource") or {}).get("aws_lambda_function") or {}
    configs = {f"{function}-async-failures": {
        "function_name": f"${{aws_lambda_function.{function}.function_name}}",
        "maximum_retry_attempts": ASYNC_RETRY_ATTEMPTS, "maximum_event_age_in_seconds": ASYNC_MAX_EVENT_AGE_SECONDS,
        "destination_config": {"on_failure": {"destination": destination}},
    } for function in ASYNC_FUNCTIONS if function in functions}
    return {"resource": {"aws_lambda_function_event_invoke_config": configs}}


def log_group_settings(config: Mapping[str, Any], stage: str) -> list[str]:
    """Where ``.chalice/config.json`` asks chalice for the functions' log groups in ``stage``.

    The stack creates them: chalice's own would collide with them in SAM, and chalice cannot write them as
    Terraform at all (``UnsupportedFeatureError``).
    """
    settings = (config.get("stages") or {}).get(stage) or {}
    holders = [("", config), (f"stages.{stage}.", settings)]
    for where, scope in list(holders):
        holders += [(f"{where}lambda_functions.{name}.", values)
                    for name, values in (scope.get("lambda_functions") or {}).items()]
    return [f"{where}log_retention_in_days" for where, holder in holders if "log_retention_in_days" in holder]


def chalice_environment(environ: Mapping[str, str], config_topic: str) -> dict[str, str]:
    """Chalice's environment: ours, with the Config topic ``app.py`` subscribes ``ingest`` to (none: the stage's).

    Chalice wants a region to package, though the output names none: the template takes the region it is
    deployed to (``AWS::Region``, Terraform's ``aws_region``).
    """
    env = {k: v for k, v in environ.items() if k != TOPIC_VARIABLE}
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    if not region:
        raise PackageError("no AWS region: set AWS_REGION (chalice needs one; the package deploys to any region)")
    env.update(AWS_REGION=region, AWS_DEFAULT_REGION=region)
    if config_topic:
        env[TOPIC_VARIABLE] = config_topic
    return env


def app_functions(project: Path, stage: str, env: Mapping[str, str]) -> list[str]:
    """The functions Chalice packages from ``project``'s app.py (``config_event`` may be off): app.py imported
    as chalice imports it, with the stage's variables over ``env``."""
    config = json.loads((project / ".chalice" / "config.json").read_text())
    stage_variables = ((config.get("stages") or {}).get(stage) or {}).get("environment_variables") or {}
    variables = {**env, **(config.get("environment_variables") or {}), **stage_variables}
    proc = subprocess.run([sys.executable, "-c", _LIST_FUNCTIONS], cwd=project, env=variables, capture_output=True,
                          text=True, timeout=120)
    if proc.returncode != 0:
        raise PackageError(f"cannot import {project / 'app.py'}: {proc.stderr.strip()[-500:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_chalice(project: Path, stage: str, out: Path, env: Mapping[str, str], *extra: str) -> None:
    chalice = Path(sys.executable).with_name("chalice")
    command = [str(chalice) if chalice.exists() else "chalice", "--project-dir", str(project), "package",
               "--stage", stage, *extra, str(out)]
    print(f"==> chalice package --stage {stage} {' '.join(extra)} {out}", flush=True)
    proc = subprocess.run(command, cwd=project, env=dict(env), capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise PackageError(f"chalice package failed (exit {proc.returncode}): {proc.stderr.strip()[-1500:]}")


def refuse_log_groups(project: Path, stage: str) -> None:
    found = log_group_settings(json.loads((project / ".chalice" / "config.json").read_text()), stage)
    if found:
        raise PackageError(f".chalice/config.json sets {', '.join(found)}: the stack creates the functions' log "
                           "groups, and chalice's would collide with them (SAM) or cannot be written (Terraform)")


def package_sam(project: Path, stage: str, out: Path, env: Mapping[str, str]) -> Path:
    """``out/sam.json``: chalice's template with the functions named and their failures sent to the queue."""
    refuse_log_groups(project, stage)
    out.mkdir(parents=True, exist_ok=True)
    merge = out / MERGE_FILE
    merge.write_text(json.dumps(sam_merge_template(stage, app_functions(project, stage, env)), indent=2) + "\n")
    run_chalice(project, stage, out, env, "--merge-template", str(merge))
    template = json.loads((out / "sam.json").read_text())
    pin_sam_policies(template)
    (out / "sam.json").write_text(json.dumps(template, indent=2) + "\n")
    unresolved = [name for name, resource in template["Resources"].items()
                  if resource.get("Type") == "AWS::Lambda::EventInvokeConfig"
                  and resource["Properties"]["FunctionName"]["Ref"] not in template["Resources"]]
    if unresolved or any("Type" not in r for r in template["Resources"].values()):
        raise PackageError(f"the merge template does not fit chalice's template: {unresolved}")
    return out / "sam.json"


def package_terraform(project: Path, stage: str, out: Path, env: Mapping[str, str]) -> Path:
    """``out/chalice.tf.json`` and, beside it, ``mcd.tf.json`` and ``mcd_override.tf.json``."""
    refuse_log_groups(project, stage)
    run_chalice(project, stage, out, env, "--pkg-format", "terraform")
    chalice_tf = json.loads((out / "chalice.tf.json").read_text())
    pin_terraform_policies(chalice_tf)
    (out / "chalice.tf.json").write_text(json.dumps(chalice_tf, indent=2) + "\n")
    (out / TERRAFORM_FILE).write_text(json.dumps(terraform_invoke_configs(stage, chalice_tf), indent=2) + "\n")
    (out / TERRAFORM_OVERRIDE_FILE).write_text(json.dumps({"terraform": TERRAFORM_VERSIONS}, indent=2) + "\n")
    return out / TERRAFORM_FILE


def _shown(path: Path) -> str:
    """``path`` relative to the working directory when under it (``out/package-prod``), else as it is."""
    relative = os.path.relpath(path)
    return str(path) if relative.startswith("..") else relative


def next_steps(fmt: str, stage: str, out: Path) -> str:
    where = _shown(out)
    if fmt == "terraform":
        return f"    cd {where} && terraform init && terraform apply   # after the stack mcd-{stage}"
    return (f"    aws cloudformation package --template-file {where}/sam.json --s3-bucket BUCKET "
            f"--output-template-file {where}/packaged.yaml\n"
            f"    aws cloudformation deploy --template-file {where}/packaged.yaml --stack-name mcd-{stage}-app "
            "--capabilities CAPABILITY_NAMED_IAM CAPABILITY_AUTO_EXPAND")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mcd package", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", required=True, choices=("dev", "prod"))
    parser.add_argument("--format", dest="fmt", choices=FORMATS, default="sam")
    parser.add_argument("--config-topic-arn", default=os.environ.get(TOPIC_VARIABLE, ""),
                        help="an existing AWS Config topic (the stack's McdConfigTopic output); default: the stage's")
    parser.add_argument("--out", type=Path, help="output folder (default: out/package-<stage>[-terraform])")
    parser.add_argument("--project-dir", type=Path, default=ROOT, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    out = args.out or ROOT / "out" / (f"package-{args.stage}" + ("-terraform" if args.fmt == "terraform" else ""))
    build = package_terraform if args.fmt == "terraform" else package_sam
    try:
        env = chalice_environment(os.environ, args.config_topic_arn.strip())
        written = build(args.project_dir.resolve(), args.stage, out.resolve(), env)
    except PackageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    topic = args.config_topic_arn.strip() or f"config-changes-{args.stage} (the stack's own)"
    print(f"==> wrote {_shown(written)}; ingest subscribes to {topic}. Next:\n"
          f"{next_steps(args.fmt, args.stage, out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
