"""The organisation in the stages (in memory): names beside accounts, routes by OU, trust scoped to an OU on
the Config path and the direct path; and AWS Organizations asked only when something needs it."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from typing import Any

from memory_world import ACCOUNT, START, lookup_job, slack_outcomes, trail_entry, world

from chalicelib.core.organization import Directory, OrgAccount
from chalicelib.core.outcomes import MANUAL_CHANGE, EventSummary, Outcome
from chalicelib.core.timeutil import iso
from chalicelib.memory_deps import MemoryDeps
from chalicelib.stages.deliver import slack_send
from chalicelib.stages.direct import direct
from chalicelib.stages.lookup import lookup

ROOT, PROD, SANDBOX = "r-ab12", "ou-ab12-prod0001", "ou-ab12-sand0001"
HOME, MEMBER = "444444444444", "555555555555"


def directory(*, in_prod: bool = True) -> Directory:
    """``ACCOUNT`` in the prod OU (or in sandbox), ``MEMBER`` named ``payments-prod`` in sandbox, the detector's own
    account at the root."""
    accounts = [OrgAccount(ACCOUNT, "workloads", (ROOT, PROD if in_prod else SANDBOX)),
                OrgAccount(MEMBER, "payments-prod", (ROOT, SANDBOX)), OrgAccount(HOME, "security", (ROOT,))]
    return Directory({a.id: a for a in accounts}, fetched_at=START.timestamp())


def hook(name: str) -> str:
    return f"https://hooks.slack.com/services/T000/B000/{name}"


def sender(settings: dict[str, Any], organization: Directory | None) -> MemoryDeps:
    secrets = {name: json.dumps({"url": hook(name)}) for name in ("ops", "sec")}
    deps = world(settings=settings, secrets=secrets, organization=organization)
    deps.env = replace(deps.env, account=HOME)
    return deps


def alert(account: str, resource: str = "sg-0a1") -> Outcome:
    when = iso(START) or ""
    return Outcome(kind=MANUAL_CHANGE, outcome_id=f"ci:{account}:{resource}", at=when, account=account,
                   region="eu-west-1", resource_type="AWS::EC2::SecurityGroup", resource_id=resource,
                   change_type="UPDATE", principal_arn=f"arn:aws:iam::{account}:user/alice",
                   principal={"type": "IAMUser", "arn": f"arn:aws:iam::{account}:user/alice"},
                   events=(EventSummary("ev-1", "AuthorizeSecurityGroupIngress", when),))


def send(deps: MemoryDeps, *outcomes: Outcome) -> list[tuple[str, str]]:
    """Queue ``outcomes`` for Slack, run the sender once; (webhook, text) of each post."""
    deps.queue("slack_queue").send_many([{"outcome": {**o.to_json(), "revision": 0}} for o in outcomes])
    slack_send(deps)
    return [(c.target, json.dumps(c.payload)) for c in deps.slack.delivered()]


def test_a_member_account_without_an_alias_is_named_from_the_organisation() -> None:
    deps = sender({}, directory())
    [(_, text)] = send(deps, alert(MEMBER))
    assert f"payments-prod ({MEMBER})" in text
    assert deps.organization.reads == 1


def test_an_alias_wins_and_then_organizations_is_not_asked() -> None:
    deps = sender({"account_aliases": {MEMBER: "pay"}}, directory())
    [(_, text)] = send(deps, alert(MEMBER))
    assert f"pay ({MEMBER})" in text and "payments-prod" not in text
    assert deps.organization.reads == 0


def test_the_detectors_own_account_needs_no_name_and_asks_nothing() -> None:
    deps = sender({}, directory())
    [(_, text)] = send(deps, alert(HOME))
    assert "security (" not in text and deps.organization.reads == 0


def test_outside_an_organisation_the_alert_is_sent_with_the_bare_account() -> None:
    deps = sender({}, None)
    [(_, text)] = send(deps, alert(MEMBER))
    assert MEMBER in text and "payments-prod" not in text


ROUTED = {"destinations": [{"name": "ops", "secret": "ops"}, {"name": "sec", "secret": "sec"}],
          "routes": [{"ous": [PROD], "destinations": ["sec"]}, {"destinations": ["ops"]}],
          "account_aliases": {ACCOUNT: "workloads", MEMBER: "pay"}}


def test_alerts_are_routed_by_the_ou_of_their_account() -> None:
    deps = sender(ROUTED, directory())
    posts = send(deps, alert(ACCOUNT, "sg-0prod"), alert(MEMBER, "sg-0sand"))
    assert sorted((target, "sg-0prod" in text) for target, text in posts) == [(hook("ops"), False), (hook("sec"), True)]
    assert deps.organization.reads >= 1


def test_without_the_organisation_an_ou_route_still_gets_the_alert_and_so_do_the_next_routes() -> None:
    deps = sender(ROUTED, None)
    assert sorted(target for target, _ in send(deps, alert(ACCOUNT))) == sorted([hook("sec"), hook("ops")])


# --- trust scoped to an OU ---------------------------------------------------------------------------------


SCOPED = {"trusted_principals": [{"arn": "arn:aws:iam::*:role/ci/deployer", "ous": [PROD]}]}


def decided(organization: Directory | None) -> list[dict[str, Any]]:
    """The lookup stage's decision on a security group change in ``ACCOUNT`` made by a ci/deployer session."""
    deps = world(trail=[trail_entry("sg-0dep", START + timedelta(seconds=5), role="ci/deployer")],
                 settings=SCOPED, organization=organization)
    deps.queue("lookup_queue").send(lookup_job("sg-0dep").to_json())
    deps.manual_clock.advance((START + timedelta(minutes=6)).timestamp() - deps.clock())
    assert lookup(deps)["decided"] == 1
    return slack_outcomes(deps)


