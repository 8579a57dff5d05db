"""AWS Organizations: every account's name and OU path, read in few calls, cached in the state table.

``ListRoots``, then for each parent (the root, then each OU, depth first) ``ListAccountsForParent`` (the
accounts directly in it, with their names) and ``ListOrganizationalUnitsForParent`` (its child OUs), every
one paged: about two calls per OU, however many accounts. The result is kept as one state-table item
(``CACHE_PK``) for ``FRESH_SECONDS``, shared by every function and container, and held in the container.

Organizations answers only its management account and accounts it delegated read access to. A refusal
(``AccessDenied``) or an account outside any organisation is no error of the detector: it is logged once
with the reason (``organization_unreadable``) and cached as an empty directory for ``REFUSED_SECONDS``;
names then come from ``settings.account_aliases`` and OU scopes match nothing. Anything else that goes
wrong (throttling, an outage, a read longer than ``READ_SECONDS``) keeps the last copy read (or an empty
directory) for ``RETRY_SECONDS``; a refusal after a good read keeps that copy too, until its TTL: routing
with a day-old directory beats routing with none. ``directory`` never raises.
"""

from __future__ import annotations

import base64
import json
import logging
import zlib
from collections.abc import Callable, Iterator
from typing import Any

from chalicelib.core.logs import log_json
from chalicelib.core.organization import Directory, OrgAccount

log = logging.getLogger("mcd.organizations")

CACHE_PK, CACHE_SK = "org#directory", "directory"
FRESH_SECONDS = 6 * 3600  # a directory read is used this long (accounts and OUs change rarely)
REFUSED_SECONDS = 3600  # a refusal is believed this long before Organizations is asked again
RETRY_SECONDS = 300  # after any other failure
KEPT_DAYS = 2  # the cached item's TTL: a stale copy still serves while Organizations cannot be read
MAX_CACHED_CHARS = 350_000  # DynamoDB items stop at 400 KB; ~20,000 accounts fit compressed
MAX_PARENTS = 5_000  # the root and OUs visited at most (Organizations allows 2,000 OUs at most)
READ_SECONDS = 10.0  # a read that takes longer is given up (the caller may be a 30-second function)
MAX_PAGES = 1_000  # of one List call: a NextToken that never ends is given up too


class ReadTooLong(Exception):
    """The directory could not be read within ``READ_SECONDS`` (or one listing did not end)."""
REFUSALS = {
    "AWSOrganizationsNotInUseException": "this account is not in an AWS Organization",
    "AccessDeniedException": ("AWS Organizations refused to list the accounts: the detector's account must be "
                              "the management account or be delegated read access by the organisation's "
                              "resource-based delegation policy (organizations:ListRoots, "
                              "ListAccountsForParent, ListOrganizationalUnitsForParent), and its functions' "
                              "roles must allow them"),
}
REFUSALS["AccessDenied"] = REFUSALS["AccessDeniedException"]
REFUSED_ACTION = ("account names come from settings.account_aliases only, and routes or trusted principals "
                  "scoped to OUs match nothing")


