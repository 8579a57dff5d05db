"""What permissions and policies allow: the analysis severity and the diff lines share."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.core import policies
from chalicelib.core.policies import HeldPolicy, Rule

PUBLIC = {"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject"}]}


def perm(port: int, *cidrs: str) -> dict[str, Any]:
    return {"ipProtocol": "tcp", "fromPort": port, "toPort": port, "ipv4Ranges": [{"cidrIp": c} for c in cidrs]}


def test_rules_flatten_config_and_request_shapes() -> None:
    assert policies.rules(perm(22, "10.0.0.0/8")) == [Rule("tcp 22", "10.0.0.0/8", "")]
    request = {"ipProtocol": "-1", "ipRanges": {"items": [{"cidrIp": "0.0.0.0/0", "description": "all"}]}}
    assert policies.rules(json.dumps([request])) == [Rule("all traffic", "0.0.0.0/0", "all")]
    assert policies.rules({"ipProtocol": "udp", "fromPort": 0, "toPort": 65535}) == [
        Rule("udp all ports", "(no source)", "")]
    assert policies.rules(["junk", 5]) == []


def test_world_ingress_is_only_newly_added_world_sources() -> None:
    assert policies.world_ingress_added(perm(22, "10.0.0.0/8"), perm(22, "10.0.0.0/8", "::/0"))
    assert not policies.world_ingress_added(perm(22, "0.0.0.0/0"), perm(22, "0.0.0.0/0", "10.0.0.0/8"))
    diff = policies.rule_diff(perm(22, "10.0.0.0/8"), perm(443, "10.0.0.0/8"))
    assert diff.added == [Rule("tcp 443", "10.0.0.0/8", "")] and diff.removed == [Rule("tcp 22", "10.0.0.0/8", "")]


@pytest.mark.parametrize(
    ("value", "held"),
    [
        (PUBLIC, HeldPolicy(None, PUBLIC)),
        (json.dumps(PUBLIC), HeldPolicy(None, PUBLIC)),
        ({"policyName": "p", "policyDocument": "%7B%22Statement%22%3A%5B%5D%7D"}, HeldPolicy("p", {"Statement": []})),
        ({"policyText": None}, HeldPolicy(None, None)),
        ({"policyText": "not json"}, None),
        ("text", None),
    ],
)
def test_policy_of(value: Any, held: HeldPolicy | None) -> None:
    assert policies.policy_of(value) == held


def test_public_means_everyone_without_a_condition() -> None:
    assert policies.is_public_policy(PUBLIC)
    assert policies.is_public_policy({"Statement": {"Effect": "Allow", "Principal": {"AWS": ["*"]}}})
    conditional = {"Statement": [{**PUBLIC["Statement"][0], "Condition": {"IpAddress": {}}}]}
    assert not policies.is_public_policy(conditional)
    assert not policies.is_public_policy({"Statement": [{"Effect": "Deny", "Principal": "*"}]})
    assert not policies.is_public_policy(None)


def test_requests_that_open_to_the_world_or_make_public() -> None:
    opening = {"ipPermissions": {"items": [{"ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]}}]}}
    assert policies.request_opens_world("AuthorizeSecurityGroupIngress", opening)
    assert not policies.request_opens_world("AuthorizeSecurityGroupEgress", opening)
    assert policies.request_makes_public("PutBucketPolicy", {"bucketPolicy": PUBLIC})
    assert policies.request_makes_public("PutBucketAcl", {"x": "http://acs.amazonaws.com/groups/global/AllUsers"})
    assert not policies.request_makes_public("PutBucketTagging", {"bucketPolicy": PUBLIC})


def test_walks_are_bounded() -> None:
    deep: Any = "0.0.0.0/0"
    for _ in range(50):
        deep = {"cidrIp": deep}
    assert not policies.request_opens_world("AuthorizeSecurityGroupIngress", deep)
