"""The organisation's directory (accounts, names, OU paths), its JSON cache form, and trust across accounts."""

from __future__ import annotations

import pytest

from chalicelib.core import trust
from chalicelib.core.model import Principal
from chalicelib.core.organization import (
    EMPTY,
    Directory,
    OrgAccount,
    account_name,
    is_scope_id,
    resolve,
)

ROOT, PROD, PAYMENTS, SANDBOX = "r-ab12", "ou-ab12-prod0001", "ou-ab12-paym0001", "ou-ab12-sand0001"
PAYMENTS_PROD, SANDBOX_1, AT_ROOT = "111111111111", "222222222222", "333333333333"
DIRECTORY = Directory({
    PAYMENTS_PROD: OrgAccount(PAYMENTS_PROD, "payments-prod", (ROOT, PROD, PAYMENTS)),
    SANDBOX_1: OrgAccount(SANDBOX_1, "sandbox-1", (ROOT, SANDBOX)),
    AT_ROOT: OrgAccount(AT_ROOT, "management", (ROOT,)),
}, fetched_at=1_714_564_800.0)


def test_an_account_is_in_its_ou_and_every_ou_above_it() -> None:
    assert DIRECTORY.in_scope(PAYMENTS_PROD, ous=[PAYMENTS])
    assert DIRECTORY.in_scope(PAYMENTS_PROD, ous=[PROD])
    assert DIRECTORY.in_scope(PAYMENTS_PROD, ous=[ROOT])
    assert not DIRECTORY.in_scope(SANDBOX_1, ous=[PROD])
    assert not DIRECTORY.in_scope(AT_ROOT, ous=[PROD, SANDBOX])


def test_accounts_and_ous_are_either_and_neither_is_everywhere() -> None:
    assert DIRECTORY.in_scope(SANDBOX_1, accounts=[SANDBOX_1], ous=[PROD])
    assert DIRECTORY.in_scope(PAYMENTS_PROD, accounts=[SANDBOX_1], ous=[PROD])
    assert not DIRECTORY.in_scope(AT_ROOT, accounts=[SANDBOX_1], ous=[PROD])
    assert DIRECTORY.in_scope("999999999999")
    assert DIRECTORY.in_scope(None)


def test_an_unknown_account_is_in_no_ou_and_has_no_name() -> None:
    assert not DIRECTORY.in_scope("999999999999", ous=[ROOT])
    assert not DIRECTORY.in_scope(None, ous=[ROOT])
    assert DIRECTORY.name_of("999999999999") is None and DIRECTORY.ous_of("999999999999") == ()
    assert DIRECTORY.name_of(PAYMENTS_PROD) == "payments-prod"
    assert DIRECTORY.ous_of(PAYMENTS_PROD) == (ROOT, PROD, PAYMENTS)
    assert not EMPTY.in_scope(PAYMENTS_PROD, ous=[ROOT]) and EMPTY.name_of(PAYMENTS_PROD) is None


def test_the_directory_survives_its_json_form_with_each_ou_path_written_once() -> None:
    data = DIRECTORY.to_json()
    assert len(data["paths"]) == 3 and len(data["accounts"]) == 3
    assert Directory.from_json(data) == DIRECTORY
    refused = Directory(fetched_at=5.0, problem="not in an organisation")
    assert Directory.from_json(refused.to_json()) == refused


@pytest.mark.parametrize("damaged", [None, "text", {"paths": "x", "accounts": "y"}, {"fetched_at": "soon"}])
def test_an_unreadable_cache_is_an_empty_directory(damaged: object) -> None:
    assert Directory.from_json(damaged).accounts == {}


def test_rows_that_cannot_be_read_are_left_out() -> None:
    data = DIRECTORY.to_json()
    data["accounts"] += [["444444444444", "bad-path", 9], ["555555555555", 7, 0], "row", ["666666666666", "x"]]
    assert set(Directory.from_json(data).accounts) == {PAYMENTS_PROD, SANDBOX_1, AT_ROOT}


def test_an_alias_wins_and_the_directory_is_read_only_without_one() -> None:
    reads: list[int] = []

    def directory() -> Directory:
        reads.append(1)
        return DIRECTORY

    aliases = {PAYMENTS_PROD: "pay"}
    assert account_name(PAYMENTS_PROD, aliases, directory) == "pay" and reads == []
    assert account_name(SANDBOX_1, aliases, directory) == "sandbox-1" and reads == [1]
    assert account_name(SANDBOX_1, aliases) is None
    assert account_name(None, aliases, directory) is None
    assert resolve(None) is EMPTY and resolve(DIRECTORY) is DIRECTORY


@pytest.mark.parametrize(("value", "valid"), [
    ("ou-ab12-cdef3456", True), ("r-ab12", True), ("ou-ab12", False), ("o-ab12cdef34", False),
    ("OU-AB12-CDEF3456", False), ("ou-ab12-cdef3456/", False), ("123456789012", False),
])
def test_scopes_name_ou_or_root_ids(value: str, valid: bool) -> None:
    assert is_scope_id(value) is valid


# --- a pattern with "*" for the account: that role in every account, never more --------------------------


def role(arn: str) -> Principal:
    return Principal(type="AssumedRole", arn=arn.replace(":iam::", ":sts::").replace(":role/", ":assumed-role/")
                     + "/session", issuer_arn=arn)


EVERY_ACCOUNT = ("arn:aws:iam::*:role/ci/terraform",)


@pytest.mark.parametrize("account", [PAYMENTS_PROD, SANDBOX_1, "999999999999"])
def test_a_star_account_trusts_the_role_in_every_account(account: str) -> None:
    assert trust.refusal(EVERY_ACCOUNT[0]) is None
    assert trust.is_trusted(role(f"arn:aws:iam::{account}:role/ci/terraform"), EVERY_ACCOUNT)


@pytest.mark.parametrize("issuer", [
    "arn:aws:iam::111111111111:role/ci/terraform-admin",  # another name
    "arn:aws:iam::111111111111:role/terraform",  # another path
    "arn:aws:iam::111111111111:role/ci/x/terraform",  # a deeper path
    "arn:aws:iam::111111111111:111111111111:role/ci/terraform",  # "*" would have to take a ":"
    "arn:aws:iam::111111111111/role/ci:role/ci/terraform",  # ... or a "/"
    "arn:aws-us-gov:iam::111111111111:role/ci/terraform",  # another partition
])
def test_a_star_account_stays_within_its_segment(issuer: str) -> None:
    assert not trust.is_trusted(role(issuer), EVERY_ACCOUNT)


def test_a_star_inside_a_role_name_never_crosses_a_slash_whatever_the_account() -> None:
    patterns = ("arn:aws:iam::*:role/ci/deploy-*",)
    assert trust.is_trusted(role("arn:aws:iam::111111111111:role/ci/deploy-web"), patterns)
    assert not trust.is_trusted(role("arn:aws:iam::111111111111:role/ci/deploy-x/admin"), patterns)
    assert not trust.is_trusted(role("arn:aws:iam::111111111111:role/ci/deploy-x:admin"), patterns)
