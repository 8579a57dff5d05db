"""Headlines and fallback text of alerts (raw text; plain_text/fallback escaping happens at the edges)."""

from __future__ import annotations

from collections.abc import Callable

from chalicelib.core.outcomes import CONSOLE_SIGNIN, MANUAL_CHANGE, UNATTRIBUTED_CHANGE, Outcome
from chalicelib.core.rules import is_early
from chalicelib.core.text import clip, one_line
from chalicelib.slack.labels import resource_label, who
from chalicelib.slack.limits import LIMITS
from chalicelib.slack.text import esc


def error_text(outcome: Outcome, limit: int = 300) -> str | None:
    """``code: message`` of the first failed event (escaped mrkdwn), or ``None`` when every call succeeded."""
    for event in outcome.events:
        if event.error_code or event.error_message:
            message = f": {esc(event.error_message, limit)}" if event.error_message else ""
            return esc(event.error_code or "failed", 80) + message
    return None


def _manual_title(outcome: Outcome, name: str) -> str:
    verb = {"CREATE": "created", "DELETE": "deleted"}.get((outcome.change_type or "").upper(), "changed")
    return f"{name} {verb} {resource_label(outcome)} by hand"


def _unattributed_title(outcome: Outcome, _name: str) -> str:
    noun = {"CREATE": "creation of", "DELETE": "deletion of"}.get((outcome.change_type or "").upper(), "change to")
    return f"Unattributed {noun} {resource_label(outcome)} — no CloudTrail author found"


def _signin_title(outcome: Outcome, name: str) -> str:
    failed = bool(error_text(outcome))  # an error made only of invisible characters shows nothing
    if outcome.signin == "root" or outcome.by_root:
        return "Failed root console sign-in" if failed else "Root console sign-in"
    if outcome.signin == "failure" or failed:
        return f"Failed console sign-in by {name}"
    return f"{name} signed in to the console without MFA"


def _call_title(outcome: Outcome, name: str) -> str:
    call = clip(one_line((outcome.event_names or ("an API",))[0]), 60)
    error = next((e.error_code for e in outcome.events if e.error_code), None)
    if error:
        return f"{name} tried to call {call} ({clip(one_line(error), 30)})"
    return f"{name} called {call}"


def _early_title(outcome: Outcome, name: str) -> str:
    """``alice called AuthorizeSecurityGroupIngress on sg-1``: what is known before AWS Config records it."""
    known = outcome.resource_id or outcome.resource_name
    return _call_title(outcome, name) + (f" on {resource_label(outcome)}" if known else "")


_TITLES: dict[str, Callable[[Outcome, str], str]] = {
    MANUAL_CHANGE: _manual_title,
    UNATTRIBUTED_CHANGE: _unattributed_title,
    CONSOLE_SIGNIN: _signin_title,
}


def title(outcome: Outcome) -> str:
    """What happened, in one line: ``alice changed sg-1 (web) by hand``, ``Root console sign-in``, ..."""
    name = clip(one_line(who(outcome)), 50)
    if is_early(outcome):
        return _early_title(outcome, name)
    return _TITLES.get(outcome.kind, _call_title)(outcome, name)


def fallback(level: str, headline: str, outcome: Outcome | None = None) -> str:
    """The message's ``text`` (notifications, clients without blocks): ``[level] headline (account, region)``."""
    where = ""
    if outcome is not None and (outcome.account or outcome.region):
        where = f" (account {one_line(outcome.account or '?')}, {one_line(outcome.region or '?')})"
    text = f"[{level}] {one_line(headline)}{clip(where, 120)}"
    return esc(text, LIMITS["fallback_text"])
