"""Routing: which Slack destinations an alert goes to (pure; decided by kind, account, OU, tags and severity,
never by how the alert renders).

Settings name destinations (webhooks or bot tokens) and routes by account or OU, kind, resource tags and
minimum severity; the first matching route wins, and an alert no route matches is not sent. With no
destinations configured, everything goes to the stage's default webhook secret. The detector's own health
alerts (operational kinds) have no account or severity a route could filter out: the first route of their
kind, or else every destination, receives them. An early alert (``rules.early_outcome``) goes where the
``manual_change`` it announces would go, but only to destinations with ``early_alerts`` on.

Tags are set by whoever controls the resource, the insider included. A change that altered the resource's
tags is routed twice, on its tags before and on its tags after, and goes to both sets of destinations (the
"before" ones first): a re-tag can add a channel, never take away the one the resource was routed to.
"""

from __future__ import annotations

from collections.abc import Mapping

from chalicelib.core.organization import Directory
from chalicelib.core.outcomes import OPERATIONAL_KINDS, TAGS_UNKNOWN, Outcome
from chalicelib.core.settings import Destination, Route, Settings
from chalicelib.core.severity import SEVERITY_RANK, severity

DEFAULT_DESTINATION = "default"


def destinations_for(outcome: Outcome, settings: Settings, default_secret: str,
                     directory: Directory | None = None) -> list[Destination]:
    """Where ``outcome`` is sent: each destination once, in the order its route names them.

    ``directory`` places the outcome's account in its OUs (routes with ``ous``); without it such routes
    match only through their ``accounts``.
    """
    if not settings.destinations:
        return [Destination(DEFAULT_DESTINATION, "webhook", default_secret)] if default_secret else []
    if not settings.routes:
        return list(settings.destinations)
    by_name = {d.name: d for d in settings.destinations}
    names: list[str] = []
    for tags in tag_views(outcome):
        names += _routed(outcome, settings.routes, tags, directory)
    if not names and outcome.kind in OPERATIONAL_KINDS:
        return list(settings.destinations)
    return [by_name[name] for name in dict.fromkeys(names)]


def tag_views(outcome: Outcome) -> tuple[Mapping[str, str] | None, ...]:
    """The resource's tags before the change (when it changed them), then after; ``None`` stands for tags
    the change replaced in a way that cannot be read back (``TAGS_UNKNOWN``)."""
    if outcome.extra.get(TAGS_UNKNOWN):
        return (None, outcome.resource_tags)
    before = outcome.resource_tags_before
    if before is None or before == outcome.resource_tags:
        return (outcome.resource_tags,)
    return (before, outcome.resource_tags)


def _routed(outcome: Outcome, routes: tuple[Route, ...], tags: Mapping[str, str] | None,
            directory: Directory | None) -> tuple[str, ...]:
    """The destinations of the first route ``outcome`` matches when the resource carries ``tags``.

    A condition that cannot be decided (the account's OUs unknown: the organisation's directory unreadable,
    or too old to know the account; tags that cannot be read back) neither matches nor fails: that route's
    destinations are added and the routes after it are still tried, so not knowing costs an extra channel,
    never the alert.
    """
    operational = outcome.kind in OPERATIONAL_KINDS
    unsure: list[str] = []
    for route in routes:
        if route.kinds and outcome.kind not in route.kinds:
            continue
        if operational:
            return (*unsure, *route.destinations)
        place = _in_place(outcome.account, route, directory)
        tagged = _tagged(route, tags)
        if place is False or tagged is False:
            continue
        if route.min_severity and SEVERITY_RANK[severity(outcome)] < SEVERITY_RANK[route.min_severity]:
            continue
        if place is None or tagged is None:
            unsure += route.destinations
            continue
        return (*unsure, *route.destinations)
    return tuple(unsure)


def _in_place(account: str | None, route: Route, directory: Directory | None) -> bool | None:
    """Do the route's ``accounts`` or ``ous`` (either) hold ``account``? A route naming neither holds every one;
    ``None`` when only its OUs could, and the directory cannot say (unreadable, or it does not know the account)."""
    if not route.accounts and not route.ous:
        return True
    if account and account in route.accounts:
        return True
    if not route.ous:
        return False
    if directory is None or directory.problem or account not in directory.accounts:
        return None
    return directory.in_scope(account, ous=route.ous)


def _tagged(route: Route, tags: Mapping[str, str] | None) -> bool | None:
    """Does the resource carry the route's tags? ``None`` when its tags are unknown."""
    if not route.tags:
        return True
    if tags is None:
        return None
    return all(tags.get(key) == value for key, value in route.tags)


def early_destinations(outcome: Outcome, settings: Settings, directory: Directory | None = None) -> list[Destination]:
    """Where an early alert is sent: the destinations its route names that have ``early_alerts`` on (the
    stage's default webhook has no settings, so never)."""
    return [d for d in destinations_for(outcome, settings, "", directory) if d.early_alerts]


def find_destination(name: str, settings: Settings, default_secret: str) -> Destination | None:
    """The destination a queued job names (the default one exists only while a default secret does)."""
    for destination in settings.destinations:
        if destination.name == name:
            return destination
    if name == DEFAULT_DESTINATION and default_secret:
        return Destination(DEFAULT_DESTINATION, "webhook", default_secret)
    return None
