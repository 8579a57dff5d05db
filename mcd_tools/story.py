"""Build replay scenarios in code: the demo's story and the benchmark's bursts.

Each builder returns the pieces of a FORMAT.md scenario (an SNS delivery of a Config notification,
and the CloudTrail entry that caused it), so stories stay short and always well-formed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from chalicelib.core.timeutil import iso, parse_time

ACCOUNT = "246810121416"
REGION = "eu-west-1"
TERRAFORM_ROLE = "terraform-apply"
TERRAFORM_SESSION = "aws-go-sdk-1732870000123456789"
TERRAFORM_UA = ("APN/1.0 HashiCorp/1.0 Terraform/1.9.8 (+https://www.terraform.io) terraform-provider-aws/5.78.0 "
                "aws-sdk-go-v2/1.32.5 os/linux lang/go#1.23.3")


@dataclass(frozen=True)
class Actor:
    identity: dict[str, Any]
    user_agent: str
    source_ip: str
    username: str


def terraform(account: str = ACCOUNT) -> Actor:
    return Actor({
        "type": "AssumedRole", "principalId": f"AROAEXAMPLETERRAFORM:{TERRAFORM_SESSION}",
        "arn": f"arn:aws:sts::{account}:assumed-role/{TERRAFORM_ROLE}/{TERRAFORM_SESSION}",
        "accountId": account, "accessKeyId": "ASIAEXAMPLETERRAFORM",
        "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": "AROAEXAMPLETERRAFORM",
                                             "arn": f"arn:aws:iam::{account}:role/ci/{TERRAFORM_ROLE}",
                                             "accountId": account, "userName": TERRAFORM_ROLE},
                           "attributes": {"creationDate": "2024-11-29T09:58:00Z", "mfaAuthenticated": "false"}},
    }, TERRAFORM_UA, "34.240.10.20", TERRAFORM_SESSION)


def sso_human(email: str, account: str = ACCOUNT) -> Actor:
    role = "AWSReservedSSO_AdministratorAccess_4f1c2d3e5a6b7c8d"
    return Actor({
        "type": "AssumedRole", "principalId": f"AROAEXAMPLESSOADMIN:{email}",
        "arn": f"arn:aws:sts::{account}:assumed-role/{role}/{email}", "accountId": account,
        "accessKeyId": "ASIAEXAMPLESSOADMIN",
        "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": "AROAEXAMPLESSOADMIN",
                                             "arn": f"arn:aws:iam::{account}:role/aws-reserved/sso.amazonaws.com/"
                                                    f"eu-west-1/{role}", "accountId": account, "userName": role},
                           "attributes": {"creationDate": "2024-11-29T09:40:00Z", "mfaAuthenticated": "false"}},
    }, "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 Safari/605.1.15", "203.0.113.45", email)


def iam_user(name: str, account: str = ACCOUNT) -> Actor:
    return Actor({"type": "IAMUser", "principalId": "AIDAEXAMPLEUSER", "arn": f"arn:aws:iam::{account}:user/{name}",
                  "accountId": account, "accessKeyId": "AKIAEXAMPLEUSER", "userName": name},
                 "aws-cli/2.22.4 md/awscrt#0.23.4 ua/2.0 os/linux#6.8 md/arch#x86_64 lang/python#3.12.6 "
                 "md/command#iam.attach-role-policy", "198.51.100.23", name)


def event_id(*parts: Any) -> str:
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"


def trail(actor: Actor, when: datetime, name: str, source: str, params: dict[str, Any],
          resources: list[tuple[str, str]], *, delay: timedelta = timedelta(minutes=5),
          region: str = REGION, read_only: bool = False, error: str | None = None) -> dict[str, Any]:
    record: dict[str, Any] = {
        "eventVersion": "1.10", "userIdentity": actor.identity, "eventTime": iso(when), "eventSource": source,
        "eventName": name, "awsRegion": region, "sourceIPAddress": actor.source_ip, "userAgent": actor.user_agent,
        "requestParameters": params, "responseElements": None if read_only else {"_return": True},
        "requestID": event_id("req", name, when), "eventID": event_id(name, when, json.dumps(params, sort_keys=True)),
        "readOnly": read_only, "eventType": "AwsApiCall", "managementEvent": True,
        "recipientAccountId": actor.identity.get("accountId"), "eventCategory": "Management",
    }
    if error:
        record["errorCode"] = error
        record["errorMessage"] = "You are not authorized to perform this operation."
    return {"visible_at": iso(when + delay), "username": actor.username, "record": record,
            "resources": [{"ResourceType": t, "ResourceName": n} for t, n in resources]}


def config_item(resource_type: str, resource_id: str, name: str | None, arn: str, capture: datetime,
                changes: dict[str, Any], configuration: dict[str, Any], *, region: str = REGION,
                account: str = ACCOUNT, change_type: str = "UPDATE") -> dict[str, Any]:
    """An SNS delivery of a ConfigurationItemChangeNotification (delivered 40 s after capture)."""
    message = {
        "configurationItemDiff": {"changedProperties": changes, "changeType": change_type},
        "configurationItem": {
            "relatedEvents": [], "relationships": [], "configuration": configuration,
            "supplementaryConfiguration": {}, "tags": {}, "configurationItemVersion": "1.3",
            "configurationItemCaptureTime": iso(capture), "configurationStateId": int(capture.timestamp() * 1000),
            "awsAccountId": account, "configurationItemStatus": "OK", "resourceType": resource_type,
            "resourceId": resource_id, "resourceName": name, "ARN": arn, "awsRegion": region,
            "availabilityZone": "Not Applicable", "configurationStateMd5Hash": "",
        },
        "notificationCreationTime": iso(capture + timedelta(seconds=1)),
        "messageType": "ConfigurationItemChangeNotification", "recordVersion": "1.3",
    }
    return {"at": iso(capture + timedelta(seconds=40)), "via": "sns", "message": json.dumps(message)}


def ingress(group: str, name: str, actor: Actor, when: datetime, cidr: str, port: int, *,
            delay: timedelta = timedelta(minutes=5), capture_after: timedelta = timedelta(seconds=50),
            account: str = ACCOUNT, region: str = REGION) -> tuple[dict[str, Any], dict[str, Any]]:
    """A security-group ingress rule added by ``actor``: (delivery, CloudTrail entry)."""
    permission = {"ipProtocol": "tcp", "fromPort": port, "toPort": port, "ipv6Ranges": [], "prefixListIds": [],
                  "userIdGroupPairs": [], "ipv4Ranges": [{"cidrIp": cidr}], "ipRanges": [cidr]}
    delivery = config_item(
        "AWS::EC2::SecurityGroup", group, name, f"arn:aws:ec2:{region}:{account}:security-group/{group}",
        when + capture_after,
        {"Configuration.IpPermissions.1": {"previousValue": None, "updatedValue": permission, "changeType": "CREATE"}},
        {"groupId": group, "groupName": name, "ipPermissions": [permission]}, region=region, account=account)
    entry = trail(actor, when, "AuthorizeSecurityGroupIngress", "ec2.amazonaws.com",
                  {"groupId": group, "ipPermissions": {"items": [{"ipProtocol": "tcp", "fromPort": port,
                                                                  "toPort": port,
                                                                  "ipRanges": {"items": [{"cidrIp": cidr}]}}]}},
                  [("AWS::EC2::SecurityGroup", group)], delay=delay, region=region)
    return delivery, entry


def bucket_tags(bucket: str, actor: Actor, when: datetime, value: str, *,
                delay: timedelta = timedelta(minutes=5)) -> tuple[dict[str, Any], dict[str, Any]]:
    delivery = config_item(
        "AWS::S3::Bucket", bucket, bucket, f"arn:aws:s3:::{bucket}", when + timedelta(seconds=45),
        {"Tags.env": {"previousValue": "staging", "updatedValue": value, "changeType": "UPDATE"}},
        {"name": bucket})
    entry = trail(actor, when, "PutBucketTagging", "s3.amazonaws.com",
                  {"bucketName": bucket, "Tagging": {"TagSet": {"Tag": [{"Key": "env", "Value": value}]}}},
                  [("AWS::S3::Bucket", bucket)], delay=delay)
    return delivery, entry


def role_policy(role: str, role_id: str, actor: Actor, when: datetime, *,
                delay: timedelta = timedelta(minutes=6)) -> tuple[dict[str, Any], dict[str, Any]]:
    """An IAM managed policy attached to ``role``: IAM is global, recorded in us-east-1, indexed by name."""
    policy = "arn:aws:iam::aws:policy/AdministratorAccess"
    delivery = config_item(
        "AWS::IAM::Role", role_id, role, f"arn:aws:iam::{ACCOUNT}:role/{role}", when + timedelta(minutes=3),
        {"Configuration.AttachedManagedPolicies.0": {"previousValue": None, "changeType": "CREATE",
                                                     "updatedValue": {"policyName": "AdministratorAccess",
                                                                      "policyArn": policy}}},
        {"roleName": role, "roleId": role_id, "path": "/"}, region="global")
    entry = trail(actor, when, "AttachRolePolicy", "iam.amazonaws.com", {"roleName": role, "policyArn": policy},
                  [("AWS::IAM::Role", role), ("AWS::IAM::Policy", policy)], delay=delay, region="us-east-1")
    return delivery, entry


def scenario(name: str, description: str, start: datetime, deliveries: list[dict[str, Any]],
             cloudtrail: list[dict[str, Any]], expected: list[dict[str, Any]], *,
             trusted: list[str] | None = None, max_slack: int | None = None) -> dict[str, Any]:
    last = max(datetime.fromisoformat(d["at"].replace("Z", "+00:00")) for d in deliveries)
    expect: dict[str, Any] = {"outcomes": expected}
    if max_slack is not None:
        expect["max_slack_messages"] = max_slack
    return {
        "name": name, "description": description, "start": iso(start), "end": iso(last + timedelta(hours=2)),
        "home_region": REGION,
        "settings": {"trusted_principals": trusted or [f"arn:aws:iam::{ACCOUNT}:role/ci/{TERRAFORM_ROLE}"]},
        "deliveries": sorted(deliveries, key=lambda d: d["at"]), "cloudtrail": cloudtrail, "expect": expect,
    }


def demo_story() -> dict[str, Any]:
    """A Terraform apply with a human opening SSH to the world in the middle of it, an IAM change by a
    user, and a change whose author never shows up."""
    t0 = datetime(2024, 11, 29, 10, 0, tzinfo=timezone.utc)
    tf, priya, kim = terraform(), sso_human("priya.raman@example.com"), iam_user("kim.ops")
    deliveries, entries, expected = [], [], []
    for i in range(8):
        group = f"sg-0{i:x}5a1b2c3d4e5f6a7"
        delivery, entry = ingress(group, f"svc-{i}-sg", tf, t0 + timedelta(seconds=10 * i), "10.40.0.0/16", 9100)
        deliveries.append(delivery)
        entries.append(entry)
        expected.append({"kind": "suppressed", "resource_type": "AWS::EC2::SecurityGroup", "resource_id": group,
                         "principal_arn": tf.identity["arn"], "reason": "trusted"})
    for i in range(4):
        bucket = f"demo-data-{i}-{ACCOUNT}"
        delivery, entry = bucket_tags(bucket, tf, t0 + timedelta(seconds=90 + 5 * i), "prod")
        deliveries.append(delivery)
        entries.append(entry)
        expected.append({"kind": "suppressed", "resource_type": "AWS::S3::Bucket", "resource_id": bucket,
                         "principal_arn": tf.identity["arn"], "reason": "trusted"})
    delivery, entry = ingress("sg-0b45710dca11ab001", "bastion-sg", priya, t0 + timedelta(seconds=45), "0.0.0.0/0",
                              22, delay=timedelta(minutes=7))
    deliveries.append(delivery)
    entries.append(entry)
    expected.append({"kind": "manual_change", "resource_type": "AWS::EC2::SecurityGroup",
                     "resource_id": "sg-0b45710dca11ab001", "principal_arn": priya.identity["arn"],
                     "event_ids": [entry["record"]["eventID"]]})
    delivery, entry = role_policy("reporting-lambda", "AROAEXAMPLEREPORTING1", kim, t0 + timedelta(minutes=4))
    deliveries.append(delivery)
    entries.append(entry)
    expected.append({"kind": "manual_change", "resource_type": "AWS::IAM::Role", "resource_id": "AROAEXAMPLEREPORTING1",
                     "principal_arn": kim.identity["arn"], "event_ids": [entry["record"]["eventID"]]})
    orphan, _ = ingress("sg-0deadbeef0000c0de", "legacy-vpn-sg", kim, t0 + timedelta(minutes=6), "198.51.100.0/24",
                        1194)
    deliveries.append(orphan)  # its CloudTrail event never becomes visible
    expected.append({"kind": "unattributed_change", "resource_type": "AWS::EC2::SecurityGroup",
                     "resource_id": "sg-0deadbeef0000c0de"})
    return scenario("demo-terraform-apply-and-clickops",
                    "A Terraform apply (12 changes, trusted role ci/terraform-apply) while an SSO admin opens SSH "
                    "to the world on the bastion group, an IAM user attaches AdministratorAccess to a role, and "
                    "a VPN group changes with no CloudTrail event ever visible.",
                    t0 - timedelta(minutes=5), deliveries, entries, expected, max_slack=3)


MEMBER_ACCOUNT = "135792468024"
"""The demo organisation's member account: the detector reads its history through the role ``mcd-lookup``."""


