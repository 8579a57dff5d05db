"""Attribution (``core.attribution``): which CloudTrail calls caused a configuration item, and who made them."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from chalicelib.core import attribution as attr
from chalicelib.core import trust
from chalicelib.core.model import ConfigChange, IndexedResource, PropertyChange, TrailEvent
from chalicelib.parsing.cloudtrail import parse_record
from chalicelib.parsing.config_notifications import parse_configuration_item

ACCT = "925836104477"
REGION = "ap-northeast-1"
SG = "sg-0b1467d0992aec890"
OTHER_SG = "sg-0cf8932055bf01087"
VPC = "vpc-0c18ffdd33428832f"
INSTANCE = "i-0f0d43ac29b4c1c1f"
LOOKBACK = timedelta(minutes=15)
CAPTURE = datetime(2024, 3, 12, 14, 3, 40, tzinfo=timezone.utc)
TF_ROLE = f"arn:aws:iam::{ACCT}:role/ci/terraform-apply"

HUMAN = {"type": "IAMUser", "principalId": "AIDAXV44465ZZ2X35TOJ6", "arn": f"arn:aws:iam::{ACCT}:user/dmitri.volkov",
         "accountId": ACCT, "userName": "dmitri.volkov"}
OTHER_HUMAN = {"type": "IAMUser", "principalId": "AIDA2XN4ICT7AMBDSCJJ2", "arn": f"arn:aws:iam::{ACCT}:user/m.jensen",
               "accountId": ACCT, "userName": "m.jensen"}
TERRAFORM = {
    "type": "AssumedRole", "principalId": "AROA62U5ST4IVYESDO77G:aws-go-sdk-1730212171884467452",
    "arn": f"arn:aws:sts::{ACCT}:assumed-role/terraform-apply/aws-go-sdk-1730212171884467452", "accountId": ACCT,
    "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": "AROA62U5ST4IVYESDO77G", "arn": TF_ROLE,
                                         "accountId": ACCT, "userName": "terraform-apply"}},
}
CFN_AS_HUMAN = dict(OTHER_HUMAN, invokedBy="cloudformation.amazonaws.com")
SSM_AUTOMATION = {
    "type": "AssumedRole", "arn": f"arn:aws:sts::{ACCT}:assumed-role/ConfigRemediationRole/9c4ed122", "accountId": ACCT,
    "invokedBy": "ssm.amazonaws.com",
    "sessionContext": {"sessionIssuer": {"type": "Role", "arn": f"arn:aws:iam::{ACCT}:role/ConfigRemediationRole",
                                         "userName": "ConfigRemediationRole"}},
}

_counter = iter(range(1, 10_000))


def at(seconds: float) -> datetime:
    """A time relative to the capture time."""
    return CAPTURE + timedelta(seconds=seconds)


def call(name: str, when: datetime, identity: dict[str, Any], *, params: Any = None, response: Any = None,
         read_only: bool | None = False, error: str | None = None, event_id: str | None = None,
         indexed: tuple[tuple[str, str], ...] = (), region: str = REGION,
         source: str = "ec2.amazonaws.com") -> TrailEvent:
    record: dict[str, Any] = {
        "eventVersion": "1.09", "userIdentity": identity, "eventTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": source, "eventName": name, "awsRegion": region, "requestParameters": params,
        "responseElements": response, "eventID": event_id or f"00000000-0000-4000-8000-{next(_counter):012d}",
        "recipientAccountId": ACCT,
    }
    if read_only is not None:
        record["readOnly"] = read_only
    if error:
        record["errorCode"], record["errorMessage"] = error, "denied"
    event = parse_record(record, "test", tuple(IndexedResource(t, n) for t, n in indexed))
    assert isinstance(event, TrailEvent)
    return event


def sg_call(name: str, when: datetime, identity: dict[str, Any], group: str = SG, **kwargs: Any) -> TrailEvent:
    return call(name, when, identity, params={"groupId": group, "ipPermissions": {"items": []}},
                indexed=(("AWS::EC2::SecurityGroup", group),), **kwargs)


def sg_change(*, resource_id: str = SG, name: str | None = "bastion-sg", capture: datetime = CAPTURE,
              related_events: tuple[str, ...] = (), props: tuple[PropertyChange, ...] = (),
              configuration: Any = None) -> ConfigChange:
    return ConfigChange(
        source="test", message_type="ConfigurationItemChangeNotification", account=ACCT, region=REGION,
        resource_type="AWS::EC2::SecurityGroup", resource_id=resource_id, resource_name=name,
        arn=f"arn:aws:ec2:{REGION}:{ACCT}:security-group/{resource_id}", capture_time=capture, change_type="UPDATE",
        status="OK", changed_properties=props, related_events=related_events,
        configuration=configuration if configuration is not None else {"groupId": resource_id, "vpcId": VPC,
                                                                       "groupName": name},
    )


def decide(change: ConfigChange, events: list[TrailEvent], *, previous: datetime | None = None,
           patterns: tuple[str, ...] = (TF_ROLE,), services: bool = True) -> attr.Attribution | None:
    """``attribute``'s answer, checked against ``attribute_indexed`` over the same calls: every rule below holds
    for both entry points."""
    options: dict[str, Any] = dict(previous_capture=previous, lookback=LOOKBACK, trusted_patterns=patterns,
                                   trust_aws_services=services)
    found = attr.attribute(change, events, **options)
    index = attr.CallIndex()
    for event in events:
        index.add(event)
    assert attr.attribute_indexed(change, index, **options) == found
    return found


def ids(found: attr.Attribution | None) -> list[str | None]:
    assert found is not None
    return [e.event_id for e in found.events]


# --- the window ---------------------------------------------------------------------------------------------


def test_window_without_previous_item_is_lookback_to_capture_plus_tolerance():
    start, end = attr.window(sg_change(), None, LOOKBACK)
    assert start == CAPTURE - LOOKBACK
    assert end == CAPTURE + attr.CAPTURE_TOLERANCE


def test_window_starts_where_the_previous_items_window_ended():
    previous = at(-120)
    assert attr.window(sg_change(), previous, LOOKBACK)[0] == previous + attr.CAPTURE_TOLERANCE


@pytest.mark.parametrize("previous", [at(-3600), at(0), at(60)])
def test_previous_capture_outside_the_lookback_or_not_before_this_one_is_ignored(previous: datetime):
    assert attr.window(sg_change(), previous, LOOKBACK)[0] == CAPTURE - LOOKBACK


def test_window_start_is_exclusive_and_end_inclusive_with_capture_tolerance():
    previous = at(-100)
    on_previous = sg_call("AuthorizeSecurityGroupIngress", previous, HUMAN)
    assert decide(sg_change(), [on_previous], previous=previous) is None
    within_previous_tolerance = sg_call("AuthorizeSecurityGroupIngress", at(-99), HUMAN)
    assert decide(sg_change(), [within_previous_tolerance], previous=previous) is None
    just_after = sg_call("AuthorizeSecurityGroupIngress", at(-97), HUMAN)
    assert ids(decide(sg_change(), [just_after], previous=previous)) == [just_after.event_id]
    within_tolerance = sg_call("AuthorizeSecurityGroupIngress", at(2), HUMAN)
    assert ids(decide(sg_change(), [within_tolerance])) == [within_tolerance.event_id]
    too_late = sg_call("AuthorizeSecurityGroupIngress", at(3), HUMAN)
    assert decide(sg_change(), [too_late]) is None


def test_calls_older_than_the_lookback_are_not_causes():
    old = sg_call("AuthorizeSecurityGroupIngress", CAPTURE - LOOKBACK - timedelta(seconds=1), HUMAN)
    assert decide(sg_change(), [old]) is None
    edge = sg_call("AuthorizeSecurityGroupIngress", CAPTURE - LOOKBACK + timedelta(seconds=1), HUMAN)
    assert decide(sg_change(), [edge]) is not None


def test_second_item_is_caused_only_by_calls_since_the_previous_item():
    # A human opens SSH; Config records it; an SSM remediation closes it; Config records it again.
    human = sg_call("AuthorizeSecurityGroupIngress", at(-185), HUMAN)
    first_capture = at(-138)
    remediation = sg_call("RevokeSecurityGroupIngress", at(-49), SSM_AUTOMATION)
    found = decide(sg_change(), [human, remediation], previous=first_capture)
    assert found is not None
    assert found.verdict == trust.AWS_SERVICE
    assert ids(found) == [remediation.event_id]
    first = decide(sg_change(capture=first_capture), [human, remediation])
    assert first is not None and first.verdict is None and ids(first) == [human.event_id]


# --- what counts as a cause ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name, read_only, error, expected", [
    ("AuthorizeSecurityGroupIngress", False, None, True),
    ("AuthorizeSecurityGroupIngress", None, None, True),  # old records have no readOnly
    ("AuthorizeSecurityGroupIngress", True, None, False),
    ("AuthorizeSecurityGroupIngress", False, "AccessDenied", False),
    ("AuthorizeSecurityGroupIngress", False, "Client.UnauthorizedOperation", False),
    ("DescribeSecurityGroups", None, None, False),
    ("DescribeSecurityGroups", False, None, False),
    ("GetBucketPolicy", None, None, False),
    ("ListUsers", None, None, False),
    ("HeadBucket", None, None, False),
    ("LookupEvents", None, None, False),
    ("", False, None, False),
])
def test_is_write(name: str, read_only: bool | None, error: str | None, expected: bool):
    assert attr.is_write(call(name, at(-10), HUMAN, read_only=read_only, error=error)) is expected


def test_read_only_and_failed_calls_are_never_causes():
    events = [
        sg_call("DescribeSecurityGroups", at(-50), HUMAN, read_only=True),
        sg_call("AuthorizeSecurityGroupIngress", at(-40), HUMAN, error="Client.UnauthorizedOperation"),
        sg_call("RevokeSecurityGroupIngress", at(-30), HUMAN, error="AccessDenied"),
    ]
    assert decide(sg_change(), events) is None


def test_a_failed_human_call_before_a_trusted_change_leaves_it_suppressed():
    denied = sg_call("AuthorizeSecurityGroupIngress", at(-80), HUMAN, error="Client.UnauthorizedOperation")
    terraform = sg_call("AuthorizeSecurityGroupIngress", at(-37), TERRAFORM)
    found = decide(sg_change(), [denied, terraform])
    assert found is not None
    assert found.verdict == trust.TRUSTED
    assert found.principal.arn == TERRAFORM["arn"]
    assert ids(found) == [terraform.event_id]


def test_calls_on_other_resources_are_not_causes():
    other = sg_call("AuthorizeSecurityGroupIngress", at(-30), HUMAN, group=OTHER_SG)
    assert decide(sg_change(), [other]) is None


def test_the_same_event_seen_twice_counts_once():
    event = sg_call("AuthorizeSecurityGroupIngress", at(-30), HUMAN, event_id="1d43528d-3fba-4882-9a8a-fe43f958db7c")
    assert ids(decide(sg_change(), [event, event])) == ["1d43528d-3fba-4882-9a8a-fe43f958db7c"]


def test_an_item_without_capture_time_is_never_decided():
    change = dataclasses.replace(sg_change(), capture_time=None)
    assert decide(change, [sg_call("AuthorizeSecurityGroupIngress", at(-30), HUMAN)]) is None


# --- direct, relationship-linked and relatedEvents attribution ------------------------------------------------


def test_direct_reference_by_request_parameters():
    event = call("AuthorizeSecurityGroupIngress", at(-30), HUMAN, params={"groupId": SG})
    found = decide(sg_change(), [event])
    assert found is not None and found.via == "resource" and found.verdict is None
    assert found.principal.arn == HUMAN["arn"]


def test_direct_reference_by_event_history_resources_only():
    event = call("ModifySecurityGroupRules", at(-30), HUMAN, params={"securityGroupRuleSet": {}},
                 indexed=(("AWS::EC2::SecurityGroup", SG),))
    found = decide(sg_change(), [event])
    assert found is not None and found.via == "resource"


def _swap_diff() -> tuple[PropertyChange, ...]:
    return (PropertyChange("Relationships.0", "DELETE",
                           {"resourceId": INSTANCE, "resourceName": None, "resourceType": "AWS::EC2::Instance",
                            "name": "Is associated with Instance"}, None),)


def test_relationship_linked_item_is_attributed_to_the_call_on_the_related_resource():
    # An instance's security-group swap: the call names the instance and the new group, not the old one.
    swap = call("ModifyInstanceAttribute", at(-1), HUMAN,
                params={"instanceId": INSTANCE, "groupSet": {"items": [{"groupId": OTHER_SG}]}},
                indexed=(("AWS::EC2::Instance", INSTANCE), ("AWS::EC2::SecurityGroup", OTHER_SG)))
    old_group = sg_change(props=_swap_diff())
    assert attr.related_keys(old_group) == (INSTANCE,)
    found = decide(old_group, [swap])
    assert found is not None and found.via == "related-resource" and ids(found) == [swap.event_id]
    assert decide(sg_change(), [swap]) is None  # no relationship in the diff: no link


def test_direct_reference_wins_over_relationship_link():
    swap = call("ModifyInstanceAttribute", at(-20), TERRAFORM, params={"instanceId": INSTANCE})
    direct = sg_call("AuthorizeSecurityGroupIngress", at(-10), HUMAN)
    found = decide(sg_change(props=_swap_diff()), [swap, direct])
    assert found is not None and found.via == "resource" and ids(found) == [direct.event_id]


def test_related_events_name_the_cause_even_outside_the_window():
    event = call("ReplaceNetworkAclEntry", at(-3600), HUMAN, params={"networkAclId": "acl-7c3b9d05"},
                 event_id="2ead5d62-8414-4cad-b36e-3163128842e3")
    change = sg_change(related_events=("2ead5d62-8414-4cad-b36e-3163128842e3",))
    found = decide(change, [event])
    assert found is not None and found.via == "related-events" and ids(found) == [event.event_id]


def test_related_events_that_failed_or_only_read_are_not_causes():
    failed = sg_call("AuthorizeSecurityGroupIngress", at(-30), OTHER_HUMAN, error="AccessDenied",
                     event_id="b7c9f713-9f83-42bf-a654-365eef717d0d")
    real = sg_call("AuthorizeSecurityGroupIngress", at(-20), HUMAN)
    found = decide(sg_change(related_events=("b7c9f713-9f83-42bf-a654-365eef717d0d",)), [failed, real])
    assert found is not None and found.via == "resource" and ids(found) == [real.event_id]


# --- regions and partitions ---------------------------------------------------------------------------------


def _iam_role(partition: str = "aws", region: str = "global") -> ConfigChange:
    item = {"resourceType": "AWS::IAM::Role", "resourceId": "AROA6ILCDDF4YDZ7I5RK6",
            "resourceName": "reporting-lambda-role", "ARN": f"arn:{partition}:iam::{ACCT}:role/reporting-lambda-role",
            "awsRegion": region, "awsAccountId": ACCT, "configurationItemCaptureTime": "2024-03-12T14:03:40.000Z",
            "configuration": {"path": "/", "roleName": "reporting-lambda-role", "roleId": "AROA6ILCDDF4YDZ7I5RK6",
                              "arn": f"arn:{partition}:iam::{ACCT}:role/reporting-lambda-role"}}
    return parse_configuration_item(item, source="test", message_type="ConfigurationItemChangeNotification",
                                    diff=None, notification_time=None)


@pytest.mark.parametrize("partition, region", [("aws", "us-east-1"), ("aws-us-gov", "us-gov-west-1"),
                                               ("aws-cn", "cn-north-1")])
def test_iam_calls_are_looked_up_in_the_partitions_global_region(partition: str, region: str):
    assert attr.lookup_region(_iam_role(partition), "eu-west-1") == region
    assert attr.lookup_region(_iam_role(partition, region="eu-west-1"), "eu-west-1") == region


def test_regional_items_are_looked_up_in_their_own_region():
    assert attr.lookup_region(sg_change(), "eu-west-1") == REGION


def test_partition_of():
    assert attr.partition_of("arn:aws-us-gov:ec2:us-gov-west-1:1:security-group/sg-1") == "aws-us-gov"
    assert attr.partition_of("arn:aws-cn:iam::1:role/x") == "aws-cn"
    assert attr.partition_of(None) == "aws"
    assert attr.partition_of("sg-1") == "aws"


# --- resource keys ------------------------------------------------------------------------------------------


def _nacl() -> ConfigChange:
    return ConfigChange(
        source="test", message_type="ConfigurationItemChangeNotification", account=ACCT, region="eu-west-1",
        resource_type="AWS::EC2::NetworkAcl", resource_id="acl-2f4e6a81", resource_name=None,
        arn=f"arn:aws:ec2:eu-west-1:{ACCT}:network-acl/acl-7c3b9d05", capture_time=CAPTURE, change_type="UPDATE",
        status="OK", configuration={"networkAclId": "acl-7c3b9d05", "vpcId": "vpc-3e8f1a5b",
                                    "associations": [{"subnetId": "subnet-91c2a7e4"}]})


def test_nacl_resource_id_mismatch_uses_the_id_in_configuration_and_arn():
    keys = attr.resource_keys(_nacl())
    assert keys[0] == "acl-2f4e6a81"
    assert "acl-7c3b9d05" in keys
    assert "vpc-3e8f1a5b" not in keys  # a parent's id is not this resource
    names = attr.lookup_names(_nacl())
    assert not any(n.startswith("arn:") for n in names[:2]) and names[-1].startswith("arn:")
    event = call("ReplaceNetworkAclEntry", at(-45), HUMAN, params={"networkAclId": "acl-7c3b9d05", "ruleNumber": 100},
                 indexed=(("AWS::EC2::NetworkAcl", "acl-7c3b9d05"),), region="eu-west-1")
    found = decide(_nacl(), [event])
    assert found is not None and found.via == "resource"


def test_vpc_id_of_another_resource_does_not_link_a_nacl():
    event = call("CreateRouteTable", at(-45), HUMAN, params={"vpcId": "vpc-3e8f1a5b"}, region="eu-west-1")
    assert decide(_nacl(), [event]) is None


def test_iam_role_item_by_unique_id_is_matched_by_role_name():
    role = _iam_role()
    assert attr.resource_keys(role)[:2] == ("AROA6ILCDDF4YDZ7I5RK6", "reporting-lambda-role")
    by_name = call("PutRolePolicy", at(-60), HUMAN, params={"roleName": "reporting-lambda-role", "policyName": "p"},
                   indexed=(("AWS::IAM::Role", "reporting-lambda-role"),), region="us-east-1",
                   source="iam.amazonaws.com")
    other = call("PutRolePolicy", at(-50), OTHER_HUMAN, params={"roleName": "other-role", "policyName": "p"},
                 indexed=(("AWS::IAM::Role", "other-role"),), region="us-east-1", source="iam.amazonaws.com")
    found = decide(role, [by_name, other])
    assert found is not None and ids(found) == [by_name.event_id]


def test_event_keys_include_arn_tails_of_indexed_resources():
    event = call("StopLogging", at(-5), HUMAN, params={"name": "x"}, source="cloudtrail.amazonaws.com",
                 indexed=(("AWS::CloudTrail::Trail", f"arn:aws:cloudtrail:{REGION}:{ACCT}:trail/mgmt-events"),))
    keys = attr.event_keys(event)
    assert f"arn:aws:cloudtrail:{REGION}:{ACCT}:trail/mgmt-events" in keys
    assert "mgmt-events" in keys


# --- who decides --------------------------------------------------------------------------------------------


def test_untrusted_wins_over_trusted_in_the_same_window():
    human = sg_call("AuthorizeSecurityGroupIngress", at(-90), HUMAN)
    terraform = sg_call("AuthorizeSecurityGroupIngress", at(-30), TERRAFORM)
    found = decide(sg_change(), [terraform, human])
    assert found is not None
    assert found.verdict is None
    assert found.principal.arn == HUMAN["arn"]
    assert ids(found) == [human.event_id]


def test_several_untrusted_calls_are_all_named_and_the_latest_author_is_shown():
    first = sg_call("RevokeSecurityGroupIngress", at(-90), HUMAN)
    second = sg_call("AuthorizeSecurityGroupIngress", at(-30), OTHER_HUMAN)
    found = decide(sg_change(), [second, first])
    assert found is not None and found.verdict is None
    assert ids(found) == [first.event_id, second.event_id]
    assert found.principal.arn == OTHER_HUMAN["arn"]


@pytest.mark.parametrize("order, verdict, principal", [
    ("terraform-then-service", trust.AWS_SERVICE, CFN_AS_HUMAN["arn"]),
    ("service-then-terraform", trust.TRUSTED, TERRAFORM["arn"]),
])
def test_the_latest_call_decides_the_suppression_reason(order: str, verdict: str, principal: str):
    early, late = (-60, -20) if order == "terraform-then-service" else (-20, -60)
    terraform = sg_call("AuthorizeSecurityGroupIngress", at(early), TERRAFORM)
    service = sg_call("AuthorizeSecurityGroupIngress", at(late), CFN_AS_HUMAN)
    found = decide(sg_change(), [terraform, service])
    assert found is not None
    assert found.verdict == verdict
    assert found.principal.arn == principal
    assert sorted(ids(found)) == sorted([terraform.event_id, service.event_id])


def test_service_calls_are_judged_by_their_principal_when_services_are_not_trusted():
    service = sg_call("AuthorizeSecurityGroupIngress", at(-20), CFN_AS_HUMAN)
    found = decide(sg_change(), [service], services=False)
    assert found is not None and found.verdict is None and found.principal.arn == CFN_AS_HUMAN["arn"]


def test_a_generic_resource_name_inside_an_unrelated_call_is_not_a_reference():
    run = call("RunInstances", at(-30), TERRAFORM,
               params={"instanceType": "m7g.large", "networkInterfaceSet": {"items": [{"groupSet": {
                   "items": [{"groupId": OTHER_SG}]}}]}},
               response={"instancesSet": {"items": [{"instanceId": INSTANCE,
                                                     "placement": {"availabilityZone": f"{REGION}a",
                                                                   "tenancy": "default"},
                                                     "maintenanceOptions": {"autoRecovery": "default"}}]}},
               indexed=(("AWS::EC2::Instance", INSTANCE), ("AWS::EC2::SecurityGroup", OTHER_SG)))
    default_group = sg_change(resource_id="sg-02ffefbbd217e9ab7", name="default")
    assert decide(default_group, [run]) is None


def test_a_call_recorded_in_another_account_never_causes_the_item() -> None:
    # The same resource name in another account of the organisation is another resource: its author is
    # not to blame, and the trusted call in the item's own account decides.
    elsewhere = sg_call("AuthorizeSecurityGroupIngress", at(-30), HUMAN)
    elsewhere = dataclasses.replace(elsewhere, account="999988887777")
    own = sg_call("RevokeSecurityGroupIngress", at(-20), TERRAFORM)
    found = decide(sg_change(), [elsewhere, own])
    assert found is not None and found.verdict == trust.TRUSTED and ids(found) == [own.event_id]
    assert decide(sg_change(), [elsewhere]) is None


# --- the index of calls (attribute_indexed) ---------------------------------------------------------------------


def test_the_index_files_only_calls_that_can_change_something_under_each_identifier_once():
    write = sg_call("AuthorizeSecurityGroupIngress", at(-30), HUMAN)
    index = attr.CallIndex()
    for event in (write, sg_call("DescribeSecurityGroups", at(-20), HUMAN, read_only=True),
                  sg_call("AuthorizeSecurityGroupIngress", at(-10), HUMAN, error="Client.UnauthorizedOperation")):
        index.add(event)
    assert len(index) == 1 and write.event_id in index
    version = index.version
    index.add(dataclasses.replace(write, event_name="Other"))  # the same call again: its first copy stays
    assert index.version == version and index.events() == [write]
    assert SG in index.keys[write.event_id or ""]


def test_identifiers_a_call_was_found_by_elsewhere_make_it_a_candidate():
    opaque = call("ModifySecurityGroupRules", at(-30), HUMAN, params={"groupRuleId": "sgr-0abc"})
    index = attr.CallIndex()
    index.add(opaque)
    keys = attr.item_keys(sg_change())
    assert index.candidates(sg_change(), keys) == []
    index.add(opaque, [SG])  # as the stream's index or a job's carried calls name it
    assert index.candidates(sg_change(), keys) == [opaque]
    found = attr.attribute_indexed(sg_change(), index, previous_capture=None, lookback=LOOKBACK,
                                   trusted_patterns=(TF_ROLE,), trust_aws_services=True)
    assert ids(found) == [opaque.event_id]


def test_an_items_candidates_come_in_the_order_the_calls_were_added():
    later = sg_call("RevokeSecurityGroupIngress", at(-10), TERRAFORM)
    earlier = sg_call("AuthorizeSecurityGroupIngress", at(-40), TERRAFORM)
    elsewhere = sg_call("AuthorizeSecurityGroupIngress", at(-20), HUMAN, group=OTHER_SG)
    named = call("CreateTags", at(-5), TERRAFORM, event_id="cfg-named-0001")
    index = attr.CallIndex()
    for event in (later, elsewhere, earlier, named):
        index.add(event)
    change = sg_change(related_events=("cfg-named-0001",))
    assert index.candidates(change, attr.item_keys(change)) == [later, earlier, named]
