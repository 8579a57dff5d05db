"""State-table keys: one builder per marker, so every stage writes and reads the same ``pk``/``sk``."""

from __future__ import annotations

from dataclasses import replace

from memory_world import change

from chalicelib.stages.shared import state_keys as keys


def test_each_marker_has_its_own_prefix() -> None:
    assert keys.item_marker("abc") == "ci#abc"
    assert keys.outcome_marker("ci:abc") == "out#ci:abc"
    assert keys.post_marker("ops", "ci:abc") == "post#ops#ci:abc"
    assert keys.burst_marker("ops", "arn:aws:iam::1:user/a") == "burst#ops#arn:aws:iam::1:user/a"
    assert keys.run_marker("lookup", "m-1") == "run#lookup#m-1"
    assert (keys.DISPATCHED, keys.POSTED, keys.LAST, keys.OPERATIONAL, keys.STARTED, keys.CAPTURE_PREFIX) == (
        "dispatched", "posted", "last", "operational", "started", "cap#")


def test_a_resources_capture_history_is_shared_by_all_its_items() -> None:
    first = change("sg-0abc")
    later = replace(first, capture_time=None, change_type="DELETE", resource_name="renamed")
    assert keys.capture_history(first) == "res#123456789012#aws::ec2::securitygroup#sg-0abc"
    assert keys.capture_history(later) == keys.capture_history(first)
    upper = replace(first, resource_type="AWS::EC2::SECURITYGROUP")
    assert keys.capture_history(upper) == keys.capture_history(first), "Config's 2014 spelling is the same type"


def test_capture_histories_of_different_resources_differ() -> None:
    base = change("sg-0abc")
    others = [change("sg-0abd"), replace(base, account="210987654321"), replace(base, resource_type="AWS::S3::Bucket")]
    assert len({keys.capture_history(c) for c in [base, *others]}) == 4
    assert keys.capture_history(replace(base, resource_type=None)) == "res#123456789012##sg-0abc"
