"""Metrics people can graph, as CloudWatch Embedded Metric Format (EMF) lines (pure, stdlib only).

A handler writes one JSON line per data point to standard output; CloudWatch Logs turns it into a
metric, so metrics cost no API call and need no permission. Every metric is in namespace ``mcd`` with
the dimension ``Stage``; one with an extra dimension (``Kind``, ``Pattern``, ``Queue``) is also
published per value of it. ``docs/operations.md`` lists the metrics and what healthy looks like.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

NAMESPACE = "mcd"
COUNT, SECONDS = "Count", "Seconds"
MAX_DIMENSION_CHARS = 250  # EMF refuses longer dimension values; an attacker's text never breaks the line

ALERT_DELAY_FROM_CALL = "AlertDelayFromCall"
ALERT_DELAY_FROM_NOTIFICATION = "AlertDelayFromNotification"
OUTCOMES = "Outcomes"
SUPPRESSIONS = "Suppressions"
LOOKUP_CALLS = "LookupCalls"
LOOKUP_THROTTLES = "LookupThrottles"
DEAD_LETTERS = "DeadLetters"
SLACK_RATE_LIMITED = "SlackRateLimited"
ACCOUNTS_UNREACHABLE = "AccountsUnreachable"  # once per member account a day (alarm mcd-<stage>-account-unreachable)


def emf_line(stage: str, name: str, value: float, unit: str, timestamp_ms: int,
             dimensions: Mapping[str, str] | None = None) -> str:
    """One EMF document: ``name`` = ``value`` by ``Stage``, and by ``Stage`` plus ``dimensions`` if any."""
    extra = {key: _dimension(value_) for key, value_ in (dimensions or {}).items()}
    sets = [["Stage"]] + ([["Stage", *extra]] if extra else [])
    document = {
        "_aws": {"Timestamp": timestamp_ms, "CloudWatchMetrics": [
            {"Namespace": NAMESPACE, "Dimensions": sets, "Metrics": [{"Name": name, "Unit": unit}]}]},
        "Stage": _dimension(stage) or "none",
        **extra,
        name: value,
    }
    return json.dumps(document, separators=(",", ":"))


def _dimension(value: object) -> str:
    text = " ".join(str(value if value is not None else "none").split())
    return (text or "none")[:MAX_DIMENSION_CHARS]
