"""CloudTrail ``LookupEvents``: paginated, throttle-aware, paced to 2 calls/s per account and region.

Another account's history is read with a role assumed in it (``settings.lookup_role``, FORMAT.md
"Accounts"): its credentials and clients are cached until shortly before they expire, and an account
that cannot be reached (no role, access denied) raises ``AccountUnreachable`` with the reason, remembered
for a few minutes so that a group of its items costs one refusal, not one each.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chalicelib.core.errors import AccountUnreachable, RetryableError
from chalicelib.core.model import TrailEvent
from chalicelib.parsing.cloudtrail import parse_lookup_event

log = logging.getLogger(__name__)

MIN_INTERVAL = 0.5  # LookupEvents allows 2 requests per second per account and region; one account here
BACKOFF = (1.0, 2.0, 4.0)


class Throttled(RetryableError):
    """LookupEvents kept answering ThrottlingException; try again on a later tick."""


CREDENTIALS_MARGIN = 300.0  # renew an assumed role's credentials this long before they expire
UNREACHABLE_FOR = 300.0  # how long a refusal is remembered
SESSION_NAME = "mcd-lookup"


@dataclass(frozen=True)
class CrossAccount:
    """How to reach other accounts: the detector's own, the role to assume there, and the clients."""

    home_account: str
    role_name: Callable[[], str]  # settings.lookup_role, read when a role is assumed
    sts: Callable[[], Any]
    client_with: Callable[[str, dict[str, Any]], Any]  # (region, credentials) -> a CloudTrail client
    partition: str = "aws"


@dataclass
class LookupStats:
    calls: int = 0
    throttled: int = 0


def read_pages(call: Callable[[str, dict[str, Any]], dict[str, Any]], region: str, attribute: str, value: str,
               start: datetime | None, end: datetime | None, max_pages: int) -> tuple[list[TrailEvent], bool]:
    """Page through one ``LookupEvents`` query with ``call(region, request)``; ``True`` when the last page was read.

    Shared by the boto3 client and the in-memory fake, so both page and parse alike.
    """
    params: dict[str, Any] = {"LookupAttributes": [{"AttributeKey": attribute, "AttributeValue": value}],
                              "MaxResults": 50}
    if start is not None:
        params["StartTime"] = start
    if end is not None:
        params["EndTime"] = end
    events: list[TrailEvent] = []
    for _ in range(max_pages):
        page = call(region, params)
        for raw in page.get("Events", []):
            parsed = parse_lookup_event(raw, f"lookup:{region}")
            if isinstance(parsed, TrailEvent):
                events.append(parsed)
        token = page.get("NextToken")
        if not token:
            return events, True
        params["NextToken"] = token
    return events, False


class LookupClient:
    def __init__(self, client_for_region: Callable[[str], Any], clock: Callable[[], float],
                 sleep: Callable[[float], None], cross_account: CrossAccount | None = None) -> None:
        self._client_for_region = client_for_region
        self._clock = clock
        self._sleep = sleep
        self._cross = cross_account
        self._last_call: dict[tuple[str, str], float] = {}
        self._credentials: dict[str, tuple[float, dict[str, Any]]] = {}
        self._clients: dict[tuple[str, str], tuple[float, Any]] = {}
        self._refused: dict[str, tuple[float, str]] = {}
        self.stats = LookupStats()

    def lookup(self, region: str, attribute: str, value: str, start: datetime | None = None,
               end: datetime | None = None, max_pages: int = 20,
               account: str | None = None) -> tuple[list[TrailEvent], bool]:
        """All events for one lookup attribute in a window, in ``account``'s history (default: the detector's);
        the flag says whether every page was read."""
        return read_pages(lambda r, params: self._call(r, params, account or ""), region, attribute, value,
                          start, end, max_pages)

    def _client(self, region: str, account: str) -> Any:
        cross = self._cross
        # Without a known home account (chalice local, tests with their own resources) there is one account.
        if cross is None or not cross.home_account or not account or account == cross.home_account:
            return self._client_for_region(region)
        found = self._clients.get((account, region))
        if found is not None and found[0] - CREDENTIALS_MARGIN > self._clock():
            return found[1]
        expires, credentials = self._assumed(account)
        client = cross.client_with(region, credentials)
        self._clients[(account, region)] = (expires, client)
        return client

    def _assumed(self, account: str) -> tuple[float, dict[str, Any]]:
        """The credentials of the lookup role in ``account``, assumed again shortly before they expire."""
        from botocore.exceptions import BotoCoreError, ClientError

        assert self._cross is not None
        now = self._clock()
        refused = self._refused.get(account)
        if refused is not None and refused[0] > now:
            raise AccountUnreachable(account, refused[1])
        cached = self._credentials.get(account)
        if cached is not None and cached[0] - CREDENTIALS_MARGIN > now:
            return cached
        role = f"arn:{self._cross.partition}:iam::{account}:role/{self._cross.role_name()}"
        try:
            answer = self._cross.sts().assume_role(RoleArn=role, RoleSessionName=SESSION_NAME)["Credentials"]
        except (ClientError, BotoCoreError) as error:
            code = error.response.get("Error", {}).get("Code", "") if isinstance(error, ClientError) else ""
            reason = f"assuming {role} failed ({code or type(error).__name__})"
            self._refused[account] = (now + UNREACHABLE_FOR, reason)
            raise AccountUnreachable(account, reason) from error
        expiration = answer.get("Expiration")
        expires = expiration.timestamp() if isinstance(expiration, datetime) else now + 900
        self._credentials[account] = (expires, answer)
        return expires, answer

    def _call(self, region: str, params: dict[str, Any], account: str = "") -> dict[str, Any]:
        from botocore.exceptions import ClientError

        client = self._client(region, account)
        for attempt, backoff in enumerate((*BACKOFF, None)):
            self._pace((account, region))
            self.stats.calls += 1
            try:
                return client.lookup_events(**params)
            except ClientError as error:
                code = error.response.get("Error", {}).get("Code", "")
                if code not in ("ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded"):
                    raise
                self.stats.throttled += 1
                if backoff is None:
                    where = f"{region} of account {account}" if account else region
                    raise Throttled(f"LookupEvents throttled {attempt + 1} times in {where}") from error
                log.info("LookupEvents throttled in %s; backing off %.1fs", region, backoff)
                self._sleep(backoff)
        raise AssertionError("unreachable")

    def _pace(self, key: tuple[str, str]) -> None:
        """At most 2 calls per second per account and region, the limit ``LookupEvents`` sets."""
        last = self._last_call.get(key)
        now = self._clock()
        if last is not None and now - last < MIN_INTERVAL:
            self._sleep(MIN_INTERVAL - (now - last))
            now = self._clock()
        self._last_call[key] = now
