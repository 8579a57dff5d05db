"""The IAM policy Chalice generates from app.py must be exactly what the deployed code calls.

Checked statically here (``policy_coverage.static_calls``: no test has to run first), and again at the
end of every whole-suite session against the calls the suite actually made (conftest).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from policy_coverage import ROOT, generated_actions, needed_actions, problems, runtime_problems, scan, static_calls


def test_generated_policy_is_exactly_what_the_code_calls() -> None:
    calls, unclear = static_calls()
    assert unclear == []
    assert problems(calls, "anywhere in app.py or chalicelib") == []


def test_the_scan_sees_the_calls_of_every_adapter() -> None:
    calls, _ = static_calls()
    services = {service for service, _ in calls}
    assert services == {"sqs", "s3", "dynamodb", "cloudtrail", "secretsmanager", "ssm"}
    assert {("sqs", "send_message_batch"), ("dynamodb", "query"), ("cloudtrail", "lookup_events")} <= calls


def parsed(source: str) -> list[tuple[Path, ast.Module]]:
    return [(ROOT / "example.py", ast.parse(source))]


def test_the_scan_tells_the_service_by_the_client_literal_or_the_operation_name() -> None:
    calls, unclear = scan(parsed(
        "s3 = factory.client('s3')\n"
        "sqs = self.clients.client('sqs', region)\n"
        "self._client('ssm').get_parameter(Name='x')\n"
        "something.get_object(Bucket='b', Key='k')\n"
        "queue.receive_message(QueueUrl='u')\n"
        "deps.state.get('pk', 'sk')\n"
        "client('s3').get_paginator('list_objects_v2')\n"))
    assert calls == {("ssm", "get_parameter"), ("s3", "get_object"), ("sqs", "receive_message")}
    assert unclear == []


def test_an_operation_several_services_have_must_name_its_client() -> None:
    calls, unclear = scan(parsed("client('dynamodb'); client('secretsmanager')\nthing.tag_resource()\n"
                                 "client('secretsmanager').tag_resource()\n"))
    assert calls == {("secretsmanager", "tag_resource")}
    (why,) = unclear
    assert why.startswith("example.py:2: .tag_resource() is an operation of dynamodb, secretsmanager")


def test_the_manifest_itself_is_not_counted() -> None:
    source = ("def aws_calls_made_in_chalicelib():\n    import boto3\n    boto3.client('sqs').send_message_batch()\n"
              "def other():\n    import boto3\n    boto3.client('sqs').purge_queue()\n")
    calls, _ = scan(parsed(source))
    assert calls == {("sqs", "purge_queue")}


def test_the_manifest_never_runs_and_only_chalices_generator_follows_it() -> None:
    import ast

    from policy_coverage import MANIFEST, ROOT

    tree = ast.parse((ROOT / "app.py").read_text())
    guarded = [node for node in tree.body if isinstance(node, ast.If)
               and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"]
    assert [ast.unparse(node.body[0]) for node in guarded] == [f"{MANIFEST}()"]


def test_a_call_missing_from_the_manifest_or_granted_in_vain_is_named() -> None:
    calls, _ = static_calls()
    missing = problems(calls | {("sqs", "purge_queue")})
    assert missing == ["add these calls to the IAM manifest in app.py: ['sqs:PurgeQueue']"]
    extra = problems(calls - {("ssm", "get_parameter")})
    assert extra == ["the IAM manifest grants actions no code performed in the suite: ['ssm:GetParameter']"]


@pytest.mark.parametrize(("call", "action"), [(("dynamodb", "PutItem"), "dynamodb:PutItem"),
                                              (("s3", "get_object"), "s3:GetObject")])
def test_operation_names_map_to_iam_actions_either_way(call: tuple[str, str], action: str) -> None:
    assert needed_actions([call]) == {action} and action in generated_actions()


def test_the_session_end_check_reads_recorded_operation_names() -> None:
    from botocore import xform_name

    calls, _ = static_calls()
    recorded = {(service, "".join(part.title() for part in operation.split("_"))) for service, operation in calls}
    assert {(s, xform_name(o)) for s, o in recorded} == calls
    assert runtime_problems(recorded) == []
    assert runtime_problems(recorded - {("ssm", "GetParameter")}) == [
        "the IAM manifest grants actions no code performed in the suite: ['ssm:GetParameter']"]
    *_, unseen = runtime_problems(recorded | {("s3", "PutObjectTagging")})
    assert unseen.startswith("calls made at run time that the static scan") and "s3:put_object_tagging" in unseen
