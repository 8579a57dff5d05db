"""Console links: partition- and region-correct, built only from fixed templates, never steered by event text."""

from __future__ import annotations

import re

import pytest
from slack_fixtures import (
    CONSOLE_HOSTS,
    assert_valid,
    event,
    hostile_outcome,
    links,
    manual,
    mrkdwn_texts,
)

from chalicelib.core.outcomes import MANUAL_CHANGE
from chalicelib.slack.links import (
    cloudtrail_event_url,
    cloudtrail_history_url,
    config_timeline_url,
    resource_console_url,
    s3_object_url,
)
from chalicelib.slack.render import render


def test_hostile_resource_and_region_never_change_the_link_host() -> None:
    outcome = hostile_outcome(MANUAL_CHANGE, "evil.example/#<x>|y")
    for url in (
        resource_console_url(outcome),
        config_timeline_url(outcome),
        cloudtrail_event_url("evil.example/#<x>|y", "evil.example/#"),
        s3_object_url("evil.example/#", "a b|<c>"),
    ):
        assert url is not None
        assert re.match(r"^https://(" + CONSOLE_HOSTS + r")/", url), url
        assert not re.search(r"[\s<>|`]", url), url
    for link in links(render([outcome])):
        assert "evil.example/" not in link.split("|")[0]


def test_links_the_renderer_builds_keep_their_real_dots() -> None:
    payload = render([manual(resource_name="evil.example")])
    assert_valid(payload)
    assert any("https://us-east-2.console.aws.amazon.com/ec2/home" in link for link in links(payload))
    assert "evil\u2024example" in "\n".join(mrkdwn_texts(payload))


def test_cloudtrail_history_url() -> None:
    assert cloudtrail_history_url("nina.petrov@example.com", "eu-central-1") == (
        "https://eu-central-1.console.aws.amazon.com/cloudtrail/home?region=eu-central-1"
        "#/events?Username=nina.petrov%40example.com")
    assert cloudtrail_history_url("x" * 300, "eu-central-1") is None
    assert cloudtrail_history_url("a/b", "evil.example/#", "aws-us-gov") == (
        "https://console.amazonaws-us-gov.com/cloudtrail/home?region=us-gov-west-1#/events?Username=a%2Fb")


def test_links_for_a_security_group_in_aws() -> None:
    found = links(render([manual()]))
    assert any(
        "https://us-east-2.console.aws.amazon.com/ec2/home?region=us-east-2"
        "#SecurityGroup:groupId=sg-0b1467d0992aec890|" in link
        for link in found
    )
    assert any(
        "https://us-east-2.console.aws.amazon.com/config/home?region=us-east-2#/resources/details"
        "?resourceId=sg-0b1467d0992aec890&amp;resourceType=AWS%3A%3AEC2%3A%3ASecurityGroup|" in link
        for link in found
    )
    assert any(
        "https://us-east-2.console.aws.amazon.com/cloudtrail/home?region=us-east-2"
        "#/events/1d43528d-3fba-4882-9a8a-fe43f958db7c|" in link
        for link in found
    )
    assert any(
        "https://s3.console.aws.amazon.com/s3/object/mcd-archive-318472906155"
        "?prefix=notifications%2F2024%2F03%2F12%2F7f0c.json|" in link
        for link in found
    )


@pytest.mark.parametrize(
    ("partition", "region", "host"),
    [
        ("aws-us-gov", "us-gov-west-1", "https://console.amazonaws-us-gov.com"),
        ("aws-cn", "cn-northwest-1", "https://console.amazonaws.cn"),
    ],
)
def test_links_are_partition_correct(partition: str, region: str, host: str) -> None:
    outcome = manual(partition=partition, region=region, events=(event(region=region),))
    assert resource_console_url(outcome) == (
        f"{host}/ec2/home?region={region}#SecurityGroup:groupId=sg-0b1467d0992aec890"
    )
    assert config_timeline_url(outcome).startswith(f"{host}/config/home?region={region}#/resources/details")
    assert cloudtrail_event_url("e-1", region, partition) == f"{host}/cloudtrail/home?region={region}#/events/e-1"
    assert s3_object_url("b", "k/1", partition) == f"{host}/s3/object/b?prefix=k%2F1"
    for link in links(render([outcome])):
        assert link.startswith(f"<{host}/")


