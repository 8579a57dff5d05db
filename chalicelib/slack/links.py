"""Console links of an alert: the resource, its Config timeline, CloudTrail events, archived objects (pure).

Links are built only from fixed templates and URL-quoted components; a component that is too long or a
region that is not a plain region name yields no link rather than a wrong one. Links follow each
outcome's partition (its console host) and region; ``console_base`` (``https://host[/path]``, checked by
``check_base``) replaces the console origin, e.g. for a console proxy.

From a central account (settings ``console_access``, D33) a link opens the account that holds what it
shows: through the console's switch-role page or the AWS access portal, with the console page as the
destination. The resource, its Config timeline and its CloudTrail events are in the outcome's account;
the archived notification is in the detector's own (home) account, and goes direct when that is unknown.
A ``console_base`` proxy picks the account itself: its links are never wrapped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote

from chalicelib.core.outcomes import MANUAL_CHANGE, UNATTRIBUTED_CHANGE, Outcome
from chalicelib.core.partitions import AWS, global_region
from chalicelib.core.settings import ConsoleAccess
from chalicelib.core.text import nonblank
from chalicelib.slack.labels import event_ids
from chalicelib.slack.text import esc, escape_mrkdwn

CONSOLE_HOSTS = {
    "aws": "console.aws.amazon.com",
    "aws-us-gov": "console.amazonaws-us-gov.com",
    "aws-cn": "console.amazonaws.cn",
}
"""Partition -> its console host; partitions without one get no links (unless ``console_base`` is given)."""

SIGNIN_HOSTS = {
    "aws": "signin.aws.amazon.com",
    "aws-us-gov": "signin.amazonaws-us-gov.com",
    "aws-cn": "signin.amazonaws.cn",
}
"""Partition -> the host of its console's switch-role page (``/switchrole``)."""

URL_MAX = 3000
"""Longest URL a link may have (Slack's limit for a Block Kit URL); a longer one gives no link."""

_URL_PART_MAX = 200
_DISPLAY_NAME_MAX = 64
_ACCOUNT = re.compile(r"^[0-9]{12}$")
_ACCESS_NAME = re.compile(r"^[A-Za-z0-9_+=,.@-]{1,64}$")
_REGION = re.compile(r"^[a-z]{2,6}(?:-[a-z0-9]{1,12}){1,4}$")
_CONSOLE_BASE = re.compile(r"^https://[A-Za-z0-9.-]+(?::[0-9]{1,5})?(?:/[A-Za-z0-9._~/-]*)?$")
_EC2 = "/ec2/home?region={r}#"
_VPC = "/vpcconsole/home?region={r}#"
_IAM = "/iam/home#/"
# resource type (lower case) -> (path template, identifier: id | name | arn, global?)
_RESOURCE_PATHS: dict[str, tuple[str, str, bool]] = {
    "aws::ec2::securitygroup": (_EC2 + "SecurityGroup:groupId={v}", "id", False),
    "aws::ec2::instance": (_EC2 + "InstanceDetails:instanceId={v}", "id", False),
    "aws::ec2::volume": (_EC2 + "VolumeDetails:volumeId={v}", "id", False),
    "aws::ec2::networkinterface": (_EC2 + "NetworkInterface:networkInterfaceId={v}", "id", False),
    "aws::ec2::routetable": (_VPC + "RouteTableDetails:RouteTableId={v}", "id", False),
    "aws::ec2::networkacl": (_VPC + "NetworkAclDetails:networkAclId={v}", "id", False),
    "aws::ec2::vpc": (_VPC + "VpcDetails:VpcId={v}", "id", False),
    "aws::ec2::subnet": (_VPC + "SubnetDetails:subnetId={v}", "id", False),
    "aws::ec2::internetgateway": (_VPC + "InternetGateway:internetGatewayId={v}", "id", False),
    "aws::ec2::natgateway": (_VPC + "NatGatewayDetails:natGatewayId={v}", "id", False),
    "aws::s3::bucket": ("/s3/buckets/{v}?region={r}", "name", False),
    "aws::iam::role": (_IAM + "roles/details/{v}", "name", True),
    "aws::iam::user": (_IAM + "users/details/{v}", "name", True),
    "aws::iam::group": (_IAM + "groups/details/{v}", "name", True),
    "aws::iam::policy": (_IAM + "policies/details/{v}", "arn", True),
    "aws::lambda::function": ("/lambda/home?region={r}#/functions/{v}", "name", False),
    "aws::rds::dbinstance": ("/rds/home?region={r}#database:id={v};is-cluster=false", "name", False),
    "aws::rds::dbcluster": ("/rds/home?region={r}#database:id={v};is-cluster=true", "name", False),
    "aws::cloudtrail::trail": ("/cloudtrail/home?region={r}#/trails/{v}", "arn", False),
    "aws::dynamodb::table": ("/dynamodbv2/home?region={r}#table?name={v}", "name", False),
    "aws::kms::key": ("/kms/home?region={r}#/kms/keys/{v}", "id", False),
    "aws::sns::topic": ("/sns/v3/home?region={r}#/topic/{v}", "arn", False),
}


