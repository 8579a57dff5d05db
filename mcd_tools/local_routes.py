"""Routes for ``chalice local --stage local`` (registered only when ``MCD_LOCAL_ROUTES=1``).

Chalice local serves only HTTP routes, so these stand in for what AWS would do: deliver a
notification or event as SNS, EventBridge or CloudWatch Logs would, run one tick of the schedules,
show what waits in the queues and the state table, preview the Slack messages waiting to be sent, and
show what the Slack stand-in received. They call the same handler functions the real triggers call.

On the ``local`` stage (``MCD_LOCAL_AWS=embedded``) the first request starts the world they run in: an
embedded AWS with the stage's stack, CloudTrail from a file, the Slack stand-in and a ticker
(``local_world``). Elsewhere (the tests) they use whatever ``bootstrap`` holds.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import uuid
from typing import TYPE_CHECKING, Any

from chalice import Blueprint, ChaliceViewError, Response

if TYPE_CHECKING:
    from chalicelib.bootstrap import Deps
    from mcd_tools.local_world import LocalWorld

local = Blueprint(__name__)

QUEUES = ("dispatch_queue", "dispatch_dlq", "lookup_queue", "lookup_dlq", "slack_queue", "slack_dlq",
          "async_failed_queue")


def _world() -> LocalWorld | None:
    """The embedded world, started on the first request that needs it (``None`` off the local stage)."""
    from mcd_tools.local_world import LocalWorldError, ensure

    try:
        return ensure(os.environ)
    except LocalWorldError as error:
        raise ChaliceViewError(str(error)) from error


def _deps() -> Deps:
    from chalicelib import bootstrap

    _world()
    return bootstrap.deps()


def _body() -> Any:
    request = local.current_request
    try:
        return request.json_body if request.raw_body else {}
    except Exception:  # chalice raises BadRequestError for invalid JSON; say so plainly
        return None


def _bad(reason: str) -> Response:
    return Response(body={"error": reason}, status_code=400)


@local.route("/local/sns", methods=["POST"])
def deliver_sns() -> Any:
    """Body: an AWS Config notification (object or string), delivered as the SNS topic would."""
    from chalicelib.stages.ingest import ingest

    body = _body()
    if body is None:
        return _bad("body is not JSON")
    message = body if isinstance(body, str) else json.dumps(body)
    event = {"Records": [{"EventSource": "aws:sns", "Sns": {
        "Type": "Notification", "MessageId": str(uuid.uuid4()), "TopicArn": "arn:aws:sns:local:000000000000:local",
        "Subject": None, "Message": message, "MessageAttributes": {}}}]}
    return ingest(event, _deps())


@local.route("/local/eventbridge", methods=["POST"])
def deliver_eventbridge() -> Any:
    """Body: an EventBridge event (CloudTrail API call, console sign-in, or Config item change)."""
    from chalicelib.stages.direct import direct
    from chalicelib.stages.ingest import config_event_as_sns, ingest

    event = _body()
    if not isinstance(event, dict):
        return _bad("body must be an EventBridge event object")
    if event.get("detail-type") == "Config Configuration Item Change":
        return ingest(config_event_as_sns(event), _deps())
    return direct(event, _deps(), "eventbridge")


@local.route("/local/cloudwatch-logs", methods=["POST"])
def deliver_logs() -> Any:
    """Body: the decoded subscription payload (messageType, logGroup, logEvents[])."""
    from chalicelib.stages.direct import direct

    logs = _body()
    if not isinstance(logs, dict):
        return _bad("body must be the decoded CloudWatch Logs payload")
    data = base64.b64encode(gzip.compress(json.dumps(logs).encode())).decode()
    return direct({"awslogs": {"data": data}}, _deps(), "cloudwatch_logs")


@local.route("/local/tick", methods=["POST"])
def tick() -> dict[str, Any] | None:
    """Run each schedule once, in pipeline order (add ?dl_retry=1 for the dead-letter retry too)."""
    from mcd_tools.local_world import run_schedules

    params = local.current_request.query_params or {}
    return run_schedules(_deps(), dl_retry=params.get("dl_retry") == "1")


@local.route("/local/queues", methods=["GET"])
def queues() -> dict[str, Any]:
    """Approximate message counts of every queue (visible, in flight, delayed)."""
    deps = _deps()
    sqs = deps.clients.client("sqs")
    counts = {}
    for name in (q for q in QUEUES if getattr(deps.env, f"{q}_url")):  # resources made by hand may lack one
        attrs = sqs.get_queue_attributes(QueueUrl=getattr(deps.env, f"{name}_url"), AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed"])["Attributes"]
        counts[name] = {"visible": int(attrs["ApproximateNumberOfMessages"]),
                        "in_flight": int(attrs["ApproximateNumberOfMessagesNotVisible"]),
                        "delayed": int(attrs["ApproximateNumberOfMessagesDelayed"])}
    return counts


@local.route("/local/state", methods=["GET"])
def state() -> dict[str, Any]:
    """The state table's items (``?prefix=out#`` filters on the partition key)."""
    deps = _deps()
    prefix = (local.current_request.query_params or {}).get("prefix", "")
    items = deps.clients.client("dynamodb").scan(TableName=deps.env.state_table, Limit=500).get("Items", [])
    rows = [{k: next(iter(v.values())) for k, v in item.items()} for item in items]
    return {"items": sorted((r for r in rows if r.get("pk", "").startswith(prefix)),
                            key=lambda r: (r["pk"], r["sk"]))}


@local.route("/local/slack-preview", methods=["GET"])
def slack_preview() -> Response:
    """The alerts waiting in the Slack queue, rendered as Slack would show them (they stay queued)."""
    from chalicelib.core.outcomes import Outcome
    from chalicelib.slack.render import render

    deps = _deps()
    sqs = deps.clients.client("sqs")
    url = deps.env.slack_queue_url
    found = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0).get("Messages", [])
    messages = []
    for message in found:
        try:
            outcome = Outcome.from_json(json.loads(message["Body"])["outcome"])
        except (ValueError, KeyError, TypeError):
            continue
        messages.append({"at": outcome.at, "destination": "preview", "payload": render([outcome])})
    return _page(messages)


@local.route("/local/slack", methods=["GET"])
def slack_received() -> Response:
    """What the Slack stand-in received, oldest first, laid out as Slack would (``?format=json``: as posted)."""
    world = _world()
    if world is None:
        return Response(body={"error": "no Slack stand-in: the embedded AWS is off (MCD_LOCAL_AWS is not "
                                       "'embedded')"}, status_code=404)
    messages = world.slack_messages()
    if (local.current_request.query_params or {}).get("format") == "json":
        return Response(body={"messages": messages}, status_code=200)
    return _page(messages)


def _page(messages: list[dict[str, Any]]) -> Response:
    from mcd_tools.preview import render_preview_html

    return Response(body=render_preview_html(messages), status_code=200,
                    headers={"Content-Type": "text/html; charset=utf-8"})
