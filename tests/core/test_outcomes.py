"""The typed ``Outcome``: ``Kind`` is its text, ``to_json`` writes plain JSON, ``from_json`` reads old and odd input."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from chalicelib.core.model import Principal
from chalicelib.core.outcomes import (
    ALERT_KINDS,
    API_CALL,
    DEAD_LETTER,
    MANUAL_CHANGE,
    EventSummary,
    Kind,
    Outcome,
    principal_of,
)

ARN = "arn:aws:iam::318472906155:user/dmitri.volkov"
PRINCIPAL = Principal(type="IAMUser", arn=ARN, account="318472906155", issuer_arn=ARN, display_name="dmitri.volkov",
                      mfa=False)
EVENT = EventSummary(event_id="e-1", event_name="AuthorizeSecurityGroupIngress", event_time="2024-03-12T14:02:11Z",
                     event_source="ec2.amazonaws.com", region="us-east-2", request_parameters={"groupId": "sg-1"})
CHANGE = {"path": "Tags.env", "change_type": "UPDATE", "previous": "prod", "updated": "dev"}


def outcome(**overrides: Any) -> Outcome:
    values: dict[str, Any] = {
        "kind": MANUAL_CHANGE, "outcome_id": "ci:1", "at": "2024-03-12T14:10:00Z", "account": "318472906155",
        "region": "us-east-2", "resource_type": "AWS::EC2::SecurityGroup", "resource_id": "sg-1",
        "principal_arn": ARN, "principal": PRINCIPAL, "event_ids": ("e-1",), "events": (EVENT,),
        "event_name": "AuthorizeSecurityGroupIngress", "changed_properties": (CHANGE,),
        "extra": {"attributed_via": "resource"},
    }
    values.update(overrides)
    return Outcome(**values)


# --------------------------------------------------------------------------------------------
# Kind


def test_a_kind_is_its_text_everywhere() -> None:
    assert Kind.MANUAL_CHANGE == "manual_change" and MANUAL_CHANGE is Kind.MANUAL_CHANGE
    assert str(MANUAL_CHANGE) == f"{MANUAL_CHANGE}" == "manual_change"
    assert f"{API_CALL}:{None}" == "api_call:None"
    assert json.dumps({"kind": DEAD_LETTER}) == '{"kind": "dead_letter"}'
    assert "console_signin" in ALERT_KINDS
    assert {"manual_change": 1}[MANUAL_CHANGE] == 1


def test_a_kind_given_as_text_becomes_a_kind_and_an_unknown_one_stays_text() -> None:
    assert outcome(kind="api_call").kind is Kind.API_CALL
    mystery = outcome(kind="mystery")
    assert mystery.kind == "mystery" and not isinstance(mystery.kind, Kind)
    assert not mystery.is_alert and outcome(kind="suppressed").kind is Kind.SUPPRESSED


# --------------------------------------------------------------------------------------------
# to_json / from_json


def test_to_json_writes_plain_json_with_the_principal_as_it_always_was() -> None:
    data = outcome().to_json()
    assert type(data["kind"]) is str and data["kind"] == "manual_change"
    assert data["principal"] == PRINCIPAL.to_json()
    assert list(data) == [f.name for f in dataclasses.fields(Outcome)]
    assert data["event_ids"] == ["e-1"] and data["changed_properties"] == [CHANGE]
    assert data["events"] == [dataclasses.asdict(EVENT)]
    assert json.loads(json.dumps(data)) == data


def test_the_round_trip_is_exact() -> None:
    original = outcome()
    back = Outcome.from_json(json.loads(json.dumps(original.to_json())))
    assert back == original
    assert json.dumps(back.to_json()) == json.dumps(original.to_json())


def test_an_older_message_with_a_partial_principal_dict_is_read() -> None:
    data = outcome().to_json()
    data["principal"] = {"type": "IAMUser", "arn": ARN, "display_name": "dmitri.volkov", "mfa": True}
    data["retired_field"] = "ignored"
    read = Outcome.from_json(data)
    assert read.principal == Principal(type="IAMUser", arn=ARN, display_name="dmitri.volkov", mfa=True)
    assert read.to_json()["principal"]["from_console"] is False


@pytest.mark.parametrize("junk", ["IAMUser", 7, ["x"], True, None, 1.5])
def test_a_principal_that_is_not_an_object_is_absent(junk: Any) -> None:
    data = {**outcome().to_json(), "principal": junk}
    assert Outcome.from_json(data).principal is None


def test_odd_principal_values_become_text_and_mfa_only_a_bool() -> None:
    principal = principal_of({"type": 3, "display_name": {"n": 1}, "arn": None, "mfa": "yes", "from_console": "true"})
    assert principal == Principal(type="3", display_name='{"n":1}', mfa=None, from_console=False)
    assert principal_of({"mfa": False}) == Principal(mfa=False)


def test_an_outcome_carries_the_principal_as_it_travels() -> None:
    """``user_name`` and ``access_key_id`` are never written, so no reader sees them before the queue either."""
    made = outcome(principal=dataclasses.replace(PRINCIPAL, user_name="dmitri", access_key_id="AKIA1"))
    assert made.principal == PRINCIPAL
    assert Outcome.from_json(made.to_json()) == made


def test_events_from_json_tolerate_unknown_keys_and_junk() -> None:
    data = outcome().to_json()
    data["events"] = [{**dataclasses.asdict(EVENT), "new_key": 1}, "junk", 5, {"event_name": "X"}]
    read = Outcome.from_json(data)
    assert read.events == (EVENT, EventSummary(event_id=None, event_name="X", event_time=None))


def test_missing_lists_read_as_empty() -> None:
    read = Outcome.from_json({"kind": "api_call", "outcome_id": "ct:1", "at": "t", "events": None,
                              "event_ids": None, "changed_properties": None})
    assert (read.events, read.event_ids, read.changed_properties, read.principal, read.extra) == ((), (), (), None, {})


# --------------------------------------------------------------------------------------------
# Every field holds its declared type


def test_wrongly_typed_fields_are_normalised() -> None:
    odd = outcome(account=318472906155, region=["us-east-2"], partition=7, extra="x", event_ids="e-1",
                  events=[EVENT, {"event_id": "not a summary"}], changed_properties=(CHANGE, "junk", 3))
    assert odd.account == "318472906155" and odd.region == '["us-east-2"]'
    assert odd.partition == "aws" and odd.extra == {}
    assert odd.event_ids == () and odd.events == (EVENT,) and odd.changed_properties == (CHANGE,)
    assert outcome(event_ids=["e-1", None, 5]).event_ids == ("e-1", "5")


def test_event_text_fields_are_text() -> None:
    event = EventSummary(event_id=1, event_name=None, event_time={"t": 1}, user_agent=["ua"], request_parameters=[1])
    assert (event.event_id, event.event_time, event.user_agent) == ("1", '{"t":1}', '["ua"]')
    assert event.request_parameters == [1], "free-form contents are kept as delivered"


def test_replace_normalises_too() -> None:
    assert dataclasses.replace(outcome(), principal={"display_name": "ola"}).principal == Principal(display_name="ola")


def test_event_names_and_root() -> None:
    named = outcome(event_name="A", events=(EVENT, dataclasses.replace(EVENT, event_name=" "),
                                            dataclasses.replace(EVENT, event_name="A")))
    assert named.event_names == ("A", "AuthorizeSecurityGroupIngress")
    assert outcome(principal=Principal(type="Root")).by_root
    assert outcome(principal=None, principal_arn="arn:aws:iam::1:root").by_root
    assert not outcome().by_root