DIRECT = ConsoleAccess()
"""Links straight to the console (no ``console_access`` setting)."""


@dataclass(frozen=True)
class LinkSetup:
    """How the links of one message are built: ``base`` replaces the console origin (a console proxy),
    ``access`` opens the account that holds what a link shows, ``home_account`` holds the archive bucket."""

    base: str | None = None
    access: ConsoleAccess = DIRECT
    home_account: str | None = None


ConsoleBase = LinkSetup | str | None
"""What the renderers pass along as ``console_base``: a plain base URL, or the message's whole ``LinkSetup``."""


def link_setup(console_base: str | None = None, console_access: ConsoleAccess | None = None,
               home_account: str | None = None) -> LinkSetup:
    """The setup of one message; ``ValueError`` for a bad ``console_base`` (an odd home account is dropped)."""
    home = home_account if home_account and _ACCOUNT.fullmatch(home_account) else None
    return LinkSetup(check_base(console_base), console_access or DIRECT, home)


def _setup(console_base: ConsoleBase) -> LinkSetup:
    return console_base if isinstance(console_base, LinkSetup) else LinkSetup(base=console_base)


def check_base(console_base: str | None) -> str | None:
    """``console_base`` without a trailing slash; ``ValueError`` unless it is a plain ``https://host[/path]``."""
    if console_base is None:
        return None
    if not _CONSOLE_BASE.fullmatch(console_base):
        raise ValueError("console_base must be a plain https://host[/path] URL")
    return console_base.rstrip("/")


def _q(value: str) -> str:
    return quote(value, safe="", errors="replace")  # a lone surrogate from an event must not crash the alert


def _ok_part(value: str | None) -> bool:
    return bool(value) and len(value or "") <= _URL_PART_MAX


def _region_or_home(region: str | None, partition: str) -> str:
    """A plain region name, or the partition's home region for ``global``/missing/odd values."""
    if region and _REGION.fullmatch(region):
        return region
    return global_region(partition if partition in CONSOLE_HOSTS else AWS)


def _origin(partition: str, region: str | None, console_base: str | None, *, service: str = "") -> str | None:
    """``https://host`` of the console for a partition (regional host in ``aws`` when known)."""
    if console_base:
        return console_base
    host = CONSOLE_HOSTS.get(partition)
    if host is None:
        return None
    if partition == "aws" and service == "s3":
        return "https://s3.console.aws.amazon.com"
    if partition == "aws" and region and _REGION.fullmatch(region):
        return f"https://{region}.{host}"
    return f"https://{host}"


def _identifier(outcome: Outcome, kind: str) -> str | None:
    """The resource's ``id``, ``arn`` or ``name`` (a name falls back to the ARN's last part, then the id)."""
    rid, name, arn = nonblank(outcome.resource_id), nonblank(outcome.resource_name), nonblank(outcome.resource_arn)
    if kind == "id":
        return rid
    if kind == "arn":
        return arn or (rid if rid and rid.startswith("arn:") else None)
    if name:
        return name
    in_arn = _name_in_arn(arn)
    return rid if in_arn is None else in_arn


