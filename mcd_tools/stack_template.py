"""``infra/stack.yaml`` read as data: its resources resolved for a stage, region, account and parameters.

A small resolver for the intrinsic functions the template uses (``Fn::Sub``, ``Ref``, ``Fn::GetAtt``,
``Fn::If`` with the template's conditions, ``Fn::Join``, ``Fn::Split``, ``AWS::NoValue``), enough to
turn each ``AWS::CloudWatch::Alarm`` into the PutMetricAlarm request it stands for (the CloudFormation
properties are PutMetricAlarm's parameters) and to read a policy or an encryption setting as a given
set of parameters makes it. Used by the tests of the template and by the embedded AWS
(``mcd_tools.embedded``), whose moto CloudFormation skips alarms and policies.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "infra" / "stack.yaml"

_SUB_VARIABLE = re.compile(r"\$\{([^!}][^}]*)\}")
NO_VALUE = "<AWS::NoValue>"
"""What ``Ref AWS::NoValue`` resolves to: the key or list item holding it is left out."""


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    """The template decoded as cfn-lint reads it (short-form tags such as ``!Sub`` become ``Fn::Sub``)."""
    from cfnlint.decode import decode

    decoded, errors = decode(str(path))
    if errors or decoded is None:
        raise ValueError(f"{path} does not decode: {errors}")
    return decoded


def of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    """The properties of every resource of type ``kind``, by logical name."""
    return {name: r.get("Properties", {}) for name, r in template["Resources"].items() if r["Type"] == kind}


def resolve(value: Any, names: dict[str, Any], conditions: dict[str, bool] | None = None) -> Any:
    """``value`` with its intrinsic functions replaced from ``names`` and ``conditions``, through lists and dicts.

    ``names`` maps a parameter, pseudo parameter or resource to its value (``Stage``, ``AWS::Region``,
    ``HealthTopic``) and ``Logical.Attribute`` to an attribute (``DispatchQueue.QueueName``); ``conditions``
    gives each condition's truth for ``Fn::If``. A ``${!x}`` in a Fn::Sub stays the literal ``${x}``; a key or
    list item that resolves to ``AWS::NoValue`` is left out. An unknown name or condition raises KeyError.
    """
    if isinstance(value, list):
        return [item for item in (resolve(v, names, conditions) for v in value) if item != NO_VALUE]
    if not isinstance(value, dict):
        return value
    if "Fn::Sub" in value:
        text, variables = value["Fn::Sub"], {}
        if isinstance(text, list):  # the long form: [text, {variable: value}]
            text, variables = text[0], {k: str(resolve(v, names, conditions)) for k, v in text[1].items()}
        scope = {**names, **variables}
        return _SUB_VARIABLE.sub(lambda m: str(scope[m.group(1)]), text).replace("${!", "${")
    if "Ref" in value:
        return NO_VALUE if value["Ref"] == "AWS::NoValue" else names[value["Ref"]]
    if "Fn::GetAtt" in value:
        attribute = value["Fn::GetAtt"]
        return names[attribute if isinstance(attribute, str) else ".".join(attribute)]
    if "Fn::If" in value:
        condition, when_true, when_false = value["Fn::If"]
        return resolve(when_true if (conditions or {})[condition] else when_false, names, conditions)
    if "Fn::Join" in value:
        delimiter, items = value["Fn::Join"]
        return delimiter.join(str(item) for item in resolve(items, names, conditions))
    if "Fn::Split" in value:
        delimiter, text = value["Fn::Split"]
        return str(resolve(text, names, conditions)).split(delimiter)
    resolved = {k: resolve(v, names, conditions) for k, v in value.items()}
    return {k: v for k, v in resolved.items() if v != NO_VALUE}


def parameter_values(template: dict[str, Any], given: dict[str, str]) -> dict[str, Any]:
    """Every parameter's value: ``given``, else its default; a CommaDelimitedList as a list, as ``Ref`` gives it."""
    values: dict[str, Any] = {}
    for name, spec in template.get("Parameters", {}).items():
        value = str(given.get(name, spec.get("Default", "")))
        values[name] = value.split(",") if spec.get("Type") == "CommaDelimitedList" else value
    return values


