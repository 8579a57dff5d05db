"""Organisation-aware settings: trusted principals scoped to accounts or OUs, routes by OU and by tag."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from chalicelib.core.errors import ConfigurationError
from chalicelib.core.organization import Directory, OrgAccount
from chalicelib.core.settings import Route, ScopedTrust, Settings

ROOT, PROD, PAYMENTS, SANDBOX = "r-ab12", "ou-ab12-prod0001", "ou-ab12-paym0001", "ou-ab12-sand0001"
PAYMENTS_PROD, SANDBOX_1, OUTSIDE = "111111111111", "222222222222", "999999999999"
DIRECTORY = Directory({PAYMENTS_PROD: OrgAccount(PAYMENTS_PROD, "payments-prod", (ROOT, PROD, PAYMENTS)),
                       SANDBOX_1: OrgAccount(SANDBOX_1, "sandbox-1", (ROOT, SANDBOX))})
EVERYWHERE = "arn:aws:iam::*:role/ci/terraform"
DEPLOYER = "arn:aws:iam::*:role/ci/deployer"
BREAK_GLASS = "arn:aws:iam::*:role/ops/break-glass"
DESTINATIONS = [{"name": "sec", "secret": "mcd/t/sec"}]


def scoped_settings() -> Settings:
    return Settings.from_dict({"trusted_principals": [
        EVERYWHERE,
        {"arn": DEPLOYER, "ous": [PROD]},
        {"arn": BREAK_GLASS, "accounts": [SANDBOX_1], "$comment": "game days only"},
    ]})


class Reads:
    """A directory source that counts how often it is read."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> Directory:
        self.count += 1
        return DIRECTORY


def pinned(pattern: str, account: str) -> str:
    """A ``*``-account pattern as it applies in ``account``: the role of that account only."""
    return pattern.replace(":*:", f":{account}:", 1)


def test_a_scoped_star_pattern_trusts_the_role_of_the_account_in_scope_not_the_same_role_elsewhere() -> None:
    """A sandbox account's own ci/deployer acting cross-account on a prod resource is not the prod deployer."""
    settings = scoped_settings()
    patterns = settings.trusted_for(PAYMENTS_PROD, DIRECTORY)
    assert f"arn:aws:iam::{PAYMENTS_PROD}:role/ci/deployer" in patterns
    assert not any(SANDBOX_1 in p or ":*:" in p for p in patterns if "deployer" in p)
    central = Settings.from_dict({"trusted_principals": [
        {"arn": "arn:aws:iam::333333333333:role/ci/deployer", "ous": [PROD]},
        {"arn": "arn:aws:iam::1111*:role/ci/x", "accounts": [PAYMENTS_PROD, SANDBOX_1]}]})
    assert central.trusted_for(PAYMENTS_PROD, DIRECTORY) == (
        "arn:aws:iam::333333333333:role/ci/deployer", f"arn:aws:iam::{PAYMENTS_PROD}:role/ci/x"), \
        "a named account stays; a partial glob pins to the item's account when it matches"
    assert central.trusted_for(SANDBOX_1, DIRECTORY) == ()


def test_plain_and_scoped_patterns_are_kept_apart() -> None:
    settings = scoped_settings()
    assert settings.trusted_principals == (EVERYWHERE,)
    assert settings.scoped_trust == (ScopedTrust(DEPLOYER, ous=(PROD,)), ScopedTrust(BREAK_GLASS, (SANDBOX_1,)))


def test_a_scoped_pattern_applies_only_in_its_accounts_and_ous() -> None:
    settings = scoped_settings()
    assert settings.trusted_for(PAYMENTS_PROD, DIRECTORY) == (EVERYWHERE, pinned(DEPLOYER, PAYMENTS_PROD))
    assert settings.trusted_for(SANDBOX_1, DIRECTORY) == (EVERYWHERE, pinned(BREAK_GLASS, SANDBOX_1))
    assert settings.trusted_for(OUTSIDE, DIRECTORY) == (EVERYWHERE,)
    assert settings.trusted_for(None, DIRECTORY) == (EVERYWHERE,)


def test_without_the_directory_an_ou_scope_trusts_nothing() -> None:
    settings = scoped_settings()
    assert settings.trusted_for(PAYMENTS_PROD) == (EVERYWHERE,)
    assert settings.trusted_for(PAYMENTS_PROD, Directory(problem="not in an organisation")) == (EVERYWHERE,)


def test_the_directory_is_read_only_when_an_ou_scope_asks() -> None:
    reads = Reads()
    plain = Settings.from_dict({"trusted_principals": [EVERYWHERE,
                                                       {"arn": BREAK_GLASS, "accounts": [SANDBOX_1]}]})
    assert plain.trusted_for(SANDBOX_1, reads) == (EVERYWHERE, pinned(BREAK_GLASS, SANDBOX_1))
    assert Settings.from_dict({"trusted_principals": [EVERYWHERE]}).trusted_for(SANDBOX_1, reads) == (EVERYWHERE,)
    assert reads.count == 0
    assert scoped_settings().trusted_for(PAYMENTS_PROD, reads) == (EVERYWHERE, pinned(DEPLOYER, PAYMENTS_PROD))
    assert reads.count == 1


