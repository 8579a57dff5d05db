"""The outcome of one changed configuration item, from its lookup job and what attribution found.

Used by the lookup stage and by the dead-letter stage (a change whose lookups could not finish is still
reported), so both build the same outcome for the same item.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from chalicelib.core import attribution as attr
from chalicelib.core import trust
from chalicelib.core.jobs import LookupJob
from chalicelib.core.model import ConfigChange
from chalicelib.core.outcomes import SUPPRESSED, TAGS_UNKNOWN, Outcome, summary_of
from chalicelib.core.timeutil import iso


def build_outcome(job: LookupJob, kind: str, now: datetime, found: attr.Attribution | None,
                  unverified: str | None = None, trusted_patterns: tuple[str, ...] = ()) -> Outcome:
    change = job.change
    principal = found.principal if found else None
    events = found.events if found else ()
    read = _read_tags_before(change)  # (tags before, unreadable), once: None when the change left them alone
    before, unreadable = read if read is not None else (None, False)
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
               **_suppressed_by(kind, found, trusted_patterns), "notified_at": iso(job.arrived_at),
               **({TAGS_UNKNOWN: True} if unreadable else {})},
        resource_tags=dict(change.tags),
        resource_tags_before=before,
    )


def tags_before(change: ConfigChange) -> dict[str, str] | None:
    """The resource's tags before ``change``, from its diff: ``None`` when the change did not touch them (or
    touched them in a shape that cannot be read back: ``tags_unreadable`` says which).

    The item carries the tags after the change; the diff's tag entries (``Tags.<key>`` of the item's map,
    ``Configuration.Tags.<n>`` ``{key, value}`` entries, a whole ``Tags`` or ``Configuration.Tags``, an S3
    bucket's ``SupplementaryConfiguration.BucketTaggingConfiguration``, or the previous ``Configuration`` of a
    deleted resource) give back what they replaced. Routing by tag reads both (``core.routing``), so a re-tag
    cannot move its own alert away.
    """
    read = _read_tags_before(change)
    return None if read is None else read[0]


def tags_unreadable(change: ConfigChange) -> bool:
    """The change touched the tags, but what they were cannot be read back (``Tags.1``: an index, not a key;
    an unknown tag shape): routing then treats every tag condition as unknown (``outcomes.TAGS_UNKNOWN``)."""
    read = _read_tags_before(change)
    return read is not None and read[1]


def _read_tags_before(change: ConfigChange) -> tuple[dict[str, str] | None, bool] | None:
    """``(tags before or None when unchanged, unreadable)``; ``None`` when the change did not touch them."""
    removed: set[str] = set()
    restored: dict[str, str] = {}
    touched = unreadable = False
    for prop in change.changed_properties:
        path = prop.path.lower()
        if path in ("tags", "configuration.tags"):
            removed.update(_tag_collection(prop.updated))
            restored.update(_tag_collection(prop.previous))
        elif path.startswith("tags."):
            key = prop.path[len("tags."):]
            if key.isdigit() and key not in change.tags:
                unreadable = True  # Config's index form: the value of the n-th tag, its key not said
            removed.add(key)
            if prop.previous is not None:
                restored[key] = _tag_text(prop.previous)
        elif path.startswith("configuration.tags."):
            removed.update(_tag_entry(prop.updated))
            restored.update(_tag_entry(prop.previous))
        elif path.startswith("supplementaryconfiguration.buckettaggingconfiguration"):
            after, before = _bucket_tags(prop.updated), _bucket_tags(prop.previous)
            unreadable = unreadable or (prop.previous is not None and before is None)
            removed.update(after or {})
            restored.update(before or {})
        elif path == "configuration" and isinstance(prop.previous, Mapping):
            restored.update(_tag_collection(prop.previous.get("tags", prop.previous.get("Tags"))))
        elif "tag" in path.rsplit(".", 1)[-1] or ".tags." in path or path.endswith(".tags"):
            unreadable = True  # a tag shape this does not know
        else:
            continue
        touched = True
    if not touched:
        return None
    before = {key: value for key, value in change.tags.items() if key not in removed}
    before.update(restored)
    return (before if before != change.tags else None), unreadable


def _bucket_tags(value: Any) -> dict[str, str] | None:
    """An S3 bucket's tags from ``BucketTaggingConfiguration`` (``{"tagSets": [{"tags": {k: v}}]}``)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not isinstance(value.get("tagSets"), list):
        return None
    found: dict[str, str] = {}
    for tag_set in value["tagSets"]:
        tags = tag_set.get("tags") if isinstance(tag_set, Mapping) else None
        if not isinstance(tags, Mapping):
            return None
        found.update({str(k): _tag_text(v) for k, v in tags.items() if _is_scalar(v)})
    return found


def _tag_collection(value: Any) -> dict[str, str]:
    """A map of tags, or a list of ``{key, value}`` entries (either casing)."""
    if isinstance(value, Mapping):
        return {k: _tag_text(v) for k, v in value.items() if isinstance(k, str) and _is_scalar(v)}
    found: dict[str, str] = {}
    for entry in value if isinstance(value, list) else ():
        found.update(_tag_entry(entry))
    return found


def _tag_entry(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        return {}
    key, tag = value.get("key", value.get("Key")), value.get("value", value.get("Value"))
    return {key: _tag_text(tag)} if isinstance(key, str) and _is_scalar(tag) else {}


def _tag_text(value: Any) -> str:
    return "" if value is None else str(value)


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


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
