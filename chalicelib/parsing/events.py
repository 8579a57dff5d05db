"""The one entry point from raw AWS payloads to normalised items: ``parse_payload``.

Auto-detects every shape ``chalicelib.parsing.envelopes`` recognises, opens containers recursively (an SQS
record holding an SNS envelope holding a Config notification, a Kinesis record holding gzip
CloudWatch Logs data holding CloudTrail records, ...) and returns one item per configuration item
or CloudTrail record: ``Ignored`` for valid input with nothing to act on, ``Unparseable`` (with a
reason a person can act on) for anything unreadable. It never raises.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from chalicelib.core.errors import MalformedInput
from chalicelib.core.model import Ignored, Item, TrailEvent, Unparseable
from chalicelib.parsing import envelopes as env
from chalicelib.parsing.cloudtrail import parse_lookup_event, parse_record, with_location
from chalicelib.parsing.config_notifications import parse_config_message
from chalicelib.parsing.envelopes import SnsMeta

__all__ = ["SnsMeta", "parse_payload", "parse_sns_event"]

MAX_DEPTH = 12
"""Containers nest a few levels at most (SQS > SNS > Config); deeper means a loop or an attack."""

_Handler = Callable[[dict[str, Any], str, int], list[Item]]
_NOT_BASE64 = re.compile(r'[\s{}\[\]":,]')  # C speed: a multi-MB string is scanned in milliseconds


def parse_payload(payload: Any, source: str) -> list[Item]:
    """Every item in ``payload`` (bytes, text, a decoded object or list); never raises, never empty."""
    try:
        items = _parse(payload, source, 0)
    except Exception as exc:  # last-resort guard: a parser bug must not lose the whole batch
        return [_internal_error(source, exc)]
    return items or [Ignored(source, "the input holds no events")]


def parse_sns_event(event: Any) -> list[tuple[SnsMeta, Any]]:
    """``(SnsMeta, Message)`` per SNS delivery in a Lambda SNS event or bare envelope.

    For the pipeline: ``SnsMeta.message_id`` identifies redeliveries, ``topic_arn`` the sender.
    Pass each ``Message`` (as delivered: JSON text or object) to ``parse_payload``.
    """
    try:
        return env.sns_messages(event)
    except Exception:  # defensive: documented as never raising
        return []


def _parse(value: Any, source: str, depth: int) -> list[Item]:
    if depth > MAX_DEPTH:
        return [Unparseable(source, f"containers nested more than {MAX_DEPTH} levels deep")]
    if isinstance(value, dict):
        return _parse_object(value, source, depth)
    if isinstance(value, list):
        return _parse_list(value, source, depth)
    if isinstance(value, str):
        return _parse_text(value, source, depth)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _parse_bytes(bytes(value), source, depth)
    if value is None:
        return [Unparseable(source, "empty payload (null)")]
    return [Unparseable(source, f"unsupported payload type {type(value).__name__}; "
                                "expected JSON text, bytes, an object or a list")]


def _parse_bytes(raw: bytes, source: str, depth: int) -> list[Item]:
    try:
        raw = env.maybe_decompress(raw)
    except MalformedInput as exc:
        return [Unparseable(source, f"compressed input: {exc}")]
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return [Unparseable(source, f"input is neither UTF-8 text nor gzip/zlib-compressed JSON "
                                    f"(bad byte at offset {exc.start})")]
    return _parse_text(text, source, depth)


def _parse_text(text: str, source: str, depth: int) -> list[Item]:
    if not text.strip():
        return [Unparseable(source, "empty input")]
    try:
        value = env.load_json(text)
    except MalformedInput as exc:
        return _maybe_base64(text, source, depth) or [Unparseable(source, str(exc))]
    if isinstance(value, str):
        return _parse(value, source, depth + 1) if value.strip()[:1] in ("{", "[") else [
            Unparseable(source, f"JSON string where an object was expected: {value[:60]!r}")]
    return _parse(value, source, depth + 1)


def _maybe_base64(text: str, source: str, depth: int) -> list[Item] | None:
    """Bare ``awslogs.data`` / Kinesis data pasted as text: base64 of compressed JSON."""
    compact = text.strip()
    if len(compact) < 16 or not compact.isascii() or _NOT_BASE64.search(compact):
        return None
    try:
        raw = env.b64decode(compact)
    except MalformedInput:
        return None
    if raw[:2] != b"\x1f\x8b" and raw.lstrip()[:1] not in (b"{", b"[") and not raw.startswith(b"x"):
        return None
    return _parse_bytes(raw, source, depth + 1)


def _parse_list(values: list[Any], source: str, depth: int) -> list[Item]:
    if not values:
        return [Ignored(source, "empty list: no events")]
    items: list[Item] = []
    for value in values:
        items.extend(_guarded(_parse, value, source, depth + 1))
    return items


def _guarded(parse: Callable[[Any, str, int], list[Item]], value: Any, source: str, depth: int) -> list[Item]:
    """Parse one element of a batch so that a bug on one element cannot lose its neighbours."""
    try:
        return parse(value, source, depth)
    except Exception as exc:
        return [_internal_error(source, exc)]


def _internal_error(source: str, exc: Exception) -> Unparseable:
    return Unparseable(source, f"internal parser error ({type(exc).__name__}: {str(exc)[:200]}); "
                               "please report it with the input")


def _parse_object(obj: dict[str, Any], source: str, depth: int) -> list[Item]:
    shape = env.classify(obj)
    handler = _HANDLERS.get(shape)
    if handler is None:
        return [Unparseable(source, _unknown_shape(obj))]
    return handler(obj, source, depth)


def _unknown_shape(obj: dict[str, Any]) -> str:
    keys = ", ".join(sorted(str(k) for k in obj)[:8]) or "none"
    return ("unrecognised shape (keys: " + keys + "); expected a CloudTrail record, an AWS Config "
            "notification, or an SNS/SQS/EventBridge/CloudWatch Logs/Kinesis container")


# --- containers -------------------------------------------------------------------------------


def _records(obj: dict[str, Any], source: str, depth: int) -> list[Item]:
    records = obj["Records"]
    if not records:
        return [Ignored(source, "Records is empty: no events")]
    items: list[Item] = []
    for record in records:
        items.extend(_guarded(_record, record, source, depth + 1))
    return items


def _record(record: Any, source: str, depth: int) -> list[Item]:
    if not isinstance(record, dict):
        return [Unparseable(source, f"a Records[] entry must be an object, got {type(record).__name__}")]
    shape = env.classify(record)
    if shape == env.UNKNOWN:
        return [Unparseable(source, "Records[] entry is " + _unknown_shape(record))]
    return _HANDLERS[shape](record, source, depth)


def _sns_record(record: dict[str, Any], source: str, depth: int) -> list[Item]:
    sns = record.get("Sns")
    if not isinstance(sns, dict):
        return [Unparseable(source, "SNS record without an Sns object")]
    return _sns_envelope(sns, source, depth)


def _sns_envelope(envelope: dict[str, Any], source: str, depth: int) -> list[Item]:
    kind = envelope.get("Type")
    if kind in ("SubscriptionConfirmation", "UnsubscribeConfirmation"):
        return [Ignored(source, f"SNS {kind}: not a notification")]
    message = envelope.get("Message")
    if message is None or (isinstance(message, str) and not message.strip()):
        return [Unparseable(source, "SNS notification with an empty Message")]
    return _parse(message, source, depth + 1)


def _sqs_record(record: dict[str, Any], source: str, depth: int) -> list[Item]:
    body = record.get("body", record.get("Body"))
    if not isinstance(body, str) or not body.strip():
        return [Unparseable(source, "SQS record without a text body")]
    return _parse_text(body, source, depth + 1)


def _kinesis_record(record: dict[str, Any], source: str, depth: int) -> list[Item]:
    data = env.as_mapping(record.get("kinesis")).get("data")
    if not isinstance(data, str):
        return [Unparseable(source, "Kinesis record without kinesis.data")]
    try:
        raw = env.b64decode(data)
    except MalformedInput as exc:
        return [Unparseable(source, f"Kinesis record data: {exc}")]
    return _parse_bytes(raw, source, depth + 1)


def _s3_record(record: dict[str, Any], source: str, depth: int) -> list[Item]:
    return [Ignored(source, "S3 event notification: names an object, carries no event itself")]


def _awslogs(obj: dict[str, Any], source: str, depth: int) -> list[Item]:
    data = obj["awslogs"].get("data")
    if not isinstance(data, str):
        return [Unparseable(source, "awslogs event without a data string")]
    try:
        decoded = env.decode_awslogs(data)
    except MalformedInput as exc:
        return [Unparseable(source, f"awslogs.data ({exc}); expected base64 of gzip- or zlib-compressed "
                                    "JSON as CloudWatch Logs delivers it")]
    return _parse(decoded, source, depth + 1)


def _logs_data(obj: dict[str, Any], source: str, depth: int) -> list[Item]:
    if obj.get("messageType") == env.CONTROL_MESSAGE:
        return [Ignored(source, "CloudWatch Logs CONTROL_MESSAGE (subscription health check)")]
    events = obj.get("logEvents")
    if not isinstance(events, list):
        return [Unparseable(source, "CloudWatch Logs DATA_MESSAGE without a logEvents list")]
    if not events:
        return [Ignored(source, "CloudWatch Logs DATA_MESSAGE with no log events")]
    group = obj.get("logGroup")
    return [_log_event(event, source, group) for event in events]


def _log_event(event: Any, source: str, group: Any) -> Item:
    where = f"log event {env.as_mapping(event).get('id')!r} of log group {group!r}"
    message = env.as_mapping(event).get("message")
    if not isinstance(message, str):
        return Unparseable(source, f"{where} has no message text")
    if message.lstrip()[:1] != "{":
        return Ignored(source, f"{where} is not a CloudTrail record (plain text {message.strip()[:60]!r})")
    try:
        record = env.load_json(message)
    except MalformedInput as exc:
        return Unparseable(source, f"{where}: {exc}")
    if not env.is_cloudtrail_record(record):
        return Ignored(source, f"{where} is JSON but not a CloudTrail record")
    return parse_record(record, source)


def _eventbridge(event: dict[str, Any], source: str, depth: int) -> list[Item]:
    detail_type, detail = env.eventbridge_parts(event)
    if isinstance(detail, dict) and env.is_config_notification(detail):
        return parse_config_message(detail, source)
    if isinstance(detail, dict) and (env.is_cloudtrail_record(detail) or _via_cloudtrail(detail_type)):
        return [_with_envelope_defaults(parse_record(detail, source), event)]
    if _via_cloudtrail(detail_type):
        return [Unparseable(source, f"EventBridge {detail_type!r} event whose detail is not "
                                    "a CloudTrail record")]
    return [Ignored(source, f"EventBridge {detail_type!r} event from {event.get('source')!r}: "
                            "neither a CloudTrail record nor a configuration change")]


def _via_cloudtrail(detail_type: str | None) -> bool:
    return bool(detail_type) and detail_type.endswith("via CloudTrail")


def _with_envelope_defaults(item: Item, event: dict[str, Any]) -> Item:
    """EventBridge's ``account``/``region`` where the record itself names none."""
    if not isinstance(item, TrailEvent) or (item.account and item.region):
        return item
    return with_location(item, env.text_of(event.get("account")), env.text_of(event.get("region")))