def test_settings_for_an_account_carry_that_accounts_trust_only() -> None:
    settings = scoped_settings()
    local = settings.for_account(PAYMENTS_PROD, DIRECTORY)
    assert local.trusted_principals == (EVERYWHERE, pinned(DEPLOYER, PAYMENTS_PROD)) and local.scoped_trust == ()
    assert local.for_account(SANDBOX_1) is local  # already resolved: nothing is scoped any more
    plain = Settings.from_dict({"trusted_principals": [EVERYWHERE]})
    assert plain.for_account(PAYMENTS_PROD, DIRECTORY) is plain


@pytest.mark.parametrize(("entry", "words"), [
    ({"arn": DEPLOYER}, ["give 'accounts' or 'ous'", "plain string"]),
    ({"arn": DEPLOYER, "ous": ["prod"]}, ["trusted_principals[].ous", "'prod'", "OU id"]),
    ({"arn": DEPLOYER, "ous": "ou-ab12-prod0001"}, ["trusted_principals[].ous", "list"]),
    ({"arn": DEPLOYER, "accounts": ["1234"]}, ["'1234'", "12-digit"]),
    ({"arn": DEPLOYER, "ou": [PROD]}, ["unknown key(s) ou"]),
    ({"ous": [PROD]}, ["needs 'arn'"]),
    ({"arn": "arn:aws:iam::*:role/*", "ous": [PROD]}, ["every role"]),
    ({"arn": "arn:aws:iam::*:role/aws-reserved/sso.amazonaws.com/*", "ous": [PROD]}, ["Identity Center"]),
    ({"arn": "arn:aws:sts::*:assumed-role/ci/x", "ous": [PROD]}, ["session ARN"]),
    (7, ["trusted_principals entry", "object"]),
])
def test_unusable_scoped_patterns_are_refused_with_the_reason(entry: Any, words: list[str]) -> None:
    with pytest.raises(ConfigurationError) as error:
        Settings.from_dict({"trusted_principals": [entry]})
    assert all(word in str(error.value) for word in words), str(error.value)


def test_the_run_time_loader_skips_an_unusable_scoped_pattern_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    document = {"trusted_principals": [EVERYWHERE, {"arn": "arn:aws:iam::*:role/*", "ous": [PROD]}, 7,
                                       {"arn": DEPLOYER, "ous": [PROD]}]}
    with caplog.at_level(logging.ERROR, logger="mcd.settings"):
        settings = Settings.from_dict(document, lenient=True)
    assert settings.trusted_principals == (EVERYWHERE,)
    assert settings.scoped_trust == (ScopedTrust(DEPLOYER, ous=(PROD,)),)
    skipped = [r.getMessage() for r in caplog.records if "trusted_principal_skipped" in r.getMessage()]
    assert len(skipped) == 2 and "role/*" in skipped[0] and "int" in skipped[1]


# --- routes by OU and by tag ------------------------------------------------------------------------------


def route(**fields: Any) -> Route:
    document = {"destinations": DESTINATIONS, "routes": [{"destinations": ["sec"], **fields}]}
    (found,) = Settings.from_dict(document).routes
    return found


def test_a_route_may_name_ous_and_tags() -> None:
    found = route(ous=[PROD, ROOT], tags={"team": "payments", "env": ""}, accounts=[SANDBOX_1])
    assert found.ous == (PROD, ROOT) and found.accounts == (SANDBOX_1,)
    assert found.tags == (("env", ""), ("team", "payments"))
    assert Settings.from_dict({"destinations": DESTINATIONS, "routes": [{"destinations": ["sec"], "ous": [PROD]}]
                               }).routes_need_directory
    assert not Settings.from_dict({"destinations": DESTINATIONS, "routes": [{"destinations": ["sec"]}]
                                   }).routes_need_directory


@pytest.mark.parametrize(("fields", "words"), [
    ({"ou": [PROD]}, ["routes[]", "unknown key(s) ou"]),
    ({"ous": ["Production"]}, ["routes[].ous", "'Production'"]),
    ({"tags": ["team"]}, ["routes[].tags", "object"]),
    ({"tags": {"team": 7}}, ["routes[].tags", "'team'"]),
    ({"tags": {"": "x"}}, ["routes[].tags", "tag key"]),
    ({"tags": {"k" * 129: "x"}}, ["tag key"]),
    ({"tags": {"team": "v" * 257}}, ["at most 256"]),
])
def test_bad_route_conditions_are_refused_by_name(fields: dict[str, Any], words: list[str]) -> None:
    document = {"destinations": DESTINATIONS, "routes": [{"destinations": ["sec"], **fields}]}
    for lenient in (False, True):  # a route is never half-read: a dropped condition would widen it
        with pytest.raises(ConfigurationError) as error:
            Settings.from_dict(document, lenient=lenient)
        assert all(word in str(error.value) for word in words), str(error.value)
