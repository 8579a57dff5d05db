"""The Slack stand-in: a real local HTTP server answering like webhooks and ``chat.*``, with scripted faults."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from mcd_tools.slack_standin import SlackStandIn

NOW = 1714564800.0  # 2024-05-01T12:00:00Z


@pytest.fixture
def standin() -> Iterator[SlackStandIn]:
    server = SlackStandIn(clock=lambda: NOW).start()
    try:
        yield server
    finally:
        server.stop()


def post(url: str, body: bytes, content_type: str = "application/json", timeout: float = 5) -> tuple[int, str, Any]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": content_type}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            return reply.status, reply.read().decode(), reply.headers
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(), error.headers


def test_a_webhook_post_is_answered_ok_and_recorded_at_the_clocks_time(standin: SlackStandIn) -> None:
    assert standin.webhook_url("ops").startswith("http://127.0.0.1:")
    status, body, _ = post(standin.webhook_url("ops"), json.dumps({"text": "hello"}).encode())
    assert (status, body) == (200, "ok")
    assert standin.messages == [{"at": "2024-05-01T12:00:00Z", "destination": "ops", "method": "webhook",
                                 "payload": {"text": "hello"}}]
    assert standin.requests == 1
    post(standin.webhook_url("ops"), b"not json")
    assert standin.messages[-1]["payload"] == {"unparsed": "not json"}


def test_chat_methods_answer_like_the_web_api(standin: SlackStandIn) -> None:
    status, body, _ = post(f"{standin.base_url}/api/chat.postMessage",
                           json.dumps({"channel": "C123", "text": "hi"}).encode())
    answer = json.loads(body)
    assert status == 200 and answer == {"ok": True, "channel": "C123", "ts": f"{NOW:.6f}"}
    _, body, _ = post(f"{standin.base_url}/api/chat.update", b"channel=C123&ts=1.5&text=edited",
                      "application/x-www-form-urlencoded")
    assert json.loads(body) == {"ok": True, "channel": "C123", "ts": "1.5"}, "an update keeps its message's ts"
    assert [(m["destination"], m["method"]) for m in standin.messages] == [
        ("bot:C123", "chat.postMessage"), ("bot:C123", "chat.update")]
    assert standin.messages[1]["payload"] == {"channel": "C123", "ts": "1.5", "text": "edited"}


def test_a_scripted_429_carries_retry_after_then_slack_answers_again(standin: SlackStandIn) -> None:
    url = standin.webhook_url("ops")
    standin.fail("/hooks/ops", 429, "rate_limited", {"Retry-After": "30"}, times=2)
    for _ in range(2):
        status, body, headers = post(url, b"{}")
        assert (status, body, headers["Retry-After"]) == (429, "rate_limited", "30")
    assert standin.messages == [], "a refused post is not a message"
    assert post(url, b"{}")[0] == 200 and len(standin.messages) == 1
    assert standin.requests == 3


def test_faults_are_per_path(standin: SlackStandIn) -> None:
    standin.fail("/hooks/broken", 500, "internal_error")
    assert post(standin.webhook_url("fine"), b"{}")[:2] == (200, "ok")
    assert post(standin.webhook_url("broken"), b"{}")[:2] == (500, "internal_error")
    standin.fail("/api/chat.postMessage", 200, json.dumps({"ok": False, "error": "channel_not_found"}))
    _, body, _ = post(f"{standin.base_url}/api/chat.postMessage", b'{"channel": "C9"}')
    assert json.loads(body) == {"ok": False, "error": "channel_not_found"}
    assert [m["destination"] for m in standin.messages] == ["fine"]


def test_a_scripted_delay_makes_the_answer_late(standin: SlackStandIn) -> None:
    """What the sender's timeout tests rely on (a caller that gives up first sees a timeout)."""
    standin.fail("/hooks/slow", 200, "ok", delay=0.2)
    started = time.perf_counter()
    assert post(standin.webhook_url("slow"), b"{}")[:2] == (200, "ok")
    assert time.perf_counter() - started >= 0.2
    assert standin.messages == [], "a scripted answer records nothing"


def test_an_unknown_path_is_not_found(standin: SlackStandIn) -> None:
    assert post(f"{standin.base_url}/services/T/B/x", b"{}")[:2] == (404, "no_service")
    assert standin.messages == []


def test_stop_closes_the_port() -> None:
    server = SlackStandIn().start()
    url = server.webhook_url("x")
    server.stop()
    with pytest.raises(urllib.error.URLError):
        post(url, b"{}", timeout=1)