def condition_values(template: dict[str, Any], names: dict[str, Any]) -> dict[str, bool]:
    """Every condition of the template, evaluated with ``names`` (``Fn::Equals``, ``Not``, ``And``, ``Or``)."""
    definitions = template.get("Conditions", {})
    known: dict[str, bool] = {}

    def named(name: str) -> bool:
        if name not in known:
            known[name] = holds(definitions[name])
        return known[name]

    def holds(expression: dict[str, Any]) -> bool:
        ((function, arguments),) = expression.items()
        if function == "Condition":
            return named(arguments)
        if function == "Fn::Equals":
            left, right = (resolve(argument, names) for argument in arguments)
            return str(left) == str(right)
        results = [holds(argument) for argument in arguments]
        return {"Fn::Not": lambda: not results[0], "Fn::And": lambda: all(results),
                "Fn::Or": lambda: any(results)}[function]()

    return {name: named(name) for name in definitions}


def health_topic_arn(stage: str, region: str, account: str, partition: str = "aws") -> str:
    """The ARN of the stage's health topic (resource ``HealthTopic``, TopicName ``mcd-<stage>-health``)."""
    return f"arn:{partition}:sns:{region}:{account}:mcd-{stage}-health"


def resolved_names(template: dict[str, Any], stage: str, region: str, account: str,
                   partition: str = "aws") -> dict[str, str]:
    """What Ref/GetAtt/Sub resolve to in ``stage`` for ``resolve``: the stage, the pseudo parameters, the
    health topic's ARN (``Ref HealthTopic``) and every queue's ``QueueName``."""
    known = {"Stage": stage, "AWS::Region": region, "AWS::AccountId": account, "AWS::Partition": partition,
             "AWS::URLSuffix": "amazonaws.com.cn" if partition == "aws-cn" else "amazonaws.com"}
    known["HealthTopic"] = health_topic_arn(stage, region, account, partition)
    for logical, props in of_type(template, "AWS::SQS::Queue").items():
        known[f"{logical}.QueueName"] = resolve(props["QueueName"], known)
    return known


def stack_names(template: dict[str, Any], stage: str, region: str, account: str,
                parameters: dict[str, str] | None = None, partition: str = "aws") -> dict[str, Any]:
    """``resolved_names`` plus every parameter (``parameters``, else its default) and what a ``Ref`` or an
    ``Arn`` of the stack's queues, topics, bucket and key gives (the key's id is ``stack-key``)."""
    known: dict[str, Any] = {**resolved_names(template, stage, region, account, partition),
                             **parameter_values(template, {**(parameters or {}), "Stage": stage})}
    suffix = known["AWS::URLSuffix"]
    for logical in of_type(template, "AWS::SQS::Queue"):
        name = known[f"{logical}.QueueName"]
        known[logical] = f"https://sqs.{region}.{suffix}/{account}/{name}"
        known[f"{logical}.Arn"] = f"arn:{partition}:sqs:{region}:{account}:{name}"
    for logical, props in of_type(template, "AWS::SNS::Topic").items():
        known[logical] = f"arn:{partition}:sns:{region}:{account}:{resolve(props['TopicName'], known)}"
    for logical, props in of_type(template, "AWS::S3::Bucket").items():
        known[logical] = resolve(props["BucketName"], known)
        known[f"{logical}.Arn"] = f"arn:{partition}:s3:::{known[logical]}"
    for logical in of_type(template, "AWS::KMS::Key"):
        known[logical] = "stack-key"
        known[f"{logical}.Arn"] = f"arn:{partition}:kms:{region}:{account}:key/stack-key"
    return known


def stack_resource(template: dict[str, Any], logical: str, stage: str, region: str, account: str,
                   parameters: dict[str, str] | None = None, partition: str = "aws") -> dict[str, Any] | None:
    """The properties of resource ``logical`` as the stack creates it with ``parameters``; None if it is not
    created (its condition is false)."""
    names = stack_names(template, stage, region, account, parameters, partition)
    conditions = condition_values(template, names)
    resource = template["Resources"][logical]
    if "Condition" in resource and not conditions[resource["Condition"]]:
        return None
    return resolve(resource.get("Properties", {}), names, conditions)


def alarm_requests(template: dict[str, Any], stage: str, region: str, account: str,
                   partition: str = "aws") -> dict[str, dict[str, Any]]:
    """Every ``AWS::CloudWatch::Alarm`` of the template as PutMetricAlarm keyword arguments, by alarm name."""
    resolved = resolved_names(template, stage, region, account, partition)
    alarms = [resolve(props, resolved) for props in of_type(template, "AWS::CloudWatch::Alarm").values()]
    by_name = {a["AlarmName"]: a for a in alarms}
    if len(by_name) != len(alarms):
        raise ValueError("two alarms of the template share a name")
    return by_name
