"""The normalised items: frozen, compared on what they mean, written to JSON without credentials."""

from __future__ import annotations

import dataclasses
from dataclasses import replace
from datetime import datetime, timezone

import pytest

from chalicelib.core.model import (
    ConfigChange,
    Ignored,
    IndexedResource,
    Principal,
    PropertyChange,
    TrailEvent,
    Unparseable,
)

WHEN = datetime(2024, 5, 1, 12, 0, 1, 500_000, tzinfo=timezone.utc)
USER = Principal(type="IAMUser", arn="arn:aws:iam::111122223333:user/alice", account="111122223333",
                 issuer_arn="arn:aws:iam::111122223333:user/alice", display_name="alice", mfa=True,
                 user_name="alice", access_key_id="AKIAEXAMPLE")
EVENT = TrailEvent(source="lookup:eu-west-1", event_id="e-1", event_name="AuthorizeSecurityGroupIngress",
                   event_source="ec2.amazonaws.com", event_time=WHEN, account="111122223333", region="eu-west-1",
                   read_only=False, error_code=None, principal=USER,
                   indexed_resources=(IndexedResource("AWS::EC2::SecurityGroup", "sg-0abc"),),
                   request_parameters={"groupId": "sg-0abc"}, raw={"eventID": "e-1"}, fingerprint="f-1")
CHANGE = ConfigChange(source="sns:m-1", message_type="ConfigurationItemChangeNotification", account="111122223333",
                      region="eu-west-1", resource_type="AWS::EC2::SecurityGroup", resource_id="sg-0abc",
                      resource_name="web", arn="arn:aws:ec2:eu-west-1:111122223333:security-group/sg-0abc",
                      capture_time=WHEN, change_type="UPDATE", status="OK",
                      changed_properties=(PropertyChange("Configuration.IpPermissions.0", "CREATE", None, {"p": 22}),
                                          PropertyChange("Tags.env", "UPDATE", "a", "b")),
                      configuration={"groupId": "sg-0abc"}, tags={"env": "b"})


def test_a_principal_is_written_without_its_user_name_or_access_key() -> None:
    assert USER.to_json() == {
        "type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/alice", "account": "111122223333",
        "issuer_arn": "arn:aws:iam::111122223333:user/alice", "display_name": "alice", "session_name": None,
        "source_identity": None, "mfa": True, "invoked_by": None, "from_console": False}
    assert Principal().to_json() == dict.fromkeys(USER.to_json(), None) | {"from_console": False}


def test_items_are_frozen() -> None:
    for item in (USER, EVENT, CHANGE, Ignored("s", "r"), Unparseable("s", "r")):
        with pytest.raises(dataclasses.FrozenInstanceError):
            item.source = "changed"  # type: ignore[misc,union-attr]


def test_a_trail_event_says_who_acted_and_whether_it_failed() -> None:
    assert EVENT.identity_type == "IAMUser" and not EVENT.failed
    assert replace(EVENT, error_code="AccessDenied").failed
    assert replace(EVENT, error_message="Failed authentication").failed, "a failed sign-in carries only a message"
    assert replace(EVENT, principal=Principal()).identity_type is None


def test_two_deliveries_of_one_record_are_equal_whatever_they_carry_along() -> None:
    again = replace(EVENT, raw={"eventID": "e-1", "extra": True}, request_parameters=None, resources=[{"x": 1}],
                    response_elements={"_return": True}, fingerprint="f-2", source="eventbridge")
    assert again != EVENT, "the source is part of an event"
    assert replace(again, source=EVENT.source) == EVENT
    assert replace(EVENT, event_id="e-2") != EVENT
    assert replace(CHANGE, configuration={"other": 1}, tags={}) == CHANGE


def test_a_trail_event_as_json() -> None:
    assert EVENT.to_json() == {
        "source": "lookup:eu-west-1", "kind": "cloudtrail_event", "event_id": "e-1",
        "event_name": "AuthorizeSecurityGroupIngress", "event_source": "ec2.amazonaws.com",
        "event_time": "2024-05-01T12:00:01.500Z", "account": "111122223333", "region": "eu-west-1",
        "read_only": False, "error_code": None, "principal": USER.to_json()}
    assert replace(EVENT, event_time=None).to_json()["event_time"] is None


def test_a_config_change_as_json_lists_its_changed_paths() -> None:
    data = CHANGE.to_json()
    assert data["kind"] == "config_change" and data["capture_time"] == "2024-05-01T12:00:01.500Z"
    assert data["changed_properties"] == ["Configuration.IpPermissions.0", "Tags.env"]
    assert "configuration" not in data and "tags" not in data, "the item's body stays in the archive"
    assert (data["oversized"], data["resource_id"], data["arn"]) == (False, "sg-0abc", CHANGE.arn)
    assert CHANGE.changed_properties[0].to_json() == {"path": "Configuration.IpPermissions.0", "change_type": "CREATE",
                                                      "previous": None, "updated": {"p": 22}}


def test_ignored_and_unparseable_say_why() -> None:
    assert Ignored("sns:m", "snapshot delivery").to_json() == {"source": "sns:m", "kind": "ignored",
                                                               "reason": "snapshot delivery"}
    assert Unparseable("sns:m", "not JSON").to_json() == {"source": "sns:m", "kind": "unparseable",
                                                          "reason": "not JSON"}