def _when(text: str) -> datetime:
    found = parse_time(text)
    assert found is not None, text
    return found


def api_call_delivery(record: dict[str, Any], at: datetime) -> dict[str, Any]:
    """``record`` as EventBridge delivers it to ``api_call`` ("AWS API Call via CloudTrail") at ``at``."""
    return {"at": iso(at), "via": "eventbridge", "event": {
        "version": "0", "id": record["eventID"], "detail-type": "AWS API Call via CloudTrail",
        "source": "aws." + str(record["eventSource"]).split(".")[0], "account": record["recipientAccountId"],
        "time": record["eventTime"], "region": record["awsRegion"], "resources": [], "detail": record}}


def demo_org_story() -> dict[str, Any]:
    """``demo_story`` in an organisation: the detector runs in ``ACCOUNT`` and lists ``MEMBER_ACCOUNT`` in
    ``settings.accounts``; the trusted pattern names the pipeline role in every account (``*``). In the member,
    Terraform changes two groups (suppressed) and an SSO user opens FTP to the world (an alert): their calls are
    only in the member's CloudTrail, found by assuming the lookup role there."""
    base = demo_story()
    t0 = datetime(2024, 11, 29, 10, 0, tzinfo=timezone.utc)
    tf, mateo = terraform(MEMBER_ACCOUNT), sso_human("mateo.silva@example.com", MEMBER_ACCOUNT)
    deliveries, entries, expected = list(base["deliveries"]), list(base["cloudtrail"]), list(base["expect"]["outcomes"])
    for i in range(2):
        group = f"sg-0{i:x}7c3e9a1b2d4f6e8"
        delivery, entry = ingress(group, f"partner-{i}-sg", tf, t0 + timedelta(seconds=30 + 10 * i), "10.60.0.0/16",
                                  8443, account=MEMBER_ACCOUNT)
        deliveries.append(delivery)
        entries.append(entry)
        expected.append({"kind": "suppressed", "resource_type": "AWS::EC2::SecurityGroup", "resource_id": group,
                         "principal_arn": tf.identity["arn"], "reason": "trusted"})
    delivery, entry = ingress("sg-0f7e11c0ffee5f7a9", "partner-sftp-sg", mateo, t0 + timedelta(minutes=2),
                              "0.0.0.0/0", 21, delay=timedelta(minutes=22), account=MEMBER_ACCOUNT)
    deliveries.append(delivery)
    entries.append(entry)
    expected.append({"kind": "manual_change", "resource_type": "AWS::EC2::SecurityGroup",
                     "resource_id": "sg-0f7e11c0ffee5f7a9", "principal_arn": mateo.identity["arn"],
                     "event_ids": [entry["record"]["eventID"]]})
    # The member forwards its API calls (infra/region.yaml): each reaches api_call 25 s after it is made, long
    # before the member's history shows it (22 minutes for the FTP rule): that alert is attributed from the stream.
    deliveries += [api_call_delivery(e["record"], _when(e["record"]["eventTime"]) + timedelta(seconds=25))
                   for e in entries if e["record"]["recipientAccountId"] == MEMBER_ACCOUNT]
    expected.append({"kind": "api_call", "principal_arn": mateo.identity["arn"],
                     "event_ids": [entry["record"]["eventID"]], "event_name": "AuthorizeSecurityGroupIngress"})
    org = scenario("demo-organisation-terraform-apply-and-clickops",
                   base["description"] + f" In member account {MEMBER_ACCOUNT}, read through its lookup role, "
                   "Terraform changes two groups and an SSO user opens FTP to the world on the partner SFTP group.",
                   t0 - timedelta(minutes=5), deliveries, entries, expected,
                   trusted=[f"arn:aws:iam::*:role/ci/{TERRAFORM_ROLE}"], max_slack=5)
    org["home_account"] = ACCOUNT
    org["settings"]["accounts"] = [MEMBER_ACCOUNT]
    return org


