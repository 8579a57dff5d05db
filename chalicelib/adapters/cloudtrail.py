"""CloudTrail ``LookupEvents``: paginated, throttle-aware, paced to 2 calls/s per region.

The limit is per account and region; every call of this client uses the detector's own credentials (one
account), so pacing per region keeps each account-and-region pair within it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chalicelib.core.errors import RetryableError
from chalicelib.core.model import TrailEvent
from chalicelib.parsing.cloudtrail import parse_lookup_event

log = logging.getLogger(__name__)

MIN_INTERVAL = 0.5  # LookupEvents allows 2 requests per second per account and region; one account here
BACKOFF = (1.0, 2.0, 4.0)


class Throttled(RetryableError):
    """LookupEvents kept answering ThrottlingException; try again on a later tick."""


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
                 sleep: Callable[[float], None]) -> None:
        self._client_for_region = client_for_region
        self._clock = clock
        self._sleep = sleep
        self._last_call: dict[str, float] = {}
        self.stats = LookupStats()

    def lookup(self, region: str, attribute: str, value: str, start: datetime | None = None,
               end: datetime | None = None, max_pages: int = 20) -> tuple[list[TrailEvent], bool]:
        """All events for one lookup attribute in a window; the flag says whether every page was read."""
        return read_pages(self._call, region, attribute, value, start, end, max_pages)

    def _call(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        from botocore.exceptions import ClientError

        client = self._client_for_region(region)
        for attempt, backoff in enumerate((*BACKOFF, None)):
            self._pace(region)
            self.stats.calls += 1
            try:
                return client.lookup_events(**params)
            except ClientError as error:
                code = error.response.get("Error", {}).get("Code", "")
                if code not in ("ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded"):
                    raise
                self.stats.throttled += 1
                if backoff is None:
                    raise Throttled(f"LookupEvents throttled {attempt + 1} times in {region}") from error
                log.info("LookupEvents throttled in %s; backing off %.1fs", region, backoff)
                self._sleep(backoff)
        raise AssertionError("unreachable")

    def _pace(self, region: str) -> None:
        last = self._last_call.get(region)
        now = self._clock()
        if last is not None and now - last < MIN_INTERVAL:
            self._sleep(MIN_INTERVAL - (now - last))
            now = self._clock()
        self._last_call[region] = now
