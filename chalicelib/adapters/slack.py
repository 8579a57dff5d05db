"""Post to Slack through the official ``slack_sdk``: incoming webhooks or ``chat.postMessage``.

Every call has a timeout. Results are classified, never raised: ``ok``, ``retry`` (429 with its
Retry-After, 5xx, timeouts, connection errors) or ``permanent`` (revoked webhook, bad token, unknown
channel). Messages never include the URL or token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chalicelib.adapters.secrets import Secret

TIMEOUT_SECONDS = 5
PERMANENT_WEBHOOK_BODIES = ("no_service", "no_team", "team_disabled", "invalid_token", "channel_not_found",
                            "channel_is_archived", "action_prohibited", "no_active_hooks",
                            "posting_to_general_channel_denied")
PERMANENT_API_ERRORS = ("invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired",
                        "channel_not_found", "is_archived", "not_in_channel", "missing_scope", "invalid_token",
                        "restricted_action", "no_permission", "invalid_blocks", "invalid_arguments", "msg_too_long")


@dataclass(frozen=True)
class Delivery:
    status: str  # "ok", "retry" or "permanent"
    detail: str = ""
    retry_after: float | None = None
    ts: str | None = None
    channel: str | None = None


def post_webhook(url: Secret, payload: dict[str, Any]) -> Delivery:
    from slack_sdk.webhook import WebhookClient

    try:
        response = WebhookClient(url.reveal(), timeout=TIMEOUT_SECONDS).send_dict(payload)
    except Exception as error:  # timeouts, refused connections, TLS: all worth another try
        return Delivery("retry", f"webhook request failed: {type(error).__name__}")
    return _classify_webhook(response.status_code, response.body or "", response.headers or {})


def post_bot(token: Secret, channel: str, payload: dict[str, Any], update_ts: str | None = None) -> Delivery:
    from slack_sdk import WebClient
    from slack_sdk.errors import SlackApiError

    client = WebClient(token=token.reveal(), timeout=TIMEOUT_SECONDS)
    try:
        if update_ts:
            response = client.chat_update(channel=channel, ts=update_ts, **payload)
        else:
            response = client.chat_postMessage(channel=channel, **payload)
    except SlackApiError as error:
        resp = error.response
        code = (resp.data or {}).get("error", "") if isinstance(resp.data, dict) else ""
        if resp.status_code == 429 or code == "ratelimited":
            return Delivery("retry", "rate limited (429)", _retry_after(resp.headers))
        if code in PERMANENT_API_ERRORS or resp.status_code in (401, 403, 404):
            return Delivery("permanent", f"chat.postMessage refused: {code or resp.status_code}")
        return Delivery("retry", f"chat.postMessage failed: {code or resp.status_code}")
    except Exception as error:
        return Delivery("retry", f"chat.postMessage request failed: {type(error).__name__}")
    return Delivery("ok", ts=response.get("ts"), channel=response.get("channel"))


def _classify_webhook(status: int, body: str, headers: dict[str, Any]) -> Delivery:
    if 200 <= status < 300:
        return Delivery("ok")
    text = body.strip()[:80]
    if status == 429:
        return Delivery("retry", "rate limited (429)", _retry_after(headers))
    if status >= 500:
        return Delivery("retry", f"webhook answered {status}")
    if status in (403, 404, 410) or text in PERMANENT_WEBHOOK_BODIES:
        return Delivery("permanent", f"webhook answered {status} {text}".strip())
    # Other 4xx (invalid_payload, invalid_blocks...) will not succeed when repeated.
    return Delivery("permanent", f"webhook answered {status} {text}".strip())


def _retry_after(headers: Any) -> float:
    value = None
    if headers:
        for key, raw in dict(headers).items():
            if str(key).lower() == "retry-after":
                value = raw[0] if isinstance(raw, list) else raw
    try:
        return max(1.0, float(value)) if value is not None else 30.0
    except (TypeError, ValueError):
        return 30.0
