"""``adapters.slack`` against the local Slack stand-in (a real HTTP server): every answer is classified as
``ok``, ``retry`` (unavailable or not) or ``permanent`` (this message or the whole destination)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from delivery_fixtures import reset_standin

from chalicelib.adapters import slack
from chalicelib.adapters.secrets import Secret
from mcd_tools.slack_standin import SlackStandIn

HOOK = "/hooks/alerts"
POST = "/api/chat.postMessage"
UPDATE = "/api/chat.update"
TOKEN = Secret("xoxb-1111-2222-abcdef")
PAYLOAD = {"text": "hello", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "hello"}}],
           "unfurl_links": False, "unfurl_media": False}


@pytest.fixture(scope="module")
def server() -> Iterator[SlackStandIn]:
    standin = SlackStandIn().start()
    standin._server.handle_error = lambda request, client_address: None  # type: ignore[method-assign]
    try:
        yield standin
    finally:
        standin.stop()


@pytest.fixture
def standin(server: SlackStandIn, monkeypatch: pytest.MonkeyPatch) -> Iterator[SlackStandIn]:
    reset_standin(server)
    monkeypatch.setenv(slack.API_URL_VARIABLE, f"{server.base_url}/api/")
    monkeypatch.delenv(slack.STAGE_VARIABLE, raising=False)
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    yield server
    reset_standin(server)


def webhook(standin: SlackStandIn) -> Secret:
    return Secret(standin.webhook_url("alerts"))


def test_a_webhook_post_is_ok_and_arrives(standin: SlackStandIn) -> None:
    assert slack.post_webhook(webhook(standin), PAYLOAD) == slack.Delivery("ok")
    [message] = standin.messages
    assert message["destination"] == "alerts" and message["payload"]["text"] == "hello"


@pytest.mark.parametrize(("status", "body", "expected"), [
    (429, "rate_limited", slack.Delivery("retry", "webhook rate limited (429)", 120.0, code="rate_limited",
                                         unavailable=True)),
    (500, "oops", slack.Delivery("retry", "webhook answered 500", code="500", unavailable=True)),
    (408, "", slack.Delivery("retry", "webhook answered 408", code="408", unavailable=True)),
    (404, "no_service", slack.Delivery("permanent", "webhook answered 404 no_service", code="no_service",
                                       whole_destination=True)),
    (403, "", slack.Delivery("permanent", "webhook answered 403", code="403", whole_destination=True)),
    (400, "invalid_blocks", slack.Delivery("permanent", "webhook answered 400 invalid_blocks",
                                           code="invalid_blocks")),
    (400, "channel_is_archived", slack.Delivery("permanent", "webhook answered 400 channel_is_archived",
                                                code="channel_is_archived", whole_destination=True)),
])
def test_webhook_answers_are_classified(standin: SlackStandIn, status: int, body: str,
                                        expected: slack.Delivery) -> None:
    standin.fail(HOOK, status, body, {"Retry-After": "120"} if status == 429 else {})
    assert slack.post_webhook(webhook(standin), PAYLOAD) == expected


@pytest.mark.parametrize(("header", "seconds"), [("120", 120.0), ("0", 1.0), ("99999", 3600.0), ("soon", 30.0),
                                                 ("nan", 30.0), (None, 30.0)])
def test_retry_after_is_bounded(standin: SlackStandIn, header: str | None, seconds: float) -> None:
    standin.fail(HOOK, 429, "rate_limited", {"Retry-After": header} if header is not None else {})
    assert slack.post_webhook(webhook(standin), PAYLOAD).retry_after == seconds


def test_a_timeout_is_retried_as_unavailable(standin: SlackStandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(slack, "TIMEOUT_SECONDS", 0.2)
    standin.fail(HOOK, 200, "ok", delay=1.0)
    answer = slack.post_webhook(webhook(standin), PAYLOAD)
    assert (answer.status, answer.unavailable) == ("retry", True)
    assert answer.detail.startswith("webhook request failed: ")


def test_a_refused_connection_is_retried_as_unavailable(standin: SlackStandIn) -> None:
    closed = SlackStandIn()  # bound, never served: closing frees the port
    url = closed.webhook_url("gone")
    closed._server.server_close()
    answer = slack.post_webhook(Secret(url), PAYLOAD)
    assert (answer.status, answer.unavailable) == ("retry", True)


def test_a_url_that_is_not_slacks_is_refused_without_a_call(standin: SlackStandIn) -> None:
    answer = slack.post_webhook(Secret("https://example.com/hooks/x"), PAYLOAD)
    assert (answer.status, answer.code, answer.whole_destination) == ("permanent", "bad_url", True)
    assert standin.requests == 0


def test_loopback_is_refused_outside_the_local_stage(standin: SlackStandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(slack.STAGE_VARIABLE, "prod")
    assert slack.post_webhook(webhook(standin), PAYLOAD).code == "bad_url"
    assert slack.post_bot(TOKEN, "C1", PAYLOAD).code == "bad_api_url"
    assert standin.requests == 0


def test_a_bot_post_returns_its_ts_and_channel_and_can_be_updated(standin: SlackStandIn) -> None:
    posted = slack.post_bot(TOKEN, "C0ALERTS", PAYLOAD)
    assert posted.status == "ok" and posted.channel == "C0ALERTS" and posted.ts
    updated = slack.post_bot(TOKEN, "C0ALERTS", {**PAYLOAD, "text": "more"}, update_ts=posted.ts)
    assert (updated.status, updated.ts) == ("ok", posted.ts)
    first, second = standin.messages
    assert (first["method"], second["method"]) == ("chat.postMessage", "chat.update")
    assert first["payload"]["unfurl_links"] is False
    assert "unfurl_links" not in second["payload"] and second["payload"]["ts"] == posted.ts


def api_error(code: str) -> str:
    return json.dumps({"ok": False, "error": code} if code else {"ok": False})


@pytest.mark.parametrize(("status", "code", "expected"), [
    (429, "ratelimited", ("retry", "ratelimited", False, True)),
    (200, "invalid_auth", ("permanent", "invalid_auth", True, False)),
    (200, "channel_not_found", ("permanent", "channel_not_found", True, False)),
    (200, "msg_too_long", ("permanent", "msg_too_long", False, False)),
    (200, "message_not_found", ("permanent", "message_not_found", False, False)),
    (200, "internal_error", ("retry", "internal_error", False, True)),
    (503, "", ("retry", "503", False, True)),
    (200, "something_new", ("retry", "something_new", False, False)),
    (410, "", ("permanent", "410", True, False)),
])
def test_web_api_answers_are_classified(standin: SlackStandIn, status: int, code: str,
                                        expected: tuple[str, str, bool, bool]) -> None:
    standin.fail(POST, status, api_error(code), {"Retry-After": "7"} if status == 429 else {})
    answer = slack.post_bot(TOKEN, "C1", PAYLOAD)
    assert (answer.status, answer.code, answer.whole_destination, answer.unavailable) == expected
    if status == 429:
        assert answer.retry_after == 7.0


def test_an_api_url_that_is_not_slacks_is_refused(standin: SlackStandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(slack.API_URL_VARIABLE, "https://evil.example/api/")
    answer = slack.post_bot(TOKEN, "C1", PAYLOAD)
    assert (answer.status, answer.code, answer.whole_destination) == ("permanent", "bad_api_url", True)
    assert slack.post_bot(TOKEN, "C1", PAYLOAD, base_url="https://evil.example/api/").code == "bad_api_url"
    assert standin.requests == 0


@pytest.mark.parametrize(("url", "usable"), [
    ("https://hooks.slack.com/services/T/B/X", True),
    ("https://hooks.slack-gov.com/services/T/B/X", True),
    ("https://hooks.slack.com:443/services/T/B/X", True),
    ("http://hooks.slack.com/services/T/B/X", False),
    ("https://hooks.slack.com.evil.example/services/T/B/X", False),
    ("https://user@hooks.slack.com/services/T/B/X", False),
    ("https://hooks.slack.com:8443/services/T/B/X", False),
    ("https://hooks.slack.com/services/T/B/X#frag", False),
    ("https://hooks.slack.com/services/T/B/X Y", False),
])
def test_usable_webhook_urls(url: str, usable: bool) -> None:
    assert slack.usable_webhook_url(url) is usable


def test_usable_api_urls() -> None:
    assert slack.usable_api_url("https://slack.com/api/")
    assert slack.usable_api_url("https://slack-gov.com/api")
    assert not slack.usable_api_url("https://slack.com/")
    assert not slack.usable_api_url("https://hooks.slack.com/api/")


def test_the_sdk_logs_nothing() -> None:
    assert slack._SDK_LOG.disabled and slack._SDK_LOG.level > 50