def burst_story(n: int, *, humans: int = 3, seed: int = 7, min_delay: float = 2.0,
                max_delay: float = 8.0) -> dict[str, Any]:
    """``n`` changes within 3 minutes by the trusted Terraform role, ``humans`` of them by people instead.

    CloudTrail visibility delays are drawn (deterministically) between ``min_delay`` and ``max_delay``
    minutes. The benchmark replays these through the real pipeline.
    """
    import random

    rng = random.Random(seed)
    t0 = datetime(2024, 11, 29, 14, 0, tzinfo=timezone.utc)
    tf = terraform()
    people = [iam_user(f"oncall-{i}") for i in range(humans)]
    human_slots = {round((i + 1) * n / (humans + 1)) for i in range(humans)}
    deliveries, entries, expected = [], [], []
    for i in range(n):
        when = t0 + timedelta(seconds=180 * i / max(1, n))
        delay = timedelta(minutes=rng.uniform(min_delay, max_delay))
        human = i in human_slots
        actor = people[len([s for s in human_slots if s < i]) % humans] if human else tf
        if i % 3 == 2:
            bucket = f"bench-bucket-{i:04d}-{ACCOUNT}"
            delivery, entry = bucket_tags(bucket, actor, when, "prod", delay=delay)
            resource = ("AWS::S3::Bucket", bucket)
        else:
            group = f"sg-0{i:016x}"
            cidr = "0.0.0.0/0" if human else f"10.{i % 250}.0.0/16"
            delivery, entry = ingress(group, f"bench-{i}-sg", actor, when, cidr, 443, delay=delay)
            resource = ("AWS::EC2::SecurityGroup", group)
        deliveries.append(delivery)
        entries.append(entry)
        if human:
            expected.append({"kind": "manual_change", "resource_type": resource[0], "resource_id": resource[1],
                             "principal_arn": actor.identity["arn"], "event_ids": [entry["record"]["eventID"]]})
        else:
            expected.append({"kind": "suppressed", "resource_type": resource[0], "resource_id": resource[1],
                             "principal_arn": actor.identity["arn"], "reason": "trusted"})
    return scenario(f"burst-{n}", f"{n} changes in 3 minutes by Terraform, {humans} of them by people.",
                    t0 - timedelta(minutes=2), deliveries, entries, expected, max_slack=humans)
