"""``adapters.organizations.OrganizationReader`` on moto's AWS Organizations, and through the stage wiring.

The directory is read in pages, parent by parent, cached in the state table for every container, and never
raises: a refusal or an account outside any organisation is an empty directory, logged once and cached.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws

from chalicelib.adapters.aws import ClientFactory
from chalicelib.adapters.memory import ManualClock, MemoryState
from chalicelib.adapters.organizations import (
    CACHE_PK,
    CACHE_SK,
    FRESH_SECONDS,
    REFUSED_SECONDS,
    RETRY_SECONDS,
    OrganizationReader,
)
from chalicelib.bootstrap import Deps
from chalicelib.core.organization import Directory
from mcd_tools.sandbox import create_resources

REGION = "eu-west-1"


class Org:
    """An organisation on moto: root → prod → payments, root → sandbox; an account in each, and the management
    account at the root."""

    def __init__(self, client: Any) -> None:
        client.create_organization(FeatureSet="ALL")
        self.root = client.list_roots()["Roots"][0]["Id"]
        self.prod = self._unit(client, self.root, "prod")
        self.payments = self._unit(client, self.prod, "payments")
        self.sandbox = self._unit(client, self.root, "sandbox")
        self.payments_prod = self._account(client, "payments-prod", self.payments)
        self.payments_dr = self._account(client, "payments-dr", self.payments)
        self.sandbox_1 = self._account(client, "sandbox-1", self.sandbox)
        self.management = client.describe_organization()["Organization"]["MasterAccountId"]

    @staticmethod
    def _unit(client: Any, parent: str, name: str) -> str:
        return client.create_organizational_unit(ParentId=parent, Name=name)["OrganizationalUnit"]["Id"]

    def _account(self, client: Any, name: str, parent: str) -> str:
        account = client.create_account(Email=f"{name}@example.com", AccountName=name)["CreateAccountStatus"]
        client.move_account(AccountId=account["AccountId"], SourceParentId=self.root, DestinationParentId=parent)
        return account["AccountId"]


@pytest.fixture
def aws() -> Iterator[ClientFactory]:
    with mock_aws():
        yield ClientFactory(REGION)


def reader(factory: ClientFactory, state: Any, clock: ManualClock, page_size: int | None = 1) -> OrganizationReader:
    return OrganizationReader(lambda: factory.client("organizations"), state, clock, page_size=page_size)


def test_every_account_is_read_with_its_name_and_ou_path_page_by_page(aws: ClientFactory) -> None:
    org = Org(aws.client("organizations"))
    clock = ManualClock()
    organizations = reader(aws, MemoryState(), clock)
    directory = organizations.directory()
    assert directory.name_of(org.payments_prod) == "payments-prod"
    assert directory.ous_of(org.payments_prod) == (org.root, org.prod, org.payments)
    assert directory.ous_of(org.sandbox_1) == (org.root, org.sandbox)
    assert directory.ous_of(org.management) == (org.root,)
    assert directory.in_scope(org.payments_dr, ous=[org.prod]) and not directory.in_scope(org.sandbox_1, ous=[org.prod])
    assert directory.fetched_at == clock() and directory.problem is None
    # one page per account or OU listed (page size 1), plus each parent's closing page: all read, none twice
    assert organizations.calls >= 1 + 4 + 4


def test_the_directory_is_cached_in_the_state_table_for_every_container(aws: ClientFactory) -> None:
    org = Org(aws.client("organizations"))
    clock, state = ManualClock(), MemoryState()
    first = reader(aws, state, clock)
    read = first.directory()
    assert set(state.items) == {(CACHE_PK, CACHE_SK)}
    clock.advance(FRESH_SECONDS - 60)
    other = reader(aws, state, clock)  # another container: the table's copy, no Organizations call
    assert other.directory() == read and other.calls == 0
    assert first.directory() is read and first.calls > 0
    clock.advance(120)
    calls = other.calls
    assert other.directory().name_of(org.sandbox_1) == "sandbox-1" and other.calls > calls, "six hours on: read anew"


def test_a_large_organisation_fits_one_compressed_item() -> None:
    from chalicelib.adapters.organizations import _packed
    from chalicelib.core.organization import OrgAccount

    accounts = {f"{n:012d}": OrgAccount(f"{n:012d}", f"workload-{n}-prod", ("r-ab12", f"ou-ab12-{n % 300:08d}"))
                for n in range(5000)}
    assert len(_packed(Directory(accounts, fetched_at=1.0))) < 150_000


def test_outside_an_organisation_the_directory_is_empty_logged_once_and_asked_again_an_hour_later(
        aws: ClientFactory, caplog: pytest.LogCaptureFixture) -> None:
    clock, state = ManualClock(), MemoryState()
    with caplog.at_level(logging.WARNING, logger="mcd.organizations"):
        directory = reader(aws, state, clock).directory()
        assert directory.accounts == {} and "not in an AWS Organization" in (directory.problem or "")
        clock.advance(REFUSED_SECONDS - 60)
        again = reader(aws, state, clock)
        assert again.directory().problem == directory.problem and again.calls == 0
    logged = [json.loads(r.getMessage()) for r in caplog.records]
    assert [(e["event"], e["code"]) for e in logged] == [
        ("organization_unreadable", "AWSOrganizationsNotInUseException")]
    assert "account_aliases" in logged[0]["action"]
    clock.advance(120)
    later = reader(aws, state, clock)
    later.directory()
    assert later.calls == 1


class Refusing:
    """A client whose every call fails as Organizations answers a member account without delegated access."""

    def __init__(self, code: str) -> None:
        from botocore.exceptions import ClientError

        self.error = ClientError({"Error": {"Code": code, "Message": "no"}}, "ListRoots")

    def list_roots(self, **_: Any) -> dict[str, Any]:
        raise self.error


def test_a_refusal_says_what_access_the_detector_needs(caplog: pytest.LogCaptureFixture) -> None:
    clock, state = ManualClock(), MemoryState()
    with caplog.at_level(logging.WARNING, logger="mcd.organizations"):
        directory = OrganizationReader(lambda: Refusing("AccessDeniedException"), state, clock).directory()
    assert directory.accounts == {}
    assert "delegat" in (directory.problem or "") and "management account" in (directory.problem or "")
    assert state.get(CACHE_PK, CACHE_SK) is not None


def test_any_other_failure_keeps_the_last_copy_and_tries_again_soon(aws: ClientFactory,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    org = Org(aws.client("organizations"))
    clock, state = ManualClock(), MemoryState()
    read = reader(aws, state, clock).directory()
    clock.advance(FRESH_SECONDS + 60)
    throttled = OrganizationReader(lambda: Refusing("TooManyRequestsException"), state, clock)
    with caplog.at_level(logging.WARNING, logger="mcd.organizations"):
        assert throttled.directory() == read
    assert "TooManyRequestsException" in caplog.text
    stored = copy.deepcopy(state.get(CACHE_PK, CACHE_SK))
    clock.advance(RETRY_SECONDS - 1)
    assert throttled.directory() == read  # held, not asked again
    assert state.get(CACHE_PK, CACHE_SK) == stored, "a failure never replaces the good copy"
    fresh = OrganizationReader(lambda: Refusing("TooManyRequestsException"), MemoryState(), clock)
    assert fresh.directory().accounts == {} and read.name_of(org.payments_prod) == "payments-prod"


def test_an_unreadable_cached_copy_is_read_anew(aws: ClientFactory) -> None:
    org = Org(aws.client("organizations"))
    clock, state = ManualClock(), MemoryState()
    state.put(CACHE_PK, CACHE_SK, clock(), directory="not base64 zlib json")
    assert reader(aws, state, clock).directory().name_of(org.sandbox_1) == "sandbox-1"


# --- through the stage wiring: bootstrap's Deps, the direct stage, trust scoped to an OU ---------------------


def api_call(account: str, role: str, event_id: str) -> dict[str, Any]:
    """An EventBridge "AWS API Call via CloudTrail": a session of ``role`` opens a security group in ``account``."""
    identity = {"type": "AssumedRole", "arn": f"arn:aws:sts::{account}:assumed-role/{role.rsplit('/', 1)[-1]}/ci",
                "accountId": account, "sessionContext": {"sessionIssuer": {
                    "type": "Role", "arn": f"arn:aws:iam::{account}:role/{role}", "accountId": account}}}
    detail = {"eventVersion": "1.09", "userIdentity": identity, "eventTime": "2024-05-01T12:00:00Z",
              "eventSource": "ec2.amazonaws.com", "eventName": "AuthorizeSecurityGroupIngress", "awsRegion": REGION,
              "sourceIPAddress": "198.51.100.7", "userAgent": "aws-cli/2.15.0",
              "requestParameters": {"groupId": "sg-0abc"}, "responseElements": {"_return": True},
              "eventID": event_id, "readOnly": False, "eventType": "AwsApiCall", "recipientAccountId": account}
    return {"version": "0", "id": event_id, "detail-type": "AWS API Call via CloudTrail", "source": "aws.ec2",
            "account": account, "time": "2024-05-01T12:00:00Z", "region": REGION, "resources": [], "detail": detail}


def test_trust_scoped_to_an_ou_is_decided_with_the_organisation_read_through_deps(aws: ClientFactory) -> None:
    from chalicelib.stages.direct import direct

    org = Org(aws.client("organizations"))
    settings = {"trusted_principals": [{"arn": "arn:aws:iam::*:role/ci/deployer", "ous": [org.prod]}]}
    env = create_resources(aws.client, REGION, settings=settings, prefix="mcd-orgs")
    deps = Deps(env, aws)
    assert direct(api_call(org.payments_prod, "ci/deployer", "00000000-0000-4000-8000-000000000001"), deps,
                  "eventbridge")["alerts"] == 0, "the role is trusted in the prod OU (payments is below it)"
    assert direct(api_call(org.sandbox_1, "ci/deployer", "00000000-0000-4000-8000-000000000002"), deps,
                  "eventbridge")["alerts"] == 1, "not in the sandbox OU"
    cached = deps.state.get(CACHE_PK, CACHE_SK)
    assert cached is not None and deps.organization.calls > 0


class Slow:
    """An Organizations client whose every answer takes a second and lists one more OU: an organisation too
    big (or an API too slow) to read within ``READ_SECONDS``."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock, self.units = clock, 0

    def list_roots(self, **_: Any) -> dict[str, Any]:
        self.clock.advance(1)
        return {"Roots": [{"Id": "r-ab12"}]}

    def list_accounts_for_parent(self, **_: Any) -> dict[str, Any]:
        self.clock.advance(1)
        return {"Accounts": []}

    def list_organizational_units_for_parent(self, **_: Any) -> dict[str, Any]:
        self.clock.advance(1)
        self.units += 1
        return {"OrganizationalUnits": [{"Id": f"ou-ab12-{self.units:08d}"}]}


def test_a_read_that_takes_too_long_is_given_up_and_the_last_copy_serves(aws: ClientFactory) -> None:
    from chalicelib.adapters.organizations import READ_SECONDS

    org = Org(aws.client("organizations"))
    clock, state = ManualClock(), MemoryState()
    read = reader(aws, state, clock).directory()
    clock.advance(FRESH_SECONDS + 60)
    started = clock()
    slow = Slow(clock)
    assert OrganizationReader(lambda: slow, state, clock).directory() == read, "the stale copy, not nothing"
    assert clock() - started <= READ_SECONDS + 2 and read.name_of(org.sandbox_1) == "sandbox-1"


def test_a_refusal_after_a_good_read_keeps_the_good_copy(aws: ClientFactory) -> None:
    org = Org(aws.client("organizations"))
    clock, state = ManualClock(), MemoryState()
    read = reader(aws, state, clock).directory()
    clock.advance(FRESH_SECONDS + 60)
    refused = OrganizationReader(lambda: Refusing("AccessDeniedException"), state, clock).directory()
    assert refused == read and refused.name_of(org.payments_prod) == "payments-prod"
    assert Directory.from_json(json.loads(json.dumps(read.to_json()))).accounts == read.accounts
