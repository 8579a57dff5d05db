"""Post to Slack through the official ``slack_sdk``: incoming webhooks, ``chat.postMessage``, ``chat.update``.

Every call has a timeout (``TIMEOUT_SECONDS``) and is tried once: the SDK's own retry handlers are
off, because the sender retries through its queue (with backoff, pacing and a once-only marker).
Results are classified, never raised: ``ok``, ``retry`` or ``permanent``.

* ``retry`` with ``unavailable`` set: Slack could not be reached or was not working (5xx, 408,
  timeouts, refused connections, ``internal_error``-style answers) or rate limited us (429, with its
  Retry-After). The sender keeps such alerts for as long as it takes.
* ``retry`` without ``unavailable``: Slack answered with an error this module does not know; the
  sender tries a few more times (``delivery.MAX_ATTEMPTS``) before keeping the alert in S3.
* ``permanent``: a revoked webhook, a bad token, an unknown channel, a payload Slack refuses, or a URL
  this module will not call. ``Delivery.whole_destination`` marks a refusal of the destination itself,
  which every other message to it would get too.

Details never include the URL or token, and the SDK's logging is switched off (at DEBUG it logs the
webhook URL and the ``Authorization`` header).

Only Slack's own hosts are called: webhooks under ``https://hooks.slack.com/`` (GovSlack:
``https://hooks.slack-gov.com/``), and the Web API at ``https://slack.com/api/`` (GovSlack:
``https://slack-gov.com/api/``). The environment variable ``MCD_SLACK_API_URL`` may name one of
those API URLs. On the ``local`` stage only (``local_stage()``), a loopback URL (``127.0.0.1``,
``localhost``, ``::1``, http or https) is accepted as well: the local Slack stand-in of the replay,
the demo and the tests. Any other URL is a permanent refusal of the destination.
"""

from __future__ import annotations

import logging
import math
import os
from typing import Any
from urllib.parse import urlsplit

from chalicelib.adapters.secrets import Secret
from chalicelib.ports import Delivery

TIMEOUT_SECONDS: float = 5
DEFAULT_API_URL = "https://slack.com/api/"
API_URL_VARIABLE = "MCD_SLACK_API_URL"
STAGE_VARIABLE = "MCD_STAGE"
LOCAL_STAGE = "local"
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
# Slack's hosts: commercial Slack and GovSlack.
WEBHOOK_HOSTS = ("hooks.slack.com", "hooks.slack-gov.com")
API_HOSTS = ("slack.com", "slack-gov.com")

# Webhook answers that refuse the destination itself (every message would get the same).
DESTINATION_WEBHOOK_BODIES = ("no_service", "no_team", "team_disabled", "invalid_token", "channel_not_found",
                              "channel_is_archived", "action_prohibited", "no_active_hooks",
                              "posting_to_general_channel_denied", "invalid_auth", "token_revoked",
                              "account_inactive", "user_not_found")
# Web API error codes that refuse the token or channel (every message would get the same).
DESTINATION_API_ERRORS = ("invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired",
                          "channel_not_found", "is_archived", "not_in_channel", "missing_scope", "invalid_token",
                          "restricted_action", "no_permission", "team_access_not_granted", "ekm_access_denied")
# Web API error codes that refuse this one message.
MESSAGE_API_ERRORS = ("invalid_blocks", "invalid_blocks_format", "invalid_arguments", "msg_too_long", "no_text",
                      "too_many_attachments", "invalid_attachments", "message_not_found", "cant_update_message",
                      "edit_window_closed", "invalid_ts", "msg_blocks_too_long")
PERMANENT_API_ERRORS = (*DESTINATION_API_ERRORS, *MESSAGE_API_ERRORS)
# Web API error codes that mean Slack is not working right now (worth waiting for, however long).
UNAVAILABLE_API_ERRORS = ("internal_error", "fatal_error", "service_unavailable", "request_timeout",
                          "ratelimited", "rate_limited")

# A logger outside the logging tree, disabled: what the SDK logs reaches no handler.
_SDK_LOG = logging.Logger("mcd.slack.sdk", level=logging.CRITICAL + 1)
_SDK_LOG.disabled = True


class SlackConfigurationError(ValueError):
    """A URL that must not be used (the message never names a secret)."""


def local_stage() -> bool:
    """Whether this process runs the ``local`` stage, the only one that may call a loopback Slack stand-in.

    ``MCD_STAGE`` decides when it is set (only ``local`` is local). Unset, a deployed Lambda function
    (``AWS_LAMBDA_FUNCTION_NAME`` is set by the Lambda runtime) is never local, and any other process
    (the replay, the demo, ``chalice local``, the tests) is.
    """
    stage = os.environ.get(STAGE_VARIABLE, "").strip().lower()
    if stage:
        return stage == LOCAL_STAGE
    return not os.environ.get("AWS_LAMBDA_FUNCTION_NAME")


def api_base_url() -> str:
    """The Web API base URL: ``MCD_SLACK_API_URL`` when set (validated), else Slack's, ending in ``/``."""
    raw = os.environ.get(API_URL_VARIABLE, "").strip()
    if not raw:
        return DEFAULT_API_URL
    if not usable_api_url(raw):
        raise SlackConfigurationError(
            f"{API_URL_VARIABLE} must be https://slack.com/api/ or https://slack-gov.com/api/ "
            "(a loopback stand-in only on the local stage)")
    return raw if raw.endswith("/") else raw + "/"


def usable_webhook_url(url: str) -> bool:
    """An incoming-webhook URL on Slack's webhook host (or, on the local stage only, on loopback)."""
    return _allowed(url, WEBHOOK_HOSTS, "/")


