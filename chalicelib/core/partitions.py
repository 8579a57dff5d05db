"""AWS partitions: which partition a region or an ARN belongs to, and where its global (IAM) calls are recorded.

The one table of partitions (pure). Region prefixes and global regions follow botocore's ``partitions.json``
and ``endpoints.json`` (the IAM endpoint's credential scope): CloudTrail records IAM and other global calls in
that region. Anything unrecognised (including anonymised or fake region names) is the commercial ``aws``
partition, as it always was.
"""

from __future__ import annotations

from dataclasses import dataclass

AWS = "aws"
AWS_CN = "aws-cn"
AWS_US_GOV = "aws-us-gov"
AWS_ISO = "aws-iso"
AWS_ISO_B = "aws-iso-b"
AWS_ISO_E = "aws-iso-e"
AWS_ISO_F = "aws-iso-f"
AWS_EUSC = "aws-eusc"


@dataclass(frozen=True)
class Partition:
    """One partition: its name, the prefix its region names start with, its global (IAM) region, and the DNS
    suffix of its service endpoints (where the stage's queue URLs live)."""

    name: str
    region_prefix: str | None
    global_region: str
    dns_suffix: str = "amazonaws.com"


PARTITIONS = (
    Partition(AWS, None, "us-east-1"),
    Partition(AWS_US_GOV, "us-gov-", "us-gov-west-1"),
    Partition(AWS_CN, "cn-", "cn-north-1", "amazonaws.com.cn"),
    Partition(AWS_ISO_B, "us-isob-", "us-isob-east-1", "sc2s.sgov.gov"),
    Partition(AWS_ISO_E, "eu-isoe-", "eu-isoe-west-1"),
    Partition(AWS_ISO_F, "us-isof-", "us-isof-south-1"),
    Partition(AWS_ISO, "us-iso-", "us-iso-east-1", "c2s.ic.gov"),
    Partition(AWS_EUSC, "eusc-", "eusc-de-east-1"),
)
"""Every prefix is distinct from the others (``us-isob-`` does not start with ``us-iso-``), so order is free."""

GLOBAL_REGION = {p.name: p.global_region for p in PARTITIONS}
"""Partition name -> the region where CloudTrail records its IAM (global) calls."""
DNS_SUFFIX = {p.name: p.dns_suffix for p in PARTITIONS}
"""Partition name -> the DNS suffix of its service endpoints."""


def partition_of_region(region: str | None) -> str:
    """The partition of a region name; ``aws`` for anything unrecognised, empty or missing."""
    if region:
        for partition in PARTITIONS:
            if partition.region_prefix and region.startswith(partition.region_prefix):
                return partition.name
    return AWS


def partition_of_arn(arn: str | None) -> str | None:
    """The partition field of an ARN (``arn:PARTITION:...``), as written; ``None`` when ``arn`` is no ARN."""
    if not arn or not arn.startswith("arn:"):
        return None
    return arn.split(":", 2)[1] or None


def partition_of(arn: str | None = None, region: str | None = None) -> str:
    """The partition an ARN names, else the one of ``region``, else ``aws``."""
    return partition_of_arn(arn) or partition_of_region(region)


def global_region(partition: str) -> str:
    """Where CloudTrail records a partition's IAM and other global calls (``us-east-1`` when unknown)."""
    return GLOBAL_REGION.get(partition, GLOBAL_REGION[AWS])
