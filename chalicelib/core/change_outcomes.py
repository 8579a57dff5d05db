"""The outcome of one changed configuration item, from its lookup job and what attribution found.

Used by the lookup stage and by the dead-letter stage (a change whose lookups could not finish is still
reported), so both build the same outcome for the same item.
"""

from __future__ import annotations

from datetime import datetime

from chalicelib.core import attribution as attr
from chalicelib.core import trust
from chalicelib.core.jobs import LookupJob
from chalicelib.core.outcomes import SUPPRESSED, Outcome, summary_of
from chalicelib.core.timeutil import iso


def build_outcome(job: LookupJob, kind: str, now: datetime, found: attr.Attribution | None,
                  unverified: str | None = None, trusted_patterns: tuple[str, ...] = ()) -> Outcome:
    change = job.change
    principal = found.principal if found else None
    events = found.events if found else ()
    return Outcome(
        kind=kind,
        outcome_id=f"ci:{job.change_key}",
        at=iso(now) or "",
        account=change.account,
        region=change.region,
        resource_type=change.resource_type,
        resource_id=change.resource_id,
        resource_name=change.resource_name,
        resource_arn=change.arn,
        change_type=change.change_type,
        capture_time=iso(change.capture_time),
        principal_arn=principal.arn if principal else None,
        principal=principal,
        event_ids=tuple(e.event_id for e in events if e.event_id),
        events=tuple(summary_of(e) for e in events),
        event_name=events[-1].event_name if events else None,
        reason=found.verdict if found else None,
        changed_properties=tuple(p.to_json() for p in change.changed_properties),
        archive_bucket=job.archive_bucket,
        archive_key=job.archive_key,
        partition=attr.partition_of(change.arn or (principal.arn if principal else None)),
        extra={**_extra(found, unverified), **trust.trusted_role_mark(kind, change, trusted_patterns),
               **_suppressed_by(kind, found, trusted_patterns), "notified_at": iso(job.arrived_at)},
    )


def _suppressed_by(kind: str, found: attr.Attribution | None, patterns: tuple[str, ...]) -> dict[str, str]:
    """Which trusted pattern silenced a change (the ``Suppressions`` metric counts by it)."""
    if kind != SUPPRESSED or found is None or found.principal is None or found.verdict != trust.TRUSTED:
        return {}
    pattern = trust.trusting_pattern(found.principal, patterns)
    return {"trusted_by": pattern} if pattern else {}


def _extra(found: attr.Attribution | None, unverified: str | None) -> dict[str, str]:
    extra = {"attributed_via": found.via} if found else {}
    if unverified:
        extra["unverified"] = unverified
    return extra