def usable_api_url(url: str) -> bool:
    """A Web API base URL: ``https://slack.com/api/`` (GovSlack too), or loopback on the local stage only."""
    return isinstance(url, str) and _allowed(url if url.endswith("/") else url + "/", API_HOSTS, "/api/")


def _allowed(url: str, hosts: tuple[str, ...], path_prefix: str) -> bool:
    if not isinstance(url, str) or not url.isprintable() or any(c in url for c in " \\"):
        return False
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return False
    host = (parts.hostname or "").lower()
    if not host or parts.username is not None or parts.password is not None or parts.fragment:
        return False
    if host in LOCAL_HOSTS:
        return parts.scheme in ("http", "https") and local_stage()
    netloc_host = parts.netloc.lower()
    return (parts.scheme == "https" and host in hosts and port in (None, 443)
            and netloc_host in (host, f"{host}:443") and parts.path.startswith(path_prefix))


def post_webhook(url: Secret, payload: dict[str, Any]) -> Delivery:
    from slack_sdk.webhook import WebhookClient

    if not usable_webhook_url(url.reveal()):
        return Delivery("permanent", "refused to call the webhook: its secret does not hold a Slack incoming-webhook "
                        "URL (an https URL on Slack's webhook host)", code="bad_url", whole_destination=True)
    try:
        client = WebhookClient(url.reveal(), timeout=TIMEOUT_SECONDS, logger=_SDK_LOG, retry_handlers=[])
        response = client.send_dict(payload)
    except Exception as error:  # timeouts, refused connections, TLS: all worth another try
        return Delivery("retry", f"webhook request failed: {type(error).__name__}", unavailable=True)
    return _classify_webhook(response.status_code, response.body or "", response.headers or {})


def post_bot(token: Secret, channel: str, payload: dict[str, Any], update_ts: str | None = None,
             base_url: str | None = None) -> Delivery:
    """``chat.postMessage`` to ``channel``, or ``chat.update`` of the message ``update_ts`` there.

    ``base_url`` defaults to ``api_base_url()``. For an update, ``channel`` must be the channel id
    Slack returned with the original message.
    """
    from slack_sdk import WebClient
    from slack_sdk.errors import SlackApiError

    method = "chat.update" if update_ts else "chat.postMessage"
    try:
        base = base_url or api_base_url()
    except SlackConfigurationError as error:
        return Delivery("permanent", f"refused to call the Web API: {error}", code="bad_api_url",
                        whole_destination=True)
    if not usable_api_url(base):
        return Delivery("permanent", "refused to call the Web API: not Slack's API URL", code="bad_api_url",
                        whole_destination=True)
    try:
        client = WebClient(token=token.reveal(), base_url=base, timeout=TIMEOUT_SECONDS, logger=_SDK_LOG,
                           retry_handlers=[])
        if update_ts:
            body = {k: v for k, v in payload.items() if k not in ("unfurl_links", "unfurl_media")}
            response = client.chat_update(channel=channel, ts=update_ts, **body)
        else:
            response = client.chat_postMessage(channel=channel, **payload)
    except SlackApiError as error:
        resp = error.response
        data = resp.data if isinstance(resp.data, dict) else {}
        code = str(data.get("error") or "")[:80]
        if resp.status_code == 429 or code in ("ratelimited", "rate_limited"):
            return Delivery("retry", f"{method} rate limited (429)", _retry_after(resp.headers), code="ratelimited",
                            unavailable=True)
        if code in PERMANENT_API_ERRORS:
            return Delivery("permanent", f"{method} refused: {code}", code=code,
                            whole_destination=code in DESTINATION_API_ERRORS)
        if resp.status_code in (401, 403, 404, 410):
            return Delivery("permanent", f"{method} refused: HTTP {resp.status_code} {code}".strip(),
                            code=code or str(resp.status_code), whole_destination=True)
        unavailable = resp.status_code >= 500 or resp.status_code == 408 or code in UNAVAILABLE_API_ERRORS
        return Delivery("retry", f"{method} failed: HTTP {resp.status_code} {code}".strip(),
                        code=code or str(resp.status_code), unavailable=unavailable)
    except Exception as error:  # timeouts, refused connections, TLS: all worth another try
        return Delivery("retry", f"{method} request failed: {type(error).__name__}", unavailable=True)
    return Delivery("ok", ts=response.get("ts"), channel=response.get("channel"))


def _classify_webhook(status: int, body: str, headers: dict[str, Any]) -> Delivery:
    if 200 <= status < 300:
        return Delivery("ok")
    text = body.strip()[:80]
    code = text if text.replace("_", "").isalnum() else str(status)
    if status == 429:
        return Delivery("retry", "webhook rate limited (429)", _retry_after(headers), code="rate_limited",
                        unavailable=True)
    if status >= 500 or status == 408:
        return Delivery("retry", f"webhook answered {status}", code=str(status), unavailable=True)
    if status in (401, 403, 404, 410) or text in DESTINATION_WEBHOOK_BODIES:
        return Delivery("permanent", f"webhook answered {status} {text}".strip(), code=code, whole_destination=True)
    # Other 4xx (invalid_payload, invalid_blocks...) will not succeed when repeated.
    return Delivery("permanent", f"webhook answered {status} {text}".strip(), code=code)


def _retry_after(headers: Any) -> float:
    value = None
    if headers:
        for key, raw in dict(headers).items():
            if str(key).lower() == "retry-after":
                value = raw[0] if isinstance(raw, list) else raw
    try:
        seconds = float(value) if value is not None else 30.0
    except (TypeError, ValueError):
        return 30.0
    return min(max(1.0, seconds), 3600.0) if math.isfinite(seconds) else 30.0