def _name_in_arn(arn: str | None) -> str | None:
    if arn and "/" in arn:
        return arn.rsplit("/", 1)[-1]
    if arn and arn.startswith("arn:") and ":::" in arn:
        return arn.split(":::", 1)[1]
    return None


def _fits(url: str) -> str | None:
    return url if len(url) <= URL_MAX else None


def _account_name(outcome: Outcome) -> str | None:
    alias = outcome.extra.get("account_alias")
    return nonblank(alias) if isinstance(alias, str) else None


def in_account(url: str | None, setup: LinkSetup, account: str | None, partition: str,
               account_name: str | None = None) -> str | None:
    """``url`` opened in ``account``: direct, or through switch-role or the access portal (``setup.access``).

    Direct when the mode is ``direct``, a ``console_base`` proxy is set, or the account is unknown; no link
    when the account, the role or the portal URL is malformed, or the wrapped URL is too long.
    """
    access = setup.access
    if url is None or setup.base or access.mode == "direct" or not nonblank(account):
        return None if url is None else _fits(url)
    if not _ACCOUNT.fullmatch(account or ""):
        return None
    if access.mode == "switch_role":
        host = SIGNIN_HOSTS.get(partition)
        if host is None or not _ACCESS_NAME.fullmatch(access.role):
            return None
        shown = (nonblank(account_name) or account or "")[:_DISPLAY_NAME_MAX]
        return _fits(f"https://{host}/switchrole?roleName={_q(access.role)}&account={account}"
                     f"&displayName={_q(shown)}&redirect_uri={_q(url)}")
    if access.mode == "identity_center":
        portal = access.start_url.rstrip("/")
        if not (_CONSOLE_BASE.fullmatch(portal) and _ACCESS_NAME.fullmatch(access.permission_set)):
            return None
        return _fits(f"{portal}/#/console?account_id={account}&role_name={_q(access.permission_set)}"
                     f"&destination={_q(url)}")
    return None


def resource_console_url(outcome: Outcome, *, console_base: ConsoleBase = None) -> str | None:
    """Console page of the changed resource, when its type has a known page."""
    entry = _RESOURCE_PATHS.get((outcome.resource_type or "").lower())
    if entry is None:
        return None
    template, kind, is_global = entry
    value = _identifier(outcome, kind)
    if not _ok_part(value):
        return None
    region = _region_or_home(outcome.region, outcome.partition)
    service = template.split("/", 2)[1]
    setup = _setup(console_base)
    origin = _origin(outcome.partition, None if is_global else region, setup.base, service=service)
    if origin is None:
        return None
    url = origin + template.format(r=_q(region), v=_q(value or ""))
    return in_account(url, setup, outcome.account, outcome.partition, _account_name(outcome))


def config_timeline_url(outcome: Outcome, *, console_base: ConsoleBase = None) -> str | None:
    """AWS Config resource timeline in the item's own account and region (partition home region for global
    items), wherever the detector runs."""
    rid, rtype = nonblank(outcome.resource_id), nonblank(outcome.resource_type)
    if not (_ok_part(rid) and _ok_part(rtype)):
        return None
    region = _region_or_home(outcome.region, outcome.partition)
    setup = _setup(console_base)
    origin = _origin(outcome.partition, region, setup.base)
    if origin is None:
        return None
    url = (
        f"{origin}/config/home?region={_q(region)}#/resources/details"
        f"?resourceId={_q(rid or '')}&resourceType={_q(rtype or '')}"
    )
    return in_account(url, setup, outcome.account, outcome.partition, _account_name(outcome))


def cloudtrail_event_url(
    event_id: str, region: str | None, partition: str = "aws", *, console_base: ConsoleBase = None,
    account: str | None = None, account_name: str | None = None,
) -> str | None:
    """CloudTrail event history page of one event, in the event's region (and ``account``'s history)."""
    if not _ok_part(event_id):
        return None
    url = _event_history_url(f"/{_q(event_id)}", region, partition, _setup(console_base).base)
    return in_account(url, _setup(console_base), account, partition, account_name)


