"""What changed as diff lines: security-group permissions, policies, relationships, other properties."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from slack_fixtures import SSH_WORLD, assert_valid, manual, mrkdwn_texts, perm, read

from chalicelib.slack.diffs import format_property_change
from chalicelib.slack.render import render


def test_two_hundred_rule_security_group_diff_is_truncated() -> None:
    changes = tuple(
        {
            "path": f"Configuration.IpPermissions.{i}",
            "change_type": "CREATE",
            "previous": None,
            "updated": perm(1000 + i, f"10.{i // 256}.{i % 256}.0/24"),
        }
        for i in range(200)
    )
    payload = render([manual(changed_properties=changes)])
    assert_valid(payload)
    body = read("\n".join(mrkdwn_texts(payload)))
    assert "Configuration.IpPermissions.0: + tcp 1000 from 10.0.0.0/24" in body
    assert re.search(r"… and \d+ more changes", body)


def test_one_property_with_two_hundred_permissions() -> None:
    updated = [perm(2000 + i, "0.0.0.0/0", f"10.0.{i}.0/24") for i in range(200)]
    change = {"path": "Configuration.IpPermissions", "change_type": "UPDATE", "previous": [], "updated": updated}
    payload = render([manual(changed_properties=(change,))])
    assert_valid(payload)
    assert "… and" in read("\n".join(mrkdwn_texts(payload)))


def test_six_kilobyte_policy_is_summarised() -> None:
    statements = [
        {
            "Sid": f"S{i}",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{i:012d}:root"},
            "Action": ["s3:GetObject", "s3:PutObject"],
            "Resource": f"arn:aws:s3:::bucket/prefix-{i}/*",
        }
        for i in range(40)
    ]
    policy = json.dumps({"Version": "2012-10-17", "Statement": statements})
    assert len(policy) > 6000
    change = {
        "path": "SupplementaryConfiguration.BucketPolicy",
        "change_type": "UPDATE",
        "previous": {"policyText": policy},
        "updated": {"policyText": policy.replace("PutObject", "DeleteObject")},
    }
    lines = format_property_change(change)
    assert lines[0].startswith("SupplementaryConfiguration.BucketPolicy: updated Allow")
    assert re.search(r"; \+3\d more statements$", lines[0])
    payload = render([manual(resource_type="AWS::S3::Bucket", changed_properties=(change,))])
    assert_valid(payload)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (SSH_WORLD, ["Configuration.IpPermissions.0: + tcp 22 from 0.0.0.0/0"]),
        (
            {
                "path": "Configuration.IpPermissions.0",
                "change_type": "UPDATE",
                "previous": perm(22, "10.20.0.0/16", "81.2.69.160/32"),
                "updated": perm(22, "10.20.0.0/16", "0.0.0.0/0"),
            },
            [
                "Configuration.IpPermissions.0: + tcp 22 from 0.0.0.0/0",
                "Configuration.IpPermissions.0: − tcp 22 from 81.2.69.160/32",
            ],
        ),
        (
            {
                "path": "Configuration.IpPermissionsEgress.0",
                "change_type": "UPDATE",
                "previous": {"ipProtocol": "-1", "ipv4Ranges": [{"cidrIp": "0.0.0.0/0"}]},
                "updated": perm(443, "0.0.0.0/0"),
            },
            [
                "Configuration.IpPermissionsEgress.0: + tcp 443 to 0.0.0.0/0",
                "Configuration.IpPermissionsEgress.0: − all traffic to 0.0.0.0/0",
            ],
        ),
        (
            {
                "path": "Configuration.IpPermissions.1",
                "change_type": "DELETE",
                "updated": None,
                "previous": {
                    "ipProtocol": "tcp",
                    "fromPort": 5432,
                    "toPort": 5432,
                    "userIdGroupPairs": [{"groupId": "sg-0bc7", "userId": None}],
                    "ipv6Ranges": [{"cidrIpv6": "::/0"}],
                    "prefixListIds": [{"prefixListId": "pl-1"}],
                },
            },
            ["Configuration.IpPermissions.1: − tcp 5432 from ::/0, sg-0bc7, pl-1"],
        ),
        (
            {
                "path": "Configuration.IpPermissions.0",
                "change_type": "CREATE",
                "previous": None,
                "updated": {
                    "ipProtocol": "tcp",
                    "fromPort": 8000,
                    "toPort": 8100,
                    "ipv4Ranges": [{"cidrIp": "86.12.201.77/32", "description": "priya temp"}],
                },
            },
            ["Configuration.IpPermissions.0: + tcp 8000-8100 from 86.12.201.77/32 (priya temp)"],
        ),
        ({"path": "Tags.env", "change_type": "UPDATE", "previous": "prod", "updated": "dev"}, ["Tags.env: prod → dev"]),
        ({"path": "Tags.owner", "change_type": "CREATE", "previous": None, "updated": "ola"}, ["Tags.owner: + ola"]),
        (
            {
                "path": "Configuration.Tags.2",
                "change_type": "CREATE",
                "previous": None,
                "updated": {"key": "Backup", "value": "daily"},
            },
            ["Configuration.Tags.2: + Backup=daily"],
        ),
        (
            {
                "path": "Relationships.0",
                "change_type": "DELETE",
                "updated": None,
                "previous": {
                    "resourceId": "i-0f0d43ac29b4c1c1f",
                    "resourceName": None,
                    "resourceType": "AWS::EC2::Instance",
                    "name": "Is associated with Instance",
                },
            },
            ["Relationships.0: − Is associated with Instance i-0f0d43ac29b4c1c1f"],
        ),
        (
            {
                "path": "SupplementaryConfiguration.BucketPolicy",
                "change_type": "UPDATE",
                "previous": {"policyText": None},
                "updated": {
                    "policyText": '{"Version":"2012-10-17","Statement":[{"Sid":"PublicReadExports",'
                    '"Effect":"Allow","Principal":"*","Action":"s3:GetObject",'
                    '"Resource":"arn:aws:s3:::ca-exports/exports/*"}]}'
                },
            },
            [
                "SupplementaryConfiguration.BucketPolicy: + Allow everyone (*) s3:GetObject on "
                "arn:aws:s3:::ca-exports/exports/*"
            ],
        ),
        (
            {
                "path": "Configuration.RolePolicyList.0",
                "change_type": "CREATE",
                "previous": None,
                "updated": {
                    "policyName": "s3-export-all",
                    "policyDocument": "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect"
                    "%22%3A%22Allow%22%2C%22Action%22%3A%5B%22s3%3AGetObject%22%2C%22s3%3AListBucket%22%5D%2C"
                    "%22Resource%22%3A%22%2A%22%7D%5D%7D",
                },
            },
            ["Configuration.RolePolicyList.0: + s3-export-all: Allow s3:GetObject,s3:ListBucket on *"],
        ),
        (
            {
                "path": "Configuration.AttachedManagedPolicies.1",
                "change_type": "CREATE",
                "previous": None,
                "updated": {
                    "policyName": "AmazonS3FullAccess",
                    "policyArn": "arn:aws:iam::aws:policy/AmazonS3FullAccess",
                },
            },
            [
                "Configuration.AttachedManagedPolicies.1: + AmazonS3FullAccess "
                "(arn:aws:iam::aws:policy/AmazonS3FullAccess)"
            ],
        ),
        (
            {
                "path": "SupplementaryConfiguration.BucketTaggingConfiguration",
                "change_type": "UPDATE",
                "previous": {"tagSets": [{"tags": {"ManagedBy": "terraform"}}]},
                "updated": {"tagSets": [{"tags": {"ManagedBy": "terraform", "cost-center": "cc-4410"}}]},
            },
            ["SupplementaryConfiguration.BucketTaggingConfiguration.tagSets.0.tags.cost-center: + cc-4410"],
        ),
        (
            {
                "path": "Configuration.StateReason",
                "change_type": "CREATE",
                "previous": None,
                "updated": {"code": "Server.ScheduledStop", "message": "Stopped"},
            },
            ['Configuration.StateReason: + {"code":"Server.ScheduledStop","message":"Stopped"}'],
        ),
        (
            {"path": "Configuration.State.Code", "change_type": "UPDATE", "previous": 16, "updated": 80},
            ["Configuration.State.Code: 16 → 80"],
        ),
        (
            {"path": "Configuration.PublicDnsName", "change_type": "UPDATE", "previous": "ec2-1", "updated": ""},
            ['Configuration.PublicDnsName: ec2-1 → ""'],
        ),
    ],
)
def test_format_property_change(change: dict[str, Any], expected: list[str]) -> None:
    assert format_property_change(change) == expected


def test_deeply_nested_values_do_not_crash() -> None:
    deep: Any = "leaf"
    for _ in range(5000):
        deep = [deep]
    nested: Any = {"a": 1}
    for _ in range(200):
        nested = {"k": nested}
    changes = (
        {"path": "Configuration.Deep", "change_type": "UPDATE", "previous": deep, "updated": [deep]},
        {"path": "Configuration.Nested", "change_type": "UPDATE", "previous": nested, "updated": {"k": nested}},
        {"path": "Configuration.IpPermissions", "change_type": "UPDATE", "previous": deep, "updated": nested},
    )
    assert_valid(render([manual(changed_properties=changes)]))


def test_long_generic_values_are_shortened() -> None:
    (line,) = format_property_change(
        {
            "path": "Configuration.Description",
            "change_type": "UPDATE",
            "previous": "a" * 5000,
            "updated": {"k": "b" * 5000},
        }
    )
    assert len(line) <= 240 and "…" in line
