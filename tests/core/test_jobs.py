"""Lookup jobs fit in an SQS message whatever the item's size, and keep what attribution and the outcome need."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timezone

from chalicelib.core import attribution as attr
from chalicelib.core import trust
from chalicelib.core.jobs import MAX_JOB_BYTES, LookupJob, change_from_json, change_key, change_to_json
from chalicelib.core.model import ConfigChange, PropertyChange, Relationship

CAPTURE = datetime(2024, 4, 30, 10, 15, tzinfo=timezone.utc)


def _huge_change() -> ConfigChange:
    rules = [{"ipProtocol": "tcp", "fromPort": 443, "toPort": 443,
              "ipv4Ranges": [{"cidrIp": f"10.{i // 250}.{i % 250}.0/24", "description": "partner " * 8}]}
             for i in range(2000)]
    props = tuple(PropertyChange(f"Configuration.IpPermissions.{i}", "CREATE", None, rule) for i, rule in
                  enumerate(rules))
    props += (PropertyChange("Relationships.0", "CREATE", None,
                             {"resourceId": "i-0abc", "resourceType": "AWS::EC2::Instance"}),)
    return ConfigChange(source="t", message_type="OversizedConfigurationItemChangeNotification", account="1",
                        region="us-east-1", resource_type="AWS::EC2::SecurityGroup", resource_id="sg-0big",
                        resource_name="partners", arn="arn:aws:ec2:us-east-1:1:security-group/sg-0big",
                        capture_time=CAPTURE, change_type="UPDATE", status="OK", changed_properties=props,
                        configuration={"groupId": "sg-0big", "ipPermissions": rules}, oversized=True)


def test_a_huge_item_fits_in_one_message_and_keeps_its_relationships() -> None:
    change = _huge_change()
    job = LookupJob(change=change, change_key=change_key(change), arrived_at=CAPTURE)
    body = json.dumps(job.to_json())
    assert len(body.encode()) < 256 * 1024
    assert len(json.dumps(change_to_json(change))) <= MAX_JOB_BYTES
    back = LookupJob.from_json(json.loads(body))
    assert back.change.resource_id == "sg-0big" and back.change.capture_time == CAPTURE
    assert any(p.path == "Relationships.0" and p.updated for p in back.change.changed_properties)


def test_a_huge_item_keeps_its_tags_and_their_diff_for_routing() -> None:
    tags = {f"k{i}": "v" * 256 for i in range(50)}
    change = replace(_huge_change(), tags=tags, changed_properties=(
        *_huge_change().changed_properties, PropertyChange("Tags.team", "DELETE", "payments", None)))
    data = change_to_json(change)
    assert len(json.dumps(data)) <= MAX_JOB_BYTES
    back = change_from_json(data)
    assert back.tags == tags, "an item made large on purpose keeps the tags its route reads"
    assert any(p.path == "Tags.team" and p.previous == "payments" for p in back.changed_properties)


def test_a_small_item_round_trips_unchanged() -> None:
    change = ConfigChange(source="t", message_type="ConfigurationItemChangeNotification", account="1",
                          region="us-east-1", resource_type="AWS::S3::Bucket", resource_id="b", resource_name="b",
                          arn="arn:aws:s3:::b", capture_time=CAPTURE, change_type="UPDATE", status="OK",
                          changed_properties=(PropertyChange("Tags.env", "UPDATE", "a", "b"),),
                          configuration={"name": "b"}, tags={"env": "b"})
    assert change_from_json(change_to_json(change)) == change


def test_a_job_keeps_of_the_configuration_only_the_ids_attribution_and_trust_read() -> None:
    policy = json.dumps({"Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}}]})
    change = ConfigChange(source="t", message_type="ConfigurationItemChangeNotification", account="1",
                          region="global", resource_type="AWS::IAM::Role", resource_id="AROAEXAMPLE",
                          resource_name="app", arn=None, capture_time=CAPTURE, change_type="UPDATE", status="OK",
                          relationships=(Relationship("AWS::IAM::Policy", "ANPA1", "p", "Is attached to"),) * 500,
                          configuration={"roleName": "app", "roleId": "AROAEXAMPLE", "path": "/ci/", "arn": "x" * 4000,
                                         "assumeRolePolicyDocument": policy * 50, "rolePolicyList": [{"a": 1}] * 500})
    data = change_to_json(change)
    assert data["configuration"] == {"roleName": "app", "path": "/ci/"}
    assert "relationships" not in data and len(json.dumps(data)) < 2000
    back = change_from_json(data)
    assert attr.resource_keys(back) == attr.resource_keys(replace(change, configuration={"roleName": "app"}))
    assert trust.trusted_role_mark("manual_change", back, ("arn:aws:iam::1:role/ci/*",)) == {
        "trusted_pattern": "arn:aws:iam::1:role/ci/*"}, "a role's path still travels for the trusted-role mark"


def test_a_huge_configuration_no_longer_fills_the_job() -> None:
    change = replace(_huge_change(), changed_properties=_huge_change().changed_properties[-1:])
    assert len(json.dumps(change_to_json(change))) < 4000
