"""Routes for ``chalice local --stage local`` (registered only when ``MCD_LOCAL_ROUTES=1``).

Chalice local serves only HTTP routes, so these stand in for what AWS would do: deliver a
notification or event as SNS, EventBridge or CloudWatch Logs would, run one tick of the schedules,
show what waits in the queues and the state table, and preview the Slack messages waiting to be sent.
They call the same handler functions the real triggers call.
"""

from __future__ import annotations

import base64
import gzip
import json
import uuid
from typing import Any

from chalice import Blueprint, Response

local = Blueprint(__name__)

QUEUES = ("dispatch_queue", "dispatch_dlq", "lookup_queue", "lookup_dlq", "slack_queue", "slack_dlq")


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
    from chalicelib import bootstrap
    from chalicelib.stages.ingest import ingest

    body = _body()
    if body is None:
        return _bad("body is not JSON")
    message = body if isinstance(body, str) else json.dumps(body)
    event = {"Records": [{"EventSource": "aws:sns", "Sns": {
        "Type": "Notification", "MessageId": str(uuid.uuid4()), "TopicArn": "arn:aws:sns:local:000000000000:local",
        "Subject": None, "Message": message, "MessageAttributes": {}}}]}
    return ingest(event, bootstrap.deps())


@local.route("/local/eventbridge", methods=["POST"])
def deliver_eventbridge() -> Any:
    """Body: an EventBridge event (CloudTrail API call, console sign-in, or Config item change)."""
    from chalicelib import bootstrap
    from chalicelib.stages.direct import direct
    from chalicelib.stages.ingest import config_event_as_sns, ingest

    event = _body()
    if not isinstance(event, dict):
        return _bad("body must be an EventBridge event object")
    if event.get("detail-type") == "Config Configuration Item Change":
        return ingest(config_event_as_sns(event), bootstrap.deps())
    return direct(event, bootstrap.deps(), "eventbridge")


@local.route("/local/cloudwatch-logs", methods=["POST"])
def deliver_logs() -> Any:
    """Body: the decoded subscription payload (messageType, logGroup, logEvents[])."""
    from chalicelib import bootstrap
    from chalicelib.stages.direct import direct

    logs = _body()
    if not isinstance(logs, dict):
        return _bad("body must be the decoded CloudWatch Logs payload")
    data = base64.b64encode(gzip.compress(json.dumps(logs).encode())).decode()
    return direct({"awslogs": {"data": data}}, bootstrap.deps(), "cloudwatch_logs")


@local.route("/local/tick", methods=["POST"])
def tick() -> dict[str, Any]:
    """Run each schedule once, in pipeline order (add ?dl_retry=1 for the dead-letter retry too)."""
    from chalicelib import bootstrap
    from chalicelib.stages.dead_letters import dl_retry
    from chalicelib.stages.deliver import slack_send
    from chalicelib.stages.dispatch import dispatch
    from chalicelib.stages.lookup import lookup

    deps = bootstrap.deps()
    result = {"dispatch": dispatch(deps), "lookup": lookup(deps)}
    params = local.current_request.query_params or {}
    if params.get("dl_retry") == "1":
        result["dl_retry"] = dl_retry(deps)
    result["slack_send"] = slack_send(deps)
    return result


@local.route("/local/queues", methods=["GET"])
def queues() -> dict[str, Any]:
    """Approximate message counts of every queue (visible, in flight, delayed)."""
    from chalicelib import bootstrap

    deps = bootstrap.deps()
    sqs = deps.clients.client("sqs")
    counts = {}
    for name in QUEUES:
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
    from chalicelib import bootstrap

    deps = bootstrap.deps()
    prefix = (local.current_request.query_params or {}).get("prefix", "")
    items = deps.clients.client("dynamodb").scan(TableName=deps.env.state_table, Limit=500).get("Items", [])
    rows = [{k: next(iter(v.values())) for k, v in item.items()} for item in items]
    return {"items": sorted((r for r in rows if r.get("pk", "").startswith(prefix)),
                            key=lambda r: (r["pk"], r["sk"]))}


@local.route("/local/slack-preview", methods=["GET"])
def slack_preview() -> Response:
    """The alerts waiting in the Slack queue, rendered as Slack would show them (they stay queued)."""
    from chalicelib import bootstrap
    from chalicelib.core.outcomes import Outcome
    from chalicelib.slack.render import render
    from mcd_tools.preview import render_preview_html

    deps = bootstrap.deps()
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
    return Response(body=render_preview_html(messages), status_code=200,
                    headers={"Content-Type": "text/html; charset=utf-8"})
