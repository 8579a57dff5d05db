"""Routing: destinations by kind, account and severity; first match wins; the detector's health always arrives."""

from __future__ import annotations

from slack_fixtures import manual, signin

from chalicelib.core.outcomes import DEAD_LETTER, Outcome
from chalicelib.core.routing import DEFAULT_DESTINATION, destinations_for, early_destinations, find_destination
from chalicelib.core.settings import Settings
from chalicelib.core.severity import severity

DESTINATIONS = [{"name": "sec", "type": "webhook", "secret": "mcd/t/sec"},
                {"name": "ops", "type": "webhook", "secret": "mcd/t/ops"},
                {"name": "audit", "type": "bot", "secret": "mcd/t/bot", "channel": "C0AUDIT"}]


def routed(outcome: Outcome, routes: list[dict], default_secret: str = "") -> list[str]:
    settings = Settings.from_dict({"destinations": DESTINATIONS, "routes": routes})
    return [d.name for d in destinations_for(outcome, settings, default_secret)]


def test_without_destinations_everything_goes_to_the_default_secret_or_nowhere() -> None:
    [default] = destinations_for(manual(), Settings(), "mcd/t/default")
    assert (default.name, default.type, default.secret) == (DEFAULT_DESTINATION, "webhook", "mcd/t/default")
    assert destinations_for(manual(), Settings(), "") == []


def test_without_routes_every_destination_receives_everything() -> None:
    assert routed(manual(), []) == ["sec", "ops", "audit"]


def test_the_first_matching_route_wins_and_names_each_destination_once() -> None:
    high, medium = manual(), manual(changed_properties=())
    assert (severity(high), severity(medium)) == ("high", "medium")
    routes = [{"min_severity": "high", "destinations": ["sec", "audit", "sec"]}, {"destinations": ["ops"]}]
    assert routed(high, routes) == ["sec", "audit"]
    assert routed(medium, routes) == ["ops"]


def test_routes_filter_by_account_and_kind_and_an_unmatched_alert_goes_nowhere() -> None:
    routes = [{"accounts": ["111122223333"], "kinds": ["console_signin"], "destinations": ["audit"]},
              {"accounts": ["318472906155"], "destinations": ["ops"]}]
    assert routed(signin(), routes) == ["audit"]
    assert routed(manual(), routes) == ["ops"]
    assert routed(manual(account="999999999999"), routes) == []


def test_operational_alerts_reach_a_destination_whatever_the_routes_filter() -> None:
    alert = Outcome(kind=DEAD_LETTER, outcome_id="dl:1", at="2025-01-01T00:00:00Z")
    assert routed(alert, [{"accounts": ["123456789012"], "min_severity": "high", "destinations": ["sec"]}]) == ["sec"]
    assert routed(alert, [{"kinds": ["manual_change"], "destinations": ["ops"]}]) == ["sec", "ops", "audit"]


def test_a_queued_job_finds_its_destination_by_name() -> None:
    settings = Settings.from_dict({"destinations": DESTINATIONS})
    assert find_destination("audit", settings, "").channel == "C0AUDIT"
    assert find_destination("gone", settings, "mcd/t/default") is None
    assert find_destination(DEFAULT_DESTINATION, settings, "mcd/t/default").secret == "mcd/t/default"
    assert find_destination(DEFAULT_DESTINATION, settings, "") is None


def test_early_alerts_go_where_their_change_would_go_but_only_where_asked_for() -> None:
    sec, ops, audit = DESTINATIONS
    destinations = [{**sec, "early_alerts": True}, ops, {**audit, "early_alerts": True}]
    early = manual(outcome_id="ct:1", changed_properties=(), extra={"early": True})
    routes = [{"kinds": ["manual_change"], "min_severity": "high", "destinations": ["sec"]},
              {"kinds": ["manual_change"], "destinations": ["ops", "audit"]}]
    settings = Settings.from_dict({"destinations": destinations, "routes": routes})
    assert [d.name for d in early_destinations(early, settings)] == ["audit"], "medium: the second route; ops is off"
    high = manual(outcome_id="ct:2", extra={"early": True})
    assert [d.name for d in early_destinations(high, settings)] == ["sec"]
    assert early_destinations(early, Settings()) == [], "the stage's default webhook never gets them"
