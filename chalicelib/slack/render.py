"""Slack rendering (Block Kit) of outcomes: the entry point. Pure functions, no I/O, no environment reads.

``render`` turns one alert outcome into a full message (``chalicelib.slack.alert``), or several (one
CloudTrail event that changed many items, a burst by one principal) into ONE digest
(``chalicelib.slack.digest``); operational alerts go to ``chalicelib.slack.operational``. The payload
works both for incoming webhooks and for ``chat.postMessage`` (``text`` fallback + ``blocks``).

Safety rules kept by every module of the room: event-sourced text reaches mrkdwn and plain_text only
through ``chalicelib.slack.text``; links are built only by ``chalicelib.slack.links``; sizes stay within
``LIMITS`` (below Slack's own), and ``check_limits`` reports any violation. How severe an alert is comes
from ``chalicelib.core.severity``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from chalicelib.core.outcomes import API_CALL, CONSOLE_SIGNIN, MANUAL_CHANGE, SUPPRESSED, UNATTRIBUTED_CHANGE, Outcome
from chalicelib.core.settings import ConsoleAccess
from chalicelib.slack import blocks
from chalicelib.slack.alert import render_alert
from chalicelib.slack.blocks import minimal_blocks
from chalicelib.slack.digest import render_digest
from chalicelib.slack.limits import LIMITS, check_limits
from chalicelib.slack.links import link_setup
from chalicelib.slack.operational import is_operational, render_operational
from chalicelib.slack.text import code

__all__ = ["LIMITS", "check_limits", "completed_note", "follow_up_note", "render", "with_note"]

_RENDERED_KINDS = frozenset({MANUAL_CHANGE, UNATTRIBUTED_CHANGE, CONSOLE_SIGNIN, API_CALL})


def _alerts(outcomes: Sequence[Outcome]) -> list[Outcome]:
    """The outcomes to show (suppressed ones skipped); ``ValueError`` for an unknown kind or none left."""
    alerts = [o for o in outcomes if o.kind != SUPPRESSED]
    unknown = sorted({str(o.kind) for o in alerts if not isinstance(o.kind, str) or o.kind not in _RENDERED_KINDS})
    if unknown:
        raise ValueError(f"cannot render outcome kind(s): {', '.join(map(repr, unknown))}")
    if not alerts:
        raise ValueError("no alert outcomes to render")
    return alerts


def render(outcomes: Sequence[Outcome], *, console_base: str | None = None,
           console_access: ConsoleAccess | None = None, home_account: str | None = None) -> dict[str, Any]:
    """Slack message payload (``text``, ``blocks``) for one alert, or one digest of several.

    Suppressed outcomes are skipped; an unknown kind, or nothing left to show, raises ``ValueError``.
    ``console_base`` (``https://host[/path]``) replaces the partition's console origin in every link,
    e.g. for a console proxy; by default links follow each outcome's partition and region.
    ``console_access`` (settings) opens each link in the account that holds what it shows, through
    switch-role or the AWS access portal; ``home_account`` is the detector's own (the archive bucket's).
    """
    setup = link_setup(console_base, console_access, home_account)
    if is_operational(outcomes):
        return render_operational(outcomes, console_base=setup)
    alerts = _alerts(outcomes)
    payload = render_alert(alerts[0], setup) if len(alerts) == 1 else render_digest(alerts, setup)
    payload["unfurl_links"] = False
    payload["unfurl_media"] = False
    if check_limits(payload):
        payload["blocks"] = minimal_blocks(payload)
    return payload


# --------------------------------------------------------------------------------------------
# Notes the sender adds to a rendered message (early alerts completed, follow-ups)


def with_note(payload: dict[str, Any], note: str) -> dict[str, Any]:
    """``payload`` with one more context line (``note`` is safe mrkdwn), or unchanged if it would not fit."""
    noted = {**payload, "blocks": [*payload.get("blocks", []), blocks.context(note)]}
    return noted if not check_limits(noted) else payload


def follow_up_note(event_ids: Sequence[str]) -> str:
    """A follow-up's reference to the earlier alert of the same call (webhooks can neither thread nor edit)."""
    ids = ", ".join(code(i, 80) for i in list(event_ids)[:3]) + (" …" if len(event_ids) > 3 else "")
    return (f":link: *Follow-up* to the alert posted earlier for the same call (CloudTrail event {ids}): "
            "AWS Config has recorded the change.")


def completed_note(clock_text: str) -> str:
    """The line an early alert gets when it is updated in place with its Config diff (``HH:MM:SS``)."""
    return f":white_check_mark: Completed with AWS Config's record of the change (updated {code(clock_text, 20)} UTC)"
