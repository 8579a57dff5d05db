"""The one partition table: partition of a region and of an ARN, and each partition's global (IAM) region."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chalicelib.core import partitions
from chalicelib.core.partitions import (
    GLOBAL_REGION,
    PARTITIONS,
    global_region,
    partition_of,
    partition_of_arn,
    partition_of_region,
)


@pytest.mark.parametrize("region, expected", [
    ("us-east-1", "aws"), ("eu-west-1", "aws"), ("ap-southeast-7", "aws"), ("mx-central-1", "aws"),
    ("us-gov-west-1", "aws-us-gov"), ("us-gov-east-1", "aws-us-gov"),
    ("cn-north-1", "aws-cn"), ("cn-northwest-1", "aws-cn"),
    ("us-iso-east-1", "aws-iso"), ("us-iso-west-1", "aws-iso"),
    ("us-isob-east-1", "aws-iso-b"), ("us-isob-west-1", "aws-iso-b"),
    ("eu-isoe-west-1", "aws-iso-e"),
    ("us-isof-south-1", "aws-iso-f"), ("us-isof-east-1", "aws-iso-f"),
    ("eusc-de-east-1", "aws-eusc"),
    # Unknown, anonymised or missing regions are the commercial partition, as they always were.
    ("global", "aws"), ("ap-isob-east-1r", "aws"), ("us-northeast-1r", "aws"), ("", "aws"), (None, "aws"),
])
def test_partition_of_region(region, expected):
    assert partition_of_region(region) == expected


@pytest.mark.parametrize("arn, expected", [
    ("arn:aws:iam::111122223333:user/nina", "aws"),
    ("arn:aws-us-gov:ec2:us-gov-west-1:1:security-group/sg-1", "aws-us-gov"),
    ("arn:aws-cn:iam::1:role/x", "aws-cn"),
    ("arn:aws-iso-b:iam::1:role/x", "aws-iso-b"),
    ("arn:aws-cn", "aws-cn"),
    ("arn::iam::1:role/x", None), ("arn:", None), ("sg-1", None), ("", None), (None, None),
])
def test_partition_of_arn(arn, expected):
    assert partition_of_arn(arn) == expected


@pytest.mark.parametrize("arn, region, expected", [
    ("arn:aws-us-gov:iam::1:user/sam", "eu-west-1", "aws-us-gov"),  # the ARN wins
    (None, "us-gov-west-1", "aws-us-gov"),
    (None, "cn-north-1", "aws-cn"),
    ("sg-1", "us-iso-east-1", "aws-iso"),
    ("arn::iam::1:role/x", "cn-north-1", "aws-cn"),
    (None, None, "aws"),
])
def test_partition_of_an_arn_then_a_region(arn, region, expected):
    assert partition_of(arn, region) == expected


def test_partition_of_one_arn_defaults_to_aws():
    assert partition_of("arn:aws-cn:iam::1:role/x") == "aws-cn"
    assert partition_of(None) == "aws"
    assert partition_of("sg-1") == "aws"


@pytest.mark.parametrize("partition, expected", [
    ("aws", "us-east-1"), ("aws-us-gov", "us-gov-west-1"), ("aws-cn", "cn-north-1"),
    ("aws-iso", "us-iso-east-1"), ("aws-iso-b", "us-isob-east-1"), ("aws-iso-e", "eu-isoe-west-1"),
    ("aws-iso-f", "us-isof-south-1"), ("aws-eusc", "eusc-de-east-1"),
    ("aws-unknown", "us-east-1"), ("", "us-east-1"),
])
def test_global_region(partition, expected):
    assert global_region(partition) == expected


def test_every_global_region_lies_in_its_own_partition():
    for partition in PARTITIONS:
        assert partition_of_region(partition.global_region) == partition.name
        assert GLOBAL_REGION[partition.name] == partition.global_region


def test_no_region_prefix_shadows_another():
    prefixes = [p.region_prefix for p in PARTITIONS if p.region_prefix]
    assert len(set(prefixes)) == len(prefixes)
    for one in prefixes:
        assert not any(other != one and other.startswith(one) for other in prefixes), one


def test_names_are_the_partition_names():
    assert {p.name for p in PARTITIONS} == {
        partitions.AWS, partitions.AWS_CN, partitions.AWS_US_GOV, partitions.AWS_ISO, partitions.AWS_ISO_B,
        partitions.AWS_ISO_E, partitions.AWS_ISO_F, partitions.AWS_EUSC}


def test_every_region_botocore_knows_is_in_its_partition():
    botocore = pytest.importorskip("botocore")
    data = json.loads((Path(botocore.__file__).parent / "data" / "partitions.json").read_text())
    known = {p.name for p in PARTITIONS}
    for partition in data["partitions"]:
        if partition["id"] not in known:
            continue  # a partition newer than this table: its regions are "aws" until it is added
        for region in partition["regions"]:
            if region.startswith("aws-"):
                continue  # pseudo-regions such as aws-global
            assert partition_of_region(region) == partition["id"], region
