"""`chalice package` works without AWS, yields functions only (no API Gateway), and agrees with the stack.

The stage's settings come from ``.chalice/config.json`` (per-function ones written once, in the
top-level ``lambda_functions``); the Config topic ``ingest`` subscribes to is the one the stack
creates for the stage, unless ``MCD_CONFIG_TOPIC`` in chalice's environment names an existing one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from chalicelib import stage_config

ROOT = Path(__file__).resolve().parents[2]
EXISTING_TOPIC = "arn:aws:sns:eu-west-1:111122223333:aws-config-delivery"


def _package(out: Path, stage: str = "prod", **variables: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MCD_", "AWS_ACCESS", "AWS_SECRET", "AWS_SESSION", "AWS_SECURITY"))}
    env.update(AWS_DEFAULT_REGION="eu-west-1", **variables)
    chalice = Path(sys.executable).with_name("chalice")
    proc = subprocess.run([str(chalice), "package", "--stage", stage, str(out)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads((out / "sam.json").read_text())


@pytest.fixture(scope="module")
def prod_package(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], list[str]]:
    """``chalice package --stage prod`` once for this module: (sam.json, the files of deployment.zip).

    The zip is read at once: chalice links it to its cache in ``.chalice/deployments``, which a later
    ``chalice package`` of the same code rewrites.
    """
    out = tmp_path_factory.mktemp("prod") / "out"
    template = _package(out)
    return template, zipfile.ZipFile(out / "deployment.zip").namelist()


def _subscribed_topic(template: dict[str, Any]) -> str:
    (event,) = template["Resources"]["Ingest"]["Properties"]["Events"].values()
    assert event["Type"] == "SNS"
    topic = event["Properties"]["Topic"]
    return topic["Fn::Sub"] if isinstance(topic, dict) else topic


def _app_topic(**variables: str) -> str:
    """``app.CONFIG_TOPIC`` as a fresh import sees it with ``variables`` (chalice sets the stage's on import)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCD_")}
    proc = subprocess.run([sys.executable, "-c", "import app; print(app.CONFIG_TOPIC)"], cwd=ROOT,
                          env={**env, **variables}, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout.strip()


def test_prod_package_has_no_api_and_a_scoped_role_per_function(prod_package: tuple[dict[str, Any], list[str]]) -> None:
    from mcd_tools import iam_policy

    template, shipped = prod_package
    types = {r["Type"] for r in template["Resources"].values()}
    assert not [t for t in types if "Api" in t], f"the prod package must not contain API Gateway: {types}"
    functions = {k: r for k, r in template["Resources"].items() if r["Type"] == "AWS::Serverless::Function"}
    assert len(functions) == 10
    for resource in functions.values():
        variables = resource["Properties"].get("Environment", {}).get("Variables", {})
        assert "MCD_LOCAL_ROUTES" not in variables
        assert resource["Properties"]["Runtime"] == f"python{sys.version_info.major}.{sys.version_info.minor}"
        # Each function has a role of its own, with the policy generated for it (mcd_tools/iam_policy.py).
        function = resource["Properties"]["Handler"].removeprefix("app.")
        role = template["Resources"][resource["Properties"]["Role"]["Fn::GetAtt"][0]]
        (policy,) = role["Properties"]["Policies"]
        assert policy["PolicyDocument"] == iam_policy.policy(iam_policy.handlers()[function], "prod")
        for statement in policy["PolicyDocument"]["Statement"]:
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            if "*" in resources:
                assert set(statement["Action"]) <= set(iam_policy.WILDCARD_REASONS), (function, statement)
    assert "DefaultRole" not in template["Resources"]
    assert "app.py" in shipped and "chalicelib/stages/lookup.py" in shipped
    assert not [name for name in shipped if name.startswith(("mcd_tools/", "tests/", "scripts/"))
                or "devtools" in name], "developer tools are not shipped to Lambda"


def test_prod_package_applies_the_per_function_settings_and_only_the_stage_variables(
        prod_package: tuple[dict[str, Any], list[str]]) -> None:
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    template, _shipped = prod_package
    for resource in (r for r in template["Resources"].values() if r["Type"] == "AWS::Serverless::Function"):
        props = resource["Properties"]
        function = props["Handler"].removeprefix("app.")
        wanted = config["lambda_functions"][function]
        assert props["Timeout"] == wanted["lambda_timeout"], function
        assert props["MemorySize"] == wanted["lambda_memory_size"], function
        assert props.get("ReservedConcurrentExecutions") == wanted.get("reserved_concurrency"), function
        # Names and budgets are derived at run time: the stage's variables are all a function is given.
        assert props["Environment"]["Variables"] == {"MCD_STAGE": "prod"}, function


def test_app_package_and_stack_agree_on_the_config_topic(tmp_path: Path,
                                                        prod_package: tuple[dict[str, Any], list[str]]) -> None:
    from cfnlint.decode import decode

    template, errors = decode(str(ROOT / "infra" / "stack.yaml"))
    assert not errors, errors
    stack_topic = template["Resources"]["ConfigTopic"]["Properties"]["TopicName"]["Fn::Sub"].replace("${Stage}", "prod")
    derived = stage_config.config_topic({"MCD_STAGE": "prod"})
    assert derived == stack_topic == stage_config.config_topic_name("prod") == "config-changes-prod"
    assert _app_topic(MCD_STAGE="prod") == derived
    subscribed = _subscribed_topic(prod_package[0])
    assert subscribed == "arn:${AWS::Partition}:sns:${AWS::Region}:${AWS::AccountId}:" + derived
    # An existing topic (the stack's ConfigTopicArn) reaches the subscription through chalice's environment,
    # which is how scripts/deploy.py passes it; no stage of config.json may shadow it.
    assert _app_topic(MCD_STAGE="prod", MCD_CONFIG_TOPIC=EXISTING_TOPIC) == EXISTING_TOPIC
    assert _subscribed_topic(_package(tmp_path / "existing", MCD_CONFIG_TOPIC=EXISTING_TOPIC)) == EXISTING_TOPIC


def test_the_local_stage_cannot_be_packaged(tmp_path: Path) -> None:
    """The local stage sets MCD_LOCAL_ROUTES for ``chalice local``: it never becomes a template or a deployment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCD_")}
    chalice = Path(sys.executable).with_name("chalice")
    proc = subprocess.run([str(chalice), "package", "--stage", "local", str(tmp_path / "local")], cwd=ROOT,
                          env={**env, "AWS_DEFAULT_REGION": "eu-west-1"}, capture_output=True, text=True, timeout=600)
    assert proc.returncode != 0
    assert "the local stage is for `chalice local` only" in proc.stderr + proc.stdout
    assert not (tmp_path / "local" / "sam.json").exists()
