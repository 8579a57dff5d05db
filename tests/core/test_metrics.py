"""EMF lines: what CloudWatch needs to read a metric, whatever text an event put in a dimension."""

from __future__ import annotations

import json

from chalicelib.core.metrics import MAX_DIMENSION_CHARS, NAMESPACE, OUTCOMES, SECONDS, emf_line


def test_a_metric_is_published_by_stage_and_by_its_extra_dimension() -> None:
    document = json.loads(emf_line("prod", OUTCOMES, 1, "Count", 1_700_000_000_123, {"Kind": "manual_change"}))
    [directive] = document["_aws"]["CloudWatchMetrics"]
    assert document["_aws"]["Timestamp"] == 1_700_000_000_123
    assert directive == {"Namespace": NAMESPACE, "Dimensions": [["Stage"], ["Stage", "Kind"]],
                         "Metrics": [{"Name": "Outcomes", "Unit": "Count"}]}
    assert (document["Stage"], document["Kind"], document["Outcomes"]) == ("prod", "manual_change", 1)


def test_without_extra_dimensions_only_the_stage_is_one() -> None:
    document = json.loads(emf_line("", "AlertDelayFromCall", 42.5, SECONDS, 0))
    assert document["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["Stage"]]
    assert document["Stage"] == "none" and document["AlertDelayFromCall"] == 42.5


def test_a_dimension_value_from_an_event_is_one_short_line() -> None:
    pattern = "arn:aws:iam::1:role/ci-*\n" + "x" * 5000
    line = emf_line("dev", "Suppressions", 1, "Count", 0, {"Pattern": pattern})
    assert "\n" not in line
    value = json.loads(line)["Pattern"]
    assert len(value) == MAX_DIMENSION_CHARS and value.startswith("arn:aws:iam::1:role/ci-* x")