def test_the_config_path_trusts_a_scoped_role_only_in_its_ou() -> None:
    assert decided(directory(in_prod=True)) == []
    [alert_] = decided(directory(in_prod=False))
    assert alert_["kind"] == "manual_change" and alert_["principal_arn"].endswith("deployer/session-1")
    [unread] = decided(None)
    assert unread["kind"] == "manual_change", "an organisation that cannot be read trusts no OU-scoped pattern"


def api_call(account: str, event_id: str) -> dict[str, Any]:
    identity = {"type": "AssumedRole", "arn": f"arn:aws:sts::{account}:assumed-role/deployer/ci",
                "accountId": account, "sessionContext": {"sessionIssuer": {
                    "type": "Role", "arn": f"arn:aws:iam::{account}:role/ci/deployer", "accountId": account}}}
    return {"detail-type": "AWS API Call via CloudTrail", "source": "aws.ec2", "account": account, "detail": {
        "eventVersion": "1.09", "userIdentity": identity, "eventTime": "2024-05-01T12:00:00Z",
        "eventSource": "ec2.amazonaws.com", "eventName": "AuthorizeSecurityGroupIngress", "awsRegion": "eu-west-1",
        "requestParameters": {"groupId": "sg-0abc"}, "eventID": event_id, "readOnly": False,
        "eventType": "AwsApiCall", "recipientAccountId": account}}


def test_the_direct_path_trusts_a_scoped_role_only_in_its_ou_and_asks_only_when_a_scope_names_an_ou() -> None:
    deps = world(settings=SCOPED, organization=directory())
    assert direct(api_call(ACCOUNT, "00000000-0000-4000-8000-00000000000a"), deps, "eventbridge")["alerts"] == 0
    assert direct(api_call(MEMBER, "00000000-0000-4000-8000-00000000000b"), deps, "eventbridge")["alerts"] == 1
    assert deps.organization.reads == 2
    plain = world(settings={"trusted_principals": ["arn:aws:iam::*:role/ci/deployer"]}, organization=directory())
    assert direct(api_call(MEMBER, "00000000-0000-4000-8000-00000000000c"), plain, "eventbridge")["alerts"] == 0
    assert plain.organization.reads == 0