@pytest.mark.parametrize(
    ("partition", "console", "home"),
    [
        ("aws", "https://console.aws.amazon.com", "us-east-1"),
        ("aws-us-gov", "https://console.amazonaws-us-gov.com", "us-gov-west-1"),
        ("aws-cn", "https://console.amazonaws.cn", "cn-north-1"),
    ],
)
def test_global_iam_role_links(partition: str, console: str, home: str) -> None:
    role = manual(
        partition=partition,
        region="global",
        resource_type="AWS::IAM::Role",
        resource_id="AROA6ILCDDF4YDZ7I5RK6",
        resource_name="reporting-lambda-role",
        resource_arn=f"arn:{partition}:iam::452190837766:role/reporting-lambda-role",
    )
    assert resource_console_url(role) == f"{console}/iam/home#/roles/details/reporting-lambda-role"
    timeline = config_timeline_url(role)
    assert f"/config/home?region={home}#/resources/details?resourceId=AROA6ILCDDF4YDZ7I5RK6" in timeline
    assert "resourceType=AWS%3A%3AIAM%3A%3ARole" in timeline


def test_iam_timeline_uses_the_recording_region_when_known() -> None:
    role = manual(resource_type="AWS::IAM::Role", region="eu-west-1", resource_name="r")
    assert config_timeline_url(role).startswith("https://eu-west-1.console.aws.amazon.com/config/home?region=eu-west-1")


@pytest.mark.parametrize(
    ("resource_type", "rid", "name", "fragment"),
    [
        (
            "AWS::EC2::Instance",
            "i-0f0d43ac29b4c1c1f",
            None,
            "/ec2/home?region=us-east-2#InstanceDetails:instanceId=i-0f0d",
        ),
        (
            "AWS::EC2::RouteTable",
            "rtb-0961",
            None,
            "/vpcconsole/home?region=us-east-2#RouteTableDetails:RouteTableId=rtb-0961",
        ),
        ("AWS::EC2::NetworkAcl", "acl-1", None, "#NetworkAclDetails:networkAclId=acl-1"),
        ("AWS::EC2::VPC", "vpc-1", None, "#VpcDetails:VpcId=vpc-1"),
        ("AWS::EC2::Subnet", "subnet-1", None, "#SubnetDetails:subnetId=subnet-1"),
        (
            "AWS::S3::Bucket",
            "my-bucket",
            "my-bucket",
            "https://s3.console.aws.amazon.com/s3/buckets/my-bucket?region=us-east-2",
        ),
        ("AWS::IAM::User", "AIDA1", "ola", "https://console.aws.amazon.com/iam/home#/users/details/ola"),
        ("AWS::Lambda::Function", "fn", "fn", "/lambda/home?region=us-east-2#/functions/fn"),
        (
            "AWS::RDS::DBInstance",
            "db-ABC",
            "orders-db",
            "/rds/home?region=us-east-2#database:id=orders-db;is-cluster=false",
        ),
    ],
)
def test_resource_console_urls(resource_type: str, rid: str, name: str | None, fragment: str) -> None:
    url = resource_console_url(manual(resource_type=resource_type, resource_id=rid, resource_name=name))
    assert url is not None and fragment in url


def test_policy_and_trail_links_use_the_arn() -> None:
    policy = manual(resource_type="AWS::IAM::Policy", resource_arn="arn:aws:iam::1:policy/p", resource_id="ANPA")
    assert resource_console_url(policy) == (
        "https://console.aws.amazon.com/iam/home#/policies/details/arn%3Aaws%3Aiam%3A%3A1%3Apolicy%2Fp"
    )
    trail = manual(resource_type="AWS::CloudTrail::Trail", resource_arn="arn:aws:cloudtrail:us-east-2:1:trail/t")
    assert "/cloudtrail/home?region=us-east-2#/trails/arn%3Aaws%3Acloudtrail" in resource_console_url(trail)


def test_unknown_resource_type_or_partition_gives_no_link() -> None:
    assert resource_console_url(manual(resource_type="AWS::Foo::Bar")) is None
    assert resource_console_url(manual(partition="aws-iso")) is None
    assert_valid(render([manual(partition="aws-iso")]))


def test_console_base_override_and_validation() -> None:
    payload = render([manual()], console_base="https://mcd-console.example.com/aws/")
    assert all(link.startswith("<https://mcd-console.example.com/aws/") for link in links(payload))
    with pytest.raises(ValueError):
        render([manual()], console_base="javascript:alert(1)")
    with pytest.raises(ValueError):
        render([manual()], console_base="https://x.example/<!here>")
