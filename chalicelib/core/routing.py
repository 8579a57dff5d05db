"""Routing: which Slack destinations an alert goes to (pure; decided by kind, account and severity, never
by how the alert renders).

Settings name destinations (webhooks or bot tokens) and routes by account, kind and minimum severity;
the first matching route wins, and an alert no route matches is not sent. With no destinations
configured, everything goes to the stage's default webhook secret. The detector's own health alerts
(operational kinds) have no account or severity a route could filter out: the first route of their
kind, or else every destination, receives them. An early alert (``rules.early_outcome``) goes where the
``manual_change`` it announces would go, but only to destinations with ``early_alerts`` on.
"""

from __future__ import annotations

from chalicelib.core.outcomes import OPERATIONAL_KINDS, Outcome
from chalicelib.core.settings import Destination, Settings
from chalicelib.core.severity import SEVERITY_RANK, severity

DEFAULT_DESTINATION = "default"


def destinations_for(outcome: Outcome, settings: Settings, default_secret: str) -> list[Destination]:
    """Where ``outcome`` is sent: each destination once, in the order its route names them."""
    if not settings.destinations:
        return [Destination(DEFAULT_DESTINATION, "webhook", default_secret)] if default_secret else []
    if not settings.routes:
        return list(settings.destinations)
    by_name = {d.name: d for d in settings.destinations}
    operational = outcome.kind in OPERATIONAL_KINDS
    for route in settings.routes:
        if route.kinds and outcome.kind not in route.kinds:
            continue
        if operational:
            return [by_name[name] for name in dict.fromkeys(route.destinations)]
        if route.accounts and outcome.account not in route.accounts:
            continue
        if route.min_severity and SEVERITY_RANK[severity(outcome)] < SEVERITY_RANK[route.min_severity]:
            continue
        return [by_name[name] for name in dict.fromkeys(route.destinations)]
    return list(settings.destinations) if operational else []


def early_destinations(outcome: Outcome, settings: Settings) -> list[Destination]:
    """Where an early alert is sent: the destinations its route names that have ``early_alerts`` on (the
    stage's default webhook has no settings, so never)."""
    return [d for d in destinations_for(outcome, settings, "") if d.early_alerts]


def find_destination(name: str, settings: Settings, default_secret: str) -> Destination | None:
    """The destination a queued job names (the default one exists only while a default secret does)."""
    for destination in settings.destinations:
        if destination.name == name:
            return destination
    if name == DEFAULT_DESTINATION and default_secret:
        return Destination(DEFAULT_DESTINATION, "webhook", default_secret)
    return None
