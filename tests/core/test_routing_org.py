"""Routing by OU and by the resource's tags; a change to the tags cannot move its own alert away."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

import pytest
from slack_fixtures import manual

from chalicelib.core.change_outcomes import build_outcome, tags_before, tags_unreadable
from chalicelib.core.jobs import LookupJob, change_key
from chalicelib.core.model import ConfigChange
from chalicelib.core.organization import Directory, OrgAccount
from chalicelib.core.outcomes import DEAD_LETTER, MANUAL_CHANGE, TAGS_UNKNOWN, Outcome
from chalicelib.core.routing import destinations_for, early_destinations, tag_views
from chalicelib.core.settings import Settings
from chalicelib.parsing.config_notifications import parse_config_message

ROOT, PROD, PAYMENTS = "r-ab12", "ou-ab12-prod0001", "ou-ab12-paym0001"
PAYMENTS_PROD, SANDBOX_1, OUTSIDE = "111111111111", "222222222222", "999999999999"
DIRECTORY = Directory({PAYMENTS_PROD: OrgAccount(PAYMENTS_PROD, "payments-prod", (ROOT, PROD, PAYMENTS)),
                       SANDBOX_1: OrgAccount(SANDBOX_1, "sandbox-1", (ROOT,))})
DESTINATIONS = [{"name": name, "type": "webhook", "secret": f"mcd/t/{name}", "early_alerts": name == "sec"}
                for name in ("sec", "ops", "payments", "sandbox")]
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


def routed(outcome: Outcome, routes: list[dict[str, Any]], directory: Directory | None = DIRECTORY) -> list[str]:
    settings = Settings.from_dict({"destinations": DESTINATIONS, "routes": routes})
    return [d.name for d in destinations_for(outcome, settings, "", directory)]


def in_account(account: str, **fields: Any) -> Outcome:
    return replace(manual(), account=account, **fields)


# --- OUs ------------------------------------------------------------------------------------------------


def test_an_ou_route_takes_the_accounts_in_that_ou_at_any_depth() -> None:
    routes = [{"ous": [PROD], "destinations": ["payments"]}, {"destinations": ["ops"]}]
    assert routed(in_account(PAYMENTS_PROD), routes) == ["payments"]
    assert routed(in_account(SANDBOX_1), routes) == ["ops"]
    assert routed(in_account(OUTSIDE), routes) == ["payments", "ops"], "an account the directory does not know yet"
    assert routed(in_account(SANDBOX_1), [{"ous": [ROOT], "destinations": ["sec"]}]) == ["sec"]


def test_without_the_directory_an_ou_route_adds_its_channels_and_the_next_routes_are_tried() -> None:
    routes = [{"ous": [PROD], "destinations": ["payments"]}, {"destinations": ["ops"]}]
    assert routed(in_account(PAYMENTS_PROD), routes, None) == ["payments", "ops"]
    assert routed(in_account(PAYMENTS_PROD), routes, Directory(problem="access denied")) == ["payments", "ops"]
    by_ou_only = [{"ous": [PROD], "destinations": ["payments"]}, {"ous": [ROOT], "destinations": ["sandbox"]}]
    assert routed(in_account(SANDBOX_1), by_ou_only, Directory(problem="access denied")) == ["payments", "sandbox"], \
        "routes by OU only: not knowing the OUs never loses the alert"
    assert routed(in_account(SANDBOX_1), by_ou_only) == ["sandbox"]


def test_accounts_and_ous_of_one_route_are_either() -> None:
    routes = [{"ous": [PROD], "accounts": [SANDBOX_1], "destinations": ["sec"]}]
    assert routed(in_account(PAYMENTS_PROD), routes) == ["sec"]
    assert routed(in_account(SANDBOX_1), routes) == ["sec"]
    assert routed(in_account(OUTSIDE), routes) == ["sec"], "not known to the directory: maybe in the OU"
    assert routed(in_account(OUTSIDE), routes, Directory({SANDBOX_1: DIRECTORY.accounts[SANDBOX_1]})) == ["sec"]


def test_health_alerts_still_reach_the_first_route_of_their_kind_or_everyone() -> None:
    health = Outcome(kind=DEAD_LETTER, outcome_id="dl:1", at="2024-05-01T12:00:00Z")
    assert routed(health, [{"ous": [PROD], "destinations": ["payments"]}, {"destinations": ["ops"]}]) == ["payments"]
    assert routed(health, [{"kinds": ["manual_change"], "ous": [PROD], "destinations": ["payments"]}]) == [
        "sec", "ops", "payments", "sandbox"]


def test_early_alerts_follow_ou_routes_to_destinations_that_want_them() -> None:
    settings = Settings.from_dict({"destinations": DESTINATIONS, "routes": [
        {"ous": [PROD], "destinations": ["payments", "sec"]}, {"destinations": ["ops"]}]})
    early = in_account(PAYMENTS_PROD, extra={"early": True})
    assert [d.name for d in early_destinations(early, settings, DIRECTORY)] == ["sec"]
    assert [d.name for d in early_destinations(early, settings)] == ["sec"], "OUs unknown: the OU route's too"


# --- tags -----------------------------------------------------------------------------------------------


TAG_ROUTES = [{"tags": {"team": "payments"}, "destinations": ["payments"]},
              {"tags": {"team": "sandbox", "env": "dev"}, "destinations": ["sandbox"]},
              {"destinations": ["ops"]}]


def tagged(after: dict[str, str], before: dict[str, str] | None = None) -> Outcome:
    return replace(manual(), resource_tags=after, resource_tags_before=before)


def test_a_tag_route_needs_every_tag_it_names() -> None:
    assert routed(tagged({"team": "payments", "env": "prod"}), TAG_ROUTES) == ["payments"]
    assert routed(tagged({"team": "sandbox"}), TAG_ROUTES) == ["ops"]
    assert routed(tagged({"team": "sandbox", "env": "dev"}), TAG_ROUTES) == ["sandbox"]
    assert routed(tagged({"team": "Payments"}), TAG_ROUTES) == ["ops"]  # tag values are case-sensitive in AWS
    assert routed(tagged({}), TAG_ROUTES) == ["ops"]


def test_removing_the_tag_in_the_same_change_still_reaches_the_teams_channel() -> None:
    assert routed(tagged({}, before={"team": "payments"}), TAG_ROUTES) == ["payments", "ops"]


def test_adding_a_tag_that_an_earlier_route_matches_cannot_take_the_alert_from_its_channel() -> None:
    routes = [{"tags": {"team": "sandbox"}, "destinations": ["sandbox"]}, {"destinations": ["sec"]}]
    assert routed(tagged({"team": "sandbox"}, before={"team": "payments"}), routes) == ["sec", "sandbox"]


def test_tags_the_change_left_alone_are_routed_once() -> None:
    outcome = tagged({"team": "payments"}, before={"team": "payments"})
    assert tag_views(outcome) == ({"team": "payments"},)
    assert routed(outcome, TAG_ROUTES) == ["payments"]


def test_tags_travel_with_the_outcome_through_the_queue() -> None:
    outcome = tagged({"team": "sandbox"}, before={"team": "payments"})
    again = Outcome.from_json(json.loads(json.dumps(outcome.to_json())))
    assert (again.resource_tags, again.resource_tags_before) == ({"team": "sandbox"}, {"team": "payments"})
    older = {k: v for k, v in outcome.to_json().items() if not k.startswith("resource_tags")}
    assert Outcome.from_json(older).resource_tags == {} and Outcome.from_json(older).resource_tags_before is None
    odd = Outcome(kind=MANUAL_CHANGE, outcome_id="x", at="", resource_tags={"a": 1, "b": "2"},  # type: ignore[dict-item]
                  resource_tags_before="no")  # type: ignore[arg-type]
    assert (odd.resource_tags, odd.resource_tags_before) == ({"b": "2"}, None)


# --- the tags before a change, from its Config diff -----------------------------------------------------


def config_change(tags: dict[str, str], diff: dict[str, Any], *, configuration: Any = None) -> ConfigChange:
    item = {"configurationItemCaptureTime": "2024-05-01T11:59:00Z", "awsAccountId": PAYMENTS_PROD,
            "configurationItemStatus": "OK", "resourceType": "AWS::EC2::Instance", "resourceId": "i-0abc",
            "awsRegion": "eu-west-1", "tags": tags, "configuration": configuration or {"instanceId": "i-0abc"}}
    message = {"messageType": "ConfigurationItemChangeNotification", "configurationItem": item,
               "configurationItemDiff": {"changeType": "UPDATE", "changedProperties": diff}}
    (found,) = parse_config_message(json.dumps(message), "test")
    assert isinstance(found, ConfigChange)
    return found


def prop(previous: Any, updated: Any, change_type: str = "UPDATE") -> dict[str, Any]:
    return {"previousValue": previous, "updatedValue": updated, "changeType": change_type}


@pytest.mark.parametrize(("tags", "diff", "before"), [
    ({"team": "sandbox"}, {"Tags.team": prop("payments", "sandbox")}, {"team": "payments"}),
    ({"team": "x", "env": "dev"}, {"Tags.env": prop(None, "dev", "CREATE")}, {"team": "x"}),
    ({}, {"Tags.team": prop("payments", None, "DELETE")}, {"team": "payments"}),
    ({"team": "sandbox"}, {"Configuration.Tags.0": prop({"key": "team", "value": "payments"},
                                                       {"key": "team", "value": "sandbox"})}, {"team": "payments"}),
    ({"b": "2"}, {"Configuration.Tags.0": prop({"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}),
                  "Configuration.Tags.1": prop({"Key": "b", "Value": "2"}, None, "DELETE")}, {"a": "1", "b": "2"}),
    ({"team": "sandbox"}, {"Tags": prop({"team": "payments"}, {"team": "sandbox"})}, {"team": "payments"}),
    ({}, {"Configuration": prop({"tags": [{"key": "team", "value": "payments"}]}, None, "DELETE")},
     {"team": "payments"}),
])
def test_the_tags_before_are_read_back_from_the_diff(tags: dict[str, str], diff: dict[str, Any],
                                                      before: dict[str, str]) -> None:
    assert tags_before(config_change(tags, diff)) == before


def test_a_change_that_left_the_tags_alone_has_no_tags_before() -> None:
    resized = {"Configuration.InstanceType": prop("t3.micro", "t3.large")}
    assert tags_before(config_change({"team": "x"}, resized)) is None
    assert tags_before(config_change({"team": "x"}, {"Tags.team": prop("x", "x")})) is None


def test_the_outcome_of_a_retagged_item_carries_both_and_routes_to_both() -> None:
    change = config_change({"team": "sandbox"}, {"Tags.team": prop("payments", "sandbox")})
    job = LookupJob(change=change, change_key=change_key(change), arrived_at=NOW, archive_bucket="b", archive_key="k")
    outcome = build_outcome(job, MANUAL_CHANGE, NOW, None)
    assert (outcome.resource_tags, outcome.resource_tags_before) == ({"team": "sandbox"}, {"team": "payments"})
    routes = [{"tags": {"team": "sandbox"}, "destinations": ["sandbox"]},
              {"tags": {"team": "payments"}, "destinations": ["payments"]}]
    assert routed(outcome, routes) == ["payments", "sandbox"]


def test_an_s3_buckets_tags_before_come_from_its_tagging_configuration() -> None:
    change = config_change({"env": "prod"}, {"SupplementaryConfiguration.BucketTaggingConfiguration": prop(
        {"tagSets": [{"tags": {"env": "prod", "team": "payments"}}]}, {"tagSets": [{"tags": {"env": "prod"}}]})})
    assert tags_before(change) == {"env": "prod", "team": "payments"}
    assert not tags_unreadable(change)


def test_tags_that_cannot_be_read_back_make_every_tag_route_unknown_and_lose_no_channel() -> None:
    """Config's index form (``Tags.1`` is the first tag's value, its key unsaid): the team tag may have been
    removed in this very change, so the team's route is added and the routes after it are tried too."""
    change = config_change({"env": "prod"}, {"Tags.1": prop("payments", None, "DELETE")})
    assert tags_unreadable(change)
    job = LookupJob(change=change, change_key=change_key(change), arrived_at=NOW, archive_bucket="b", archive_key="k")
    outcome = build_outcome(job, MANUAL_CHANGE, NOW, None)
    assert outcome.extra[TAGS_UNKNOWN] is True
    assert routed(outcome, TAG_ROUTES) == ["payments", "sandbox", "ops"]
    odd = config_change({}, {"SupplementaryConfiguration.BucketTaggingConfiguration": prop("garbled", None)})
    assert tags_unreadable(odd)
    clean = config_change({"team": "x"}, {"Tags.team": prop("y", "x")})
    assert not tags_unreadable(clean) and TAGS_UNKNOWN not in build_outcome(
        LookupJob(change=clean, change_key=change_key(clean), arrived_at=NOW), MANUAL_CHANGE, NOW, None).extra
