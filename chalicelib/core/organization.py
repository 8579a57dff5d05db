"""The AWS Organization as the detector sees it: each account's name and the OUs above it (pure).

``Directory`` is what ``adapters.organizations`` reads from AWS Organizations (``ListRoots``, then per parent
``ListOrganizationalUnitsForParent`` and ``ListAccountsForParent``) and caches as JSON. An account's OU path
runs from the root (``r-…``) down to the OU that holds it, so "in this OU or below" is "this id is on the path".
An empty directory (not in an organisation, access refused) names no account and puts none in any OU: names
then come from ``settings.account_aliases`` only, and OU scopes match nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Union

ROOT_ID = re.compile(r"r-[0-9a-z]{4,32}")
OU_ID = re.compile(r"ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}")


@dataclass(frozen=True)
class OrgAccount:
    """One account: its id, its name in Organizations, and its OU ids from the root down."""

    id: str
    name: str
    ous: tuple[str, ...] = ()


@dataclass(frozen=True)
class Directory:
    """The organisation's accounts by id, read at ``fetched_at`` (epoch seconds).

    ``problem`` says why the directory is empty when it could not be read (kept with the cached copy so
    the reason is logged once, not on every read).
    """

    accounts: Mapping[str, OrgAccount] = field(default_factory=dict)
    fetched_at: float = 0.0
    problem: str | None = None

    def name_of(self, account: str | None) -> str | None:
        found = self.accounts.get(account or "")
        return found.name if found and found.name else None

    def ous_of(self, account: str | None) -> tuple[str, ...]:
        found = self.accounts.get(account or "")
        return found.ous if found else ()

    def in_scope(self, account: str | None, accounts: Collection[str] = (), ous: Collection[str] = ()) -> bool:
        """Is ``account`` one of ``accounts``, or in one of ``ous`` or below? With neither given: yes."""
        if not accounts and not ous:
            return True
        if account and account in accounts:
            return True
        return bool(ous) and any(ou in ous for ou in self.ous_of(account))

    def to_json(self) -> dict[str, Any]:
        """Compact JSON: each distinct OU path once, each account as ``[id, name, path index]``."""
        paths: dict[tuple[str, ...], int] = {}
        rows = []
        for account in sorted(self.accounts.values(), key=lambda a: a.id):
            rows.append([account.id, account.name, paths.setdefault(account.ous, len(paths))])
        return {"fetched_at": self.fetched_at, "problem": self.problem, "paths": [list(p) for p in paths],
                "accounts": rows}

    @classmethod
    def from_json(cls, data: Any) -> Directory:
        """What ``to_json`` wrote; rows that cannot be read are left out (a damaged cache names fewer accounts)."""
        if not isinstance(data, Mapping):
            return cls()
        paths = [tuple(str(ou) for ou in p) for p in _list(data.get("paths")) if isinstance(p, list)]
        accounts = {}
        for row in _list(data.get("accounts")):
            if (isinstance(row, list) and len(row) == 3 and isinstance(row[0], str) and isinstance(row[1], str)
                    and isinstance(row[2], int) and 0 <= row[2] < len(paths)):
                accounts[row[0]] = OrgAccount(row[0], row[1], paths[row[2]])
        fetched = data.get("fetched_at")
        problem = data.get("problem")
        return cls(accounts=accounts, fetched_at=float(fetched) if isinstance(fetched, (int, float)) else 0.0,
                   problem=problem if isinstance(problem, str) and problem else None)


EMPTY = Directory()

DirectorySource = Union[Directory, Callable[[], Directory], None]  # noqa: UP007 (a runtime alias on 3.10)
"""A directory, a function that reads it only when called (the port's ``directory``), or none."""


def resolve(source: DirectorySource) -> Directory:
    """The directory ``source`` stands for (reading it now if it is a function); ``EMPTY`` for none."""
    if source is None:
        return EMPTY
    return source if isinstance(source, Directory) else source()


def account_name(account: str | None, aliases: Mapping[str, str], directory: DirectorySource = None) -> str | None:
    """The name shown beside ``account``: ``settings.account_aliases`` wins, else the organisation's name.

    ``directory`` is read only when the alias is missing.
    """
    if not account:
        return None
    if account in aliases:
        return aliases[account]
    return resolve(directory).name_of(account) if directory is not None else None


def is_scope_id(value: str) -> bool:
    """An OU id (``ou-…``) or a root id (``r-…``): what ``ous`` scopes may name."""
    return bool(OU_ID.fullmatch(value) or ROOT_ID.fullmatch(value))


def _list(value: Any) -> Iterable[Any]:
    return value if isinstance(value, list) else ()