def _config_rule_event(event: dict[str, Any], source: str, depth: int) -> list[Item]:
    invoking = event.get("invokingEvent")
    if invoking is None:
        return [Unparseable(source, "Config rule event with a null invokingEvent")]
    return parse_config_message(invoking, source)


def _lookup_response(response: dict[str, Any], source: str, depth: int) -> list[Item]:
    events = response["Events"]
    if not events:
        return [Ignored(source, "LookupEvents response with no events")]
    return [parse_lookup_event(event, source) for event in events]


def _lookup_event(event: dict[str, Any], source: str, depth: int) -> list[Item]:
    return [parse_lookup_event(event, source)]


def _config(obj: dict[str, Any], source: str, depth: int) -> list[Item]:
    return parse_config_message(obj, source)


def _cloudtrail(record: dict[str, Any], source: str, depth: int) -> list[Item]:
    return [parse_record(record, source)]


_HANDLERS: dict[str, _Handler] = {
    env.AWSLOGS: _awslogs,
    env.LOGS_DATA: _logs_data,
    env.RECORDS: _records,
    env.SNS_RECORD: _sns_record,
    env.SQS_RECORD: _sqs_record,
    env.KINESIS_RECORD: _kinesis_record,
    env.S3_RECORD: _s3_record,
    env.SNS_ENVELOPE: _sns_envelope,
    env.EVENTBRIDGE: _eventbridge,
    env.CONFIG_RULE_EVENT: _config_rule_event,
    env.LOOKUP_RESPONSE: _lookup_response,
    env.LOOKUP_EVENT: _lookup_event,
    env.CONFIG_NOTIFICATION: _config,
    env.CONFIGURATION_ITEM: _config,
    env.CLOUDTRAIL_RECORD: _cloudtrail,
}
