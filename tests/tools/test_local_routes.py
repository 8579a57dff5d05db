"""The ``chalice local`` routes on the app (``MCD_LOCAL_ROUTES=1``, as conftest sets), with ``MemoryDeps`` installed.

No moto (``MCD_LOCAL_AWS`` is unset: no embedded world starts). The blueprint is not registered on a second
app: a Chalice blueprint belongs to the last app it was registered on, which would take the routes away from
``app.app`` for the rest of the process.

The routes reading SQS and DynamoDB directly (queues, state, Slack preview) get a stand-in client answering
from the fakes; ``/local/slack`` reads a real Slack stand-in. ``tests/e2e/test_pipeline.py`` drives the same
routes through the real app on moto, ``tests/e2e/test_chalice_local.py`` through the real ``chalice local``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from chalice.test import Client
from memory_world import sg_item, sg_notification, slack_outcomes, world

from chalicelib import bootstrap
from chalicelib.core.outcomes import Outcome
from chalicelib.memory_deps import MemoryDeps
from mcd_tools.local_routes import QUEUES

JSON = {"Content-Type": "application/json"}
EVENTS = Path(__file__).resolve().parents[1] / "events"


class _FakesAsBoto3:
    """The three boto3 calls the inspection routes make, answered from ``MemoryDeps``' fakes."""

    def __init__(self, deps: MemoryDeps) -> None:
        self.deps = deps
        self.by_url = {getattr(deps.env, f"{name}_url"): name for name in QUEUES}

    def client(self, service: str, region: str | None = None) -> _FakesAsBoto3:
        return self

    def get_queue_attributes(self, QueueUrl: str, AttributeNames: list[str]) -> dict[str, Any]:
        depth = self.deps.queue(self.by_url[QueueUrl]).depth()
        return {"Attributes": {"ApproximateNumberOfMessages": str(depth["visible"]),
                               "ApproximateNumberOfMessagesNotVisible": str(depth["in_flight"]),
                               "ApproximateNumberOfMessagesDelayed": str(depth["delayed"])}}

    def receive_message(self, QueueUrl: str, MaxNumberOfMessages: int, VisibilityTimeout: int) -> dict[str, Any]:
        assert VisibilityTimeout == 0, "a preview leaves the alerts where they are"
        found = self.deps.queue(self.by_url[QueueUrl]).peek()[:MaxNumberOfMessages]
        return {"Messages": [{"Body": m.body} for m in found]}

    def scan(self, TableName: str, Limit: int) -> dict[str, Any]:
        assert TableName == self.deps.env.state_table
        return {"Items": [{k: {"S": v} for k, v in item.items()} for item in self.deps.state.items.values()]}


@pytest.fixture
def deps() -> Iterator[MemoryDeps]:
    memory = world()
    memory.clients = _FakesAsBoto3(memory)  # type: ignore[assignment]
    bootstrap.install(memory)
    try:
        yield memory
    finally:
        bootstrap.reset()


@pytest.fixture
def http(deps: MemoryDeps, tmp_path: Path) -> Iterator[Any]:
    import app

    assert any(path.startswith("/local/") for path in app.app.routes), "MCD_LOCAL_ROUTES=1 registers the routes"
    with Client(app.app, project_dir=str(tmp_path)) as client:  # no project config: no stage variables
        yield client.http


def answer(reply: Any) -> Any:
    return json.loads(reply.body)


def test_sns_delivers_a_notification_as_the_topic_would(deps: MemoryDeps, http: Any) -> None:
    reply = http.post("/local/sns", headers=JSON, body=sg_notification("sg-0abc"))
    assert reply.status_code == 200 and answer(reply) == {"queued": 1, "dead_lettered": 0}
    [queued] = deps.queue("dispatch_queue").peek()
    assert "sg-0abc" in queued.body
    as_text = http.post("/local/sns", headers=JSON, body=json.dumps(sg_notification("sg-0def")))
    assert answer(as_text) == {"queued": 1, "dead_lettered": 0}, "a notification given as a JSON string"


@pytest.mark.parametrize(("path", "body", "error"), [
    ("/local/sns", "{not json", "body is not JSON"),
    ("/local/eventbridge", '"not an event"', "body must be an EventBridge event object"),
    ("/local/eventbridge", "{not json", "body must be an EventBridge event object"),
    ("/local/cloudwatch-logs", "[1, 2]", "body must be the decoded CloudWatch Logs payload"),
])
def test_bodies_that_cannot_be_delivered_are_refused(deps: MemoryDeps, http: Any, path: str, body: str,
                                                     error: str) -> None:
    reply = http.post(path, headers=JSON, body=body)
    assert (reply.status_code, answer(reply)) == (400, {"error": error})
    assert all(len(deps.queue(name)) == 0 for name in QUEUES)


def test_eventbridge_routes_a_config_change_to_ingest(deps: MemoryDeps, http: Any) -> None:
    event = {"version": "0", "id": "e-1", "detail-type": "Config Configuration Item Change", "source": "aws.config",
             "account": "123456789012", "time": "2024-05-01T12:00:40Z", "region": "us-east-1", "resources": [],
             "detail": sg_item("sg-0eb")}
    reply = http.post("/local/eventbridge", headers=JSON, body=json.dumps(event))
    assert answer(reply)["queued"] == 1 and len(deps.queue("dispatch_queue")) == 1