def cloudtrail_history_url(
    username: str, region: str | None, partition: str = "aws", *, console_base: ConsoleBase = None,
    account: str | None = None, account_name: str | None = None,
) -> str | None:
    """CloudTrail event history of one region (of ``account``), filtered to the calls of one user name."""
    if not _ok_part(username):
        return None
    url = _event_history_url(f"?Username={_q(username)}", region, partition, _setup(console_base).base)
    return in_account(url, _setup(console_base), account, partition, account_name)


def _event_history_url(fragment: str, region: str | None, partition: str, console_base: str | None) -> str | None:
    region = _region_or_home(region, partition)
    origin = _origin(partition, region, console_base)
    if origin is None:
        return None
    return f"{origin}/cloudtrail/home?region={_q(region)}#/events{fragment}"


def s3_object_url(bucket: str, key: str, partition: str = "aws", *, console_base: ConsoleBase = None) -> str | None:
    """S3 console page of one object of the archive bucket (in the home account)."""
    if not (_ok_part(bucket) and _ok_part(key)):
        return None
    setup = _setup(console_base)
    origin = _origin(partition, None, setup.base, service="s3")
    if origin is None:
        return None
    return in_account(f"{origin}/s3/object/{_q(bucket)}?prefix={_q(key)}", setup, setup.home_account, partition)


def s3_folder_url(bucket: str, folder: str, partition: str = "aws", *, console_base: ConsoleBase = None) -> str | None:
    """S3 console listing of one folder of the archive bucket (``folder`` without its trailing slash)."""
    if not (folder and _ok_part(folder) and _ok_part(bucket)):
        return None
    setup = _setup(console_base)
    origin = _origin(partition, None, setup.base, service="s3")
    if origin is None:
        return None
    url = f"{origin}/s3/buckets/{_q(bucket)}?prefix={_q(folder + '/')}"
    return in_account(url, setup, setup.home_account, partition)


def link(url: str | None, label: str) -> str:
    """mrkdwn link to a URL this module built (``label`` is already-safe mrkdwn; ``|`` is replaced)."""
    if not url:
        return label
    return f"<{escape_mrkdwn(url)}|{label.replace('|', '∣')}>"


def _event_region(outcome: Outcome, event_id: str) -> str | None:
    for event in outcome.events:
        if event.event_id == event_id and event.region:
            return event.region
    return outcome.region


def _event_links(outcome: Outcome, console_base: ConsoleBase, *, limit: int = 5) -> list[str]:
    ids = event_ids(outcome)
    links = []
    for event_id in ids[:limit]:
        url = cloudtrail_event_url(
            event_id, _event_region(outcome, event_id), outcome.partition, console_base=console_base,
            account=outcome.account, account_name=_account_name(outcome),
        )
        label = "CloudTrail event" if len(ids) == 1 else f"event {esc(event_id[:8], 20)}"
        if url:
            links.append(link(url, label))
    if len(ids) > limit:
        links.append(f"+{len(ids) - limit} more events")
    return links


def archive_url(outcome: Outcome, console_base: ConsoleBase) -> str | None:
    """The archived notification of the outcome's item, when it was archived."""
    bucket, key = nonblank(outcome.archive_bucket), nonblank(outcome.archive_key)
    if not (bucket and key):
        return None
    return s3_object_url(bucket, key, outcome.partition, console_base=console_base)


def alert_links(outcome: Outcome, console_base: ConsoleBase, *, console: bool = True) -> list[str]:
    """The links an alert offers: console page, Config timeline, CloudTrail events, archived notification."""
    links = []
    console_url = resource_console_url(outcome, console_base=console_base) if console else None
    if console_url:
        links.append(link(console_url, "Open in console"))
    timeline = config_timeline_url(outcome, console_base=console_base)
    if timeline and outcome.kind in (MANUAL_CHANGE, UNATTRIBUTED_CHANGE):
        links.append(link(timeline, "Config timeline"))
    links.extend(_event_links(outcome, console_base))
    archive = archive_url(outcome, console_base)
    if archive:
        links.append(link(archive, "Archived notification"))
    return links
