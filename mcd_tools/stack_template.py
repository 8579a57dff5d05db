"""``infra/stack.yaml`` read as data: its resources resolved for a stage, region and account.

A small resolver for the intrinsic functions the alarms and the dashboard use (``Fn::Sub``, ``Ref``,
``Fn::GetAtt``), enough to turn each ``AWS::CloudWatch::Alarm`` into the PutMetricAlarm request it
stands for (the CloudFormation properties are PutMetricAlarm's parameters). Used by the tests of the
template and by the embedded AWS (``mcd_tools.embedded``), whose moto CloudFormation skips alarms.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "infra" / "stack.yaml"

_SUB_VARIABLE = re.compile(r"\$\{([^!}][^}]*)\}")


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


def resolve(value: Any, names: dict[str, str]) -> Any:
    """``value`` with Fn::Sub, Ref and Fn::GetAtt replaced from ``names``, through lists and dicts.

    ``names`` maps a parameter, pseudo parameter or resource to its value (``Stage``, ``AWS::Region``,
    ``HealthTopic``) and ``Logical.Attribute`` to an attribute (``DispatchQueue.QueueName``). A
    ``${!x}`` in a Fn::Sub stays the literal ``${x}``. An unknown name raises KeyError.
    """
    if isinstance(value, list):
        return [resolve(v, names) for v in value]
    if not isinstance(value, dict):
        return value
    if "Fn::Sub" in value:
        text, variables = value["Fn::Sub"], {}
        if isinstance(text, list):  # the long form: [text, {variable: value}]
            text, variables = text[0], {k: str(resolve(v, names)) for k, v in text[1].items()}
        scope = {**names, **variables}
        return _SUB_VARIABLE.sub(lambda m: scope[m.group(1)], text).replace("${!", "${")
    if "Ref" in value:
        return names[value["Ref"]]
    if "Fn::GetAtt" in value:
        attribute = value["Fn::GetAtt"]
        return names[attribute if isinstance(attribute, str) else ".".join(attribute)]
    return {k: resolve(v, names) for k, v in value.items()}


def health_topic_arn(stage: str, region: str, account: str, partition: str = "aws") -> str:
    """The ARN of the stage's health topic (resource ``HealthTopic``, TopicName ``mcd-<stage>-health``)."""
    return f"arn:{partition}:sns:{region}:{account}:mcd-{stage}-health"


def resolved_names(template: dict[str, Any], stage: str, region: str, account: str,
                   partition: str = "aws") -> dict[str, str]:
    """What Ref/GetAtt/Sub resolve to in ``stage`` for ``resolve``: the stage, the pseudo parameters, the
    health topic's ARN (``Ref HealthTopic``) and every queue's ``QueueName``."""
    known = {"Stage": stage, "AWS::Region": region, "AWS::AccountId": account, "AWS::Partition": partition}
    known["HealthTopic"] = health_topic_arn(stage, region, account, partition)
    for logical, props in of_type(template, "AWS::SQS::Queue").items():
        known[f"{logical}.QueueName"] = resolve(props["QueueName"], known)
    return known


def alarm_requests(template: dict[str, Any], stage: str, region: str, account: str,
                   partition: str = "aws") -> dict[str, dict[str, Any]]:
    """Every ``AWS::CloudWatch::Alarm`` of the template as PutMetricAlarm keyword arguments, by alarm name."""
    resolved = resolved_names(template, stage, region, account, partition)
    alarms = [resolve(props, resolved) for props in of_type(template, "AWS::CloudWatch::Alarm").values()]
    by_name = {a["AlarmName"]: a for a in alarms}
    if len(by_name) != len(alarms):
        raise ValueError("two alarms of the template share a name")
    return by_name
