"""``make package`` (``mcd_tools.package``) and ``scripts/deploy.py``'s destinations: every path that deploys the
functions gives each asynchronous one the same on-failure destination, the stage's async-failed queue.

Two packagings in all (SAM, Terraform), of a copy of the project: chalice's zip cache (``.chalice/deployments``)
is then the copy's own, not the one ``tests/e2e/test_package.py`` packages the working tree with at the same time.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import re
import shutil
import zipfile
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from chalicelib.stage_config import ASYNC_FUNCTIONS, ASYNC_MAX_EVENT_AGE_SECONDS, ASYNC_RETRY_ATTEMPTS, StageNames
from mcd_tools import cli, package

ROOT = Path(__file__).resolve().parents[2]
EXISTING_TOPIC = "arn:aws:sns:eu-west-1:111122223333:aws-config-delivery"
QUEUE_SUB = "arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:mcd-prod-async-failed"


def _project_copy(where: Path) -> Path:
    """What chalice packages: app.py, chalicelib, requirements.txt and .chalice (its caches and records left out).

    The stack owns the functions' log groups (issue 14); a stage of .chalice/config.json that still sets
    ``log_retention_in_days`` (which ``make package`` refuses) loses it in the copy.
    """
    project = where / "project"
    project.mkdir()
    for name in ("app.py", "requirements.txt"):
        shutil.copy2(ROOT / name, project / name)
    shutil.copytree(ROOT / "chalicelib", project / "chalicelib", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / ".chalice", project / ".chalice", ignore=shutil.ignore_patterns("deployments", "deployed",
                                                                                           "venv"))
    config = json.loads((project / ".chalice" / "config.json").read_text())
    for scope in (config, *config["stages"].values()):
        scope.pop("log_retention_in_days", None)
    (project / ".chalice" / "config.json").write_text(json.dumps(config, indent=2))
    return project


def _environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chalice's environment as a person's shell has it: no test-only switches, no credentials needed."""
    for key in [k for k in os.environ if k.startswith("MCD_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``mcd package --stage prod`` as SAM (with an existing Config topic) and as Terraform, once each."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        _environment(monkeypatch)
        where = tmp_path_factory.mktemp("package")
        project = _project_copy(where)
        tracked = {p: p.read_bytes() for p in project.rglob("*") if p.is_file()}
        sam, terraform = where / "sam", where / "terraform"
        common = ["--stage", "prod", "--project-dir", str(project)]
        assert package.main([*common, "--out", str(sam), "--config-topic-arn", EXISTING_TOPIC]) == 0
        sam_zip = zipfile.ZipFile(io.BytesIO((sam / "deployment.zip").read_bytes())).namelist()  # read at once
        assert package.main([*common, "--format", "terraform", "--out", str(terraform)]) == 0
        changed = [p for p, content in tracked.items() if not p.exists() or p.read_bytes() != content]
    return {"sam": sam, "terraform": terraform, "sam_zip": sam_zip, "changed": changed}


def _of_type(template: dict[str, Any], kind: str) -> dict[str, Any]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == kind}


def test_sam_names_every_function_and_sends_each_async_failure_to_the_queue(packaged: dict[str, Any]) -> None:
    template = json.loads((packaged["sam"] / "sam.json").read_text())
    functions = _of_type(template, "AWS::Serverless::Function")
    handlers = {r["Properties"]["Handler"].removeprefix("app."): name for name, r in functions.items()}
    assert {r["Properties"]["FunctionName"] for r in functions.values()} == {f"mcd-prod-{h}" for h in handlers}
    configs = _of_type(template, "AWS::Lambda::EventInvokeConfig")
    by_function = {r["Properties"]["FunctionName"]["Ref"]: r["Properties"] for r in configs.values()}
    assert set(by_function) == {handlers[f] for f in ASYNC_FUNCTIONS if f in handlers}
    assert {"ingest", "console_signin", "api_call", "cloudwatch_logs"} <= set(handlers) - {"config_event"}
    for properties in by_function.values():
        assert properties == {"FunctionName": properties["FunctionName"], "Qualifier": "$LATEST",
                              "MaximumRetryAttempts": ASYNC_RETRY_ATTEMPTS,
                              "MaximumEventAgeInSeconds": ASYNC_MAX_EVENT_AGE_SECONDS,
                              "DestinationConfig": {"OnFailure": {"Destination": {"Fn::Sub": QUEUE_SUB}}}}
    (subscription,) = functions[handlers["ingest"]]["Properties"]["Events"].values()
    assert subscription["Properties"]["Topic"] == EXISTING_TOPIC, "the stack's McdConfigTopic, passed in"
    assert "app.py" in packaged["sam_zip"] and (packaged["sam"] / package.MERGE_FILE).is_file()
    assert packaged["changed"] == [], "packaging edits no file of the project"


def test_the_merged_template_passes_cfn_lint(packaged: dict[str, Any]) -> None:
    from cfnlint.api import lint_file

    problems = lint_file(packaged["sam"] / "sam.json", config={"regions": ["eu-west-1"]})
    assert [str(p) for p in problems] == []


def test_the_packaged_roles_are_named_and_pinned_to_where_the_template_lands(packaged: dict[str, Any]) -> None:
    template = json.loads((packaged["sam"] / "sam.json").read_text())
    roles = _of_type(template, "AWS::IAM::Role")
    assert {r["Properties"]["RoleName"] for r in roles.values()} >= {"mcd-prod-ingest", "mcd-prod-slack_send"}
    text = json.dumps(roles)
    assert "PrincipalAccount" not in text and "arn:*:" not in text
    assert ("arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:mcd-prod-slack" in text
            and "arn:${AWS::Partition}:s3:::mcd-prod-archive-${AWS::AccountId}-${AWS::Region}/*" in text)
    chalice_tf = (packaged["terraform"] / "chalice.tf.json").read_text()
    assert "PrincipalAccount" not in chalice_tf
    assert "${data.aws_caller_identity.chalice.account_id}:table/mcd-prod-state" in chalice_tf


def test_pinning_keeps_what_has_no_account() -> None:
    places = ("P", "R", "A")
    assert package.pinned_arn("arn:*:s3:::*/AWSLogs/*/Config/*", places) == "arn:P:s3:::*/AWSLogs/*/Config/*"
    assert package.pinned_arn("arn:*:ssm:*:${aws:PrincipalAccount}:parameter/mcd/prod/*", places) == (
        "arn:P:ssm:R:A:parameter/mcd/prod/*")


def test_terraform_invoke_configs_refer_to_what_chalice_declares(packaged: dict[str, Any]) -> None:
    out = packaged["terraform"]
    chalice_tf = json.loads((out / "chalice.tf.json").read_text())
    ours = json.loads((out / package.TERRAFORM_FILE).read_text())
    configs = ours["resource"]["aws_lambda_function_event_invoke_config"]
    functions = chalice_tf["resource"]["aws_lambda_function"]
    assert {c["function_name"] for c in configs.values()} == {
        f"${{aws_lambda_function.{f}.function_name}}" for f in ASYNC_FUNCTIONS if f in functions}
    assert functions["ingest"]["function_name"] == "mcd-prod-ingest"
    for reference in re.findall(r"\$\{([a-z_.]+)\}", json.dumps(ours)):
        parts = reference.split(".")
        declared = chalice_tf["data"] if parts[0] == "data" else chalice_tf["resource"]
        kind, name = parts[-3:-1]
        assert name in declared.get(kind, {}), f"{reference} does not resolve in chalice.tf.json"
    destinations = {c["destination_config"]["on_failure"]["destination"] for c in configs.values()}
    assert {d.rsplit(":", 1)[1] for d in destinations} == {"mcd-prod-async-failed"}
    assert {(c["maximum_retry_attempts"], c["maximum_event_age_in_seconds"]) for c in configs.values()} == {
        (ASYNC_RETRY_ATTEMPTS, ASYNC_MAX_EVENT_AGE_SECONDS)}
    override = json.loads((out / package.TERRAFORM_OVERRIDE_FILE).read_text())["terraform"]
    assert override["required_version"] == ">= 0.13", "chalice's own pin (< 1.4.0) refuses today's Terraform"
    assert "< 1.4.0" in chalice_tf["terraform"]["required_version"]
    topic = chalice_tf["resource"]["aws_sns_topic_subscription"]["ingest-sns-subscription"]["topic_arn"]
    assert topic.endswith(":config-changes-prod"), "no topic given: the stage's own"


def test_packaging_is_refused_while_chalice_would_write_log_groups(tmp_path: Path) -> None:
    config = {"log_retention_in_days": 7, "stages": {"prod": {"log_retention_in_days": 90, "lambda_functions": {
        "ingest": {"log_retention_in_days": 1}}}, "dev": {}}}
    assert package.log_group_settings(config, "prod") == [
        "log_retention_in_days", "stages.prod.log_retention_in_days",
        "stages.prod.lambda_functions.ingest.log_retention_in_days"]
    assert package.log_group_settings({"stages": {"prod": {}}}, "prod") == []
    (tmp_path / ".chalice").mkdir()
    (tmp_path / ".chalice" / "config.json").write_text(json.dumps({"stages": {"dev": {"log_retention_in_days": 30}}}))
    for build in (package.package_sam, package.package_terraform):
        with pytest.raises(package.PackageError, match=r"stages\.dev\.log_retention_in_days: the stack creates"):
            build(tmp_path, "dev", tmp_path / "out", {})
    assert not (tmp_path / "out").exists()


def test_the_config_topic_given_wins_and_none_means_the_stages_own() -> None:
    shell = {"PATH": "/bin", "MCD_CONFIG_TOPIC": "arn:aws:sns:eu-west-1:1:stale", "AWS_REGION": "eu-west-1"}
    assert package.chalice_environment(shell, EXISTING_TOPIC)["MCD_CONFIG_TOPIC"] == EXISTING_TOPIC
    assert "MCD_CONFIG_TOPIC" not in package.chalice_environment(shell, "")
    assert package.chalice_environment(shell, "")["AWS_DEFAULT_REGION"] == "eu-west-1", "chalice reads this one"
    with pytest.raises(package.PackageError, match="no AWS region"):
        package.chalice_environment({"PATH": "/bin"}, "")


def test_mcd_package_is_the_same_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(package, "main", lambda argv: 5 if argv == ["--stage", "dev"] else 1)
    assert cli.main(["package", "--stage", "dev"]) == 5


def _deploy_script() -> Any:
    spec = importlib.util.spec_from_file_location("mcd_deploy_destinations", ROOT / "scripts" / "deploy.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_deploy_sends_each_deployed_async_functions_failures_to_the_queue(packaged: dict[str, Any]) -> None:
    deploy = _deploy_script()
    region = "eu-west-1"
    with mock_aws():
        account = boto3.client("sts", region_name=region).get_caller_identity()["Account"]
        names = StageNames("prod", account, region)
        role = boto3.client("iam").create_role(RoleName="mcd-prod", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        code = io.BytesIO()
        with zipfile.ZipFile(code, "w") as archive:
            archive.writestr("app.py", "def handler(event, context):\n    return None\n")
        lam = boto3.client("lambda", region_name=region)
        deployed = ["ingest", "console_signin", "api_call", "cloudwatch_logs", "dispatch"]  # config_event turned off
        for function in deployed:
            lam.create_function(FunctionName=names.function_name(function), Runtime="python3.12", Role=role,
                                Handler="app.handler", Code={"ZipFile": code.getvalue()})
        configured = deploy.configure_async_destinations(lam, names)
        assert configured == [names.function_name(f) for f in ASYNC_FUNCTIONS if f in deployed]
        for function in ("ingest", "console_signin", "api_call", "cloudwatch_logs"):
            config = lam.get_function_event_invoke_config(FunctionName=names.function_name(function))
            assert (config["MaximumRetryAttempts"], config["MaximumEventAgeInSeconds"]) == (2, 21_600)
            assert config["DestinationConfig"]["OnFailure"]["Destination"] == (
                f"arn:aws:sqs:{region}:{account}:mcd-prod-async-failed")
        with pytest.raises(lam.exceptions.ResourceNotFoundException):
            lam.get_function_event_invoke_config(FunctionName=names.function_name("dispatch"))
    # The packaged template's destination is the same queue, in whatever account and region it is deployed to.
    template = json.loads((packaged["sam"] / "sam.json").read_text())
    (destination,) = {json.dumps(r["Properties"]["DestinationConfig"]) for r in
                      _of_type(template, "AWS::Lambda::EventInvokeConfig").values()}
    assert json.loads(destination)["OnFailure"]["Destination"]["Fn::Sub"].replace(
        "${AWS::Partition}", "aws").replace("${AWS::Region}", region).replace("${AWS::AccountId}", account) == (
        names.queue_arn("async_failed_queue"))
