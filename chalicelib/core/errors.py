"""The exceptions mcd raises on purpose.

Each says what the caller should do about it: retry later, give up on this input, or fix the
deployment. Parsers never raise to their callers except ``MalformedInput`` where documented;
``chalicelib.parsing.events.parse_payload`` turns even that into an ``Unparseable`` item.
"""

from __future__ import annotations


class McdError(Exception):
    """Base of every exception mcd raises deliberately."""


class MalformedInput(McdError, ValueError):
    """The input cannot be read (bad JSON, base64 or compression); retrying will not help."""


class RetryableError(McdError):
    """A transient failure (throttling, timeout, an item not visible yet): try again later."""


class ConfigurationError(McdError):
    """The detector is deployed or configured wrongly (missing setting, bad trusted-principal pattern)."""


class AccountUnreachable(RuntimeError):
    """The detector cannot read ``account``'s CloudTrail history: its lookup role could not be assumed."""

    def __init__(self, account: str, reason: str) -> None:
        super().__init__(f"cannot read the CloudTrail history of account {account}: {reason}")
        self.account = account
        self.reason = reason
