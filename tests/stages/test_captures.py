"""A resource's capture history: ``previous_capture`` is the item of the same resource recorded just before."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from memory_world import CAPTURE, change, world

from chalicelib.adapters.state import DAY
from chalicelib.stages.shared.captures import HISTORY_TTL_DAYS, previous_capture, record_capture
from chalicelib.stages.shared.state_keys import capture_history


def test_the_first_item_of_a_resource_has_no_previous_capture() -> None:
    deps = world()
    first = change("sg-0abc")
    assert previous_capture(deps, first) is None
    record_capture(deps, first)
    assert previous_capture(deps, first) is None, "an item is not its own predecessor"


def test_the_previous_capture_is_the_latest_one_before_whatever_the_arrival_order() -> None:
    deps = world()
    times = [CAPTURE + timedelta(minutes=m, milliseconds=ms) for m, ms in ((0, 0), (7, 250), (3, 0), (12, 0))]
    for when in times:  # the 7-minute item arrives before the 3-minute one, as Config may deliver them
        record_capture(deps, change("sg-0abc", when))
    assert previous_capture(deps, change("sg-0abc", times[1])) == times[2]
    assert previous_capture(deps, change("sg-0abc", times[2])) == times[0]
    assert previous_capture(deps, change("sg-0abc", times[3])) == times[1], "milliseconds are kept"
    assert previous_capture(deps, change("sg-0abc", CAPTURE + timedelta(hours=1))) == times[3]


def test_other_resources_do_not_count() -> None:
    deps = world()
    record_capture(deps, change("sg-0other", CAPTURE))
    record_capture(deps, change("sg-0abc", CAPTURE, account="210987654321"))
    assert previous_capture(deps, change("sg-0abc", CAPTURE + timedelta(minutes=5))) is None


def test_the_history_is_kept_for_three_days_only() -> None:
    deps = world()
    item = change("sg-0abc")
    record_capture(deps, item)
    [row] = deps.state.with_prefix(capture_history(item))
    assert row["sk"] == "cap#" + CAPTURE.isoformat().replace("+00:00", "Z")
    assert int(row["expires_at"]) == int(deps.clock()) + HISTORY_TTL_DAYS * DAY and HISTORY_TTL_DAYS == 3


def test_an_item_recorded_twice_is_one_entry() -> None:
    deps = world()
    item = change("sg-0abc")
    record_capture(deps, item)
    record_capture(deps, replace(item, source="redelivered"))
    assert len(deps.state.with_prefix(capture_history(item))) == 1
