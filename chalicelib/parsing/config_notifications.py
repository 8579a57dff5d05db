"""AWS Config notifications and configuration items into ``ConfigChange`` (pure).

Handles every notification type the delivery channel sends (new single-item and 2014
``configurationItems`` formats, oversized summaries, snapshot/history/compliance/rule
notifications), both key spellings of configuration items (notification: ``ARN``,
``awsAccountId``, ``relationships[].name``; API/history: ``arn``, ``accountId``,
``relationshipName``), and bare items (history files, S3 objects of oversized items).
"""

from __future__ import annotations

import json
from typing import Any

from chalicelib.core.errors import MalformedInput
from chalicelib.core.model import ConfigChange, Ignored, Item, PropertyChange, Relationship, Unparseable
from chalicelib.core.timeutil import parse_time
from chalicelib.parsing import envelopes
from chalicelib.parsing.envelopes import as_list, as_mapping, text_of

CHANGE_NOTIFICATION = "ConfigurationItemChangeNotification"
OVERSIZED_NOTIFICATION = "OversizedConfigurationItemChangeNotification"
OVERSIZED_DELIVERY_FAILED = "OversizedConfigurationItemChangeDeliveryFailed"
OVERSIZED_TYPES = frozenset({OVERSIZED_NOTIFICATION, OVERSIZED_DELIVERY_FAILED})

_NO_CHANGE = "carries no configuration change"
IGNORED_TYPES: dict[str, str] = {
    "ConfigurationSnapshotDeliveryStarted": f"configuration snapshot delivery started: {_NO_CHANGE}",
    "ConfigurationSnapshotDeliveryCompleted": f"configuration snapshot delivered: {_NO_CHANGE}",
    "ConfigurationSnapshotDeliveryFailed": f"configuration snapshot delivery failed: {_NO_CHANGE} "
                                           "(check the delivery channel's S3 bucket)",
    "ConfigurationHistoryDeliveryCompleted": f"configuration history delivered: {_NO_CHANGE}",
    "ConfigurationHistoryDeliveryFailed": f"configuration history delivery failed: {_NO_CHANGE}",
    "ComplianceChangeNotification": "compliance change: a rule's evaluation result changed, not a resource",
    "ConfigRulesEvaluationStarted": f"config rules evaluation started: {_NO_CHANGE}",
    "ScheduledNotification": f"periodic config-rule trigger: {_NO_CHANGE}",
}


def parse_config_message(message: Any, source: str) -> list[Item]:
    """One AWS Config notification (object, JSON text, or e-mail text) into items; never raises."""
    body = _as_object(message, source)
    if isinstance(body, Unparseable):
        return [body]
    message_type = _message_type(body)
    if message_type in IGNORED_TYPES:
        return [Ignored(source, IGNORED_TYPES[message_type])]
    if message_type in OVERSIZED_TYPES or (message_type is None and "configurationItemSummary" in body):
        return [_oversized(body, source, message_type)]
    if message_type == CHANGE_NOTIFICATION or (message_type is None and _has_items(body)):
        return _change_items(body, source, message_type)
    if message_type is not None:
        return [Ignored(source, f"unknown messageType {message_type}")]
    if envelopes.is_configuration_item(body):
        return [parse_configuration_item(body, source=source, message_type=None,
                                         diff=body.get("configurationItemDiff"), notification_time=None)]
    return [Unparseable(source, "not an AWS Config notification: no messageType and no configurationItem")]


def parse_config_object(body: bytes | str, source: str) -> list[Item]:
    """An S3 object holding a full notification (oversized items), gzip-compressed or not."""
    if isinstance(body, (bytes, bytearray)):
        try:
            body = envelopes.maybe_decompress(bytes(body))
        except MalformedInput as exc:
            return [Unparseable(source, f"S3 object: {exc}")]
    return parse_config_message(body, source)


def parse_configuration_item(
    ci: Any,
    *,
    source: str,
    message_type: str | None,
    diff: Any,
    notification_time: Any,
    oversized: bool = False,
    s3_location: str | None = None,
) -> ConfigChange:
    """One configuration item (or oversized summary), in either key spelling, into a ``ConfigChange``.

    ``diff`` is the notification's ``configurationItemDiff`` (may be ``None``); without it the
    change type comes from the item itself (oversized summaries carry ``changeType``).
    """
    item = as_mapping(ci)
    changes = as_mapping(diff)
    configuration = _decoded(item.get("configuration"))
    return ConfigChange(
        source=source,
        message_type=message_type,
        account=text_of(item.get("awsAccountId")) or text_of(item.get("accountId")),
        region=text_of(item.get("awsRegion")),
        resource_type=text_of(item.get("resourceType")),
        resource_id=text_of(item.get("resourceId")),
        resource_name=text_of(item.get("resourceName")),
        arn=text_of(item.get("ARN")) or text_of(item.get("arn")),
        capture_time=parse_time(item.get("configurationItemCaptureTime")),
        change_type=text_of(changes.get("changeType")) or text_of(item.get("changeType")),
        status=text_of(item.get("configurationItemStatus")),
        changed_properties=changed_properties(changes.get("changedProperties")),
        oversized=oversized,
        s3_location=s3_location,
        related_events=tuple(e for e in as_list(item.get("relatedEvents")) if isinstance(e, str) and e),
        relationships=relationships(item.get("relationships")),
        configuration=configuration,
        tags=tags(item.get("tags"), configuration),
        state_id=text_of(item.get("configurationStateId", item.get("configurationStateID"))),
        notification_time=parse_time(notification_time),
    )


