"""Recognise and open the containers AWS wraps events in (pure; no AWS calls).

Containers: Lambda SNS events (``Records[].Sns``), bare SNS envelopes, SQS records, EventBridge
events, CloudWatch Logs subscription events (``awslogs.data``: base64 of gzip or zlib) and their
decoded form, Kinesis records, AWS Config rule invoking events, LookupEvents responses, and
e-mailed Config notifications (text before the JSON).

Nothing here raises except ``MalformedInput`` from the documented decoders (``load_json``,
``b64decode``, ``decompress``, ``decode_awslogs``, ``decode_kinesis_data``). ``classify`` and the
``is_*`` predicates never raise on any value.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from chalicelib.core.errors import MalformedInput

# Shapes returned by ``classify``.
AWSLOGS = "cloudwatch_logs_subscription_event"
LOGS_DATA = "cloudwatch_logs_data"
RECORDS = "records_batch"
SNS_RECORD = "sns_lambda_record"
SQS_RECORD = "sqs_record"
KINESIS_RECORD = "kinesis_record"
S3_RECORD = "s3_event_record"
SNS_ENVELOPE = "sns_envelope"
EVENTBRIDGE = "eventbridge_event"
CONFIG_RULE_EVENT = "config_rule_invoking_event"
LOOKUP_RESPONSE = "lookup_events_response"
LOOKUP_EVENT = "lookup_event"
CONFIG_NOTIFICATION = "config_notification"
CONFIGURATION_ITEM = "configuration_item"
CLOUDTRAIL_RECORD = "cloudtrail_record"
UNKNOWN = "unknown"

DATA_MESSAGE = "DATA_MESSAGE"
CONTROL_MESSAGE = "CONTROL_MESSAGE"

_SNS_TYPES = frozenset({"Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation"})
_CONFIG_ITEM_KEYS = ("configurationItem", "configurationItems", "ConfigurationItems",
                     "configurationItemSummary")
_CI_MARKERS = ("configurationItemCaptureTime", "configurationItemStatus", "configurationStateId",
               "configurationStateID", "configurationItemVersion")
_TRAIL_KEYS = frozenset({"eventVersion", "eventTime", "eventSource", "eventName", "userIdentity", "eventID",
                         "awsRegion", "recipientAccountId", "eventType", "requestParameters"})
_GZIP_MAGIC = b"\x1f\x8b"
MAX_COMPRESSED_BYTES = 8 * 2**20
"""Compressed input larger than this is refused before inflating (real payloads: at most about 1 MB)."""
MAX_INFLATED_BYTES = 16 * 2**20
"""Guard against decompression bombs: real payloads are at most a few MB once inflated (a CloudWatch
Logs batch holds at most 1 MiB of events; SNS and Lambda events are at most 256 KB / 6 MB)."""
MAX_JSON_CONTAINERS = 250_000
MAX_JSON_VALUES = 1_000_000
"""JSON text opening more objects and arrays, or separating more values (commas), than these is refused
before parsing: ``[[],[],...]`` costs about 28 bytes of memory per byte of text, so even capped text
could exhaust a function's memory. Real payloads stay far below (a 1 MiB CloudWatch Logs batch of
CloudTrail records: about 20,000 commas)."""


# --- decoding ---------------------------------------------------------------------------------


def load_json(text: str | bytes) -> Any:
    """Parse JSON text, tolerating a text preamble (e-mail delivery) or trailing text.

    Raises ``MalformedInput`` whose message says where the text broke and whether it looks cut off.
    """
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise MalformedInput(f"not UTF-8 text (byte {exc.start}); expected JSON") from None
    if not isinstance(text, str):
        raise MalformedInput(f"expected JSON text, got {type(text).__name__}")
    check_json_size(text)
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        error = exc
    start = _json_start(text, error)
    if start is not None:
        try:
            return json.JSONDecoder().raw_decode(text, start)[0]
        except (ValueError, RecursionError) as exc:
            error = exc
    raise MalformedInput(_json_error(text, error)) from None


_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


def check_json_size(text: str) -> None:
    """Refuse text too large, or opening too many objects/arrays, to parse safely (``MalformedInput``)."""
    if len(text) > MAX_INFLATED_BYTES:
        raise MalformedInput(f"text of {len(text)} characters is over the {MAX_INFLATED_BYTES // 2**20} MiB "
                             "limit: refused unread")
    containers = text.count("{") + text.count("[")
    values = text.count(",")
    if containers > MAX_JSON_CONTAINERS or values > MAX_JSON_VALUES:
        # Count only what is outside string values: brackets and commas inside a log message or a rule
        # description are text, and must not get a whole batch refused (one record could hide the others).
        bare = _JSON_STRING.sub('""', text)
        containers = bare.count("{") + bare.count("[")
        values = bare.count(",")
    if containers > MAX_JSON_CONTAINERS or values > MAX_JSON_VALUES:
        raise MalformedInput(f"JSON of {containers} objects/arrays and {values} commas (limits "
                             f"{MAX_JSON_CONTAINERS}, {MAX_JSON_VALUES}): refused unparsed, as a possible memory bomb")


def _json_start(text: str, error: Exception) -> int | None:
    """Where the JSON starts after a preamble, or before trailing text; ``None`` if neither applies.

    A ``{`` right after ``[`` or ``,`` is inside a truncated array, not after a preamble: rejected so a
    cut-off batch is never mistaken for its first element.
    """
    lead = len(text) - len(text.lstrip())
    if isinstance(error, json.JSONDecodeError) and error.msg == "Extra data":
        return lead
    start = text.find("{")
    preamble = text[:start].rstrip()
    if start <= lead or not preamble or preamble[-1] in "[,":
        return None
    return start


def _json_error(text: str, exc: ValueError) -> str:
    body = text.rstrip()
    if not body.strip():
        return "empty text where JSON was expected"
    if not isinstance(exc, json.JSONDecodeError):
        return f"not valid JSON: {exc}"
    if exc.pos == len(body) - len(body.lstrip()):
        return f"not JSON: the text starts with {body.strip()[:40]!r}"
    if exc.pos >= len(body) or exc.msg.startswith("Unterminated string"):
        return (f"JSON ends early ({exc}): the text looks truncated after {len(text)} characters; "
                "deliver the whole message")
    return f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"


def b64decode(data: str | bytes) -> bytes:
    """Decode standard or URL-safe base64, with or without padding or line breaks."""
    if isinstance(data, str):
        try:
            data = data.encode("ascii")
        except UnicodeEncodeError:
            raise MalformedInput("not base64: contains non-ASCII characters") from None
    if not isinstance(data, (bytes, bytearray)):
        raise MalformedInput(f"expected a base64 string, got {type(data).__name__}")
    compact = b"".join(bytes(data).split())
    compact += b"=" * (-len(compact) % 4)
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        pass
    try:
        return base64.b64decode(compact, altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise MalformedInput("not valid base64 (bad characters or length)") from None


def decompress(raw: bytes, limit: int | None = None) -> bytes:
    """Inflate gzip (any header flags, concatenated members), zlib, or raw deflate.

    At most ``limit`` (default ``MAX_INFLATED_BYTES``) bytes are ever produced, and compressed input
    over ``MAX_COMPRESSED_BYTES`` is refused: both raise ``MalformedInput`` saying which limit.
    """
    _check_compressed_size(len(raw))
    for wbits in (zlib.MAX_WBITS | 32, zlib.MAX_WBITS, -zlib.MAX_WBITS):
        try:
            return inflate_chunks((raw,), wbits, limit)
        except zlib.error:
            continue
    raise MalformedInput("not gzip/zlib/deflate data, or the compressed stream is truncated or corrupt")


def _check_compressed_size(size: int) -> None:
    if size > MAX_COMPRESSED_BYTES:
        raise MalformedInput(f"compressed data of {size} bytes is over the {MAX_COMPRESSED_BYTES // 2**20} MiB "
                             "limit: refused uninflated")


def inflate_chunks(chunks: Iterable[bytes], wbits: int = zlib.MAX_WBITS | 32, limit: int | None = None) -> bytes:
    """Stream-inflate compressed ``chunks`` (gzip members may follow each other) into at most ``limit`` bytes.

    Never holds more than ``limit`` + one chunk of output: a bomb is refused with ``MalformedInput``
    (``inflates beyond ...``) as soon as it passes the limit. A truncated or corrupt stream raises
    ``zlib.error``; bytes after the last gzip member that do not start another member are ignored.
    """
    limit = MAX_INFLATED_BYTES if limit is None else limit
    out = bytearray()
    inflater: Any = zlib.decompressobj(wbits)
    for chunk in chunks:
        data = bytes(chunk)
        while data:
            if inflater is None:  # between gzip members: only another member may follow
                if not data.startswith(_GZIP_MAGIC):
                    return bytes(out)
                inflater = zlib.decompressobj(wbits)
            out += inflater.decompress(data, limit - len(out) + 1)
            if len(out) > limit:
                raise MalformedInput(f"compressed data inflates beyond {_size_text(limit)}: refused (a "
                                     "decompression bomb, or not an AWS payload)")
            data = inflater.unconsumed_tail
            if inflater.eof:
                data = inflater.unused_data
                inflater = None
    if inflater is not None and not inflater.eof:  # output was never cut short here, so nothing is pending
        raise zlib.error("incomplete or truncated stream")
    return bytes(out)


def _size_text(size: int) -> str:
    return f"{size // 2**20} MiB" if size >= 2**20 and size % 2**20 == 0 else f"{size} bytes"


def maybe_decompress(raw: bytes, limit: int | None = None) -> bytes:
    """Inflate ``raw`` when it starts like gzip or zlib; otherwise return it unchanged.

    Gzip that fails to inflate, or anything inflating beyond ``limit`` (``MAX_INFLATED_BYTES``), raises
    ``MalformedInput``; a zlib-looking header that fails is assumed to be plain text that happens
    to start like one (``x^`` does).
    """
    if raw[:2] == _GZIP_MAGIC:
        return decompress(raw, limit)
    if len(raw) >= 2 and raw[0] & 0x0F == 8 and (raw[0] << 8 | raw[1]) % 31 == 0:
        _check_compressed_size(len(raw))
        try:
            return inflate_chunks((raw,), zlib.MAX_WBITS, limit)
        except zlib.error:
            return raw
    return raw


def decode_awslogs(data: str) -> dict[str, Any]:
    """Decode ``awslogs.data`` (base64 of gzip, gzip with FNAME, or zlib) into its JSON object."""
    raw = b64decode(data)
    if not raw:
        raise MalformedInput("awslogs.data is empty")
    text = raw if raw.lstrip()[:1] in (b"{", b"[") else decompress(raw)
    decoded = load_json(text)
    if not isinstance(decoded, dict):
        raise MalformedInput(f"awslogs.data decodes to a JSON {type(decoded).__name__}, expected an object")
    return decoded


def decode_kinesis_data(data: str) -> bytes:
    """Base64-decode a Kinesis record's ``data`` and inflate it when compressed."""
    return maybe_decompress(b64decode(data))


# --- recognising ------------------------------------------------------------------------------


def classify(obj: Any) -> str:
    """Name the container or record shape of a decoded JSON value (one of this module's constants)."""
    if not isinstance(obj, dict):
        return UNKNOWN
    source = obj.get("eventSource")
    if isinstance(source, str) and source.endswith(".amazonaws.com") and "detail-type" not in obj:
        return CLOUDTRAIL_RECORD  # fast path for the common case; containers say "aws:sqs", "aws:s3", ...
    for predicate, shape in _CLASSIFIERS:
        if predicate(obj):
            return shape
    return UNKNOWN


def is_awslogs_event(obj: Any) -> bool:
    return isinstance(obj, dict) and isinstance(obj.get("awslogs"), dict)


def is_logs_data(obj: Any) -> bool:
    """Decoded CloudWatch Logs payload (``messageType`` DATA_MESSAGE/CONTROL_MESSAGE, ``logEvents``)."""
    if not isinstance(obj, dict):
        return False
    return obj.get("messageType") in (DATA_MESSAGE, CONTROL_MESSAGE) or (
        "logEvents" in obj and ("logGroup" in obj or "owner" in obj))


def is_records_batch(obj: Any) -> bool:
    return isinstance(obj, dict) and isinstance(obj.get("Records"), list)


def is_sns_lambda_event(obj: Any) -> bool:
    """A Lambda SNS event: ``Records[]`` whose entries carry ``Sns``."""
    return is_records_batch(obj) and any(is_sns_record(r) for r in obj["Records"])


def is_sns_record(obj: Any) -> bool:
    return isinstance(obj, dict) and ("Sns" in obj or _event_source(obj) == "aws:sns")


def is_sqs_record(obj: Any) -> bool:
    return isinstance(obj, dict) and _event_source(obj) == "aws:sqs"


def is_kinesis_record(obj: Any) -> bool:
    return isinstance(obj, dict) and ("kinesis" in obj or _event_source(obj) == "aws:kinesis")


def is_s3_record(obj: Any) -> bool:
    return isinstance(obj, dict) and _event_source(obj) == "aws:s3"


def _event_source(record: dict[str, Any]) -> Any:
    return record.get("EventSource", record.get("eventSource"))


def is_sns_envelope(obj: Any) -> bool:
    """A bare SNS message (HTTP/e-mail delivery, SQS body): ``Type: Notification`` and ``Message``."""
    if not isinstance(obj, dict) or "Message" not in obj:
        return False
    kind = obj.get("Type")
    return (isinstance(kind, str) and kind in _SNS_TYPES) or "TopicArn" in obj or "MessageId" in obj


def is_eventbridge(obj: Any) -> bool:
    return isinstance(obj, dict) and "detail-type" in obj and "detail" in obj


def is_config_rule_event(obj: Any) -> bool:
    return isinstance(obj, dict) and "invokingEvent" in obj


def is_lookup_response(obj: Any) -> bool:
    return isinstance(obj, dict) and isinstance(obj.get("Events"), list)


def is_lookup_event(obj: Any) -> bool:
    return isinstance(obj, dict) and ("CloudTrailEvent" in obj or ("EventId" in obj and "EventName" in obj))


def is_config_notification(obj: Any) -> bool:
    if not isinstance(obj, dict):
        return False
    if isinstance(obj.get("messageType"), str) or isinstance(obj.get("MessageType"), str):
        return True
    return any(key in obj for key in _CONFIG_ITEM_KEYS)


def is_configuration_item(obj: Any) -> bool:
    """A bare configuration item (history/API spelling or notification spelling)."""
    return isinstance(obj, dict) and "resourceType" in obj and any(key in obj for key in _CI_MARKERS)


def is_cloudtrail_record(obj: Any) -> bool:
    """A CloudTrail record: ``eventName``/``eventSource``, or at least two other record keys."""
    if not isinstance(obj, dict):
        return False
    if "eventName" in obj or "eventSource" in obj:
        return True
    return sum(1 for key in _TRAIL_KEYS if key in obj) >= 2


_CLASSIFIERS = (
    (is_awslogs_event, AWSLOGS),
    (is_logs_data, LOGS_DATA),
    (is_records_batch, RECORDS),
    (is_eventbridge, EVENTBRIDGE),
    (is_sns_record, SNS_RECORD),
    (is_sqs_record, SQS_RECORD),
    (is_kinesis_record, KINESIS_RECORD),
    (is_s3_record, S3_RECORD),
    (is_sns_envelope, SNS_ENVELOPE),
    (is_config_rule_event, CONFIG_RULE_EVENT),
    (is_lookup_response, LOOKUP_RESPONSE),
    (is_lookup_event, LOOKUP_EVENT),
    (is_config_notification, CONFIG_NOTIFICATION),
    (is_configuration_item, CONFIGURATION_ITEM),
    (is_cloudtrail_record, CLOUDTRAIL_RECORD),
)


# --- opening ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SnsMeta:
    """What an SNS delivery says about itself; ``message_id`` identifies redeliveries."""

    message_id: str | None = None
    topic_arn: str | None = None
    subject: str | None = None
    timestamp: str | None = None
    type: str | None = None
    subscription_arn: str | None = None


def sns_meta(envelope: dict[str, Any], subscription_arn: Any = None) -> SnsMeta:
    """Metadata of a bare SNS envelope (or the ``Sns`` object of a Lambda record)."""
    return SnsMeta(
        message_id=text_of(envelope.get("MessageId")),
        topic_arn=text_of(envelope.get("TopicArn")),
        subject=text_of(envelope.get("Subject")),
        timestamp=text_of(envelope.get("Timestamp")),
        type=text_of(envelope.get("Type")),
        subscription_arn=text_of(subscription_arn),
    )


def sns_messages(event: Any) -> list[tuple[SnsMeta, Any]]:
    """``(meta, Message)`` for each SNS delivery in a Lambda SNS event or a bare envelope.

    ``Message`` is returned as delivered: usually a JSON string, an object in some documentation
    samples, ``None`` when absent. Anything that is not SNS gives ``[]``.
    """
    if is_sns_envelope(event):
        return [(sns_meta(event), event.get("Message"))]
    if not is_records_batch(event):
        return []
    out = []
    for record in event["Records"]:
        if is_sns_record(record) and isinstance(record.get("Sns"), dict):
            sns = record["Sns"]
            out.append((sns_meta(sns, record.get("EventSubscriptionArn")), sns.get("Message")))
    return out


def eventbridge_parts(event: dict[str, Any]) -> tuple[str | None, Any]:
    """``(detail-type, detail)``; a JSON-string ``detail`` is decoded when it can be."""
    detail = event.get("detail")
    if isinstance(detail, str):
        try:
            detail = json.loads(detail)
        except ValueError:
            pass
    return text_of(event.get("detail-type")), detail


# --- tolerant field access (shared by the parsers) --------------------------------------------


def text_of(value: Any) -> str | None:
    """A non-empty string as is; an int (ids written as numbers) as text; anything else ``None``.

    Lone surrogates (``"\\ud800"`` in JSON decodes to one) become ``?``: every id and name must be
    encodable as UTF-8 for hashing, S3 keys, DynamoDB and Slack.
    """
    if isinstance(value, str):
        if value.isascii():
            return value or None
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-8", "replace").decode("utf-8")
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def as_mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
