"""Direct CloudTrail alerts: console sign-ins and sensitive API calls from EventBridge or CloudWatch Logs.

Both paths feed the same rules (``chalicelib.core.rules``) and trust module as the Config path. The
outcome id is derived from the CloudTrail event, so the same event arriving by both paths, or
twice by one, is alerted once.

Early alerts (a destination's ``early_alerts``, off by default): an untrusted person's write to a service
AWS Config records, which no rule alerted on, is queued for Slack at once (``rules.early_outcome``); the
Slack sender completes it with the Config diff when the ``manual_change`` follows. It is not an outcome:
it is logged on ``mcd.direct`` (``early_alert``), never on the outcome logger, and queued once per call
(``out#ct:<eventID>``, sk ``early``). A call that is already an ``api_call`` alert gets none: that alert
is its early alert.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from datetime import datetime
from typing import Any

from chalicelib.core import trust
from chalicelib.core.errors import ConfigurationError
from chalicelib.core.logs import log_json
from chalicelib.core.model import TrailEvent, Unparseable
from chalicelib.core.outcomes import API_CALL, Outcome
from chalicelib.core.rules import DirectRules, direct_outcome, early_outcome, is_early
from chalicelib.core.settings import Settings
from chalicelib.parsing.events import parse_payload
from chalicelib.ports import StageDeps
from chalicelib.stages.shared.emit import emit
from chalicelib.stages.shared.queues import SLACK_QUEUE
from chalicelib.stages.shared.recent_calls import remember
from chalicelib.stages.shared.state_keys import outcome_marker

log = logging.getLogger("mcd.direct")

EARLY = "early"  # sk of ``out#<outcome id>``: the early alert of this call was queued
EARLY_JOB_CHARS = 100_000  # an early alert's job stays far below SQS's 256 KB: a large request gives way


def direct(event: dict[str, Any], deps: StageDeps, via: str) -> dict[str, int]:
    settings = deps.settings()
    try:
        rules = DirectRules.from_mapping(settings.direct_rules)
    except ConfigurationError as error:  # a bad rule must not silence sign-in alerts: use the defaults
        log_json(log, logging.ERROR, "direct_rules_invalid", reason=str(error)[:300], action="using the defaults")
        rules = DirectRules.from_mapping(None)
    counts = {"records": 0, "alerts": 0, "duplicates": 0, "unparseable": 0}
    early_on = any(d.early_alerts for d in settings.destinations)
    if early_on:
        counts["early"] = 0
    now = deps.now()
    streamed: list[TrailEvent] = []
    for item in parse_payload(event, via):
        if isinstance(item, Unparseable):
            counts["unparseable"] += 1
            key = f"unparseable/{via}/{now.year}/{now.month}/{now.day}/{deps.clock():.6f}.json"
            deps.archive.put(key, json.dumps({"reason": item.reason, "event": event}, default=str))
            log_json(log, logging.WARNING, "direct_input_unparseable", via=via, reason=item.reason, archive_key=key)
            continue
        if not isinstance(item, TrailEvent):
            continue
        counts["records"] += 1
        streamed.append(item)
        # Trust scoped to accounts or OUs (D32); Organizations is asked only when a scope names an OU.
        in_account = settings.for_account(item.account, lambda: deps.organization.directory())
        outcome = direct_outcome(item, in_account, rules, now)
        outcome = trusted_role_alert(item, outcome, in_account, now)
        if outcome is None:
            if early_on:
                early = trusted_role_alert(item, early_outcome(item, in_account, now), in_account, now)
                if early is not None and tell_early(deps, early):
                    counts["early"] += 1
            continue
        if not emit(deps, outcome):
            counts["duplicates"] += 1
        else:
            counts["alerts"] += 1
    # The alerts first: a failing index write (Lambda then retries the event) must not hold one back.
    counts["indexed"] = remember(deps, streamed)
    return counts


def trusted_role_alert(event: TrailEvent, outcome: Outcome | None, settings: Settings,
                       now: datetime) -> Outcome | None:
    """``outcome``, naming the trusted pattern when it is an ``api_call`` (or an early alert) of a person editing a
    trusted role.

    A role write (``trust.ROLE_WRITE_CALLS``) by an untrusted principal on a role that a trusted
    pattern names gets ``extra["trusted_pattern"]`` (high severity in Slack). Calls the sensitive-call
    rules do not select (``CreateRole``, ``TagRole``) are no outcome here (at most an early alert): the
    role's Config item reports them as a ``manual_change`` that names the pattern (FORMAT.md: nothing
    else is an outcome).
    """
    pattern = trust.trusted_role_edit(event, settings.trusted_principals, settings.trust_aws_services)
    if pattern is None or outcome is None or (outcome.kind != API_CALL and not is_early(outcome)):
        return outcome
    return dataclasses.replace(outcome, extra={**outcome.extra, "trusted_pattern": pattern})


def tell_early(deps: StageDeps, outcome: Outcome) -> bool:
    """Queue an early alert for Slack once per call; ``True`` when it was new.

    The marker is written after the job is queued: a crash in between queues it again, and the Slack
    sender's post marker keeps the post single.
    """
    marker = outcome_marker(outcome.outcome_id)
    if deps.state.get(marker, EARLY) is not None:
        return False
    data = outcome.to_json()
    if len(json.dumps(data, default=str)) > EARLY_JOB_CHARS:
        data["events"] = [{**e, "request_parameters": {"omitted": "too large; see CloudTrail"}}
                          for e in data["events"]]
    deps.queue(SLACK_QUEUE).send(json.dumps({"outcome": data}, default=str))
    log_json(log, logging.INFO, "early_alert", outcome_id=outcome.outcome_id,
             event_name=next(iter(outcome.event_names), None), principal_arn=outcome.principal_arn,
             account=outcome.account, region=outcome.region)
    deps.state.put(marker, EARLY, deps.clock(), kind=str(outcome.kind))
    return True