def changed_properties(value: Any) -> tuple[PropertyChange, ...]:
    """``configurationItemDiff.changedProperties`` (``{}`` on CREATE; ``previousValue`` may be absent)."""
    if not isinstance(value, dict):
        return ()
    return tuple(
        PropertyChange(path=str(path), change_type=text_of(entry.get("changeType")),
                       previous=entry.get("previousValue"), updated=entry.get("updatedValue"))
        if isinstance(entry, dict) else PropertyChange(path=str(path), change_type=None)
        for path, entry in value.items()
    )


def relationships(value: Any) -> tuple[Relationship, ...]:
    """Relationships in either spelling (``name`` or ``relationshipName``); keys may be missing."""
    return tuple(
        Relationship(
            resource_type=text_of(r.get("resourceType")),
            resource_id=text_of(r.get("resourceId")),
            resource_name=text_of(r.get("resourceName")),
            name=text_of(r.get("name")) or text_of(r.get("relationshipName")),
        )
        for r in as_list(value) if isinstance(r, dict)
    )


def tags(item_tags: Any, configuration: Any) -> dict[str, str]:
    """Tags from ``configuration.tags`` (list of key/value pairs, either casing), then the item's map."""
    merged: dict[str, str] = {}
    if isinstance(configuration, dict):
        inner = configuration.get("tags", configuration.get("Tags"))
        merged.update(_tag_pairs(inner))
    merged.update(_tag_pairs(item_tags))
    return merged


def _tag_pairs(value: Any) -> dict[str, str]:
    if isinstance(value, dict):
        return {k: _tag_value(v) for k, v in value.items() if isinstance(k, str) and _is_scalar(v)}
    pairs = {}
    for entry in as_list(value):
        if isinstance(entry, dict):
            key = entry.get("key", entry.get("Key"))
            val = entry.get("value", entry.get("Value"))
            if isinstance(key, str) and _is_scalar(val):
                pairs[key] = _tag_value(val)
    return pairs


def _tag_value(value: Any) -> str:
    return "" if value is None else str(value)


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def _oversized(body: dict[str, Any], source: str, message_type: str | None) -> Item:
    summary = as_mapping(body.get("configurationItemSummary"))
    if not (text_of(summary.get("resourceType")) or text_of(summary.get("resourceId"))):
        return Unparseable(source, f"{message_type or 'oversized notification'} has no "
                                   "configurationItemSummary naming a resource")
    delivery = as_mapping(body.get("s3DeliverySummary"))
    return parse_configuration_item(
        summary, source=source, message_type=message_type, diff=None,
        notification_time=_notification_time(body), oversized=True,
        s3_location=text_of(delivery.get("s3BucketLocation")),
    )


def _change_items(body: dict[str, Any], source: str, message_type: str | None) -> list[Item]:
    when = _notification_time(body)
    item = body.get("configurationItem")
    if isinstance(item, dict):
        return [parse_configuration_item(item, source=source, message_type=message_type,
                                         diff=body.get("configurationItemDiff"), notification_time=when)]
    items = body.get("configurationItems", body.get("ConfigurationItems"))
    if not isinstance(items, list):
        kind = message_type or "Config notification"
        return [Unparseable(source, f"{kind} has no configurationItem object")]
    if not items:
        return [Ignored(source, "configuration item change notification with no configuration items")]
    shared_diff = body.get("configurationItemDiff") if len(items) == 1 else None
    return [
        parse_configuration_item(ci, source=source, message_type=message_type,
                                 diff=ci.get("configurationItemDiff", shared_diff), notification_time=when)
        if isinstance(ci, dict) else Unparseable(source, f"configurationItems[{n}] is not an object")
        for n, ci in enumerate(items)
    ]


def _as_object(message: Any, source: str) -> dict[str, Any] | Unparseable:
    if isinstance(message, dict):
        return message
    if not isinstance(message, (str, bytes, bytearray)):
        return Unparseable(source, "Config notification must be JSON text or an object, "
                                   f"got {type(message).__name__}")
    try:
        body = envelopes.load_json(message)
        if isinstance(body, str):
            body = envelopes.load_json(body)
    except MalformedInput as exc:
        return Unparseable(source, f"Config notification: {exc}")
    if not isinstance(body, dict):
        return Unparseable(source, f"Config notification is a JSON {type(body).__name__}, expected an object")
    return body


def _message_type(body: dict[str, Any]) -> str | None:
    value = body.get("messageType", body.get("MessageType"))
    return value if isinstance(value, str) and value else None


def _has_items(body: dict[str, Any]) -> bool:
    return any(key in body for key in ("configurationItem", "configurationItems", "ConfigurationItems"))


def _notification_time(body: dict[str, Any]) -> Any:
    return body.get("notificationCreationTime") or body.get("NotificationCreateTime")


def _decoded(configuration: Any) -> Any:
    """``configuration`` as an object: JSON-encoded strings (seen in the wild) are decoded."""
    if isinstance(configuration, str) and configuration.lstrip()[:1] in ("{", "["):
        try:
            return json.loads(configuration)
        except (ValueError, RecursionError):
            return configuration
    return configuration