class OrganizationReader:
    """The organisation's directory (``ports.OrganizationDirectory``), read through ``client()`` when needed."""

    def __init__(self, client: Callable[[], Any], state: Any, clock: Callable[[], float],
                 page_size: int | None = None) -> None:
        self._client = client
        self._state = state  # a ports.StateStore
        self._clock = clock
        self._page_size = page_size  # MaxResults of each List call (None: Organizations' own)
        self._held: tuple[float, Directory] | None = None  # (used until, directory) in this container
        self._deadline = float("inf")  # of the read under way
        self.calls = 0  # Organizations requests made by this reader

    def directory(self) -> Directory:
        now = self._clock()
        if self._held is not None and now < self._held[0]:
            return self._held[1]
        stored = self._stored()
        if stored is not None and now < _good_until(stored):
            return self._hold(stored, _good_until(stored))
        return self._read(now, stored)

    def _read(self, now: float, stored: Directory | None) -> Directory:
        try:
            directory = Directory(accounts=self._accounts(), fetched_at=now)
        except Exception as error:  # never raise: routing and trust then work without the organisation
            code = _error_code(error)
            if code not in REFUSALS:
                log_json(log, logging.WARNING, "organization_unreadable", code=code or type(error).__name__,
                         reason=str(error)[:300], action=f"the last copy read is used; tried again in "
                                                         f"{RETRY_SECONDS} s")
                kept = stored if stored is not None and not stored.problem else Directory(fetched_at=now)
                return self._hold(kept, now + RETRY_SECONDS)
            if stored is not None and stored.accounts and not stored.problem:
                log_json(log, logging.WARNING, "organization_unreadable", code=code, reason=REFUSALS[code],
                         action=f"the last copy read is used; asked again in {REFUSED_SECONDS // 60} minutes")
                return self._hold(stored, now + REFUSED_SECONDS)  # the copy stays cached, at most KEPT_DAYS
            directory = Directory(fetched_at=now, problem=REFUSALS[code])
            log_json(log, logging.WARNING, "organization_unreadable", code=code, reason=directory.problem,
                     action=f"{REFUSED_ACTION}; asked again in {REFUSED_SECONDS // 60} minutes")
        else:
            log_json(log, logging.INFO, "organization_read", accounts=len(directory.accounts), calls=self.calls)
        self._store(directory, now)
        return self._hold(directory, _good_until(directory))

    def _accounts(self) -> dict[str, OrgAccount]:
        client = self._client()
        self._deadline = self._clock() + READ_SECONDS
        found: dict[str, OrgAccount] = {}
        todo = [(root["Id"], (root["Id"],)) for root in self._pages(lambda **page: client.list_roots(**page), "Roots")]
        visited = 0
        while todo and visited < MAX_PARENTS:
            parent, path = todo.pop()
            visited += 1
            for account in self._accounts_in(client, parent):
                found[account["Id"]] = OrgAccount(account["Id"], str(account.get("Name") or ""), path)
            todo += [(unit["Id"], (*path, unit["Id"])) for unit in self._units_in(client, parent)]
        return found

    def _accounts_in(self, client: Any, parent: str) -> Iterator[dict[str, Any]]:
        return self._pages(lambda **page: client.list_accounts_for_parent(ParentId=parent, **page), "Accounts")

    def _units_in(self, client: Any, parent: str) -> Iterator[dict[str, Any]]:
        return self._pages(lambda **page: client.list_organizational_units_for_parent(ParentId=parent, **page),
                           "OrganizationalUnits")

    def _pages(self, call: Callable[..., dict[str, Any]], key: str) -> Iterator[dict[str, Any]]:
        token: str | None = None
        for _ in range(MAX_PAGES):
            if self._clock() > self._deadline:
                raise ReadTooLong(f"reading the organisation took over {READ_SECONDS:.0f} s ({self.calls} calls)")
            request: dict[str, Any] = {"MaxResults": self._page_size} if self._page_size else {}
            self.calls += 1
            page = call(**request, **({"NextToken": token} if token else {}))
            yield from page.get(key) or ()
            token = page.get("NextToken")
            if not token:
                return
        raise ReadTooLong(f"a listing of {key} did not end after {MAX_PAGES} pages")

    def _hold(self, directory: Directory, until: float) -> Directory:
        self._held = (until, directory)
        return directory

    def _stored(self) -> Directory | None:
        try:
            item = self._state.get(CACHE_PK, CACHE_SK)
            return _unpacked(item["directory"]) if item and item.get("directory") else None
        except Exception as error:  # an unreadable cache is read anew from Organizations
            log_json(log, logging.WARNING, "organization_cache_unreadable", reason=f"{type(error).__name__}: "
                     f"{str(error)[:200]}")
            return None

    def _store(self, directory: Directory, now: float) -> None:
        packed = _packed(directory)
        if len(packed) > MAX_CACHED_CHARS:
            log_json(log, logging.WARNING, "organization_not_cached", accounts=len(directory.accounts),
                     reason=f"{len(packed)} characters do not fit one state-table item",
                     action="each container reads Organizations itself")
            return
        try:
            self._state.put(CACHE_PK, CACHE_SK, now, ttl_days=KEPT_DAYS, directory=packed)
        except Exception as error:  # the container still holds it
            log_json(log, logging.WARNING, "organization_not_cached", reason=f"{type(error).__name__}: "
                     f"{str(error)[:200]}")


def _good_until(directory: Directory) -> float:
    return directory.fetched_at + (REFUSED_SECONDS if directory.problem else FRESH_SECONDS)


def _packed(directory: Directory) -> str:
    text = json.dumps(directory.to_json(), separators=(",", ":"))
    return base64.b64encode(zlib.compress(text.encode(), 9)).decode()


def _unpacked(packed: str) -> Directory | None:
    try:
        return Directory.from_json(json.loads(zlib.decompress(base64.b64decode(packed))))
    except (ValueError, zlib.error):
        return None


def _error_code(error: Exception) -> str:
    response = getattr(error, "response", None)
    code = response.get("Error", {}).get("Code") if isinstance(response, dict) else None
    return code if isinstance(code, str) else ""
