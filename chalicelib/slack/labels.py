"""How messages name an outcome's person, resource and time (raw text: escape before use; pure)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from chalicelib.core.model import Principal
from chalicelib.core.outcomes import Outcome
from chalicelib.core.text import clip, nonblank, one_line
from chalicelib.core.timeutil import parse_time

_NOBODY = Principal()


def person(outcome: Outcome) -> Principal:
    """The outcome's principal, or an empty one (every field absent)."""
    return outcome.principal or _NOBODY


def who(outcome: Outcome) -> str:
    """Short display name of the principal.

    A bare session name is shown with its role (``NetworkAdmin/terraform``): the caller picks session
    names, so "terraform" alone could pass for the IaC pipeline. SSO sessions show the person only.
    """
    principal = person(outcome)
    for text in (nonblank(principal.display_name), nonblank(principal.session_name)):
        if text:
            role = session_role(outcome)
            if role and text == nonblank(principal.session_name) and not role.startswith("AWSReservedSSO_"):
                return f"{role}/{text}"
            return text
    if outcome.by_root:
        return "root"
    arn = nonblank(outcome.principal_arn)
    if arn:
        return arn.rsplit("/", 1)[-1] if "/" in arn else arn
    return "Someone"


def session_role(outcome: Outcome) -> str | None:
    """The role of an assumed-role session (``ROLE`` of ``…:assumed-role/ROLE/SESSION``)."""
    arn = nonblank(outcome.principal_arn) or nonblank(person(outcome).arn)
    if arn and ":assumed-role/" in arn:
        parts = arn.split(":assumed-role/", 1)[1].split("/")
        return parts[0] if len(parts) >= 2 and parts[0] else None
    return None


def trail_username(outcome: Outcome) -> str | None:
    """The name CloudTrail's event history files the principal's calls under (``Username``), when known."""
    arn = nonblank(outcome.principal_arn) or ""
    if arn.endswith(":root"):
        return "root"
    if ":assumed-role/" in arn:
        parts = arn.split(":assumed-role/", 1)[1].split("/")
        return parts[-1] if len(parts) >= 2 and parts[-1] else None
    if ":user/" in arn:
        return arn.rsplit("/", 1)[-1] or None
    return None


def event_ids(outcome: Outcome) -> list[str]:
    """Distinct non-blank event ids (the outcome's, then its events'), in order."""
    ids = [nonblank(v) for v in [*outcome.event_ids, *(e.event_id for e in outcome.events)]]
    return list(dict.fromkeys(i for i in ids if i))


def resource_label(outcome: Outcome) -> str:
    """``id (name)`` of the resource, or its type, or ``a resource``."""
    rid, name = nonblank(outcome.resource_id), nonblank(outcome.resource_name)
    if rid and name and name != rid:
        return f"{clip(one_line(rid), 60)} ({clip(one_line(name), 50)})"
    if rid or name:
        return clip(one_line(rid or name), 90)
    return nonblank(outcome.resource_type) or "a resource"


def times(outcome: Outcome) -> list[datetime]:
    """When the events happened (sorted); else when the item was captured, else when it was decided."""
    found = sorted(t for t in (parse_time(e.event_time) for e in outcome.events) if t is not None)
    if found:
        return found
    for value in (outcome.capture_time, outcome.at):
        parsed = parse_time(value)
        if parsed is not None:
            return [parsed]
    return []


def slack_date(moment: datetime) -> str:
    """Slack date token (shown in the reader's time zone) with a UTC fallback."""
    fallback = moment.strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"<!date^{int(moment.timestamp())}^{{date_short_pretty}} {{time_secs}}|{fallback}>"


def when(moments: Sequence[datetime]) -> str:
    """One time, or ``first → last``, as Slack date tokens; ``unknown`` for none."""
    if not moments:
        return "unknown"
    first, last = moments[0], moments[-1]
    if last == first:
        return slack_date(first)
    return f"{slack_date(first)} → {slack_date(last)}"


def distinct(values: Iterable[str | None]) -> list[str]:
    """Distinct non-empty values as one line of text each, in order."""
    return [v for v in dict.fromkeys(one_line(v) for v in values if v) if v]