def test_eventbridge_and_cloudwatch_logs_deliver_one_call_once(deps: MemoryDeps, http: Any) -> None:
    call = json.loads((EVENTS / "eventbridge_api_call_sso_authorize_sg.json").read_text())
    assert answer(http.post("/local/eventbridge", headers=JSON, body=json.dumps(call)))["alerts"] == 1
    logs = {"messageType": "DATA_MESSAGE", "owner": "1", "logGroup": "trail", "logStream": "s",
            "subscriptionFilters": ["mcd"], "logEvents": [{"id": "1", "timestamp": 0,
                                                          "message": json.dumps(call["detail"])}]}
    reply = http.post("/local/cloudwatch-logs", headers=JSON, body=json.dumps(logs))
    counts = answer(reply)
    assert counts.pop("indexed") >= 1, "the call's index rows again: keyed by call, so written over"
    assert counts == {"records": 1, "alerts": 0, "duplicates": 1, "unparseable": 0}
    assert [o["kind"] for o in slack_outcomes(deps)] == ["api_call"]


def test_tick_runs_each_schedule_once_and_the_dead_letter_retry_on_request(deps: MemoryDeps, http: Any) -> None:
    http.post("/local/sns", headers=JSON, body=sg_notification("sg-0abc"))
    first = answer(http.post("/local/tick"))
    assert list(first) == ["dispatch", "lookup", "slack_send"] and first["dispatch"]["changes"] == 1
    assert "dl_retry" in answer(http.post("/local/tick?dl_retry=1"))


def test_queues_state_and_preview_show_what_waits(deps: MemoryDeps, http: Any) -> None:
    deps.queue("dispatch_queue").send("a")
    deps.queue("dispatch_queue").send("b", delay_seconds=60)
    deps.queue("lookup_queue").send("c")
    deps.queue("lookup_queue").receive()
    counts = answer(http.get("/local/queues"))
    assert set(counts) == set(QUEUES)
    assert counts["dispatch_queue"] == {"visible": 1, "in_flight": 0, "delayed": 1}
    assert counts["lookup_queue"] == {"visible": 0, "in_flight": 1, "delayed": 0}

    deps.state.put("out#ci:2", "outcome", deps.clock(), kind="manual_change")
    deps.state.put("out#ci:1", "outcome", deps.clock(), kind="suppressed")
    deps.state.put("ci#k", "dispatched", deps.clock())
    rows = answer(http.get("/local/state?prefix=out%23"))["items"]
    assert [(r["pk"], r["kind"]) for r in rows] == [("out#ci:1", "suppressed"), ("out#ci:2", "manual_change")]
    assert len(answer(http.get("/local/state"))["items"]) == 3

    alert = Outcome(kind="manual_change", outcome_id="ci:x", at="2024-05-01T12:00:00Z", account="123456789012",
                    region="us-east-1", resource_type="AWS::EC2::SecurityGroup", resource_id="sg-0prev",
                    resource_name="<!channel> evil")
    deps.queue("slack_queue").send(json.dumps({"outcome": alert.to_json()}))
    deps.queue("slack_queue").send("not an alert")
    page = http.get("/local/slack-preview")
    text = page.body.decode() if isinstance(page.body, bytes) else page.body
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "sg-0prev" in text and "<!channel>" not in text
    assert len(deps.queue("slack_queue")) == 2, "previewed alerts stay queued"


def test_slack_shows_what_the_stand_in_received_and_is_absent_without_one(
        http: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import urllib.request
    from contextlib import ExitStack

    from mcd_tools import local_world
    from mcd_tools.fake_cloudtrail import FakeCloudTrail
    from mcd_tools.slack_standin import SlackStandIn

    missing = http.get("/local/slack")
    assert missing.status_code == 404 and "MCD_LOCAL_AWS" in answer(missing)["error"]

    standin = SlackStandIn().start()
    try:
        payload = {"text": "alice changed sg-1 by hand", "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": "alice changed <sg-1> by hand"}}]}
        post = urllib.request.Request(standin.webhook_url("default"), data=json.dumps(payload).encode(),
                                      headers={"Content-Type": "application/json"})
        assert urllib.request.urlopen(post, timeout=5).read() == b"ok"
        running = local_world.LocalWorld("http://127.0.0.1:1", standin, FakeCloudTrail([], float), Path("events.json"),
                                         None, ExitStack())
        monkeypatch.setenv("MCD_LOCAL_AWS", "embedded")
        monkeypatch.setattr(local_world, "_world", running)  # as if the first request had started it
        [received] = answer(http.get("/local/slack?format=json"))["messages"]
        page = http.get("/local/slack")
    finally:
        standin.stop()
    assert (received["destination"], received["method"], received["payload"]) == ("default", "webhook", payload)
    text = page.body.decode() if isinstance(page.body, bytes) else page.body
    assert page.headers["Content-Type"].startswith("text/html") and "alice changed &lt;sg-1&gt; by hand" in text


def test_a_world_that_cannot_start_answers_every_route_with_the_reason(
        deps: MemoryDeps, http: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MCD_LOCAL_AWS", "embedded")
    monkeypatch.setenv("MCD_LOCAL_CLOUDTRAIL", str(tmp_path / "missing.json"))
    for reply in (http.get("/local/queues"), http.post("/local/tick"),
                  http.post("/local/sns", headers=JSON, body=sg_notification("sg-0abc"))):
        assert reply.status_code == 500 and "cannot read the CloudTrail events file" in answer(reply)["Message"]
    assert len(deps.queue("dispatch_queue")) == 0
